"""Live rows are recorded at backup and checked after every restore (never a false success)."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from pymilvus import DataType, MilvusClient

from milvus_backup_operator.engine.manifest import MANIFEST
from milvus_backup_operator.engine.storage import ObjectStore
from testbed import sample_data
from testbed.stack import Stack, stack_config
from tests.conftest import run_cli

pytestmark = pytest.mark.integration

UPSERTS = 30  # rows first inserted, then upserted (a delete and a row at one timestamp)


def store(stack: Stack) -> ObjectStore:
    config = stack_config(stack)
    return ObjectStore(config.backup_storage, config.timeouts)


def backup_rows(stack: Stack, name: str) -> dict[str, Any]:
    got = run_cli(stack.config_path, "get", "-n", name)
    assert got.code == 0, got.output
    return {c["name"]: c for c in json.loads(got.stdout)["collections"]}


def restored_line(stack: Stack, name: str, *args: str) -> str:
    result = run_cli(stack.config_path, "restore", "-n", name, *args)
    assert result.code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def churned(stack: Stack) -> tuple[MilvusClient, int]:
    """A VARCHAR-keyed collection with inserts, upserts and deletes; its live rows."""
    c = sample_data.client(stack.milvus.uri)
    schema = c.create_schema(auto_id=False)
    schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=16)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    index = c.prepare_index_params()
    index.add_index(field_name="v", index_type="FLAT", metric_type="L2")
    c.create_collection("churn", schema=schema, index_params=index)
    rng = random.Random(7)
    c.insert("churn", [{"key": f"k{i}", "v": [rng.random() for _ in range(4)]} for i in range(300)])
    c.upsert("churn", [{"key": f"k{i}", "v": [1.0] * 4} for i in range(UPSERTS)])
    c.delete("churn", filter='key in ["k100", "k101", "k102", "k5", "nope"]')
    c.flush("churn")
    yield c, 300 - 4  # k5 was upserted, then deleted; "nope" never existed
    for name in ("churn", "churn_lr", "churn_lr_loaded", "churn_old"):
        c.drop_collection(name)


def test_live_rows_are_recorded_and_checked_after_the_restore(
    stack: Stack, churned: tuple[MilvusClient, int]
) -> None:
    client, live = churned
    assert run_cli(stack.config_path, "create", "-n", "lr_churn", "-c", "churn").code == 0
    recorded = backup_rows(stack, "lr_churn")["churn"]
    assert recorded["live_rows"] == live
    assert recorded["rows"] == 300 + UPSERTS  # the segments hold every version
    out = restored_line(stack, "lr_churn", "-s", "_lr")
    assert f"Completed ({live} rows: {live} live rows recorded at backup, {live} imported)" in out
    loaded = restored_line(
        stack, "lr_churn", "-r", "churn:churn_lr_loaded", "--rebuild_index", "--load"
    )
    assert "count(*) after load agrees" in loaded, loaded
    rows = client.query("churn_lr_loaded", filter='key != ""', output_fields=["v"], limit=1000)
    assert len(rows) == live
    assert [r["v"] for r in rows if r["key"] == "k0"] == [[1.0] * 4]  # the upserted version


def test_books_live_rows_match_its_live_rows_in_milvus(stack: Stack, samples: Any) -> None:
    live = len(sample_data.rows(stack.milvus.uri, sample_data.BOOKS))  # as it is now
    assert run_cli(stack.config_path, "create", "-n", "lr_books", "-c", "books").code == 0
    books = backup_rows(stack, "lr_books")["books"]
    assert books["live_rows"] == live < books["rows"]


def test_an_edited_count_fails_that_collection_and_leaves_nothing(
    stack: Stack, samples: Any
) -> None:
    assert run_cli(stack.config_path, "create", "-n", "lr_edited", "-c", "books,tiny").code == 0
    key = f"backup/lr_edited/meta/{MANIFEST}"
    manifest = json.loads(store(stack).get(key))
    books = sample_data.client(stack.milvus.uri).describe_collection("books")
    books_id = str(books["collection_id"])
    total = sum(manifest["live_rows"][books_id].values())
    partition, count = next(iter(manifest["live_rows"][books_id].items()))
    manifest["live_rows"][books_id][partition] = count + 1
    store(stack).put(key, json.dumps(manifest).encode())
    before = sorted(sample_data.client(stack.milvus.uri).list_collections())

    result = run_cli(stack.config_path, "restore", "-n", "lr_edited", "-s", "_edited")

    assert result.code == 1, result.output
    books_line = next(line for line in result.stdout.splitlines() if "books_edited" in line)
    assert f"imported {total} rows into books_edited but the backup holds {total + 1}" in books_line
    assert f"not the count recorded in meta/{MANIFEST}" in books_line
    assert "tiny -> tiny_edited: Completed" in result.stdout  # the other collection goes on
    after = sorted(sample_data.client(stack.milvus.uri).list_collections())
    assert after == sorted([*before, "tiny_edited"])  # no wrong books_edited left behind
    sample_data.client(stack.milvus.uri).drop_collection("tiny_edited")


def test_a_backup_without_recorded_counts_is_checked_against_its_binlogs(
    stack: Stack, churned: tuple[MilvusClient, int]
) -> None:
    """milvus-backup's backups (and ours before counts) carry no count: derive it."""
    _, live = churned
    assert run_cli(stack.config_path, "create", "-n", "lr_old", "-c", "churn").code == 0
    key = f"backup/lr_old/meta/{MANIFEST}"
    manifest = json.loads(store(stack).get(key))
    del manifest["live_rows"]
    store(stack).put(key, json.dumps(manifest).encode())
    assert backup_rows(stack, "lr_old")["churn"]["live_rows"] is None
    out = restored_line(stack, "lr_old", "-s", "_old")
    assert f"{live} live rows derived from the backup's binlogs" in out, out
