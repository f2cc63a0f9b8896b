"""restorePlan, filter and meta_only as milvus-backup reads them, from the REST body to the
collections a restore would create (``core/server/restore.go`` at v0.5.16)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from milvus_backup_operator.engine.backup import is_meta_only
from milvus_backup_operator.engine.errors import InvalidRequestError
from milvus_backup_operator.engine.meta import (
    BackupInfo,
    CollectionBackupInfo,
    PartitionBackupInfo,
    SegmentBackupInfo,
)
from milvus_backup_operator.engine.restore_plan import _plan, shards_num
from milvus_backup_operator.engine.selection import CollectionRef
from milvus_backup_operator.server.protocol import CreateBackupRequest, RestoreBackupRequest
from milvus_backup_operator.server.requests import backup_request, restore_request

BACKUP = [
    CollectionBackupInfo(db_name="db1", collection_name="a", shards_num=2, backup_timestamp=1),
    CollectionBackupInfo(db_name="db1", collection_name="b", shards_num=2, backup_timestamp=1),
    CollectionBackupInfo(db_name="", collection_name="c", shards_num=1, backup_timestamp=1),
]


def planned(body: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each collection the restore of ``body`` would create."""
    request = restore_request(RestoreBackupRequest.model_validate(body), "t")
    return [(info.qualified_name, str(target)) for info, target in _plan(BACKUP, request)]


def test_mapping_renames_listed_collections_and_the_filter_picks_targets() -> None:
    body = {"backup_name": "b", "restorePlan": {
        "mapping": [{"source": "db1", "target": "db2",
                     "colls": [{"source": "a", "target": "a2"}, {"source": "a", "target": "a3"}]}],
        # targets, after mapping: db1.b keeps its name; c (default) is not named: not restored
        "filter": {"db2": {"colls": ["*"]}, "db1": {"colls": ["b"]}}}}  # fmt: skip
    assert planned(body) == [("db1.a", "db2.a2"), ("db1.a", "db2.a3"), ("db1.b", "db1.b")]


def test_collection_names_still_select_sources_under_a_plan() -> None:
    body = {"backup_name": "b", "collection_names": ["db1.b"], "restorePlan": {
        "mapping": [{"source": "db1", "target": "db2", "colls": [{"source": "a", "target": "x"}]}],
        "filter": {"db2": {"colls": ["*"]}, "db1": {"colls": ["*"]}}}}  # fmt: skip
    assert planned(body) == [("db1.b", "db1.b")]


def test_override_sets_the_shard_number_of_its_target_only() -> None:
    body = {"backup_name": "b", "restorePlan": {
        "mapping": [{"source": "db1", "target": "db1", "colls": [
            {"source": "a", "target": "a_new", "override": {"shardNum": 4, "description": "d"}},
            {"source": "b", "target": "b_new"}]}],
        "filter": {"db1": {"colls": ["*"]}}}}  # fmt: skip
    request = restore_request(RestoreBackupRequest.model_validate(body), "t")
    shards = {str(t): shards_num(info, request, t) for info, t in _plan(BACKUP, request)}
    assert shards == {"db1.a_new": 4, "db1.b_new": 2}
    assert request.mapping is not None
    assert request.mapping.override(CollectionRef("db1", "a_new")).description == "d"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"restorePlan": {"mapping": [], "filter": {}}}, "restorePlan.filter names no database"),
        ({"restorePlan": {"filter": {"db9": {"colls": ["*"]}}}}, "keeps none of the collections"),
        ({"collection_suffix": "_x", "restorePlan": {"filter": {"db1": {"colls": ["*"]}}}},
         "restorePlan cannot be given with collection_suffix"),
        ({"collection_renames": {"c": "d"}, "restorePlan": {"filter": {"db1": {"colls": ["a"]}}}},
         "restorePlan cannot be given with collection_suffix or collection_renames"),
        ({"restorePlan": {"mapping": [{"source": "db1", "colls": [{"source": "a", "target": "z"}]}],
                          "filter": {"db1": {"colls": ["*"]}}}}, "give both source and target"),
        ({"restorePlan": {"mapping": [{"source": "db1", "target": "db1",
                                       "colls": [{"source": "nope", "target": "z"}]}],
                          "filter": {"db1": {"colls": ["*"]}}}}, "collection db1.nope does not"),
        ({"restorePlan": {"mapping": [{"source": "db1", "target": "db1", "colls": [
            {"source": "a", "target": "z"}, {"source": "b", "target": "z"}]}],
                          "filter": {"db1": {"colls": ["*"]}}}}, "two collections would be"),
        ({"restorePlan": {"filter": {"db1": {"colls": []}}}}, "give a database name and its"),
        ({"restorePlan": {"filter": {"db1": {"colls": ["a", "*"]}}}}, '"*" means every'),
        # a database mapped alone would restore over the source collections (a hostile run)
        ({"restorePlan": {"mapping": [{"source": "default", "target": "dbx"}],
                          "filter": {"default": {"colls": ["*"]}}}},
         "maps database default to dbx without colls"),
    ],
)  # fmt: skip
def test_plans_milvus_backup_would_refuse_or_run_empty_are_refused(
    body: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(InvalidRequestError, match=fragment):
        planned({"backup_name": "b", **body})


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"restorePlan": {"mapping": [{"source": "db1", "target": "db2", "withProp": True}]}},
         "withProp is milvus-backup's, not supported"),
        ({"restorePlan": {"mapping": [{"source": "db1", "target": "db2", "colls": [
            {"source": "a", "target": "b", "override": {"shardNum": 2, "numPartitions": 3}}]}]}},
         "unknown field numPartitions"),
        ({"restorePlan": {"mapping": [], "filters": {}}}, "unknown field filters"),
        ({"restorePlan": {"mapping": [{"source": "db1", "target": "db2", "colls": [
            {"source": "a", "target": "b", "override": {"shardNum": -1}}]}]}}, "shardNum"),
    ],
)  # fmt: skip
def test_what_we_do_not_implement_in_a_plan_is_refused_by_name(
    body: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ValidationError, match=fragment):
        RestoreBackupRequest.model_validate({"backup_name": "b", **body})


def test_an_empty_plan_is_what_default_sending_scripts_send_and_means_none() -> None:
    request = restore_request(RestoreBackupRequest.model_validate(
        {"backup_name": "b", "restorePlan": {}, "metaOnly": True}), "t")  # fmt: skip
    assert request.mapping is None and request.only == () and request.meta_only


def test_backup_filter_and_strategy() -> None:
    body = {"backup_name": "b", "filter": {"db1": {"colls": ["*"]}, "default": {"colls": ["c"]}},
            "strategy": "meta_only"}  # fmt: skip
    request = backup_request(CreateBackupRequest.model_validate(body))
    assert [str(r) for r in request.collections] == ["db1.*", "c"] and request.meta_only
    legacy = backup_request(CreateBackupRequest.model_validate({"meta_only": True}))
    assert legacy.meta_only and legacy.collections == ()
    with pytest.raises(InvalidRequestError, match="give filter or collection_names"):
        backup_request(CreateBackupRequest.model_validate(
            {"filter": {"db1": {"colls": ["a"]}}, "collection_names": ["c"]}))  # fmt: skip
    with pytest.raises(InvalidRequestError, match="strategy skip_flush is milvus-backup's"):
        is_meta_only("skip_flush")
    with pytest.raises(InvalidRequestError, match="invalid strategy 'meta'"):
        is_meta_only("meta")


def test_meta_only_is_read_from_what_milvus_backup_records() -> None:
    """Its meta_only strategy records partitions, no segment and no backup timestamp."""
    schema_only = CollectionBackupInfo(
        collection_name="a", partition_backups=[PartitionBackupInfo(partition_name="_default")]
    )
    empty_but_flushed = CollectionBackupInfo(collection_name="e", backup_timestamp=7)
    segment = SegmentBackupInfo(segment_id=1, num_of_rows=3)
    with_data = CollectionBackupInfo(
        collection_name="d",
        partition_backups=[PartitionBackupInfo(segment_backups=[segment])],
    )
    assert schema_only.meta_only
    assert not empty_but_flushed.meta_only and not with_data.meta_only
    assert BackupInfo(collection_backups=[schema_only]).meta_only
    assert not BackupInfo(collection_backups=[schema_only, empty_but_flushed]).meta_only
    assert not BackupInfo().meta_only


def test_a_stored_request_reads_back_the_same_after_a_server_restart() -> None:
    """The REST server stores each task's body (``model_dump(by_alias=True)``) as JSON."""
    body = {"backup_name": "b", "metaOnly": True, "restorePlan": {
        "mapping": [{"source": "db1", "target": "db2", "colls": [
            {"source": "a", "target": "a2", "override": {"shardNum": 2}}]}],
        "filter": {"db2": {"colls": ["*"]}}}}  # fmt: skip
    restore = RestoreBackupRequest.model_validate(body)
    stored = json.loads(json.dumps(restore.model_dump(by_alias=True)))
    assert RestoreBackupRequest.model_validate(stored) == restore
    create = CreateBackupRequest.model_validate(
        {"filter": {"db1": {"colls": ["a"]}}, "strategy": "meta_only"}
    )
    stored = json.loads(json.dumps(create.model_dump(by_alias=True)))
    assert CreateBackupRequest.model_validate(stored) == create
