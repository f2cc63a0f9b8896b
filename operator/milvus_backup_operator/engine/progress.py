"""Progress of long operations, reported through a callback.

The CLI turns it into a progress bar; the operator writes it into a resource's status.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Progress:
    """A snapshot of how far an operation has come."""

    operation: str  # "backup" or "restore"
    phase: str = "preparing"
    collections_total: int = 0
    collections_done: int = 0
    segments_total: int = 0
    segments_done: int = 0
    bytes_total: int = 0
    bytes_done: int = 0
    imports_total: int = 0
    imports_done: int = 0

    @property
    def percent(self) -> int:
        """0 to 100, by bytes copied for a backup and by imports finished for a restore."""
        if self.phase == "completed":
            return 100
        done, total = (
            (self.imports_done, self.imports_total)
            if self.operation == "restore"
            else (self.bytes_done, self.bytes_total)
        )
        return min(99, done * 100 // total) if total else 0

    def summary(self) -> str:
        """One line a human can read, e.g. ``2/3 collections, 10/12 segments, 40 MiB/48 MiB``."""
        parts = [f"{self.collections_done}/{self.collections_total} collections"]
        parts.append(f"{self.segments_done}/{self.segments_total} segments")
        if self.operation == "restore":
            parts.append(f"{self.imports_done}/{self.imports_total} imports")
        else:
            parts.append(f"{human_size(self.bytes_done)}/{human_size(self.bytes_total)}")
        return ", ".join(parts)


ProgressCallback = Callable[[Progress], None]


class ProgressTracker:
    """Thread-safe counters that call ``callback`` at most every ``interval`` seconds.

    Phase changes and :meth:`finish` are always reported.
    """

    def __init__(
        self, operation: str, callback: ProgressCallback | None, interval: float = 0.5
    ) -> None:
        self._state = Progress(operation)
        self._callback = callback
        self._interval = interval
        self._last = 0.0
        self._lock = threading.Lock()

    @property
    def current(self) -> Progress:
        return self._state

    def phase(self, phase: str) -> None:
        with self._lock:
            self._state = replace(self._state, phase=phase)
            snapshot = self._due(force=True)
        self._report(snapshot)

    def add(self, **deltas: int) -> None:
        """Add to counters, e.g. ``add(bytes_done=n)`` or ``add(segments_total=3)``."""
        with self._lock:
            values = {name: getattr(self._state, name) + d for name, d in deltas.items()}
            self._state = replace(self._state, **values)
            snapshot = self._due(force=False)
        self._report(snapshot)

    def finish(self) -> None:
        self.phase("completed")

    def _due(self, force: bool) -> Progress | None:
        now = time.monotonic()
        if self._callback is None or (not force and now - self._last < self._interval):
            return None
        self._last = now
        return self._state

    def _report(self, snapshot: Progress | None) -> None:
        if snapshot is not None and self._callback is not None:
            self._callback(snapshot)


def human_size(size: int) -> str:
    """``1.5 GiB``, ``12 B``: sizes for people (status columns, progress lines)."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
