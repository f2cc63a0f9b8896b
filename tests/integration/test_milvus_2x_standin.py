"""Milvus 2.5/2.6 paths at the protocol level: L0 segments, storage v2, and the refusals.

No Milvus newer than 2.3.5 runs here, so a stand-in gRPC server (``tests/standin/milvus.py``,
answering as Milvus's ``internal/proxy/impl.go`` does) plays Milvus, while the objects live
in the real S3 server, laid out as Milvus writes them. What is asserted follows milvus-backup
master: ``core/backup/coll_dml_task.go`` (every persistent segment, ``is_l0``, collection-wide
L0 segments in ``l0_segments`` with group 0, ``storage_version``), ``core/restore/coll_task.go``
(L0 segments imported after every partition's data, ``restoreL0SegV1``: one delta directory,
``l0_import=true``, partition "" for the collection-wide ones) and
``internal/client/milvus/grpc.go`` (``GrpcBulkInsertInput.opts``).
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pymilvus.grpc_gen import common_pb2, schema_pb2

from milvus_backup_operator.engine import binlog
from milvus_backup_operator.engine.backup import BackupRequest, create_backup
from milvus_backup_operator.engine.catalog import Catalog
from milvus_backup_operator.engine.config import BackupConfig, MilvusConfig
from milvus_backup_operator.engine.errors import OperationError, UnsupportedError
from milvus_backup_operator.engine.progress import Progress
from milvus_backup_operator.engine.restore import restore_backup
from milvus_backup_operator.engine.restore_plan import RestoreRequest, check_restore_request
from milvus_backup_operator.engine.selection import CollectionRef
from milvus_backup_operator.engine.storage import ObjectStore
from milvus_backup_operator.engine.verify import verify_backup
from testbed import sample_data
from testbed.stack import Stack, stack_config
from tests.standin.binlogs import (
    STRING,
    binlog_file,
    column_group,
    delta_log,
    insert_log,
    v2_delta_log,
    v2_field,
    v2_insert_groups,
)
from tests.standin.milvus import (
    Collection,
    Segment,
    SegmentLogs,
    StandInMilvus,
    StandInRest,
    StandInSegmentsRest,
    v_channel,
)

pytestmark = pytest.mark.integration

BUCKET, ROOT = "standin-bucket", "files"
L0 = common_pb2.SegmentLevel.L0
COLL, DEFAULT, P1 = 7001, 7002, 7003


def schema(name: str) -> schema_pb2.CollectionSchema:
    return schema_pb2.CollectionSchema(
        name=name,
        fields=[
            schema_pb2.FieldSchema(fieldID=100, name="id", is_primary_key=True, data_type=5),
            schema_pb2.FieldSchema(
                fieldID=101, name="v", data_type=101,
                type_params=[common_pb2.KeyValuePair(key="dim", value="2")],
            ),
        ],
    )  # fmt: skip


def write_segment(store: ObjectStore, c: int, p: int, s: int, pks: list[int], ts: int) -> None:
    """Insert logs of fields 0 (row ID), 1 (timestamp), 100 (pk) and 101, one log each."""
    columns = {0: pks, 1: [ts] * len(pks), 100: pks, 101: pks}
    for field_id, values in columns.items():
        store.put(f"{ROOT}/insert_log/{c}/{p}/{s}/{field_id}/{s}{field_id}", insert_log(values))


def write_deletes(
    store: ObjectStore, c: int, p: int, s: int, deletes: list[tuple[int, int]]
) -> None:
    store.put(f"{ROOT}/delta_log/{c}/{p}/{s}/{s}1", delta_log(deletes))


@pytest.fixture(scope="module")
def standin(stack: Stack) -> Iterator[tuple[StandInMilvus, BackupConfig]]:
    """Milvus 2.5 holding ``events``: two partitions, data in storage v1, deletes in L0
    segments of a partition and of the whole collection."""
    stack.s3.ensure_bucket(BUCKET)
    real = stack_config(stack)
    storage = replace(real.storage, bucket=BUCKET, root_path=ROOT)
    store = ObjectStore(storage, real.timeouts)
    write_segment(store, COLL, DEFAULT, 7101, [1, 2, 3, 4], ts=100)
    write_segment(store, COLL, P1, 7102, [10, 11], ts=100)
    write_deletes(store, COLL, DEFAULT, 7103, [(2, 200), (4, 50)])  # 4 was written at 100
    write_deletes(store, COLL, -1, 7104, [(11, 300)])  # the whole collection
    events = Collection(
        COLL, "events", schema("events"), {"_default": DEFAULT, "p1": P1},
        [Segment(7101, DEFAULT, 4), Segment(7102, P1, 2), Segment(7103, DEFAULT, 0, L0),
         Segment(7104, -1, 0, L0)],
    )  # fmt: skip
    server = StandInMilvus("v2.5.20", [events], store).start()
    config = replace(
        real,
        milvus=MilvusConfig(address="127.0.0.1", port=server.port),
        storage=storage,
        backup_storage=replace(storage, root_path="backup"),
    )
    try:
        yield server, config
    finally:
        server.stop()


def test_l0_segments_are_backed_up_as_milvus_backup_records_them(
    standin: tuple[StandInMilvus, BackupConfig],
) -> None:
    _, config = standin
    info = create_backup(config, BackupRequest("sb_l0", (), rbac=False))
    (events,) = info.collection_backups
    default = next(p for p in events.partition_backups if p.partition_name == "_default")
    assert [(s.segment_id, s.is_l0, s.group_id) for s in default.segment_backups] == [
        (7101, False, 7101), (7103, True, 7103),
    ]  # fmt: skip
    (whole,) = events.l0_segments
    assert (whole.segment_id, whole.partition_id, whole.group_id, whole.is_l0) == (
        7104,
        -1,
        0,
        True,
    )
    catalog = Catalog.of(config)
    keys = {o.key for o in catalog.store.list("backup/sb_l0/binlogs/")}
    assert "backup/sb_l0/binlogs/delta_log/7001/-1/7104/71041" in keys
    assert "backup/sb_l0/binlogs/delta_log/7001/7002/7103/7103/71031" in keys
    manifest = catalog.manifest("sb_l0")
    assert manifest is not None
    # pk 2 deleted by the partition's L0, pk 11 by the collection's; pk 4's delete is older
    assert manifest.live_rows[COLL] == {DEFAULT: 3, P1: 1}
    assert catalog.read("sb_l0").collection_backups[0].l0_segments[0].segment_id == 7104


def test_l0_deletes_are_imported_after_every_insert(
    standin: tuple[StandInMilvus, BackupConfig],
) -> None:
    server, config = standin
    if not Catalog.of(config).exists("sb_l0"):
        create_backup(config, BackupRequest("sb_l0"))
    server.calls.clear()
    seen: list[Progress] = []
    result = restore_backup(config, RestoreRequest("sb_l0", suffix="_r"), seen.append)
    assert result.succeeded, result.failure_summary()
    last = seen[-1]  # the L0 jobs and the collection-wide L0 segment are counted in the totals
    assert (last.imports_done, last.segments_done) == (last.imports_total, last.segments_total)
    assert (last.imports_total, last.segments_total) == (4, 4)
    imports = [
        (r.partition_name, list(r.files), {kv.key: kv.value for kv in r.options})
        for r in server.requests("Import")
    ]
    inserts, deletes = imports[:2], imports[2:]
    base = "backup/sb_l0/binlogs"
    assert sorted(inserts) == [
        ("_default", [f"{base}/insert_log/7001/7002/7101/", f"{base}/delta_log/7001/7002/7101/"],
         {"skip_disk_quota_check": "true", "backup": "true"}),
        ("p1", [f"{base}/insert_log/7001/7003/7102/", f"{base}/delta_log/7001/7003/7102/"],
         {"skip_disk_quota_check": "true", "backup": "true"}),
    ]  # fmt: skip
    assert deletes == [
        ("_default", [f"{base}/delta_log/7001/7002/7103/"],
         {"skip_disk_quota_check": "true", "l0_import": "true"}),
        ("", [f"{base}/delta_log/7001/-1/7104/"],
         {"skip_disk_quota_check": "true", "l0_import": "true"}),
    ]  # fmt: skip
    (events,) = result.collections
    assert "before Milvus applied the L0 deletes" in events.checked


def test_milvus_2_3_refuses_l0_deletes_before_creating_anything(
    stack: Stack, standin: tuple[StandInMilvus, BackupConfig], samples: object
) -> None:
    _, config = standin
    if not Catalog.of(config).exists("sb_l0"):
        create_backup(config, BackupRequest("sb_l0"))
    real = stack_config(stack)
    into_real = replace(real, backup_storage=config.backup_storage)
    before = sorted(sample_data.client(stack.milvus.uri).list_collections())
    with pytest.raises(
        UnsupportedError, match=r"events of the backup keeps deletes in L0 .* Milvus v2\.3\.5"
    ):
        restore_backup(into_real, RestoreRequest("sb_l0", suffix="_l0"))
    assert sorted(sample_data.client(stack.milvus.uri).list_collections()) == before


def write_v2_segment(
    store: ObjectStore, c: int, p: int, s: int, rows: list[tuple[int, int]]
) -> None:
    """Column group files of ``(pk, timestamp)`` rows as Milvus 2.6 writes them: group 0 the
    system fields and the primary key, group 101 the vector (``tests/standin/binlogs.py``)."""
    pks, stamps = [pk for pk, _ in rows], [ts for _, ts in rows]
    for group, data in v2_insert_groups((100, "id"), pks, stamps, (101, "v")).items():
        store.put(f"{ROOT}/insert_log/{c}/{p}/{s}/{group}/{s}{group}", data)


def test_storage_v2_is_recorded_passed_counted_and_refused_where_unknown(
    standin: tuple[StandInMilvus, BackupConfig],
) -> None:
    server, config = standin
    store = ObjectStore(config.storage, config.timeouts)
    rows = [(1, 100), (2, 100), (3, 100), (4, 100), (3, 150)]  # pk 3 upserted at 150
    in_segment, in_l0 = [(4, 120)], [(1, 200), (3, 150), (2, 50)]  # 3: the upsert's delete
    write_v2_segment(store, 7201, 7202, 7211, rows)
    store.put(f"{ROOT}/delta_log/7201/7202/7211/72111", v2_delta_log(in_segment))
    write_deletes(store, 7201, 7202, 7212, in_l0)
    server.collections["events_v2"] = Collection(
        7201, "events_v2", schema("events_v2"), {"_default": 7202},
        [Segment(7211, 7202, len(rows), storage_version=2), Segment(7212, 7202, 0, L0, 2)],
    )  # fmt: skip
    latest: dict[int, int] = {}
    for pk, ts in in_segment + in_l0:
        latest[pk] = max(ts, latest.get(pk, ts))
    alive = sum(1 for pk, ts in rows if latest.get(pk, -1) <= ts)  # a delete removes older rows
    server.version = "v2.6.3"
    try:
        info = create_backup(config, BackupRequest("sb_v2", (), rbac=False))
        events = next(c for c in info.collection_backups if c.collection_name == "events_v2")
        assert {s.storage_version for s in events.segments()} == {2}
        assert [fb.field_id for s in events.segments() for fb in s.binlogs] == [0, 101]
        manifest = Catalog.of(config).manifest("sb_v2")
        assert manifest is not None and manifest.live_rows[7201] == {7202: alive}
        server.calls.clear()
        request = RestoreRequest("sb_v2", collections=(), renames=(), suffix="_r2")
        result = restore_backup(config, request)
        assert result.succeeded, result.failure_summary()
        v2_imports = [r for r in server.requests("Import") if r.collection_name == "events_v2_r2"]
        assert {
            kv.value for r in v2_imports for kv in r.options if kv.key == "storage_version"
        } == {"2"}
        server.version = "v2.5.20"
        with pytest.raises(UnsupportedError, match=r"storage version 2, which Milvus v2\.5\.20"):
            restore_backup(config, RestoreRequest("sb_v2", suffix="_r3"))
    finally:
        server.version = "v2.5.20"
        server.collections.pop("events_v2", None)


def bm25_schema(name: str, text_id: int = 101) -> schema_pb2.CollectionSchema:
    """A full text search collection, as Milvus 2.5 describes it (``schema.proto``)."""
    return schema_pb2.CollectionSchema(
        name=name,
        fields=[
            schema_pb2.FieldSchema(fieldID=100, name="id", is_primary_key=True, data_type=5),
            schema_pb2.FieldSchema(fieldID=text_id, name="text", data_type=21,
                                   type_params=[common_pb2.KeyValuePair(key="max_length",
                                                                        value="512")]),
            schema_pb2.FieldSchema(fieldID=text_id + 1, name="sparse", data_type=104,
                                   is_function_output=True),
        ],
        functions=[schema_pb2.FunctionSchema(
            name="bm25", id=1, type=schema_pb2.FunctionType.BM25,
            input_field_names=["text"], input_field_ids=[text_id],
            output_field_names=["sparse"], output_field_ids=[text_id + 1],
        )],
    )  # fmt: skip


def test_functions_are_recorded_recreated_and_refused_by_milvus_2_3(
    stack: Stack, standin: tuple[StandInMilvus, BackupConfig], samples: object
) -> None:
    server, config = standin
    server.collections["articles"] = Collection(
        7301, "articles", bm25_schema("articles"), {"_default": 7302}
    )
    try:
        info = create_backup(
            config, BackupRequest("sb_fn", (CollectionRef("default", "articles"),))
        )
        (articles,) = info.collection_backups
        assert articles.schema is not None
        (bm25,) = articles.schema.functions
        assert (bm25.name, bm25.type, bm25.input_field_names, bm25.output_field_ids) == (
            "bm25", 1, ["text"], [102],
        )  # fmt: skip
        server.calls.clear()
        result = restore_backup(config, RestoreRequest("sb_fn", suffix="_r"))
        assert result.succeeded, result.failure_summary()
        (created,) = server.requests("CreateCollection")
        function = schema_pb2.CollectionSchema.FromString(created.schema).functions[0]
        assert (function.name, function.type, list(function.input_field_names)) == (
            "bm25", schema_pb2.FunctionType.BM25, ["text"],
        )  # fmt: skip
        into_real = replace(stack_config(stack), backup_storage=config.backup_storage)
        with pytest.raises(UnsupportedError, match=r"functions \(bm25: .*Milvus >= 2\.5"):
            restore_backup(into_real, RestoreRequest("sb_fn", suffix="_fn"))
        assert "articles_fn" not in sample_data.client(stack.milvus.uri).list_collections()
    finally:
        server.collections.pop("articles", None)
        server.collections.pop("articles_r", None)


def grown_schema(name: str, dynamic: bool) -> schema_pb2.CollectionSchema:
    """Created with id, vec (and $meta); ``tag`` added later: Milvus 2.6 gave it the next ID
    after $meta (without $meta, the schema has a gap where a field was dropped)."""
    fields = [
        schema_pb2.FieldSchema(fieldID=100, name="id", is_primary_key=True, data_type=5),
        schema_pb2.FieldSchema(fieldID=101, name="vec", data_type=101,
                               type_params=[common_pb2.KeyValuePair(key="dim", value="2")]),
        schema_pb2.FieldSchema(fieldID=103, name="tag", data_type=21, nullable=True,
                               type_params=[common_pb2.KeyValuePair(key="max_length", value="8")]),
    ]  # fmt: skip
    if dynamic:
        fields.insert(2, schema_pb2.FieldSchema(fieldID=102, name="$meta", data_type=23,
                                                is_dynamic=True))  # fmt: skip
    return schema_pb2.CollectionSchema(name=name, fields=fields, enable_dynamic_field=dynamic)


def test_fields_added_after_creation_are_added_again_with_their_ids(
    standin: tuple[StandInMilvus, BackupConfig],
) -> None:
    """milvus-backup's ``collDDLTask.fields``: create with the fields below $meta, then
    AddCollectionField for those above it; the IDs the binlogs are keyed by stay the same."""
    server, config = standin
    server.version = "v2.6.3"
    server.collections["grown"] = Collection(7401, "grown", grown_schema("grown", True),
                                             {"_default": 7402})  # fmt: skip
    try:
        create_backup(config, BackupRequest("sb_grown", (CollectionRef("default", "grown"),)))
        server.calls.clear()
        result = restore_backup(config, RestoreRequest("sb_grown", suffix="_r"))
        assert result.succeeded, result.failure_summary()
        (created,) = server.requests("CreateCollection")
        sent = schema_pb2.CollectionSchema.FromString(created.schema)
        assert [f.name for f in sent.fields] == ["id", "vec"] and sent.enable_dynamic_field
        (added,) = server.requests("AddCollectionField")
        assert schema_pb2.FieldSchema.FromString(added.schema).name == "tag"
        ids = {f.name: f.fieldID for f in server.collections["grown_r"].schema.fields}
        assert ids == {"id": 100, "vec": 101, "$meta": 102, "tag": 103}
        server.version = "v2.5.20"
        server.calls.clear()
        with pytest.raises(UnsupportedError, match=r"fields added after it was created \(tag\)"):
            restore_backup(config, RestoreRequest("sb_grown", suffix="_r25"))
        assert server.requests("CreateCollection") == []
    finally:
        server.version = "v2.5.20"
        for name in ("grown", "grown_r"):
            server.collections.pop(name, None)


def test_a_schema_with_dropped_fields_is_refused_before_anything_is_created(
    standin: tuple[StandInMilvus, BackupConfig],
) -> None:
    server, config = standin
    server.version = "v2.6.3"
    server.collections["holed"] = Collection(7451, "holed", grown_schema("holed", False),
                                             {"_default": 7452})  # fmt: skip
    try:
        create_backup(config, BackupRequest("sb_holed", (CollectionRef("default", "holed"),)))
        server.calls.clear()
        with pytest.raises(UnsupportedError, match=r"field IDs \[100, 101, 103\].*dropped"):
            restore_backup(config, RestoreRequest("sb_holed", suffix="_r"))
        assert server.requests("CreateCollection") == []
    finally:
        server.version = "v2.5.20"
        server.collections.pop("holed", None)


MASTER = Path(__file__).parents[1] / "fixtures" / "milvus_backup_master" / "mb_l0_v2"
MASTER_ROWS = 1000  # segment 463000000000000201's num_of_rows


def master_object(key: str) -> bytes:
    """The object ``key`` of the fixture as Milvus 2.6 wrote it: column groups 0 (system
    fields, id, note) and 101 (vec, dim 8) of the segment, JSON delete records in the L0
    delta logs (the stand-in reads them all)."""
    group = key.split("/")[-2]
    if key.startswith("binlogs/delta_log"):
        records = [json.dumps({"pk": pk, "ts": 463000000000000500, "pkType": 5}) for pk in (1, 2)]
        return binlog_file(binlog.DELETE_EVENT, STRING, [pa.table({"val": records})])
    pks = list(range(MASTER_ROWS))
    if group == "0":
        columns = [
            (v2_field(0, "RowID", pa.int64()), pks),
            (v2_field(1, "Timestamp", pa.int64()), [463000000000000100] * MASTER_ROWS),
            (v2_field(100, "id", pa.int64()), pks),
            (pa.field("note", pa.string(), metadata={"PARQUET:field_id": "102"}),
             [None] * MASTER_ROWS),
        ]  # fmt: skip
    else:
        vectors = [struct.pack("<8f", *([float(k)] * 8)) for k in pks]
        columns = [(v2_field(101, "vec", pa.binary(32)), vectors)]
    return column_group(columns)


def with_sizes(meta: bytes, sizes: dict[int, int]) -> bytes:
    """``meta`` with each binlog's ``log_size`` that of the object written for it."""

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "log_id" in node and "log_size" in node:
                node["log_size"] = sizes[node["log_id"]]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    tree = json.loads(meta)
    walk(tree)
    return json.dumps(tree).encode()


def upload_master_backup(
    store: ObjectStore, name: str, edit: Callable[[dict[str, Any]], None] | None = None
) -> None:
    """The fixture under ``backup/<name>``: real objects, and meta saying their sizes (the
    stand-in reads them); ``edit`` changes full_meta.json first."""
    sizes = {}
    for line in (MASTER / "objects.txt").read_text().split("\n"):
        if line:
            key = line.split()[0]
            data = master_object(key)
            store.put(f"backup/{name}/{key}", data)
            sizes[int(key.rsplit("/", 1)[-1])] = len(data)
    for meta in (MASTER / "meta").iterdir():
        raw = meta.read_bytes()
        if edit is not None and meta.name == "full_meta.json":
            tree = json.loads(raw)
            edit(tree)
            raw = json.dumps(tree).encode()
        store.put(f"backup/{name}/meta/{meta.name}", with_sizes(raw, sizes))


def test_a_milvus_backup_master_backup_of_milvus_2_6_restores_whole(
    standin: tuple[StandInMilvus, BackupConfig],
) -> None:
    """Written as milvus-backup master writes it: storage v2, L0 in a partition and the
    collection-wide ones only in full_meta.json, a nullable field, aliases."""
    server, config = standin
    upload_master_backup(ObjectStore(config.backup_storage, config.timeouts), "mb_l0_v2")
    catalog = Catalog.of(config)
    (events,) = catalog.read("mb_l0_v2").collection_backups
    assert [s.segment_id for s in events.l0_segments] == [463000000000000203]
    assert verify_backup(catalog, "mb_l0_v2").ok
    server.version = "v2.6.3"
    try:
        server.calls.clear()
        result = restore_backup(config, RestoreRequest("mb_l0_v2", suffix="_mb"))
        assert result.succeeded, result.failure_summary()
        (created,) = server.requests("CreateCollection")
        fields = schema_pb2.CollectionSchema.FromString(created.schema).fields
        assert [f.name for f in fields if f.nullable] == ["note"]
        imports = [
            (r.partition_name, {kv.key: kv.value for kv in r.options})
            for r in server.requests("Import")
        ]
        assert imports == [
            ("_default", {"skip_disk_quota_check": "true", "backup": "true",
                          "storage_version": "2"}),
            ("_default", {"skip_disk_quota_check": "true", "l0_import": "true",
                          "storage_version": "2"}),
            ("", {"skip_disk_quota_check": "true", "l0_import": "true", "storage_version": "2"}),
        ]  # fmt: skip
        server.version = "v2.5.20"
        with pytest.raises(UnsupportedError, match="storage version 2"):
            restore_backup(config, RestoreRequest("mb_l0_v2", suffix="_r5"))
    finally:
        server.version = "v2.5.20"
        server.collections.pop("events_mb", None)


def test_the_v2_restore_puts_many_segments_in_one_job_through_the_rest_api(
    stack: Stack, standin: tuple[StandInMilvus, BackupConfig], samples: object
) -> None:
    """milvus-backup's ``restoreDataV2``: up to ``restore.maxSegmentsPerImportJob`` groups of
    a partition and storage version per job (``notL0SegBatchesWithGroupID``), several L0
    segments per job from 2.6.5 (``l0SegmentBatches``), L0 after the data."""
    server, config = standin
    store = ObjectStore(config.storage, config.timeouts)
    for segment, pks in ((7511, [1, 2]), (7512, [3]), (7513, [4, 5, 6])):
        write_segment(store, 7501, 7502, segment, pks, ts=100)
    write_deletes(store, 7501, 7502, 7514, [(1, 200)])
    write_deletes(store, 7501, 7502, 7515, [(6, 200)])
    server.collections["many"] = Collection(
        7501, "many", schema("many"), {"_default": 7502},
        [Segment(7511, 7502, 2), Segment(7512, 7502, 1), Segment(7513, 7502, 3),
         Segment(7514, 7502, 0, L0), Segment(7515, 7502, 0, L0)],
    )  # fmt: skip
    rest = StandInRest(server)
    server.version = "v2.6.8"
    v2 = replace(
        config,
        milvus=replace(config.milvus, rest_endpoint=rest.url),
        parallelism=replace(config.parallelism, segments_per_import_job=2),
    )
    try:
        create_backup(v2, BackupRequest("sb_many", (CollectionRef("default", "many"),)))
        server.calls.clear()
        ask = RestoreRequest("sb_many", suffix="_v2", use_v2_restore=True)
        (planned,) = check_restore_request(v2, ask).collections  # the dry run counts the same
        result = restore_backup(v2, ask)
        assert result.succeeded, result.failure_summary()
        assert server.requests("Import") == []  # all of it through REST
        jobs = server.requests("REST /v2/vectordb/jobs/import/create")
        base = "backup/sb_many/binlogs"
        files = [[pair[0] for pair in job["files"]] for job in jobs]
        assert sorted(files[:2]) == [  # the data jobs run at once: in any order
            [f"{base}/insert_log/7501/7502/7511/", f"{base}/insert_log/7501/7502/7512/"],
            [f"{base}/insert_log/7501/7502/7513/"],
        ]
        assert files[2] == [
            f"{base}/delta_log/7501/7502/7514/",
            f"{base}/delta_log/7501/7502/7515/",
        ]
        assert jobs[-1]["options"] == {"skip_disk_quota_check": "true", "l0_import": "true"}
        assert {job["collectionName"] for job in jobs} == {"many_v2"}
        (many,) = result.collections
        assert many.rows == 6 and many.imports == planned.imports == 3
        assert "in 3 jobs" in planned.describe()
        into_real = replace(stack_config(stack), backup_storage=config.backup_storage)
        with pytest.raises(UnsupportedError, match=r"v2 restore .* needs Milvus's REST import"):
            restore_backup(into_real, RestoreRequest("sb_many", suffix="_x", use_v2_restore=True))
    finally:
        rest.stop()
        server.version = "v2.5.20"
        for name in ("many", "many_v2"):
            server.collections.pop(name, None)


# ---- segments/describe: Milvus >= 2.5.8 names each segment's files --------------------------
# milvus-backup's ``core/backup/coll_dml_task.go`` (``getSegment``): ask Milvus first
# (``getSegmentInfoByAPI``: keys built from the log IDs, sizes from a listing, a named log
# missing is an error), fall back to listing the segment's directories with a warning.

DESCRIBE_SEGMENTS = "REST /v2/vectordb/segments/describe"
SEG, SEG_P = 7601, 7602
SEG_PKS, SEG_DELETED = [1, 2, 3, 4], [2]


def named_logs(segment: int) -> SegmentLogs:
    """What Milvus's meta names for a segment ``write_segment`` wrote (log ID ``<s><field>``)."""
    return SegmentLogs({f: [int(f"{segment}{f}")] for f in (0, 1, 100, 101)})


@contextmanager
def segment_files_from_milvus(
    standin: tuple[StandInMilvus, BackupConfig], version: str, rest_enabled: bool = True
) -> Iterator[tuple[StandInMilvus, StandInSegmentsRest, BackupConfig, ObjectStore]]:
    """``seg``: segment 7611 (pks 1-4) and an L0 segment 7612 deleting pk 2, served by a
    stand-in of ``version`` whose REST API names their logs (or is not there at all: the
    engine then reaches the gRPC port, as with Milvus's ``proxy.http.enabled: false``)."""
    server, config = standin
    store = ObjectStore(config.storage, config.timeouts)
    write_segment(store, SEG, SEG_P, 7611, SEG_PKS, ts=100)
    write_deletes(store, SEG, SEG_P, 7612, [(pk, 200) for pk in SEG_DELETED])
    server.collections["seg"] = Collection(
        SEG, "seg", schema("seg"), {"_default": SEG_P},
        [Segment(7611, SEG_P, len(SEG_PKS)), Segment(7612, SEG_P, 0, L0)],
    )  # fmt: skip
    rest = StandInSegmentsRest(server)
    rest.logs = {7611: named_logs(7611), 7612: SegmentLogs({}, [76121])}
    endpoint = rest.url if rest_enabled else ""
    server.version = version
    try:
        yield (
            server,
            rest,
            replace(config, milvus=replace(config.milvus, rest_endpoint=endpoint)),
            store,
        )
    finally:
        rest.stop()
        server.version = "v2.5.20"
        server.calls.clear()
        for name in ("seg", "seg_r"):
            server.collections.pop(name, None)
        for kind in ("insert_log", "delta_log"):
            for obj in list(store.list(f"{ROOT}/{kind}/{SEG}/")):
                store.delete(obj.key)


def backed_up_files(config: BackupConfig, name: str) -> set[str]:
    """The log files in a backup, as ``<kind>/.../<log ID>`` below its binlogs directory."""
    base = f"backup/{name}/binlogs/"
    return {o.key.removeprefix(base) for o in Catalog.of(config).store.list(base)}


def milvus_files(store: ObjectStore) -> set[str]:
    """Every file of collection ``seg`` in Milvus's bucket, as ``<kind>/.../<log ID>``."""
    return {
        o.key.removeprefix(f"{ROOT}/")
        for kind in ("insert_log", "delta_log")
        for o in store.list(f"{ROOT}/{kind}/{SEG}/")
    }


def test_only_the_files_milvus_names_are_backed_up_and_orphans_are_skipped(
    standin: tuple[StandInMilvus, BackupConfig], caplog: pytest.LogCaptureFixture
) -> None:
    """Leftovers of a failed compaction (an extra insert log of one field, a delta log) in
    live segments' directories: listed, they fail as misaligned; named, they are skipped."""
    with segment_files_from_milvus(standin, "v2.5.8") as (server, _, config, store):
        named = milvus_files(store)
        store.put(f"{ROOT}/insert_log/{SEG}/{SEG_P}/7611/100/999", insert_log([9, 9]))
        store.put(f"{ROOT}/delta_log/{SEG}/{SEG_P}/7612/998", delta_log([(1, 300)]))
        caplog.set_level(logging.INFO, "milvus_backup_operator.engine.backup")
        wanted = (CollectionRef("default", "seg"),)
        create_backup(config, BackupRequest("sb_named", wanted))
        (asked,) = server.requests(DESCRIBE_SEGMENTS)
        assert (asked["collectionId"], sorted(asked["segmentIds"])) == (SEG, [7611, 7612])
        copied = {key.split("/")[-1] for key in backed_up_files(config, "sb_named")}
        assert copied == {key.split("/")[-1] for key in named}  # neither 999 nor 998
        # each segment's channel, a key of its checkpoints: what milvus-backup's restore
        # reads to truncate by timestamp (``core/restore/coll_task.go`` ``backupTS``)
        (recorded,) = Catalog.of(config).read("sb_named").collection_backups
        assert {s.v_channel for s in recorded.segments()} == {v_channel(SEG)}
        assert v_channel(SEG) in recorded.channel_checkpoints
        assert "skipped 2 files Milvus does not name" in caplog.text
        catalog = Catalog.of(config)
        assert verify_backup(catalog, "sb_named").ok
        manifest = catalog.manifest("sb_named")  # live rows read from the copies
        assert manifest is not None
        assert manifest.live_rows[SEG] == {SEG_P: len(set(SEG_PKS) - set(SEG_DELETED))}
        server.calls.clear()
        result = restore_backup(config, RestoreRequest("sb_named", suffix="_r"))
        assert result.succeeded, result.failure_summary()
        imported = [list(r.files) for r in server.requests("Import")]
        group = f"backup/sb_named/binlogs/%s/{SEG}/{SEG_P}/%d/"  # one group per segment
        assert imported == [  # the data, then the L0 deletes
            [group % ("insert_log", 7611), group % ("delta_log", 7611)],
            [group % ("delta_log", 7612)],
        ]
        server.version = "v2.5.0"  # the same bucket, listed: the orphan misaligns field 100
        with pytest.raises(OperationError, match="segment 7611 has misaligned binlogs"):
            create_backup(config, BackupRequest("sb_listed", wanted))


def test_a_named_file_missing_from_the_bucket_fails_the_backup_by_key(
    standin: tuple[StandInMilvus, BackupConfig],
) -> None:
    with segment_files_from_milvus(standin, "v2.6.3") as (_, rest, config, _):
        rest.logs[7611].inserts[101].append(7611199)  # in Milvus's meta, not in the bucket
        lost = f"{ROOT}/insert_log/{SEG}/{SEG_P}/7611/101/7611199"
        with pytest.raises(OperationError, match=f"segment 7611 of .*seg: Milvus names '{lost}'"):
            create_backup(config, BackupRequest("sb_lost", (CollectionRef("default", "seg"),)))
        catalog = Catalog.of(config)
        assert not catalog.exists("sb_lost") and "sb_lost" not in catalog.names()
        assert backed_up_files(config, "sb_lost") == set()


def test_when_milvus_does_not_name_the_files_the_backup_lists_them_and_says_so(
    standin: tuple[StandInMilvus, BackupConfig], caplog: pytest.LogCaptureFixture
) -> None:
    with segment_files_from_milvus(standin, "v2.5.8", False) as (server, _, config, store):
        caplog.set_level(logging.WARNING, "milvus_backup_operator.engine.backup")
        info = create_backup(
            config, BackupRequest("sb_listing", (CollectionRef("default", "seg"),))
        )
        assert server.requests(DESCRIBE_SEGMENTS) == []  # REST disabled: nothing answers
        assert "did not name its segments' files" in caplog.text
        assert "taking every file listed under them instead" in caplog.text
        assert "not HTTP/1.1" in caplog.text
        copied = {key.split("/")[-1] for key in backed_up_files(config, "sb_listing")}
        assert copied == {key.split("/")[-1] for key in milvus_files(store)}
        # listed, a segment has no virtual channel: milvus-backup leaves it empty too
        assert {s.v_channel for s in info.collection_backups[0].segments()} == {""}
        Catalog.of(config).delete("sb_listing")


def test_a_segment_milvus_cannot_describe_is_listed_alone_and_the_others_named(
    standin: tuple[StandInMilvus, BackupConfig], caplog: pytest.LogCaptureFixture
) -> None:
    """Segment 7612 compacted away between the listing and ``segments/describe``: datacoord
    fails the whole request ("segment not found"). Asked again one by one (milvus-backup
    asks per segment, ``getSegment``), 7611 is still named, so the leftover beside its logs
    is skipped, and only 7612 is listed."""
    with segment_files_from_milvus(standin, "v2.5.8") as (server, rest, config, store):
        del rest.logs[7612]
        store.put(f"{ROOT}/insert_log/{SEG}/{SEG_P}/7611/100/999", insert_log([9, 9]))
        caplog.set_level(logging.WARNING, "milvus_backup_operator.engine.backup")
        wanted = (CollectionRef("default", "seg"),)
        info = create_backup(config, BackupRequest("sb_one_listed", wanted))
        asked = [sorted(r["segmentIds"]) for r in server.requests(DESCRIBE_SEGMENTS)]
        assert asked == [[7611, 7612], [7611], [7612]]
        assert "did not describe segments [7612] (" in caplog.text
        assert "segment not found[segment=7612]" in caplog.text
        copied = {key.split("/")[-1] for key in backed_up_files(config, "sb_one_listed")}
        assert copied == {key.split("/")[-1] for key in milvus_files(store)} - {"999"}
        channels = {s.segment_id: s.v_channel for s in info.collection_backups[0].segments()}
        assert channels == {7611: v_channel(SEG), 7612: ""}
        Catalog.of(config).delete("sb_one_listed")


def test_milvus_before_2_5_8_is_never_asked_for_segment_files(
    standin: tuple[StandInMilvus, BackupConfig], caplog: pytest.LogCaptureFixture
) -> None:
    with segment_files_from_milvus(standin, "v2.5.0") as (server, _, config, store):
        caplog.set_level(logging.WARNING, "milvus_backup_operator.engine.backup")
        create_backup(config, BackupRequest("sb_250", (CollectionRef("default", "seg"),)))
        assert server.requests(DESCRIBE_SEGMENTS) == []
        assert "did not name" not in caplog.text
        copied = {key.split("/")[-1] for key in backed_up_files(config, "sb_250")}
        assert copied == {key.split("/")[-1] for key in milvus_files(store)}


def test_storage_v2_logs_are_named_by_column_group(
    standin: tuple[StandInMilvus, BackupConfig],
) -> None:
    """Milvus 2.6 writes a storage v2 segment's Parquet files under its column groups' IDs
    and names them so (``syncmgr/pack_writer_v2.go``: ``BuildInsertLogPath(..., GroupID,
    logID)``, ``FieldBinlog{FieldID: GroupID}``): group 0 holds the scalar fields, 101 the
    vector; a file of another group ID is not Milvus's and is skipped."""
    server, config = standin
    store = ObjectStore(config.storage, config.timeouts)
    groups = {0: [7711001, 7711002], 101: [7711003, 7711004]}
    for group, logs in groups.items():
        for log_id in logs:
            store.put(f"{ROOT}/insert_log/7701/7702/7711/{group}/{log_id}", b"parquet")
    store.put(f"{ROOT}/insert_log/7701/7702/7711/100/7711005", b"orphan")
    server.collections["v2seg"] = Collection(
        7701, "v2seg", schema("v2seg"), {"_default": 7702},
        [Segment(7711, 7702, 2, storage_version=2)],
    )  # fmt: skip
    rest = StandInSegmentsRest(server)
    rest.logs = {7711: SegmentLogs(groups)}
    server.version = "v2.6.3"
    named = replace(config, milvus=replace(config.milvus, rest_endpoint=rest.url))
    try:
        info = create_backup(
            named, BackupRequest("sb_v2named", (CollectionRef("default", "v2seg"),))
        )
        (segment,) = info.collection_backups[0].segments()
        assert segment.storage_version == 2
        recorded = {fb.field_id: [b.log_id for b in fb.binlogs] for fb in segment.binlogs}
        assert recorded == groups
        copied = {key.split("/")[-1] for key in backed_up_files(named, "sb_v2named")}
        assert copied == {str(i) for logs in groups.values() for i in logs}
    finally:
        rest.stop()
        server.version = "v2.5.20"
        server.collections.pop("v2seg", None)


@pytest.mark.parametrize("version", ["v2.5.0", "v2.6.3"])
def test_objects_of_an_unknown_shape_in_a_segment_refuse_it_by_name(
    standin: tuple[StandInMilvus, BackupConfig], version: str
) -> None:
    """Newer Milvus keeps large text values in ``lob/`` files beside a segment's binlogs
    (``metautil.BuildLOBLogPath``): neither listed nor named, they would be lost. The same
    shape under a segment that is not backed up (dropped, not yet collected) is left alone."""
    with segment_files_from_milvus(standin, version) as (_, _, config, store):
        wanted = (CollectionRef("default", "seg"),)
        dropped = f"{ROOT}/insert_log/{SEG}/{SEG_P}/7699/101/lob/5"
        store.put(dropped, b"a large value of a segment Milvus no longer reports")
        tag = version.replace(".", "_").lstrip("v")
        create_backup(config, BackupRequest(f"sb_lob_ok_{tag}", wanted))  # not ours to read
        lob = f"{ROOT}/insert_log/{SEG}/{SEG_P}/7611/101/lob/7"
        store.put(lob, b"a large text value")
        with pytest.raises(UnsupportedError, match=r"segment 7611 of seg holds 1 objects") as err:
            create_backup(config, BackupRequest(f"sb_lob_{tag}", wanted))
        assert lob in str(err.value) and "nothing was kept" in str(err.value)
        assert not Catalog.of(config).exists(f"sb_lob_{tag}")
