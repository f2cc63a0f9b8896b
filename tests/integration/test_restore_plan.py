"""restorePlan, filter and meta_only over REST and the CLI, against the real stack."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from testbed import sample_data
from testbed.sample_data import DOCS, TINY
from testbed.stack import Stack
from tests.conftest import run_cli
from tests.integration.api_server import Server, call, running
from tests.integration.world import world

pytestmark = pytest.mark.integration

PLAN_DB = "plan_db"
REFUSED = "plan_refused"  # the target database of plans that are refused: never created


@pytest.fixture(scope="module")
def server(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running(stack.config_path, tmp_path_factory.mktemp("plan_server")) as started:
        yield started


@pytest.fixture(scope="module")
def source_backup(server: Server, stack: Stack, samples: Any) -> dict[str, Any]:
    """tiny and every collection of db1 (docs, and what other tests left there), picked by
    milvus-backup's ``filter``."""
    in_db1 = sample_data.client(stack.milvus.uri, "db1").list_collections()
    body = {"backup_name": "plan_src",
            "filter": {"default": {"colls": ["tiny"]}, "db1": {"colls": ["*"]}}}  # fmt: skip
    status, reply = call(server, "POST", "/create", body)
    assert status == 200, reply
    return dict(reply["data"]) | {
        "expected": sorted(["default.tiny"] + [f"db1.{c}" for c in in_db1])
    }


def _drop(uri: str, *targets: tuple[str, str]) -> None:
    """Drop what a test restored (its restores are synchronous: no import is in flight)."""
    for db, name in targets:
        c = sample_data.client(uri, db)
        if db in c.list_databases() and c.has_collection(name):
            c.drop_collection(name)


def _restored_rows(uri: str, sample: Any, db: str, name: str) -> dict[Any, Any]:
    """Every row of ``db.name``, restored from ``sample``, by primary key."""
    sample_data.prepare_for_query(uri, replace(sample, db=db), name)
    expression = f"{sample.pk} != ''" if sample is TINY else f"{sample.pk} >= 0"
    found = sample_data.client(uri, db).query(
        name, filter=expression, output_fields=["*"], limit=sample_data.QUERY_LIMIT,
        consistency_level="Strong",
    )  # fmt: skip
    return {row[sample.pk]: sample_data._plain(row) for row in found}


def test_backup_filter_selects_the_collections(source_backup: dict[str, Any]) -> None:
    names = sorted(f"{c['db_name']}.{c['collection_name']}"
                   for c in source_backup["collection_backups"])  # fmt: skip
    assert names == source_backup["expected"] and "db1.docs" in names
    assert source_backup["size"] > 0
    assert "meta_only" not in source_backup


def test_restore_plan_maps_overrides_and_filters_targets(
    server: Server, stack: Stack, samples: Any, source_backup: dict[str, Any]
) -> None:
    uri = stack.milvus.uri
    plan = {
        "mapping": [
            {"source": "default", "target": PLAN_DB, "colls": [
                {"source": "tiny", "target": "plan_tiny",
                 "override": {"shardNum": 3, "description": "restored by plan"}}]},
            {"source": "db1", "target": "db1", "colls": [
                {"source": "docs", "target": "plan_docs"},
                {"source": "docs", "target": "plan_docs_dropped"}]},
        ],
        # targets after mapping: plan_docs_dropped is not named, so it is not restored
        "filter": {PLAN_DB: {"colls": ["*"]}, "db1": {"colls": ["plan_docs"]}},
    }  # fmt: skip
    try:
        status, reply = call(server, "POST", "/restore",
                             {"backup_name": "plan_src", "restorePlan": plan})  # fmt: skip
        assert status == 200 and reply["data"]["state_code"] == 2, reply
        targets = sorted(
            f"{t['target_db_name']}.{t['target_collection_name']}"
            for t in reply["data"]["collection_restore_tasks"]
        )
        assert targets == ["db1.plan_docs", f"{PLAN_DB}.plan_tiny"]
        described = sample_data.client(uri, PLAN_DB).describe_collection("plan_tiny")
        assert described["num_shards"] == 3 and described["description"] == "restored by plan"
        docs = sample_data.client(uri, "db1").describe_collection("plan_docs")
        original = sample_data.client(uri, "db1").describe_collection("docs")
        assert docs["num_shards"] == original["num_shards"]
        assert not sample_data.client(uri, "db1").has_collection("plan_docs_dropped")
        assert _restored_rows(uri, TINY, PLAN_DB, "plan_tiny") == samples["tiny"]
        assert _restored_rows(uri, DOCS, "db1", "plan_docs") == samples["db1.docs"]
    finally:
        _drop(uri, (PLAN_DB, "plan_tiny"), ("db1", "plan_docs"), ("db1", "plan_docs_dropped"))
        if PLAN_DB in sample_data.client(uri).list_databases():
            sample_data.client(uri).drop_database(PLAN_DB)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"restorePlan": {"mapping": [{"source": "default", "target": REFUSED, "withProp": True}],
                          "filter": {REFUSED: {"colls": ["*"]}}}},
         "withProp is milvus-backup's, not supported"),
        ({"collection_suffix": "_p", "restorePlan": {"filter": {"db1": {"colls": ["*"]}}}},
         "restorePlan cannot be given with collection_suffix"),
        ({"restorePlan": {"filter": {"plan_nowhere": {"colls": ["*"]}}}},
         "keeps none of the collections"),
        ({"restorePlan": {"mapping": [{"source": "default", "target": REFUSED}]}},
         f"maps database default to {REFUSED} without colls"),
        ({"restorePlan": {"mapping": [{"source": "default", "target": REFUSED, "colls": [
            {"source": "tiny", "target": "t"}]}]}}, "restorePlan.filter names no database"),
    ],
)  # fmt: skip
def test_plans_we_refuse_say_why_and_write_nothing(
    server: Server, stack: Stack, source_backup: dict[str, Any], body: dict[str, Any],
    fragment: str,
) -> None:  # fmt: skip
    before = world(stack)
    status, reply = call(server, "POST", "/restore", {"backup_name": "plan_src", **body})
    assert status == 400 and fragment in reply["msg"], reply
    after = world(stack)
    assert REFUSED not in after.databases
    assert after == before  # databases, collections, their rows, both buckets' objects


def test_meta_only_backup_is_marked_and_restores_empty(
    server: Server, stack: Stack, samples: Any
) -> None:
    uri = stack.milvus.uri
    body = {"backup_name": "plan_meta", "collection_names": ["tiny"], "strategy": "meta_only"}
    status, reply = call(server, "POST", "/create", body)
    assert status == 200 and reply["data"]["meta_only"] is True and reply["data"]["size"] == 0
    (coll,) = reply["data"]["collection_backups"]
    assert not coll.get("backup_timestamp") and coll["index_infos"]  # as milvus-backup writes
    assert not any(p.get("segment_backups") for p in coll["partition_backups"])
    listed = {e["name"]: e for e in call(server, "GET", "/list")[1]["data"]}
    assert listed["plan_meta"].get("meta_only") is True
    got = json.loads(run_cli(stack.config_path, "get", "-n", "plan_meta").stdout)
    assert got["meta_only"] is True and got["collections"][0]["rows"] is None
    verified = run_cli(stack.config_path, "verify", "-n", "plan_meta")
    assert verified.code == 0 and "meta only: no data" in verified.stdout
    try:
        request = {"backup_name": "plan_meta", "collection_suffix": "_plan_meta",
                   "restoreIndex": True, "load": True}  # fmt: skip
        status, reply = call(server, "POST", "/restore", request)
        assert status == 200 and reply["data"]["state_code"] == 2, reply
        (task,) = reply["data"]["collection_restore_tasks"]
        assert task["restored_rows"] == 0 and "the backup is meta only" in task["rows_checked"]
        assert sample_data.client(uri).query("tiny_plan_meta", "", ["count(*)"]) == [
            {"count(*)": 0}
        ]
        assert sample_data.client(uri).list_indexes("tiny_plan_meta")
    finally:
        _drop(uri, ("default", "tiny_plan_meta"))


def test_meta_only_restore_of_a_backup_with_data_imports_nothing(
    server: Server, stack: Stack, source_backup: dict[str, Any]
) -> None:
    uri = stack.milvus.uri
    try:
        request = {"backup_name": "plan_src", "collection_names": ["tiny"],
                   "collection_suffix": "_plan_mo", "metaOnly": True}  # fmt: skip
        status, reply = call(server, "POST", "/restore", request)
        assert status == 200 and reply["data"]["state_code"] == 2, reply
        (task,) = reply["data"]["collection_restore_tasks"]
        assert "meta only restore" in task["rows_checked"] and task["restored_rows"] == 0
        stats = sample_data.client(uri).get_collection_stats("tiny_plan_mo")
        assert stats["row_count"] == 0
    finally:
        _drop(uri, ("default", "tiny_plan_mo"))


def test_cli_meta_only_strategy_and_filter(stack: Stack, source_backup: dict[str, Any]) -> None:
    uri = stack.milvus.uri
    made = run_cli(stack.config_path, "create", "-n", "plan_meta_cli", "--strategy", "meta_only",
                   "--filter", "db1.*")  # fmt: skip
    assert made.code == 0 and "(meta only: no data)" in made.stdout, made.stderr
    assert "db1.docs" in made.stdout and "tiny" not in made.stdout
    planned = run_cli(stack.config_path, "restore", "-n", "plan_meta_cli", "-s", "_x", "--dry-run")
    assert "db1.docs -> db1.docs_x: create, 1 partition, no data: the backup is meta only" in (
        planned.stdout
    ), planned.output
    listed = run_cli(stack.config_path, "list")
    assert any(line.split()[:3] == ["plan_meta_cli", "Completed", "(meta"]
               for line in listed.stdout.splitlines()), listed.stdout  # fmt: skip
    try:
        # --filter names targets, after the suffix: only tiny is restored, data and all
        done = run_cli(stack.config_path, "restore", "-n", "plan_src", "-s", "_plan_cli",
                       "--filter", "tiny_plan_cli")  # fmt: skip
        assert done.code == 0, done.stderr
        assert "tiny -> tiny_plan_cli: Completed (200 rows" in done.stdout
        assert not sample_data.client(uri, "db1").has_collection("docs_plan_cli")
        done = run_cli(stack.config_path, "restore", "-n", "plan_src", "-s", "_plan_cli2",
                       "-c", "tiny", "--meta_only")  # fmt: skip
        assert done.code == 0 and "no rows imported: meta only restore" in done.stdout, done.stderr
        stats = sample_data.client(uri).get_collection_stats("tiny_plan_cli2")
        assert stats["row_count"] == 0
    finally:
        _drop(uri, ("default", "tiny_plan_cli"), ("default", "tiny_plan_cli2"))
