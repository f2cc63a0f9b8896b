"""The calls to Milvus a process has in flight, so that it can stop without cutting one off.

Milvus 2.3 and 2.4 (until milvus-io/milvus#35540, #35541 and #35559, August 2024) crash their
proxy when the client of an import call goes away mid-call: ``Proxy.GetImportState`` reads the
answer of a call to the root coordinator that failed because its context was cancelled, a nil
pointer (``internal/proxy/impl.go``), and the whole standalone Milvus exits. A backup Job's Pod
evicted or deleted, or a CLI run stopped with ``kill``, would take the user's Milvus down with
it. So every gRPC call of ``engine.milvus.Milvus`` goes through one gate per process, which the
entry points close when they are told to stop (``milvus_backup_operator.stopping``): new calls
are held back and those in flight get their answers. (The REST import calls of the v2 restore,
Milvus >= 2.4, and the GC pause of the management port do not pass through it: neither reaches
the handlers that crash.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class CallGate:
    """Counts calls in flight; once closed, lets none start and reports when the last ended."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._in_flight = 0
        self._closed = False
        self._local = threading.local()  # this thread's depth of ``together`` blocks

    @property
    def in_flight(self) -> int:
        """Calls sent and not yet answered."""
        with self._changed:
            return self._in_flight

    @contextmanager
    def call(self) -> Iterator[None]:
        """Hold one call; when the gate is closed, block for good (the process is exiting),
        unless this thread is inside a ``together`` block."""
        with self._changed:
            if not getattr(self._local, "depth", 0):
                self._changed.wait_for(lambda: not self._closed)
            self._in_flight += 1
        try:
            yield
        finally:
            with self._changed:
                self._in_flight -= 1
                self._changed.notify_all()

    @contextmanager
    def together(self) -> Iterator[None]:
        """Calls this thread makes in the block all go out, even once the gate closes: a stop
        waits for the whole block (two renames that must not be cut in half), not one call."""
        with self.call():
            self._local.depth = getattr(self._local, "depth", 0) + 1
            try:
                yield
            finally:
                self._local.depth -= 1

    def close(self, timeout: float) -> bool:
        """Let no call start; wait up to ``timeout`` s for those in flight. True when none is."""
        with self._changed:
            self._closed = True
            return self._changed.wait_for(lambda: self._in_flight == 0, timeout)


MILVUS_CALLS = CallGate()
"""The one gate of this process, which every gRPC call to Milvus passes through."""
