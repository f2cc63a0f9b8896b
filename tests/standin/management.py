"""Milvus's management endpoint (its port 9091) for the GC pause, answering as Milvus does.

``internal/proxy/management.go`` ``PauseDatacoordGC``/``ResumeDatacoordGC``: 200
``{"msg": "OK"}``, 500 with the reason. Milvus 2.6.8 adds ``collection_id`` to the pause and
answers a ``ticket`` that resume takes back (as milvus-backup's
``internal/client/milvus/manage.go`` calls it: ``pauseGCResp.Ticket``, ``WithTicket``); a
cluster-wide pause answers the ticket ``t-1`` here so that tests see it passed back.

``/management/rootcoord/ez/backup?db_name=`` (``internal/http/router.go`` ``RouteBackupEZ``)
answers an encrypted database's key as milvus-backup's ``GetEZK`` reads it since its #893:
200 ``{"msg": "OK", "ezk": "<key>"}``; a database without a zone fails as Milvus's
``hookutil.BackupEZKFromDBProperties`` does ("not an encryption zone"), with the 500 and
``msg`` its other management handlers answer; a Milvus without the route answers 404.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from milvus_backup_operator.engine.encryption import EZ_BACKUP
from milvus_backup_operator.engine.gc_pause import PAUSE, RESUME

Journal = Callable[[str, dict[str, str]], None]


class StandInManagement(ThreadingHTTPServer):
    """Records each call as (path, query, authorization), and in ``journal`` if given."""

    def __init__(self, journal: Journal | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fail = False  # answer every call 500, as a Milvus whose datacoord is down
        self.tickets = True  # answer a ticket to a collection's pause
        self.calls: list[tuple[str, dict[str, str], str]] = []
        self.ezks: dict[str, str] = {}  # the key of each encrypted database
        self.ez_route = True  # serve ez/backup (False: a Milvus without encryption zones)
        self.journal = journal
        self._numbers = itertools.count(1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> StandInManagement:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def ticket(self, query: dict[str, str]) -> str:
        if "collection_id" not in query:
            return "t-1"
        if not self.tickets:
            return ""
        return f"c{query['collection_id']}-{next(self._numbers)}"


class _Handler(BaseHTTPRequestHandler):
    server: StandInManagement

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.server.calls.append((url.path, query, self.headers.get("Authorization", "")))
        if self.server.journal:
            self.server.journal(url.path, query)
        if url.path == EZ_BACKUP and self.server.ez_route:
            self._ez_backup(query.get("db_name", ""))
        elif url.path not in (PAUSE, RESUME):
            self._answer(404, "404 page not found")
        elif self.server.fail:
            self._answer(500, '{"msg": "failed to pause garbage collection, datacoord down"}')
        elif url.path == PAUSE:
            self._answer(200, f'{{"msg": "OK", "ticket": "{self.server.ticket(query)}"}}')
        else:
            self._answer(200, '{"msg": "OK"}')

    def _ez_backup(self, db: str) -> None:
        key = self.server.ezks.get(db)
        if key is None:
            self._answer(500, '{"msg": "failed to backup ez, not an encryption zone"}')
        else:
            self._answer(200, json.dumps({"msg": "OK", "ezk": key}))

    def _answer(self, code: int, body: str) -> None:
        self.send_response(code)
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass
