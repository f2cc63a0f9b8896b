"""A backup's id and state as get_backup and list tell them, from what the location holds.

On the real S3 server, with meta and markers written as the tools write them: an id names
one backup or none; a directory is listed under its own name; one damaged backup hides no
other; a writer is judged by the longer of its own writerSilence and the reader's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from milvus_backup_operator.engine.catalog import INCOMPLETE, RUNNING, Catalog
from milvus_backup_operator.engine.errors import InUseError, NotFoundError
from milvus_backup_operator.engine.layout import BackupLayout
from milvus_backup_operator.engine.leases import Notice
from milvus_backup_operator.engine.liveness import ProcessId
from milvus_backup_operator.engine.meta import BackupInfo, render_meta_files
from milvus_backup_operator.engine.reservation import Marker, marker_key, reserve
from milvus_backup_operator.engine.storage import ObjectStore
from milvus_backup_operator.server.local import LocalBackend
from milvus_backup_operator.server.tasks import CREATE, RESTORE, Task, TaskStore
from testbed.stack import Stack, stack_config

pytestmark = pytest.mark.integration

ROOT = "backup_ids"


@pytest.fixture
def backend(stack: Stack) -> Iterator[LocalBackend]:
    config = stack_config(stack)
    config = replace(config, backup_storage=replace(config.backup_storage, root_path=ROOT))
    served = LocalBackend(config, TaskStore(":memory:"))
    try:
        yield served
    finally:
        served.catalog.store.delete_prefix(f"{ROOT}/")
        served.close()


def complete(store: ObjectStore, directory: str, backup_id: str, name: str = "") -> None:
    """A complete backup under ``directory`` whose meta says ``name`` (default: the same)."""
    info = BackupInfo(id=backup_id, name=name or directory, size=123)
    for filename, content in render_meta_files(info).items():
        store.put(BackupLayout(ROOT, directory).meta_key(filename), content)


def test_an_id_names_one_backup_or_none(backend: LocalBackend) -> None:
    store = backend.catalog.store
    failed = Task("task-x", CREATE, "ids_a", {})
    backend.tasks.add(failed)
    failed.finish("Milvus did not answer")
    backend.tasks.save(failed)
    complete(store, "ids_a", "id-y")  # another tool wrote ids_a since
    by_task = backend.get_backup("task-x", "")
    assert (by_task["state_code"], by_task["errorMessage"]) == (3, "Milvus did not answer")
    by_id = backend.get_backup("id-y", "")
    assert (by_id["state_code"], by_id["id"], by_id["name"]) == (2, "id-y", "ids_a")
    with pytest.raises(NotFoundError, match="backup 'ids_a' has id 'id-y'"):
        backend.get_backup("not-an-id", "ids_a")  # not silently another backup
    with pytest.raises(NotFoundError, match="no backup with id 'not-an-id'"):
        backend.get_backup("not-an-id", "")
    with pytest.raises(NotFoundError, match="belongs to backup 'ids_a', not to 'ids_b'"):
        backend.get_backup("task-x", "ids_b")  # a task's id beside another backup's name
    restore = Task("id-y", RESTORE, "ids_a", {})  # a restore's id (chosen by the client)
    backend.tasks.add(restore)
    assert backend.get_backup("id-y", "")["state_code"] == 2  # is no backup's task

    complete(store, "ids_copy", "id-old", name="ids_orig")  # a copied directory
    complete(store, "ids_orig", "id-new")
    assert backend.get_backup("id-old", "")["id"] == "id-old"
    listed = {e["name"]: e["id"] for e in backend.list()}
    assert (listed["ids_copy"], listed["ids_orig"]) == ("id-old", "id-new")


def test_one_damaged_backup_hides_no_other(backend: LocalBackend) -> None:
    store = backend.catalog.store
    complete(store, "ids_fine", "id-fine")
    layout = BackupLayout(ROOT, "ids_damaged")
    store.put(layout.meta_key("backup_meta.json"), b"{}")
    store.put(layout.meta_key("full_meta.json"), b'{"size": ' + b"9" * 5000 + b"}")
    states = {e["name"]: e["state_code"] for e in backend.list()}
    assert states == {"ids_fine": 2, "ids_damaged": 3}
    assert backend.get_backup("id-fine", "")["name"] == "ids_fine"


def test_writers_and_readers_are_judged_by_their_own_silence_too(backend: LocalBackend) -> None:
    """A writer renewing every 50 s (writerSilence 600) is running for a reader whose own
    writerSilence is 1 s, and a restore's lease so renewed keeps a delete off; a forged or
    older marker (no silence, a progress of null) is judged by the reader's and listed."""
    store = backend.catalog.store
    elsewhere = replace(ProcessId.here(), host="another-pod")  # nothing provable of it
    slow = Marker("id-slow", "t1", time.time(), elsewhere, progress=40, silence=600)
    store.put(marker_key(BackupLayout(ROOT, "ids_slow")), slow.to_json())
    forged = {**json.loads(slow.to_json()), "backup_id": "id-old", "progress": None}
    del forged["silence"]
    store.put(marker_key(BackupLayout(ROOT, "ids_older")), json.dumps(forged).encode())
    complete(store, "ids_read", "id-read")
    lease = Notice("t2", time.time(), elsewhere, "MilvusRestore team/r", "r-1", silence=600)
    store.put(BackupLayout(ROOT, "ids_read").meta_key("readers/t2.json"), lease.to_json())
    time.sleep(2.5)  # Last-Modified has one-second steps
    reader = Catalog(store, ROOT, writer_silence=1)
    with pytest.raises(InUseError, match=r"being read by a restore \(MilvusRestore team/r"):
        reader.delete("ids_read")
    states = {s.name: (s.state, s.id, s.progress) for s in reader.list()}
    assert states == {
        "ids_slow": (RUNNING, "id-slow", 40),
        "ids_older": (INCOMPLETE, "id-old", 0),
        "ids_read": ("Completed", "id-read", 0),
    }


def test_a_backup_is_complete_only_with_its_last_meta_and_then_never_discarded(
    backend: LocalBackend,
) -> None:
    """Between the level files and full_meta.json, a backup of ours is still being written
    (listed running, not deletable); once its meta is written, nothing that fails after
    (a GC resume cut short) removes it."""
    store = backend.catalog.store
    layout = BackupLayout(ROOT, "ids_last")
    claim = reserve(store, layout, "id-last", silence=120)
    files = render_meta_files(BackupInfo(id="id-last", name="ids_last", size=1))
    for filename, content in files.items():
        if filename != "full_meta.json":
            store.put(layout.meta_key(filename), content)
    entry = backend.catalog.summary("ids_last")
    assert entry is not None and entry.state == RUNNING
    with pytest.raises(InUseError, match="is being written"):
        backend.catalog.delete("ids_last")
    store.put(layout.meta_key("full_meta.json"), files["full_meta.json"])
    claim.release()
    assert claim.discard() == 0  # complete: kept
    assert backend.get_backup("id-last", "")["state_code"] == 2
