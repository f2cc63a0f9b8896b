"""The stand-in Milvus refuses what Milvus refuses: each rule catches an engine broken in
that one way (the rules and the Milvus code they follow: ``tests/standin/imports.py``).

A backup of ``rules`` (pks 1-4 at ts 100; its own delta log deletes pk 2 at 200 and pk 4 at
50, before pk 4 was written) and ``rules_l0`` (pks 1-2, an L0 segment deleting pk 1) is
taken once; each test restores it with one function of the engine broken, or asks the
stand-in directly, and checks the answer a user would read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import grpc
import pytest
from pymilvus.grpc_gen import common_pb2, milvus_pb2, milvus_pb2_grpc

from milvus_backup_operator.engine import binlog, restore
from milvus_backup_operator.engine.backup import BackupRequest, create_backup
from milvus_backup_operator.engine.config import BackupConfig, MilvusConfig
from milvus_backup_operator.engine.errors import DamagedBackupError
from milvus_backup_operator.engine.import_jobs import ImportJob
from milvus_backup_operator.engine.restore import RestoreResult, restore_backup
from milvus_backup_operator.engine.restore_plan import RestoreRequest
from milvus_backup_operator.engine.selection import CollectionRef
from milvus_backup_operator.engine.storage import ObjectStore
from testbed.stack import Stack, stack_config
from tests.integration.test_milvus_2x_standin import schema, write_deletes, write_segment
from tests.standin.binlogs import delta_log, multi_field_delta_log, read_binlog
from tests.standin.milvus import Collection, Segment, StandInMilvus

pytestmark = pytest.mark.integration

BUCKET, ROOT, BASE = "standin-rules-bucket", "files", "sr_base"
C, P, C0, P0 = 7801, 7802, 7851, 7852
L0 = common_pb2.SegmentLevel.L0
Jobs = tuple[list[ImportJob], list[ImportJob]]


@pytest.fixture(scope="module")
def standin(stack: Stack) -> Iterator[tuple[StandInMilvus, BackupConfig]]:
    stack.s3.ensure_bucket(BUCKET)
    real = stack_config(stack)
    storage = replace(real.storage, bucket=BUCKET, root_path=ROOT)
    store = ObjectStore(storage, real.timeouts)
    write_segment(store, C, P, 7811, [1, 2, 3, 4], ts=100)
    store.put(f"{ROOT}/delta_log/{C}/{P}/7811/78111", delta_log([(2, 200), (4, 50)]))
    write_segment(store, C0, P0, 7861, [1, 2], ts=100)
    write_deletes(store, C0, P0, 7862, [(1, 200)])
    collections = [
        Collection(C, "rules", schema("rules"), {"_default": P}, [Segment(7811, P, 4)]),
        Collection(C0, "rules_l0", schema("rules_l0"), {"_default": P0},
                   [Segment(7861, P0, 2), Segment(7862, P0, 0, L0)]),
    ]  # fmt: skip
    server = StandInMilvus("v2.5.20", collections, store).start()
    config = replace(
        real,
        milvus=MilvusConfig(address="127.0.0.1", port=server.port),
        storage=storage,
        backup_storage=replace(storage, root_path="backup"),
    )
    create_backup(config, BackupRequest(BASE, (), rbac=False))
    try:
        yield server, config
    finally:
        server.stop()


def broken(monkeypatch: pytest.MonkeyPatch, change: Callable[[ImportJob], ImportJob]) -> None:
    """The restore plans its import jobs, then ``change`` breaks each one."""
    planned = restore.collection_jobs

    def jobs(*args: Any) -> Jobs:
        data, deletes = planned(*args)
        return [change(j) for j in data], [change(j) for j in deletes]

    monkeypatch.setattr(restore, "collection_jobs", jobs)


def restored(config: BackupConfig, suffix: str, name: str = "rules") -> RestoreResult:
    ref = CollectionRef("default", name)
    return restore_backup(config, RestoreRequest(BASE, collections=(ref,), suffix=suffix))


def test_milvus_imports_the_rows_its_delete_filter_keeps(
    standin: tuple[StandInMilvus, BackupConfig],
) -> None:
    """pk 2 is deleted after it was written, pk 4 before: Milvus imports 3 rows."""
    _, config = standin
    result = restored(config, "_ok")
    assert result.succeeded, result.failure_summary()
    (rules,) = result.collections
    assert rules.rows == 3 and "3 live rows recorded at backup, 3 imported" in rules.checked


def test_an_import_that_leaves_out_the_delta_logs_fails_on_the_rows(
    standin: tuple[StandInMilvus, BackupConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, config = standin
    broken(monkeypatch, lambda j: replace(j, files=tuple(f[:1] for f in j.files)))
    result = restored(config, "_nodelta")
    assert not result.succeeded
    summary = result.failure_summary()
    assert "Milvus imported 4 rows into" in summary and "the backup holds 3 live rows" in summary


def test_more_than_two_paths_in_a_binlog_import_are_refused(
    standin: tuple[StandInMilvus, BackupConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``validateBinlogImportPaths``: one insert and at most one delta prefix."""
    _, config = standin
    broken(monkeypatch, lambda j: replace(j, files=tuple((*f, f[-1]) for f in j.files)))
    result = restored(config, "_three")
    assert not result.succeeded
    assert "too many input paths for binlog import. Valid paths length should be one or two" in (
        result.failure_summary()
    )


def test_an_insert_prefix_of_one_segment_fails_as_in_milvus(
    standin: tuple[StandInMilvus, BackupConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ListBinlogsAndGroupBySegment`` takes what is right under the prefix for segments:
    under a segment's own directory those are its fields, each missing the others."""
    _, config = standin

    def into_segment(job: ImportJob) -> ImportJob:
        return replace(job, files=tuple((f[0] + "7811/", *f[1:]) for f in job.files))

    broken(monkeypatch, into_segment)
    result = restored(config, "_deep")
    assert not result.succeeded
    assert "no binlog for Timestamp field: importing data failed" in result.failure_summary()


def test_a_backup_mode_import_without_a_partition_is_refused(
    standin: tuple[StandInMilvus, BackupConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``importTask.PreExecute``: backup mode restores one named partition at a time."""
    _, config = standin
    broken(monkeypatch, lambda j: replace(j, partition_name=""))
    result = restored(config, "_nopart")
    assert not result.succeeded
    assert "Milvus Import failed: partition not specified: invalid parameter" in (
        result.failure_summary()
    )


def test_an_l0_import_names_an_existing_partition_or_none(
    standin: tuple[StandInMilvus, BackupConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, config = standin
    broken(monkeypatch, lambda j: replace(j, partition_name="p9") if j.l0 else j)
    result = restored(config, "_l0part", "rules_l0")
    assert not result.succeeded
    assert "partition not found[partition=p9]" in result.failure_summary()


def test_an_l0_import_of_two_paths_fails(
    standin: tuple[StandInMilvus, BackupConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``l0_reader.go`` ``NewL0Reader``: exactly one prefix."""
    _, config = standin
    broken(monkeypatch, lambda j: replace(j, files=((j.files[0][0],) * 2,)) if j.l0 else j)
    result = restored(config, "_l0two", "rules_l0")
    assert not result.succeeded
    assert "there should be one prefix, but got [" in result.failure_summary()


def import_rows(server: StandInMilvus, options: dict[str, str]) -> tuple[int, str]:
    """Import the backed-up ``rules`` into itself over gRPC; the rows, or the failure."""
    base = f"backup/{BASE}/binlogs"
    files = [f"{base}/insert_log/{C}/{P}/7811/", f"{base}/delta_log/{C}/{P}/7811/"]
    pairs = [common_pb2.KeyValuePair(key=k, value=v) for k, v in options.items()]
    request = milvus_pb2.ImportRequest(collection_name="rules", partition_name="_default",
                                       files=files, options=pairs)  # fmt: skip
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = milvus_pb2_grpc.MilvusServiceStub(channel)
        (task,) = stub.Import(request).tasks
        state = stub.GetImportState(milvus_pb2.GetImportStateRequest(task=task))
    return state.row_count, {kv.key: kv.value for kv in state.infos}.get("failed_reason", "")


@pytest.mark.parametrize(
    ("window", "rows"),
    [
        ({}, 3),
        ({"end_ts": "150"}, 4),  # the delete of pk 2 at 200 is outside the range
        ({"START_TS": "101"}, 0),  # every row was written at 100
        ({"start_ts": "300", "endTs": "200"}, "start_ts shouldn't be larger than end_ts"),
    ],
)
def test_the_rows_imported_are_those_the_time_range_keeps(
    standin: tuple[StandInMilvus, BackupConfig], window: dict[str, str], rows: int | str
) -> None:
    """``ParseTimeRange`` and ``FilterWithTimeRange``; ``readDelete`` skips deletes outside."""
    server, _ = standin
    count, reason = import_rows(server, {"backup": "true", **window})
    if isinstance(rows, int):
        assert (count, reason) == (rows, "")
    else:
        assert rows in reason


def write_marked(config: BackupConfig, name: str, cid: int, marked: bool) -> None:
    """Collection ``name``: pks 1-4 at 100, pk 3 deleted at 200 by a two-column delta log."""
    store = ObjectStore(config.storage, config.timeouts)
    write_segment(store, cid, cid + 1, cid + 10, [1, 2, 3, 4], ts=100)
    data = multi_field_delta_log([(3, 200)], marked=marked)
    store.put(f"{ROOT}/delta_log/{cid}/{cid + 1}/{cid + 10}/1", data)


def by_column_names(data: bytes, where: str) -> list[tuple[int | str, int]]:
    """The engine's old reading: pk and ts columns make a multi-field delta log."""
    tables = [t for _, t in read_binlog(data)[1]]
    if all(t.column_names == ["pk", "ts"] for t in tables):
        return [(pk, ts) for t in tables for pk, ts in zip(*t.to_pydict().values(), strict=True)]
    return [(r["pk"], r["ts"]) for t in tables for r in map(json.loads, t.column(0).to_pylist())]


def test_delta_logs_are_multi_field_by_their_descriptor_mark(
    standin: tuple[StandInMilvus, BackupConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Marked ``version: MULTI_FIELD``, Milvus and the engine read pk and ts columns; not
    marked, Milvus cannot read them: the engine refuses the backup, and an engine that went
    by column names keeps a backup whose restore fails."""
    server, config = standin
    for name, cid, marked in (("marked", 7901, True), ("unmarked", 7951, False)):
        write_marked(config, name, cid, marked)
        server.collections[name] = Collection(cid, name, schema(name), {"_default": cid + 1},
                                              [Segment(cid + 10, cid + 1, 4)])  # fmt: skip
    only = {n: (CollectionRef("default", n),) for n in ("marked", "unmarked")}
    create_backup(config, BackupRequest("sr_marked", only["marked"]))
    result = restore_backup(config, RestoreRequest("sr_marked", suffix="_r"))
    assert result.succeeded, result.failure_summary()
    assert result.collections[0].rows == 3
    with pytest.raises(DamagedBackupError, match="does not mark it version: MULTI_FIELD"):
        create_backup(config, BackupRequest("sr_unmarked", only["unmarked"]))
    monkeypatch.setattr(binlog, "deletes", by_column_names)
    create_backup(config, BackupRequest("sr_unmarked", only["unmarked"]))
    result = restore_backup(config, RestoreRequest("sr_unmarked", suffix="_r"))
    assert not result.succeeded
    assert "a delete record of int, not a string: importing data failed" in (
        result.failure_summary()
    )


@pytest.mark.parametrize(("version", "reason"), [
    ("v2.6.3", "there should be one prefix for l0 import, but got"), ("v2.6.5", ""),
])  # fmt: skip
def test_l0_jobs_of_several_files_wait_for_milvus_2_6_5(
    standin: tuple[StandInMilvus, BackupConfig], version: str, reason: str
) -> None:
    """Before 2.6.5 the datanode's L0 import task takes one file per job (milvus-backup's
    ``l0SegmentBatches`` batches them from 2.6.5 only)."""
    server, _ = standin
    delta = f"backup/{BASE}/binlogs/delta_log/{C0}/{P0}/7862/"
    server.version = version
    try:
        job = server.start_import("rules_l0", "", [[delta], [delta]], {"l0_import": "true"})
    finally:
        server.version = "v2.5.20"
    assert reason in job.reason and bool(job.reason) == bool(reason)
