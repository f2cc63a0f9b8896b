"""The GC pause around a real backup, against stand-ins of Milvus 2.5 and 2.6.8.

milvus-backup pauses the whole collector up to 2.6.7 (``core/backup/gc_controller.go``
``clusterGCCtrl``) and, from 2.6.8 (``CollectionLevelGCControl`` in
``internal/client/milvus/grpc.go``), each collection from before its segments are listed
until its data is copied (``collGCCtrl``, ``core/backup/coll_dml_task.go`` ``Execute``). The
stand-in Milvus (``tests/standin/milvus.py``) and its management endpoint
(``tests/standin/management.py``) write into one journal, so the order is what is checked;
the objects live in the real S3 server.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from milvus_backup_operator.engine.backup import BackupRequest, create_backup
from milvus_backup_operator.engine.config import BackupConfig, GcPause, MilvusConfig
from milvus_backup_operator.engine.errors import OperationError
from milvus_backup_operator.engine.gc_pause import PAUSE, RESUME
from milvus_backup_operator.engine.storage import ObjectStore
from testbed.stack import Stack, stack_config
from tests.integration.test_milvus_2x_standin import schema, write_segment
from tests.standin.management import StandInManagement
from tests.standin.milvus import Collection, Segment, StandInMilvus

pytestmark = pytest.mark.integration

BUCKET, ROOT = "standin-gc-bucket", "files"
NAMES = {PAUSE: "GC pause", RESUME: "GC resume"}


@pytest.fixture
def standins(
    stack: Stack, request: pytest.FixtureRequest
) -> Iterator[tuple[StandInMilvus, StandInManagement, BackupConfig]]:
    """Milvus ``request.param`` with two collections of one segment each."""
    stack.s3.ensure_bucket(BUCKET)
    real = stack_config(stack)
    storage = replace(real.storage, bucket=BUCKET, root_path=ROOT)
    store = ObjectStore(storage, real.timeouts)
    collections = []
    for n, name in enumerate(("first", "second")):
        coll, part, seg = 7501 + 10 * n, 7502 + 10 * n, 7503 + 10 * n
        write_segment(store, coll, part, seg, [1, 2, 3], ts=100)
        collections.append(
            Collection(coll, name, schema(name), {"_default": part}, [Segment(seg, part, 3)])
        )
    milvus = StandInMilvus(request.param, collections).start()
    management = StandInManagement(lambda path, query: milvus._record(NAMES[path], query))
    management.start()
    config = replace(
        real,
        milvus=MilvusConfig(address="127.0.0.1", port=milvus.port),
        storage=storage,
        backup_storage=replace(storage, root_path="backup"),
        gc_pause=GcPause(address=management.url),
    )
    try:
        yield milvus, management, config
    finally:
        management.stop()
        milvus.stop()


def journal(milvus: StandInMilvus) -> list[tuple[str, str]]:
    """(call, collection) in order: the collection's ID for a pause, its ticket for a
    resume, its name for a flush."""
    shown = {"GC pause": "collection_id", "GC resume": "ticket"}
    out = []
    for name, request in milvus.calls:
        if name in shown:
            out.append((name, request.get(shown[name], "")))
        elif name == "Flush":
            out.append((name, request.collection_names[0]))
    return out


@pytest.mark.parametrize("standins", ["v2.6.8"], indirect=True)
def test_from_2_6_8_each_collection_is_paused_before_its_flush_and_resumed_after(
    standins: tuple[StandInMilvus, StandInManagement, BackupConfig],
) -> None:
    milvus, management, config = standins
    info = create_backup(config, BackupRequest("gc_per_coll", (), rbac=False))
    assert sorted(c.collection_name for c in info.collection_backups) == ["first", "second"]
    calls = journal(milvus)
    for coll, name in (("7501", "first"), ("7511", "second")):
        pause = calls.index(("GC pause", coll))
        assert pause < calls.index(("Flush", name))
        resumes = [i for i, (call, ticket) in enumerate(calls) if ticket.startswith(f"c{coll}-")]
        assert len(resumes) == 1 and resumes[0] > calls.index(("Flush", name))
    assert [c for c in calls if c[0] == "GC pause" and c[1] == ""] == []  # never cluster-wide
    for coll in (7501, 7511):  # datacoord's records: paused without a gap, none left after
        history = management.history[coll]  # after each call from its pause on
        off = history.index(False)  # its release
        assert all(history[:off]) and not any(history[off:]) and not management.records[coll]


@pytest.mark.parametrize("standins", ["v2.5.20"], indirect=True)
def test_before_2_6_8_the_whole_collector_is_paused_around_the_backup(
    standins: tuple[StandInMilvus, StandInManagement, BackupConfig],
) -> None:
    milvus, _, config = standins
    create_backup(config, BackupRequest("gc_cluster", (), rbac=False))
    calls = journal(milvus)
    assert calls[0] == ("GC pause", "") and calls[-1] == ("GC resume", "t-1")
    assert {c[0] for c in calls[1:-1]} == {"Flush"}


@pytest.mark.parametrize("standins", ["v2.6.8"], indirect=True)
def test_a_failed_backup_gives_back_every_collection_ticket(
    standins: tuple[StandInMilvus, StandInManagement, BackupConfig],
) -> None:
    milvus, _, config = standins
    store = ObjectStore(config.storage, config.timeouts)
    extra = f"{ROOT}/insert_log/7511/7512/7513/100/99"  # a second log of one field only
    store.put(extra, store.get(f"{ROOT}/insert_log/7511/7512/7513/100/7513100"))
    with pytest.raises(OperationError, match="segment 7513 has misaligned binlogs"):
        create_backup(config, BackupRequest("gc_failed", (), rbac=False))
    calls = journal(milvus)
    paused = [c for c in calls if c[0] == "GC pause"]
    resumed = [c for c in calls if c[0] == "GC resume"]
    assert len(paused) == len(resumed) == 2
