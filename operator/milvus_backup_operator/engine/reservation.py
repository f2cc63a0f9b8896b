"""A backup name is claimed before the first object is copied, by an in-progress marker.

The marker, ``<root>/<name>/meta/in_progress.json``, is written with ``If-None-Match: *``: the
S3 server lets exactly one of two concurrent writers create it, in one process or many
(RADOS Gateway, MinIO and AWS S3 honour the header). The winner then reads the marker back
and lists the prefix, which catches a server that ignored the header: a marker holding another
writer's token, or objects that are not ours, and the name is given up. The marker is read
once more before the meta is written, and the backup fails, touching nothing of the other's,
if another writer holds it by then.

While it copies, the writer renews the marker (a conditional rewrite, ``If-Match`` its own
ETag, in the form the server takes: :meth:`ObjectStore.put_if_match`) twelve times per
``timeouts.writerSilence``: ``delete`` refuses a backup whose marker is that fresh, and a
writer whose renewal fails (the marker was deleted or replaced, or could not be renewed for
half of ``writerSilence``) stops before its next copy, failing with that cause. So a backup
cannot be deleted under a live writer, nor a new one started in its place while the old
writer still adds objects. The marker also records the writer's process (host, boot id, pid
namespace, pid and its start time): ``delete`` on the same host, boot and pid namespace
need not wait for a writer whose process is provably gone.

The marker is also what makes the prefix ours: ``delete`` removes a prefix only if it holds
a backup's meta or this marker (milvus-backup's reader ignores the extra file, and a completed
backup no longer has it). A writer that dies leaves the marker, so its leftovers are listed
Incomplete and can be deleted once the marker has gone unrenewed for ``writerSilence``.
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from .errors import AlreadyExistsError, BackupError, NotFoundError, OperationError
from .layout import BackupLayout
from .liveness import MAX_SILENCE, Heartbeat, ProcessId, bounded
from .storage import ObjectStore

log = logging.getLogger(__name__)

MARKER = "in_progress.json"
TOOL = "milvus-backup-operator"


@dataclass(frozen=True)
class Marker:
    """Who is writing a backup: the owner's backup id (a task or resource id), a token, its
    process (:class:`ProcessId`; older markers have its host and pid only), how far it had
    come at its last renewal (percent), and the writerSilence it renews within (older
    markers have neither)."""

    backup_id: str
    token: str
    started: float
    process: ProcessId
    progress: int = 0
    silence: float = 0.0

    @classmethod
    def new(cls, backup_id: str, silence: float = 0.0) -> Marker:
        """The marker of a writer in this process, renewed 12 times per ``silence``."""
        return cls(backup_id or str(uuid.uuid4()), uuid.uuid4().hex, time.time(),
                   ProcessId.here(), silence=silence)  # fmt: skip

    def to_json(self) -> bytes:
        """Flat, as older versions wrote and read it (host and pid beside the rest)."""
        fields = {"backup_id": self.backup_id, "token": self.token, "started": self.started,
                  "progress": self.progress, "silence": self.silence}  # fmt: skip
        return json.dumps({"tool": TOOL, **fields, **vars(self.process)}).encode()

    def silence_for(self, reader_silence: float) -> float:
        """How long this marker may go unrenewed before its writer is taken for stopped: the
        longer of the reader's writerSilence and the writer's own (a writer told to renew
        less often is not taken for stopped), at most :data:`MAX_SILENCE`."""
        return min(max(reader_silence, self.silence), MAX_SILENCE)

    @classmethod
    def from_json(cls, raw: bytes) -> Marker | None:
        """The marker, or None when the object is not one of ours."""
        try:
            data = json.loads(raw)
            if data.get("tool") != TOOL:
                return None
            started = float(data["started"])
            if not (math.isfinite(started) and 0 <= started < 1e11):
                return None
            return cls(
                backup_id=str(data["backup_id"]),
                token=str(data["token"]),
                started=started,
                process=ProcessId.from_json(data),
                progress=bounded(data.get("progress"), 0, 100),
                silence=bounded(data.get("silence"), 0, MAX_SILENCE),
            )
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError, RecursionError):
            return None

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.started))
        host = self.process.host or "an unknown host"
        return f"started {when} on {host}, pid {self.process.pid}, backup id {self.backup_id}"


def marker_key(layout: BackupLayout) -> str:
    return layout.meta_key(MARKER)


def read_marker(store: ObjectStore, layout: BackupLayout) -> Marker | None:
    """The in-progress marker of a backup, if it has one of ours."""
    raw = store.get_if_exists(marker_key(layout))
    return Marker.from_json(raw) if raw is not None else None


def silent_for(store: ObjectStore, layout: BackupLayout) -> float | None:
    """At least how many seconds ago the marker was last written or renewed (the server's
    clock against ours; Last-Modified has a one-second resolution), or None."""
    modified = store.modified(marker_key(layout))
    return None if modified is None else max(0.0, time.time() - modified - 1.0)


@dataclass
class Reservation:
    """The claim of one writer on one backup name."""

    store: ObjectStore
    layout: BackupLayout
    marker: Marker
    etag: str = ""
    heartbeat: Heartbeat | None = None
    released: bool = False  # the meta is written: the backup is complete, never discarded

    def check_not_lost(self) -> None:
        """Raise if a renewal found the marker deleted or replaced (checked before each copy)."""
        if self.heartbeat is not None and self.heartbeat.lost.is_set():
            raise self._abandoned()

    @contextmanager
    def renewed(self, silence: float, percent: Callable[[], int] | None = None) -> Iterator[None]:
        """Renew the marker every ``silence / 12`` seconds while the block runs; each renewal
        records ``percent()``, so that readers elsewhere see how far the backup has come."""
        what = f"the in-progress marker of backup {self.layout.name!r}"
        key, body = marker_key(self.layout), self.marker.to_json()
        self.heartbeat = Heartbeat(self.store, key, body, self.etag, what)
        if percent is not None:
            self.heartbeat.render = lambda: replace(self.marker, progress=percent()).to_json()
        self.heartbeat.start(silence)
        try:
            yield
        finally:
            self.heartbeat.stop()
            self.etag = self.heartbeat.etag

    def holds(self) -> bool:
        """True while the marker in storage is still this writer's."""
        current = read_marker(self.store, self.layout)
        return current is not None and current.token == self.marker.token

    def require(self) -> None:
        """Raise unless this writer still holds the name (checked before the meta is written)."""
        self.check_not_lost()
        if not self.holds():
            raise self._abandoned()

    def abandoned(self) -> OperationError | None:
        """After a failure: the error saying the name was lost, if it was (the true cause of
        e.g. copies gone missing); None while this writer holds it, or if it cannot be read."""
        try:
            self.require()
        except OperationError as exc:
            return exc
        except BackupError:
            return None
        return None

    def _abandoned(self) -> OperationError:
        """Why this writer lost its name, as the backup's error: what is there now, and who."""
        name = self.layout.name
        try:
            current = read_marker(self.store, self.layout)
        except BackupError:
            current = None
        if current is not None and current.token != self.marker.token:
            why = f"its in-progress marker was replaced by another writer's ({current.describe()})"
        elif self.heartbeat is not None and self.heartbeat.cause and current is not None:
            why = self.heartbeat.cause
        elif current is None:
            why = "its in-progress marker was deleted (by a delete of the backup, or by hand)"
        else:
            why = "its in-progress marker was rewritten by someone else"
        return OperationError(
            f"backup {name!r} was abandoned while it was being written: {why}; nothing of it "
            "is kept. Take the backup again (under another name if that one is taken)"
        )

    def release(self) -> None:
        """Remove the marker once the meta is written: a completed backup does not carry it.

        A marker that cannot be removed is only logged: the meta is there, so the backup
        reads, lists and deletes as a complete one anyway.
        """
        self.released = True
        if self.heartbeat is not None:
            self.heartbeat.stop()  # no renewal may race the removal
        try:
            if self.holds():
                self.store.delete(marker_key(self.layout))
        except BackupError as exc:
            log.warning("backup %s is complete but kept its marker: %s", self.layout.name, exc)

    def discard(self) -> int:
        """Remove everything under the prefix, but only while it is provably this writer's.

        If the marker was deleted meanwhile (``delete`` of a running backup), the prefix is
        claimed again first, so that a third writer's objects are never removed. Once the
        meta is written (:meth:`release`) the backup is complete: nothing is removed.
        """
        if self.released:
            log.error(
                "backup %s is complete: kept, although what followed failed", self.layout.name
            )
            return 0
        if not self.holds():
            try:
                self.etag = self.store.put_new(marker_key(self.layout), self.marker.to_json())
            except AlreadyExistsError:
                log.error("backup %s is another writer's now: leaving it", self.layout.name)
                return 0
        return self.store.delete_prefix(self.layout.prefix)


def require_free(store: ObjectStore, layout: BackupLayout) -> None:
    """Raise :class:`AlreadyExistsError` when anything is stored under the backup's prefix."""
    if store.has_any(layout.prefix):
        raise _taken(store, layout)


def reserve(
    store: ObjectStore, layout: BackupLayout, backup_id: str = "", silence: float = 0.0
) -> Reservation:
    """Claim ``layout.name`` for one writer, or raise :class:`AlreadyExistsError`.

    ``backup_id`` (a new UUID when empty) becomes the backup's id, and names its owner;
    ``silence`` is the writer's writerSilence, recorded for readers (:meth:`Marker.silence_for`).
    """
    require_free(store, layout)
    marker = Marker.new(backup_id, silence)
    try:
        etag = store.put_new(marker_key(layout), marker.to_json())
    except AlreadyExistsError:
        raise _taken(store, layout) from None
    reservation = Reservation(store, layout, marker, etag)
    if not reservation.holds():  # the server ignored If-None-Match and another writer won
        raise _taken(store, layout)
    if any(o.key != marker_key(layout) for o in store.list(layout.prefix)):
        # objects without a marker: a stopped writer's whose marker was deleted. Our marker
        # stays, so that they are listed Incomplete and can be deleted; the name is not used.
        raise AlreadyExistsError(
            f"backup name {layout.name!r} holds objects another writer left without its "
            f"in-progress marker in {store.describe()}: they are now listed as an Incomplete "
            "backup; delete it, or choose another name"
        )
    return reservation


def _taken(store: ObjectStore, layout: BackupLayout) -> AlreadyExistsError:
    try:
        marker = read_marker(store, layout)
    except NotFoundError:
        marker = None
    if marker is not None:
        return AlreadyExistsError(
            f"backup {layout.name!r} is being written ({marker.describe()}) in "
            f"{store.describe()}: choose another name, or wait for it to finish"
        )
    return AlreadyExistsError(
        f"a backup named {layout.name!r} already exists in {store.describe()}: "
        "choose another name or delete it first"
    )
