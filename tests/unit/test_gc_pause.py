"""GC pause through Milvus's management endpoint: paused, renewed, resumed on every way out.

No Milvus that serves the endpoint runs here (2.3.5 answers 404), so a stand-in HTTP server
answers as Milvus's handler does: ``internal/proxy/management.go`` (``PauseDatacoordGC``:
200 ``{"msg": "OK"}``, 500 with the reason), with the ``ticket`` that newer releases return
and milvus-backup's ``internal/client/milvus/manage.go`` passes back to resume.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from milvus_backup_operator.engine.capabilities import Capabilities
from milvus_backup_operator.engine.config import GcPause, MilvusConfig
from milvus_backup_operator.engine.errors import InvalidRequestError, OperationError
from milvus_backup_operator.engine.gc_pause import PAUSE, RESUME, gc_paused

NEW = Capabilities.of("v2.6.3")


class Management(ThreadingHTTPServer):
    """Records each call as (path, query, authorization)."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fail = fail
        self.calls: list[tuple[str, dict[str, str], str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Management

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.server.calls.append((url.path, query, self.headers.get("Authorization", "")))
        if url.path not in (PAUSE, RESUME):
            self.send_response(404)
            self.end_headers()
            self.wfile.write(b"404 page not found")
            return
        if self.server.fail:
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b'{"msg": "failed to pause garbage collection, datacoord down"}')
            return
        self.send_response(200)
        self.end_headers()
        body = b'{"msg": "OK", "ticket": "t-1"}' if url.path == PAUSE else b'{"msg": "OK"}'
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def management() -> Iterator[Management]:
    server = Management()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def paths(server: Management) -> list[str]:
    return [path for path, _, _ in server.calls]


def test_paused_for_the_block_and_resumed_with_its_ticket(management: Management) -> None:
    settings = GcPause(seconds=600, address=management.url)
    with gc_paused(settings, MilvusConfig(), NEW, 5) as note:
        assert paths(management) == [PAUSE]
    assert "paused through" in note.text
    assert management.calls[0][1] == {"pause_seconds": "600"}
    assert management.calls[1][:2] == (RESUME, {"ticket": "t-1"})


def test_resumed_when_the_backup_fails_and_renewed_while_it_runs(management: Management) -> None:
    settings = GcPause(seconds=1, address=management.url)
    with pytest.raises(OperationError), gc_paused(settings, MilvusConfig(), NEW, 5):
        time.sleep(1.3)  # longer than half a pause: renewed once at least
        raise OperationError("a copy failed")
    assert paths(management)[0] == PAUSE and paths(management).count(PAUSE) >= 2
    assert paths(management)[-1] == RESUME


def test_credentials_go_to_the_endpoint_as_milvus_gates_it(management: Management) -> None:
    milvus = MilvusConfig(user="root", password="Milvus")
    with gc_paused(GcPause(address=management.url), milvus, NEW, 5):
        pass
    assert all(auth == "Basic cm9vdDpNaWx2dXM=" for _, _, auth in management.calls)


def test_a_refused_pause_lets_the_backup_go_on_and_says_so(management: Management) -> None:
    management.fail = True
    with gc_paused(GcPause(address=management.url), MilvusConfig(), NEW, 5) as note:
        pass
    assert paths(management) == [PAUSE]  # nothing to resume
    assert "not paused" in note.text and management.url in note.text


@pytest.mark.parametrize(
    ("settings", "version", "says"),
    [
        (GcPause(enabled=False), "v2.6.3", "turned off"),
        (GcPause(), "v2.3.5-lite", "Milvus v2.3.5-lite cannot pause it"),
    ],
)
def test_no_call_where_it_is_off_or_not_served(
    management: Management, settings: GcPause, version: str, says: str
) -> None:
    settings = GcPause(enabled=settings.enabled, address=management.url)
    with gc_paused(settings, MilvusConfig(), Capabilities.of(version), 5) as note:
        pass
    assert management.calls == [] and says in note.text


def test_the_default_endpoint_is_milvus_host_port_9091() -> None:
    assert GcPause().endpoint(MilvusConfig(address="milvus.db")) == "http://milvus.db:9091"


def test_a_request_can_turn_the_pause_on_and_set_its_length_and_address() -> None:
    configured = GcPause(enabled=False, seconds=600)
    asked = configured.asked(True, 60, "http://milvus:9091")
    assert (asked.enabled, asked.seconds, asked.address) == (True, 60, "http://milvus:9091")
    assert configured.asked(False, 0, "") == configured  # nothing asked: the configuration


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"seconds": 0}, "from 1 to 2592000"),
        ({"seconds": 10**20}, "from 1 to"),
        ({"address": "milvus:9091"}, "http:// or https://"),
    ],
)
def test_bad_pause_settings_are_refused(settings: dict[str, object], says: str) -> None:
    with pytest.raises(InvalidRequestError, match=says):
        GcPause(**settings)  # type: ignore[arg-type]
