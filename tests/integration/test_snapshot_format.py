"""A backup in milvus-backup master's snapshot format (Milvus >= 3.0) is listed and described,
and its restore or verify refused by name, with nothing created.

The fixture (tests/fixtures/milvus_backup_master/mb_snapshot) is written as milvus-backup
master writes the meta of such a backup: ``format: "snapshot"`` in backup_meta.json and
full_meta.json (``core/backup/meta_builder.go`` ``buildBackupMeta``), a ``snapshot_backup``
per collection and no segments (``core/proto/backup.proto``, SnapshotBackupInfo).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from milvus_backup_operator.engine.storage import ObjectStore
from testbed import sample_data
from testbed.stack import Stack, stack_config
from tests.conftest import run_cli

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).parents[1] / "fixtures" / "milvus_backup_master" / "mb_snapshot"


@pytest.fixture(scope="module")
def snapshot_backup(stack: Stack) -> str:
    config = stack_config(stack)
    store = ObjectStore(config.backup_storage, config.timeouts)
    for meta in sorted((FIXTURE / "meta").iterdir()):
        store.put(f"backup/mb_snapshot/meta/{meta.name}", meta.read_bytes())
    return "mb_snapshot"


def test_it_is_listed_and_described(stack: Stack, snapshot_backup: str) -> None:
    listed = run_cli(stack.config_path, "list")
    line = next(row for row in listed.stdout.splitlines() if row.startswith(snapshot_backup))
    assert "Completed" in line, listed.output
    got = json.loads(run_cli(stack.config_path, "get", "-n", snapshot_backup).stdout)
    assert got["format"] == "snapshot"
    (articles,) = got["collections"]
    assert articles["name"] == "articles" and articles["snapshot_files"] == 17


@pytest.mark.parametrize("command", [("restore", "-s", "_snap"), ("verify",)])
def test_restore_and_verify_are_refused_by_name(
    stack: Stack, snapshot_backup: str, samples: Any, command: tuple[str, ...]
) -> None:
    before = sorted(sample_data.client(stack.milvus.uri).list_collections())
    result = run_cli(stack.config_path, command[0], "-n", snapshot_backup, *command[1:])
    assert result.code == 1, result.output
    assert "milvus-backup's snapshot format" in result.stderr
    assert "restore it with milvus-backup" in result.stderr
    assert sorted(sample_data.client(stack.milvus.uri).list_collections()) == before
