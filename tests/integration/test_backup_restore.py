"""Backup and restore of real data on the real Milvus 2.3.5 and the real RADOS Gateway."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from typing import Any

import pytest
from pymilvus import DataType, MilvusClient

from milvus_backup_operator.engine.backup import BackupRequest, create_backup
from milvus_backup_operator.engine.selection import parse_list
from testbed import sample_data
from testbed.sample_data import BOOKS, DOCS, SAMPLES, TINY
from testbed.stack import Stack, stack_config
from tests.conftest import CliResult, run_cli

pytestmark = pytest.mark.integration

Rows = dict[Any, dict[str, Any]]


@pytest.fixture(scope="module")
def nightly(stack: Stack, samples: dict[str, Rows]) -> dict[str, Rows]:
    """A backup of every collection; then the originals change, so restores must not follow."""
    result = run_cli(stack.config_path, "create", "-n", "nightly", "-c", "books,tiny,db1.docs")
    assert result.code == 0, result.output
    books = sample_data.client(stack.milvus.uri)
    books.delete("books", filter="pk >= 100 and pk < 150")
    books.insert("books", [{**samples["books"][1], "pk": 90_001}])
    return samples


@pytest.fixture(scope="module")
def recovered(stack: Stack, nightly: dict[str, Rows]) -> CliResult:
    """``nightly`` restored whole with the suffix ``_recover`` (the tests that read the
    restored collections need it, whichever of them runs, in whatever order)."""
    result = run_cli(stack.config_path, "restore", "-n", "nightly", "-s", "_recover")
    assert result.code == 0, result.output
    return result


def restored_rows(stack: Stack, sample: sample_data.SampleCollection, name: str) -> Rows:
    sample_data.prepare_for_query(stack.milvus.uri, sample, name)
    return sample_data.rows(stack.milvus.uri, sample, name)


def test_backup_is_listed_complete_with_its_collections(stack: Stack, nightly: Any) -> None:
    listing = run_cli(stack.config_path, "list")
    assert listing.code == 0, listing.output
    line = next(row for row in listing.stdout.splitlines() if row.startswith("nightly "))
    assert "Completed" in line and "v2.3.5" in line

    got = run_cli(stack.config_path, "get", "-n", "nightly")
    assert got.code == 0, got.output
    backup = json.loads(got.stdout)
    assert backup["name"] == "nightly" and backup["state"] == "Completed"
    collections = {c["name"]: c for c in backup["collections"]}
    assert set(collections) == {"books", "tiny", "db1.docs"}
    assert collections["books"]["rows"] == 4500  # rows in binlogs; 27 of them are deleted
    assert collections["books"]["partitions"] == ["_default", "p2"]
    assert collections["books"]["segments"] >= 3
    assert collections["tiny"]["consistency_level"] == "Strong"
    assert backup["size"] == sum(c["size"] for c in backup["collections"]) > 0


def test_restore_with_suffix_gives_back_exactly_the_rows_live_at_backup_time(
    stack: Stack, nightly: dict[str, Rows], recovered: CliResult
) -> None:
    result = recovered
    for sample in SAMPLES:
        rows = restored_rows(stack, sample, sample.name + "_recover")
        assert rows == nightly[sample.ref], f"{sample.ref}: restored rows differ"
    assert len(nightly["books"]) == 4500 - 27
    recovered = f"{DOCS.ref} -> db1.docs_recover: Completed (500 rows: 500 live rows recorded"
    assert recovered in result.stdout


def test_restored_schema_matches_the_original(stack: Stack, recovered: CliResult) -> None:
    c = sample_data.client(stack.milvus.uri)
    original, restored = c.describe_collection("books"), c.describe_collection("books_recover")
    assert restored["fields"] == original["fields"]
    assert restored["enable_dynamic_field"] and restored["num_shards"] == 2
    assert restored["consistency_level"] == original["consistency_level"]
    assert set(c.list_partitions("books_recover")) == {"_default", "p2"}


def test_rename_while_the_original_exists_then_rebuild_index_load_and_search(
    stack: Stack, nightly: dict[str, Rows]
) -> None:
    result = run_cli(
        stack.config_path, "restore", "-n", "nightly", "-c", "books",
        "-r", "books:books_copy", "--rebuild_index", "--load",
    )  # fmt: skip
    assert result.code == 0, result.output
    c = sample_data.client(stack.milvus.uri)
    assert c.has_collection("books") and c.has_collection("books_copy")
    index = c.describe_index("books_copy", c.list_indexes("books_copy")[0])
    assert index["index_type"] == "HNSW" and index["M"] == "8"
    assert c.get_load_state("books_copy")["state"].name == "Loaded"  # no load call by the test
    probe = nightly["books"][42]
    hits = c.search("books_copy", [probe["vec"]], limit=3, output_fields=["title", "extra"])
    assert hits[0][0]["id"] == 42
    assert hits[0][0]["entity"] == {"title": probe["title"], "extra": probe["extra"]}
    assert sample_data.rows(stack.milvus.uri, BOOKS, "books_copy") == nightly["books"]


def test_existing_target_is_refused_unless_drop_is_asked(
    stack: Stack, nightly: dict[str, Rows]
) -> None:
    """Its own target (not another test's restore), changed after its restore."""
    restore = ("restore", "-n", "nightly", "-c", "tiny", "-s", "_taken")
    made = run_cli(stack.config_path, *restore)
    assert made.code == 0, made.output
    c = sample_data.client(stack.milvus.uri)
    c.insert("tiny_taken", [{"code": "extra", "emb": [0.0] * 4, "score": 1.0}])
    assert len(restored_rows(stack, TINY, "tiny_taken")) == 201
    refused = run_cli(stack.config_path, *restore)
    assert refused.code == 1
    assert "tiny_taken already exists" in refused.stderr
    assert "--drop_exist_collection" in refused.stderr
    assert len(sample_data.rows(stack.milvus.uri, TINY, "tiny_taken")) == 201  # untouched

    replaced = run_cli(stack.config_path, *restore, "--drop_exist_collection")
    assert replaced.code == 0, replaced.output
    assert restored_rows(stack, TINY, "tiny_taken") == nightly["tiny"]


def test_engine_reports_progress_to_the_end(stack: Stack, samples: Any) -> None:
    seen: list[Any] = []
    request = BackupRequest("progress_probe", tuple(parse_list("books,tiny")))
    info = create_backup(stack_config(stack), request, seen.append)
    assert seen[-1].phase == "completed" and seen[-1].percent == 100
    assert seen[-1].bytes_done == seen[-1].bytes_total == info.size
    assert seen[-1].segments_done == seen[-1].segments_total >= 4
    assert seen[-1].collections_done == 2
    assert {"flushing", "copying", "writing meta"} <= {p.phase for p in seen}


def test_create_without_collections_takes_every_collection_of_every_database(
    stack: Stack, samples: Any
) -> None:
    c = sample_data.client(stack.milvus.uri)
    existing = {
        name if db == "default" else f"{db}.{name}"
        for db in c.list_databases()
        for name in sample_data.client(stack.milvus.uri, db).list_collections()
    }
    result = run_cli(stack.config_path, "create", "-n", "everything")
    assert result.code == 0, result.output
    backup = json.loads(run_cli(stack.config_path, "get", "-n", "everything").stdout)
    assert {c["name"] for c in backup["collections"]} == existing
    assert run_cli(stack.config_path, "delete", "-n", "everything").code == 0


def test_a_terminal_shows_a_progress_bar(stack: Stack, samples: Any) -> None:
    """On a terminal (a pty here) create draws a bar with the step and the counts."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # 120 columns
    command = [sys.executable, "-m", "milvus_backup_operator", "--config", str(stack.config_path),
               "create", "-n", "with_bar", "-c", "books,tiny"]  # fmt: skip
    process = subprocess.Popen(command, stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    assert process.wait(timeout=120) == 0, output
    text = output.decode(errors="replace")
    assert "copying" in text and "collections" in text and "%" in text, text
    assert "backup with_bar created" in text


def test_partition_key_collection_round_trips(stack: Stack, samples: Any) -> None:
    """A partition-key collection: its partitions are Milvus's own, recreated by count."""
    c = sample_data.client(stack.milvus.uri)
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("tenant", DataType.VARCHAR, max_length=16, is_partition_key=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    c.create_collection("tenants", schema=schema, num_partitions=4, consistency_level="Strong")
    rows = [{"id": i, "tenant": f"t{i % 7}", "v": [i / 100, 0.5, 0.25, 1.0]} for i in range(700)]
    c.insert("tenants", rows)
    c.delete("tenants", filter="id in [3, 10, 699]")
    index = c.prepare_index_params()
    index.add_index(field_name="v", index_type="FLAT", metric_type="L2")
    c.create_index("tenants", index)
    c.load_collection("tenants")
    tenants = sample_data.SampleCollection("tenants", "default", "id", "v", 4)
    before = sample_data.rows(stack.milvus.uri, tenants)

    assert run_cli(stack.config_path, "create", "-n", "tenants", "-c", "tenants").code == 0
    restored = run_cli(stack.config_path, "restore", "-n", "tenants", "-s", "_r",
                       "--rebuild_index", "--load")  # fmt: skip
    assert restored.code == 0, restored.output
    assert sorted(c.list_partitions("tenants_r")) == sorted(c.list_partitions("tenants"))
    described = c.describe_collection("tenants_r")
    assert any(f.get("is_partition_key") for f in described["fields"])
    assert sample_data.rows(stack.milvus.uri, tenants, "tenants_r") == before
    assert len(before) == 697
