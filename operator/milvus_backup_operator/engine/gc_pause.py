"""Pause Milvus's garbage collector while a backup copies, and resume it on every way out.

Milvus (2.4 and later) serves ``GET /management/datacoord/garbage_collection/pause
?pause_seconds=N`` and ``.../resume`` on its management port (``internal/http/server.go``
``RouteGcPause``/``RouteGcResume``; ``internal/proxy/management.go`` ``PauseDatacoordGC``
answers 200 ``{"msg": "OK"}`` or 500 with the reason). A pause expires by itself after N
seconds, so a crashed backup cannot leave it paused: it is renewed at half of N while the
backup runs, and resumed when it ends, failed or not.

From 2.6.8 a pause can name one collection (``&collection_id=``) and answers a ``ticket``
that resume takes back (milvus-backup's ``internal/client/milvus/manage.go``, gated by its
``CollectionLevelGCControl`` feature flag in ``internal/client/milvus/grpc.go``). There, as
milvus-backup's ``collGCCtrl`` (``core/backup/gc_controller.go``) does, only the collections
being backed up are paused, each from before its segments are listed until its copies are
done, and the rest of the cluster keeps collecting.

Datacoord keeps one pause record per ticket with its own end (``gcPauseRecords`` in
``internal/datacoord/garbage_collector.go``): a collection is paused while any record of it
lasts, and resuming a ticket deletes that ticket's records only. So a renewal pauses again
and resumes nothing, as milvus-backup's ``renewalGCLease`` does: the collection stays paused
whatever ticket the renewal answers (a new one, or the one it holds). Unlike milvus-backup
(whose renewal updates a copy of its map entry and so forgets the new ticket), every ticket
that may still pause a collection is kept and given back when its copies are done, so
nothing stays paused after the backup.

As in milvus-backup, a pause that cannot be had does not fail the backup: a compaction that
removes a segment being copied fails the copy (never silently), and most backups finish long
before the collector runs. What happened is said in the log and in :attr:`GcHold.text`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .capabilities import Capabilities
from .config import GcPause, MilvusConfig
from .errors import UnreachableError
from .management import Management

log = logging.getLogger(__name__)

PAUSE = "/management/datacoord/garbage_collection/pause"
RESUME = "/management/datacoord/garbage_collection/resume"
WHOLE_CLUSTER = 0  # milvus-backup's collection ID for "every collection"


@dataclass(frozen=True)
class _Ticket:
    """A ticket Milvus answered a collection's pause, and when (``time.monotonic``)."""

    ticket: str
    taken: float


class GcHold:
    """The pause held for one backup: what was done (``text``), and per-collection pauses
    where Milvus takes them (:meth:`hold` before listing, :meth:`release` after copying)."""

    def __init__(self, text: str, client: _Management | None = None, seconds: int = 0) -> None:
        self.text = text
        self._client = client
        self._seconds = seconds
        self._tickets: dict[int, list[_Ticket]] = {}  # oldest first: all that may still pause
        self._lock = threading.Lock()
        self._refused: list[int] = []

    @property
    def per_collection(self) -> bool:
        return self._client is not None

    def hold(self, collection_id: int) -> None:
        """Pause the collector for one collection (a no-op where the pause is cluster-wide)."""
        if self._client is None:
            return
        ticket = self._client.pause(self._seconds, collection_id)
        with self._lock:
            if ticket:
                self._tickets[collection_id] = [_Ticket(ticket, time.monotonic())]
            else:  # refused, or a Milvus that gives no ticket: nothing to resume
                self._refused.append(collection_id)
                self.text = f"garbage collection not paused for collections {self._refused}"

    def release(self, collection_id: int) -> None:
        """Resume one collection's collector: give back every ticket it was paused with."""
        with self._lock:
            tickets = self._tickets.pop(collection_id, [])
        if self._client is not None:
            for ticket in dict.fromkeys(t.ticket for t in tickets):
                self._client.resume(ticket)

    def renew(self) -> None:
        """Pause each held collection again before its last pause ends; resume nothing, so
        it never runs unpaused in between (a renewal that fails leaves the last one running)."""
        if self._client is None:
            return
        with self._lock:
            held = list(self._tickets)
        for collection_id in held:
            ticket = self._client.pause(self._seconds, collection_id)
            if ticket and not self._keep(collection_id, ticket):
                self._client.resume(ticket)  # released meanwhile: give this one back too

    def _keep(self, collection_id: int, ticket: str) -> bool:
        """Add a renewal's ticket to a collection still held; forget those long over."""
        now = time.monotonic()
        with self._lock:
            tickets = self._tickets.get(collection_id)
            if tickets is None:
                return False
            tickets.append(_Ticket(ticket, now))
            over = now - 2 * self._seconds  # ended by Milvus's clock too, skew allowed for
            tickets[:-1] = [t for t in tickets[:-1] if t.taken > over]
            return True

    def release_all(self) -> None:
        for collection_id in list(self._tickets):
            self.release(collection_id)


@contextmanager
def gc_paused(
    settings: GcPause, milvus: MilvusConfig, capabilities: Capabilities, timeout: float
) -> Iterator[GcHold]:
    """Hold Milvus's garbage collector paused for the ``with`` block, where it can be."""
    if not settings.enabled:
        yield GcHold("garbage collection not paused (turned off in the configuration)")
        return
    if not capabilities.gc_pause:
        yield GcHold(f"garbage collection not paused: {capabilities.describe()} cannot pause it")
        return
    client = _Management(Management(settings, milvus, timeout))
    if capabilities.collection_gc_pause:
        text = f"garbage collection paused per collection through {client.endpoint}"
        hold = GcHold(text, client, settings.seconds)
        with _renewing(hold.renew, settings.seconds):
            try:
                yield hold
            finally:
                hold.release_all()
        return
    ticket = client.pause(settings.seconds)
    if ticket is None:
        yield GcHold(f"garbage collection not paused: {client.endpoint} refused (see the log)")
        return
    try:
        with _renewing(lambda: client.pause(settings.seconds), settings.seconds):
            yield GcHold(f"garbage collection paused through {client.endpoint}")
    finally:
        client.resume(ticket)


@contextmanager
def _renewing(renew: Callable[[], object], seconds: int) -> Iterator[None]:
    """Call ``renew`` every ``seconds / 2`` in a thread for the ``with`` block."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(seconds / 2):
            renew()

    renewer = threading.Thread(target=loop, name="gc-pause", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()


class _Management:
    """The GC pause's calls; a call that fails is logged, and the backup goes on."""

    def __init__(self, http: Management) -> None:
        self.http = http
        self.endpoint = http.endpoint

    def pause(self, seconds: int, collection_id: int = WHOLE_CLUSTER) -> str | None:
        """Pause for ``seconds``; return the ticket ("" from Milvus that gives none), or None."""
        query = {"pause_seconds": str(seconds)}
        if collection_id != WHOLE_CLUSTER:
            query["collection_id"] = str(collection_id)
        answer = self._get(PAUSE, query)
        return None if answer is None else str(answer.get("ticket", ""))

    def resume(self, ticket: str) -> None:
        self._get(RESUME, {"ticket": ticket} if ticket else {})

    def _get(self, path: str, query: dict[str, str]) -> dict[str, object] | None:
        try:
            status, answer = self.http.get(path, query)
        except UnreachableError as exc:
            log.warning("GC %s failed (%s): the backup goes on", path, exc)
            return None
        if status != 200:
            why = str(answer.get("msg", ""))[:300]
            log.warning("GC %s at %s answered HTTP %s (%s): the backup goes on",
                        path, self.endpoint, status, why)  # fmt: skip
            return None
        return answer
