"""Is the owner of a marker or lease alive? Its heartbeat, and, on this host, its process.

An owner keeps its object fresh (:class:`Heartbeat`: rewritten ``If-Match`` its own ETag
every ``writerSilence / 12`` seconds); one unheard for ``writerSilence`` is taken for
stopped. On the same host, boot and pid namespace, a process that is gone is known at once
(:meth:`ProcessId.gone`): its pid is not running, or runs a process started at another time.
Anything not provable (another host or pod, no ``/proc``, an older record) waits.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .config import TIMEOUT_LIMITS
from .errors import AlreadyExistsError, BackupError, NotFoundError
from .storage import ObjectStore

log = logging.getLogger(__name__)

BOOT_ID = "/proc/sys/kernel/random/boot_id"


@dataclass(frozen=True)
class ProcessId:
    """A process, as a marker records it: enough for another process to prove it is gone."""

    host: str = ""
    pid: int = 0
    boot_id: str = ""  # the kernel's, per boot
    pid_namespace: int = 0  # the inode of the pid namespace: pids mean nothing across them
    pid_start: int = 0  # clock ticks after boot (/proc/<pid>/stat field 22): pids are reused

    @classmethod
    def here(cls) -> ProcessId:
        """This process (the fields /proc cannot give are left empty: nothing is proven)."""
        pid = os.getpid()
        return cls(socket.gethostname(), pid, _boot_id(), _pid_namespace(), _start_of(pid) or 0)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProcessId:
        """Read from a marker or lease (older ones have host and pid only)."""
        return cls(
            host=str(data.get("host", "")),
            pid=int(data.get("pid", 0)),
            boot_id=str(data.get("boot_id", "")),
            pid_namespace=int(data.get("pid_namespace", 0)),
            pid_start=int(data.get("pid_start", 0)),
        )

    def gone(self) -> str | None:
        """Why this process is provably gone, seen from here; None when that cannot be told."""
        here = ProcessId.here()
        if not (self.pid > 0 and self.boot_id and self.pid_namespace and self.pid_start):
            return None  # an older record, or written where /proc was missing
        same = (self.host, self.boot_id, self.pid_namespace)
        if not here.boot_id or same != (here.host, here.boot_id, here.pid_namespace):
            return None  # another host, boot or pod: its pids are not ours to look up
        started = _start_of(self.pid)
        if started is None:
            return f"process {self.pid} on this host is not running"
        if started != self.pid_start:
            return f"pid {self.pid} on this host is another process now"
        return None


def _boot_id() -> str:
    try:
        with open(BOOT_ID) as file:
            return file.read().strip()
    except OSError:
        return ""


def _pid_namespace() -> int:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


def _start_of(pid: int) -> int | None:
    """When ``pid`` started (field 22 of its stat); None when no live process has it (a
    zombie has ended: it can write nothing)."""
    try:
        with open(f"/proc/{pid}/stat") as file:
            stat = file.read()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # the name, in parentheses, may hold spaces
    if len(fields) < 20 or fields[0] in ("Z", "X", "x"):
        return None
    return int(fields[19])


#: seconds: the longest writerSilence a writer or reader may have (timeouts bound it)
MAX_SILENCE = TIMEOUT_LIMITS["writer_silence"]


def bounded(value: object, low: int, high: int) -> int:
    """An optional number of a marker or lease, within bounds; anything else reads as ``low``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return low
    return int(min(high, max(low, value)))


@dataclass
class Heartbeat:
    """One object of ours kept fresh by a thread: rewritten every ``silence / 12`` seconds,
    ``If-Match`` its last ETag, so that it is never written over someone else's.

    ``lost`` is set, with ``cause``, when the object was deleted or replaced, or could not be
    renewed for half of ``silence`` (by then others may take its owner for stopped).
    """

    store: ObjectStore
    key: str
    body: bytes
    etag: str
    what: str  # for messages: "the in-progress marker of backup 'x'"
    render: Callable[[], bytes] | None = None  # each renewal's body, when not always ``body``
    lost: threading.Event = field(default_factory=threading.Event)
    cause: str = ""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self, silence: float) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._beat, args=(silence,), name="heartbeat", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing (and wait for a renewal under way)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def _beat(self, silence: float) -> None:
        heard = time.monotonic()
        while not self._stop.wait(silence / 12):
            try:
                body = self.body if self.render is None else self.render()
                self.etag = self.store.put_if_match(self.key, body, self.etag)
                heard = time.monotonic()
            except NotFoundError:
                return self._lose(f"{self.what} was deleted")
            except AlreadyExistsError:
                return self._lose(f"{self.what} was replaced")
            except BackupError as exc:
                unheard = time.monotonic() - heard
                if unheard > silence / 2:
                    return self._lose(f"{self.what} could not be renewed for {unheard:.0f}s: {exc}")
                log.warning("could not renew %s: %s", self.what, exc)

    def _lose(self, cause: str) -> None:
        if not self._stop.is_set():  # not a renewal racing its owner's own removal
            self.cause = cause
            self.lost.set()
            log.error("%s", cause)
