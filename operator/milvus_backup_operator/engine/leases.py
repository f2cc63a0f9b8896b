"""A restore announces itself where the backup lives; so does a delete. Neither misses the other.

A restore holds a reader's lease, ``<root>/<name>/meta/readers/<token>.json``, from before it
reads the backup until it ends: written with ``If-None-Match: *``, renewed as the writer's
marker is (:class:`Heartbeat`, every ``writerSilence / 12`` seconds), removed at the end,
success or failure. A dead restorer's lease expires after ``writerSilence`` unrenewed (at
once when its process is provably gone on the deleting host).

A delete first writes a deletion mark, ``<root>/<name>/meta/deleting/<token>.json``, then
looks for fresh leases: if there is one, it removes its own mark and refuses. A restore first
writes its lease, then looks for deletion marks: if there is one, it withdraws its lease and
refuses, before Milvus is touched. S3 lists what was written before (read-after-write, on
RADOS Gateway, MinIO and AWS S3 alike), so of a delete and a restore that overlap at least
one sees the other. A delete removes the marks last, so that a restore starting while it
deletes sees one; the mark of a killed delete stays (the backup is then listed Incomplete,
and restores refuse it) until a delete is run again, which proceeds.

milvus-backup reads its meta files by name only: these objects are invisible to it, and so
they are to ``verify``, which looks at ``binlogs/``.
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .errors import AccessDeniedError, BackupError, InUseError, OperationError
from .layout import BackupLayout
from .liveness import MAX_SILENCE, Heartbeat, ProcessId, bounded
from .meta import BACKUP_META
from .storage import ObjectInfo, ObjectStore

log = logging.getLogger(__name__)

TOOL = "milvus-backup-operator"
READERS = "readers"
DELETING = "deleting"


@dataclass(frozen=True)
class Notice:
    """A reader's lease or a deletion mark: who, since when, a token naming the object, and
    (a lease) the writerSilence its holder renews it within."""

    token: str
    started: float
    process: ProcessId
    reader: str = ""  # a lease's free-text description ("MilvusRestore team-a/rv")
    task_id: str = ""
    silence: float = 0.0

    @classmethod
    def new(cls, reader: str = "", task_id: str = "", silence: float = 0.0) -> Notice:
        return cls(uuid.uuid4().hex, time.time(), ProcessId.here(), reader, task_id, silence)

    def to_json(self) -> bytes:
        fields = {"token": self.token, "started": self.started, **vars(self.process)}
        return json.dumps({"tool": TOOL, **fields, "reader": self.reader,
                           "task_id": self.task_id, "silence": self.silence}).encode()  # fmt: skip

    @classmethod
    def from_json(cls, raw: bytes) -> Notice | None:
        """The notice, or None when the object is not one of ours."""
        try:
            data = json.loads(raw)
            started = float(data["started"])
            if data.get("tool") != TOOL or not (math.isfinite(started) and 0 <= started < 1e11):
                return None
            process = ProcessId.from_json(data)
            reader, task_id = str(data.get("reader", "")), str(data.get("task_id", ""))
            silence = bounded(data.get("silence"), 0, MAX_SILENCE)
            return cls(str(data["token"]), started, process, reader, task_id, silence)
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError, RecursionError):
            return None

    def describe(self) -> str:
        who = f"{self.reader}, " if self.reader else ""
        task = f"task {self.task_id}, " if self.task_id else ""
        return f"{who}{task}on {self.process.host or 'an unknown host'}, pid {self.process.pid}"


def _key(layout: BackupLayout, kind: str, token: str) -> str:
    return layout.meta_key(f"{kind}/{token}.json")


def _dir(layout: BackupLayout, kind: str) -> str:
    return layout.meta_key(kind) + "/"


def _since(when: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(when))


# ---- a restore's side -----------------------------------------------------------------------


@contextmanager
def reading(
    store: ObjectStore, layout: BackupLayout, reader: str, task_id: str, silence: float
) -> Iterator[None]:
    """Hold a reader's lease on the backup while the block runs (a restore).

    Refuses (:class:`InUseError`) while a delete of the backup is under way. Credentials
    that may not write there (AccessDenied) restore unprotected, with a warning; any other
    error writing the lease fails before the block runs.
    """
    heartbeat = _take_lease(store, layout, Notice.new(reader, task_id, silence))
    try:
        if heartbeat is not None:
            heartbeat.start(silence)
        _refuse_if_deleting(store, layout)
        yield
    finally:
        if heartbeat is not None:
            _withdraw(heartbeat)


def _take_lease(store: ObjectStore, layout: BackupLayout, lease: Notice) -> Heartbeat | None:
    """Write the lease; None when there is nothing to lease or it may not be written."""
    if store.modified(layout.meta_key(BACKUP_META)) is None:
        return None  # no backup (yet): the restore's own checks say what is wrong
    key = _key(layout, READERS, lease.token)
    try:
        etag = store.put_new(key, lease.to_json())
    except AccessDeniedError as exc:
        log.warning(
            "restore %s: backup %s is not protected from deletion during this restore: its "
            "reader's lease could not be written (%s); read-only credentials for the backup "
            "location?", lease.task_id, layout.name, exc,
        )  # fmt: skip
        return None
    except BackupError as exc:
        raise OperationError(
            f"could not write the reader's lease of this restore on backup {layout.name!r} "
            f"({exc}): nothing was restored; check the backup location, then retry"
        ) from None
    what = f"the reader's lease of restore {lease.task_id} on backup {layout.name!r}"
    return Heartbeat(store, key, lease.to_json(), etag, what)


def _withdraw(heartbeat: Heartbeat) -> None:
    heartbeat.stop()
    try:
        heartbeat.store.delete(heartbeat.key)
    except BackupError as exc:  # it expires after writerSilence unrenewed
        log.warning("could not remove %s (it expires unrenewed): %s", heartbeat.what, exc)


def _refuse_if_deleting(store: ObjectStore, layout: BackupLayout) -> None:
    marks = list(store.list(_dir(layout, DELETING)))
    if marks:
        first = min(marks, key=lambda o: o.modified)
        raise InUseError(
            f"backup {layout.name!r} is being deleted since {_since(first.modified)}"
            f"{_by(store, first)}: nothing was restored; if that delete stopped, run it "
            "again (or wait for it to end)"
        )


def _by(store: ObjectStore, mark: ObjectInfo) -> str:
    try:
        notice = Notice.from_json(store.get(mark.key))
    except BackupError:
        return ""
    return f" (a delete {notice.describe()})" if notice is not None else ""


# ---- a delete's side ------------------------------------------------------------------------


def deletion_started(store: ObjectStore, layout: BackupLayout) -> float | None:
    """Since when the oldest deletion mark is there (None: none)."""
    marks = [o.modified for o in store.list(_dir(layout, DELETING))]
    return min(marks) if marks else None


def only_notices(store: ObjectStore, layout: BackupLayout) -> bool:
    """Whether the prefix holds nothing but leases and marks of ours (a restore or a delete
    stopped around the end of a delete): provably ours to remove."""
    objects = list(store.list(layout.prefix))
    ours = (_dir(layout, READERS), _dir(layout, DELETING))
    return bool(objects) and all(
        o.key.startswith(ours) and Notice.from_json(store.get(o.key)) is not None for o in objects
    )


def delete_unread(store: ObjectStore, layout: BackupLayout, silence: float) -> int:
    """Delete the backup's objects unless a restore reads it (:class:`InUseError`, naming
    it); return how many were deleted (its marks not counted)."""
    mark = Notice.new()
    key = _key(layout, DELETING, mark.token)
    store.put_new(key, mark.to_json())
    try:
        _refuse_readers(store, layout, silence)
    except BaseException:
        _remove_mark(store, key)
        raise
    return _delete_marks_last(store, layout)


def _remove_mark(store: ObjectStore, key: str) -> None:
    try:
        store.delete(key)
    except BackupError as exc:  # restores refuse until a delete is run again: say so
        log.error("could not remove the deletion mark %s (run delete again): %s", key, exc)


def _refuse_readers(store: ObjectStore, layout: BackupLayout, silence: float) -> None:
    for obj in store.list(_dir(layout, READERS)):
        silent = max(0.0, time.time() - obj.modified - 1.0)
        raw = store.get_if_exists(obj.key) if silent < MAX_SILENCE else None
        lease = Notice.from_json(raw) if raw is not None else None
        longest = min(max(silence, lease.silence if lease else 0.0), MAX_SILENCE)
        if raw is None or silent >= longest:
            continue  # withdrawn, or a dead restorer's: unrenewed for writerSilence
        gone = lease.process.gone() if lease is not None else None
        if lease is not None and gone is not None:
            log.warning("backup %s: its reader (%s) is gone (%s): not waited for",
                        layout.name, lease.describe(), gone)  # fmt: skip
            continue
        who = (f"by a restore ({lease.describe()}) since {_since(lease.started)}" if lease
               else f"by an unknown reader ({obj.key})")  # fmt: skip
        raise InUseError(
            f"backup {layout.name!r} is being read {who}; its lease was renewed "
            f"{silent:.0f}s ago: it can be deleted once that restore ends, or once its lease "
            f"goes unrenewed for {longest:.0f}s (timeouts.writerSilence)"
        )


def _delete_marks_last(store: ObjectStore, layout: BackupLayout) -> int:
    marks = _dir(layout, DELETING)
    keys = [o.key for o in store.list(layout.prefix) if not o.key.startswith(marks)]
    store.delete_many(keys, layout.prefix)
    store.delete_many([o.key for o in store.list(marks)], marks)
    return len(keys)
