"""An HTTP relay in front of the S3 server, to act at a chosen request of a backup.

A resource whose storage endpoint is the relay talks to the real S3 server through it,
request by request (path-style, plain HTTP, the Host header kept, so signatures still hold).
When a request matches ``trigger``, ``on_trigger`` runs once, after the S3 server has
answered and before the client hears the answer: the client is then exactly there, e.g. a
backup that has copied an object and cannot have written its meta yet. ``delay`` slows
chosen requests: it gives the seconds to wait before a request is passed on.
"""

from __future__ import annotations

import http.client
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "proxy-connection"}


class S3Relay:
    def __init__(
        self,
        upstream: str,
        trigger: Callable[[str, str], bool] = lambda method, path: False,
        on_trigger: Callable[[], None] = lambda: None,
        delay: Callable[[str, str], float] = lambda method, path: 0.0,
    ) -> None:
        host, _, port = upstream.rpartition(":")
        self.upstream = (host, int(port))
        self.trigger = trigger
        self.on_trigger = on_trigger
        self.delay = delay
        self.triggered = threading.Event()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> S3Relay:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _check(self, method: str, path: str) -> None:
        with self._lock:
            if self.triggered.is_set() or not self.trigger(method, path):
                return
            self.on_trigger()
            self.triggered.set()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a killed client's: expected
            super().handle_error(request, client_address)


def _handler(relay: S3Relay) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _relay(self) -> None:
            if "chunked" in self.headers.get("Transfer-Encoding", ""):
                raise NotImplementedError("chunked request bodies are not relayed")
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            time.sleep(relay.delay(self.command, self.path))
            upstream = http.client.HTTPConnection(*relay.upstream, timeout=60)
            try:
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                answer = response.getheaders()
            finally:
                upstream.close()
            relay._check(self.command, self.path)
            self.send_response_only(response.status, response.reason)
            for key, value in answer:
                lower = key.lower()
                if lower in HOP_BY_HOP or (lower == "content-length" and self.command != "HEAD"):
                    continue
                self.send_header(key, value)
            if self.command != "HEAD":
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        # http.server's names for the handler of each method
        def do_GET(self) -> None:
            self._relay()

        def do_HEAD(self) -> None:
            self._relay()

        def do_PUT(self) -> None:
            self._relay()

        def do_POST(self) -> None:
            self._relay()

        def do_DELETE(self) -> None:
            self._relay()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
