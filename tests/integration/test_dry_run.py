"""A dry run makes every check a restore makes, says what it would do, and writes nothing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from milvus_backup_operator.engine.storage import ObjectStore
from testbed import sample_data
from testbed.stack import Stack, stack_config
from tests.conftest import run_cli
from tests.integration.api_server import call, running

pytestmark = pytest.mark.integration


def everything(stack: Stack) -> tuple[list[str], dict[str, str]]:
    """Milvus's collections and every object of the bucket (Milvus's and the backups')."""
    config = stack_config(stack)
    store = ObjectStore(config.storage, config.timeouts)
    objects = {o.key: o.etag for o in store.list("")}
    return sorted(sample_data.client(stack.milvus.uri).list_collections()), objects


@pytest.fixture(scope="module")
def rehearsed(stack: Stack, samples: Any) -> str:
    made = run_cli(stack.config_path, "create", "-n", "dry_base", "-c", "books,tiny,db1.docs")
    assert made.code == 0, made.output
    return "dry_base"


def test_a_dry_run_prints_the_plan_and_writes_nothing(stack: Stack, rehearsed: str) -> None:
    before = everything(stack)
    result = run_cli(stack.config_path, "restore", "-n", rehearsed, "-s", "_dry", "--dry-run",
                     "--rebuild_index", "--load")  # fmt: skip
    assert result.code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"dry run of the restore of {rehearsed}: every check passed, nothing written"
    assert "is intact" in lines[1]
    books = next(line for line in lines if line.strip().startswith("books -> books_dry"))
    shape = (
        r": create, 2 partitions, import \d+ segments \(\d+ rows, \d+ live\) in \d+ jobs, "
        r"then rebuild "
    )
    assert re.search(shape, books) and books.endswith(" and load"), books
    assert any(line.strip().startswith("db1.docs -> db1.docs_dry: create") for line in lines)
    assert everything(stack) == before


def test_a_dry_run_refuses_what_the_restore_would(stack: Stack, rehearsed: str) -> None:
    before = everything(stack)
    taken = run_cli(stack.config_path, "restore", "-n", rehearsed, "-c", "tiny", "--dry-run")
    assert taken.code == 1 and "tiny already exists" in taken.stderr, taken.output
    dropped = run_cli(stack.config_path, "restore", "-n", rehearsed, "-c", "tiny", "--dry-run",
                      "--drop_exist_collection")  # fmt: skip
    replaces = "tiny -> tiny: build beside the existing one, then swap it in"
    assert dropped.code == 0 and replaces in dropped.stdout
    assert everything(stack) == before


def test_a_dry_run_over_rest_answers_the_plan_and_records_no_task(
    stack: Stack, rehearsed: str, tmp_path: Path
) -> None:
    before = everything(stack)
    with running(stack.config_path, tmp_path) as server:
        body = {"backup_name": rehearsed, "collection_suffix": "_dry", "dry_run": True,
                "id": "dry_once"}  # fmt: skip
        status, reply = call(server, "POST", "/restore", body)
        assert status == 200 and reply["data"]["dry_run"] is True, reply
        targets = {c["target"] for c in reply["data"]["collections"]}
        assert targets == {"books_dry", "tiny_dry", "db1.docs_dry"}
        assert call(server, "GET", "/get_restore?id=dry_once")[0] == 404
    assert everything(stack) == before
