"""Pause Milvus's garbage collector while a backup copies, and resume it on every way out.

Milvus (2.4 and later) serves ``GET /management/datacoord/garbage_collection/pause
?pause_seconds=N`` and ``.../resume`` on its management port (``internal/http/server.go``
``RouteGcPause``/``RouteGcResume``; ``internal/proxy/management.go`` ``PauseDatacoordGC``
answers 200 ``{"msg": "OK"}`` or 500 with the reason; newer releases add a ``ticket`` that
resume takes back, as milvus-backup's ``internal/client/milvus/manage.go`` reads it). A
pause expires by itself after N seconds, so a crashed backup cannot leave it paused: the
pause is renewed at half of N while the backup runs, and resumed when it ends, failed or not.

As in milvus-backup (``core/backup/gc_controller.go``), a pause that cannot be had does not
fail the backup: a compaction that removes a segment being copied fails the copy (never
silently), and most backups finish long before the collector runs. What happened is said in
the log and returned as a note.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .capabilities import Capabilities
from .config import GcPause, MilvusConfig

log = logging.getLogger(__name__)

PAUSE = "/management/datacoord/garbage_collection/pause"
RESUME = "/management/datacoord/garbage_collection/resume"


@dataclass
class GcPauseNote:
    """How the collector was treated during one backup."""

    text: str = ""


@contextmanager
def gc_paused(
    settings: GcPause, milvus: MilvusConfig, capabilities: Capabilities, timeout: float
) -> Iterator[GcPauseNote]:
    """Hold Milvus's garbage collector paused for the ``with`` block, where it can be."""
    note = GcPauseNote()
    if not settings.enabled:
        note.text = "garbage collection not paused (turned off in the configuration)"
    elif not capabilities.gc_pause:
        note.text = f"garbage collection not paused: {capabilities.describe()} cannot pause it"
    if note.text:
        yield note
        return
    client = _Management(settings.endpoint(milvus), _auth(milvus), timeout)
    ticket = client.pause(settings.seconds)
    if ticket is None:
        note.text = f"garbage collection not paused: {client.endpoint} refused (see the log)"
        yield note
        return
    note.text = f"garbage collection paused through {client.endpoint}"
    stop = threading.Event()
    renewer = threading.Thread(
        target=_renew, args=(client, settings.seconds, stop), name="gc-pause", daemon=True
    )
    renewer.start()
    try:
        yield note
    finally:
        stop.set()
        renewer.join()
        client.resume(ticket)


def _renew(client: _Management, seconds: int, stop: threading.Event) -> None:
    while not stop.wait(seconds / 2):
        client.pause(seconds)


class _Management:
    def __init__(self, endpoint: str, auth: str, timeout: float) -> None:
        self.endpoint = endpoint
        self._auth = auth
        self._timeout = timeout

    def pause(self, seconds: int) -> str | None:
        """Pause for ``seconds``; return the ticket ("" from Milvus that gives none), or None."""
        answer = self._get(PAUSE, {"pause_seconds": str(seconds)})
        return None if answer is None else str(answer.get("ticket", ""))

    def resume(self, ticket: str) -> None:
        self._get(RESUME, {"ticket": ticket} if ticket else {})

    def _get(self, path: str, query: dict[str, str]) -> dict[str, object] | None:
        url = f"{self.endpoint}{path}?{urllib.parse.urlencode(query)}"
        request = urllib.request.Request(url)
        if self._auth:
            request.add_header("Authorization", self._auth)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                body = response.read()
        except (urllib.error.URLError, OSError) as exc:
            log.warning("GC %s at %s failed (%s): the backup goes on", path, self.endpoint, exc)
            return None
        try:
            answer = json.loads(body) if body.strip() else {}
        except ValueError:
            answer = {}
        return answer if isinstance(answer, dict) else {}


def _auth(milvus: MilvusConfig) -> str:
    """Milvus gates its management routes behind its root credentials where auth is on."""
    if not milvus.user:
        return ""
    return "Basic " + base64.b64encode(f"{milvus.user}:{milvus.password}".encode()).decode()
