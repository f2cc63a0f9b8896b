"""Aliases are recorded at backup and recreated on restore when asked, never stolen."""

from __future__ import annotations

from typing import Any

import pytest

from milvus_backup_operator.engine.catalog import Catalog
from testbed import sample_data
from testbed.stack import Stack, stack_config
from tests.conftest import run_cli

pytestmark = pytest.mark.integration


def test_aliases_round_trip_and_an_alias_in_use_is_refused(stack: Stack, samples: Any) -> None:
    client = sample_data.client(stack.milvus.uri)
    client.create_alias("tiny", "tiny_current")
    try:
        made = run_cli(stack.config_path, "create", "-n", "with_alias", "-c", "tiny")
        assert made.code == 0, made.output
        (recorded,) = Catalog.of(stack_config(stack)).read("with_alias").collection_backups
        assert recorded.aliases == ["tiny_current"]

        before = sorted(client.list_collections())
        taken = run_cli(stack.config_path, "restore", "-n", "with_alias", "-s", "_al",
                        "--restore_aliases")  # fmt: skip
        assert taken.code == 1, taken.output
        assert "alias tiny_current of tiny cannot be restored" in taken.stderr
        assert "already names collection tiny" in taken.stderr
        assert sorted(client.list_collections()) == before  # refused before anything
    finally:
        client.drop_alias("tiny_current")

    plan = run_cli(stack.config_path, "restore", "-n", "with_alias", "-s", "_al",
                   "--restore_aliases", "--dry-run")  # fmt: skip
    assert plan.code == 0 and "then alias it as tiny_current" in plan.stdout, plan.output
    done = run_cli(stack.config_path, "restore", "-n", "with_alias", "-s", "_al",
                   "--restore_aliases")  # fmt: skip
    assert done.code == 0, done.output
    assert client.describe_collection("tiny_current")["collection_name"] == "tiny_al"
    without = run_cli(stack.config_path, "restore", "-n", "with_alias", "-s", "_plain")
    assert without.code == 0, without.output  # aliases are restored only when asked
    client.drop_alias("tiny_current")
    client.drop_collection("tiny_al")
    client.drop_collection("tiny_plain")
