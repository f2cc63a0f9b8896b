"""Milvus's management endpoint (its port 9091) for the GC pause, answering as Milvus does.

``internal/proxy/management.go`` ``PauseDatacoordGC``/``ResumeDatacoordGC``: 200
``{"msg": "OK"}``, 500 with the reason. Milvus 2.6.8 adds ``collection_id`` to the pause and
answers a ``ticket`` that resume takes back (as milvus-backup's
``internal/client/milvus/manage.go`` calls it: ``pauseGCResp.Ticket``, ``WithTicket``); a
cluster-wide pause answers the ticket ``t-1`` here so that tests see it passed back.

Behind it, datacoord's pause state as ``internal/datacoord/garbage_collector.go`` keeps it
(``gcPauseRecords``): one record per pause, its ticket and its end, per collection (and one
set for the whole cluster); a collection is paused while any of its records (or a
cluster-wide one) lasts; resuming a ticket deletes that ticket's records only; more than 64
live records of one collection are refused ("too many pause records"). How the 2.6.8 proxy
makes a ticket is not in the source read here: by default each pause answers a new one;
``one_ticket_per_collection`` answers the same one to every pause of a collection, the other
reading a renewal must survive. ``history`` says, after every call, whether each collection
ever paused still is, so a gap in a pause is seen; ``advance`` moves the clock instead of
waiting.

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
import time
from collections import defaultdict
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from milvus_backup_operator.engine.encryption import EZ_BACKUP
from milvus_backup_operator.engine.gc_pause import PAUSE, RESUME

Journal = Callable[[str, dict[str, str]], None]
CLUSTER = 0  # datacoord's "legacy pause all": collection ID 0 or none
MAX_RECORDS = 64  # datacoord's ``NewGCPauseRecords`` maxLen


class StandInManagement(ThreadingHTTPServer):
    """Records each call as (path, query, authorization), and in ``journal`` if given."""

    def __init__(self, journal: Journal | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fail = False  # answer every call 500, as a Milvus whose datacoord is down
        self.tickets = True  # answer a ticket to a collection's pause
        self.one_ticket_per_collection = False
        self.calls: list[tuple[str, dict[str, str], str]] = []
        self.ezks: dict[str, str] = {}  # the key of each encrypted database
        self.ez_route = True  # serve ez/backup (False: a Milvus without encryption zones)
        self.journal = journal
        #: per collection: (ticket, end) of every pause not yet resumed
        self.records: defaultdict[int, list[tuple[str, float]]] = defaultdict(list)
        #: per collection ever paused: whether it was paused after each call since
        self.history: defaultdict[int, list[bool]] = defaultdict(list)
        self._numbers = itertools.count(1)
        self._skew = 0.0
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> StandInManagement:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def now(self) -> float:
        return time.monotonic() + self._skew

    def advance(self, seconds: float) -> None:
        """Move datacoord's clock on, as if ``seconds`` had passed."""
        with self._lock:
            self._skew += seconds

    def paused(self, collection_id: int) -> bool:
        """Whether datacoord's collector skips ``collection_id`` now (``collectionGCPaused``,
        or the global ``pauseUntil``)."""
        now = self.now()
        lasting = self.records[collection_id] + self.records[CLUSTER]
        return any(end > now for _, end in lasting)

    def pause(self, query: dict[str, str]) -> tuple[int, str]:
        """Record a pause; answer (HTTP status, body)."""
        collection_id = int(query.get("collection_id") or CLUSTER)
        ticket = self.ticket(query)
        now = self.now()
        records = self.records[collection_id]
        if len(records) >= MAX_RECORDS:
            records[:] = [r for r in records if r[1] > now]
        if len(records) >= MAX_RECORDS:
            return 500, '{"msg": "failed to pause garbage collection, too many pause records"}'
        records.append((ticket, now + int(query["pause_seconds"])))
        return 200, f'{{"msg": "OK", "ticket": "{ticket}"}}'

    def resume(self, query: dict[str, str]) -> None:
        """Delete one ticket's records (without a ticket: the cluster-wide pause, as before
        2.6.8, when resume set ``pauseUntil`` back to zero)."""
        ticket = query.get("ticket", "")
        if not ticket:
            self.records[CLUSTER].clear()
        for records in self.records.values():
            records[:] = [r for r in records if r[0] != ticket]

    def ticket(self, query: dict[str, str]) -> str:
        if "collection_id" not in query:
            return "t-1"
        if not self.tickets:
            return ""
        if self.one_ticket_per_collection:
            return f"c{query['collection_id']}"
        return f"c{query['collection_id']}-{next(self._numbers)}"

    def answer(self, path: str, query: dict[str, str]) -> tuple[int, str]:
        with self._lock:
            if path not in (PAUSE, RESUME):
                return 404, "404 page not found"
            if self.fail:
                return 500, '{"msg": "failed to pause garbage collection, datacoord down"}'
            if path == PAUSE:
                answer = self.pause(query)
            else:
                self.resume(query)
                answer = 200, '{"msg": "OK"}'
            for collection_id in {*self.records, *self.history} - {CLUSTER}:
                self.history[collection_id].append(self.paused(collection_id))
            return answer


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
        else:
            self._answer(*self.server.answer(url.path, query))

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
