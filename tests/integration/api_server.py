"""Our REST server as a process, and a small HTTP client for it (shared by the API tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testbed.node_loss import lose
from testbed.stack.rgw import free_port


@dataclass
class Server:
    config: Path
    state: Path
    log: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    def start(self, *extra: str) -> Server:
        self.port = self.port or free_port()
        command = [sys.executable, "-m", "milvus_backup_operator", "--config", str(self.config),
                   "server", "-p", str(self.port), "--state", str(self.state), *extra]  # fmt: skip
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                            env={**os.environ})  # fmt: skip
        deadline = time.monotonic() + 30
        while call(self, "GET", "/hello", raw=True)[0] != 200:
            assert time.monotonic() < deadline, self.log.read_text()[-2000:]
            time.sleep(0.2)
        return self

    def kill(self) -> None:
        """Lost with its node: no chance to clean anything up (frozen, then killed)."""
        if self.process:
            lose(self.process)


@contextmanager
def running(config: Path, folder: Path, *extra: str) -> Iterator[Server]:
    """The server on ``config``, its state and log in ``folder``; killed afterwards."""
    server = Server(config, folder / "tasks.db", folder / "server.log").start(*extra)
    try:
        yield server
    finally:
        server.kill()


def call(
    server: Any, method: str, path: str, body: Any = None, *, raw: bool = False,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:  # fmt: skip
    data = body.encode() if isinstance(body, str) else json.dumps(body).encode() if body else None
    request = urllib.request.Request(server.url + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, exc.read()
    except OSError:
        return 0, None
    text = payload.decode()
    return status, text if raw else json.loads(text)


def wait_task(
    server: Any, path: str, timeout: float = 300, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """Poll a task (get_backup or get_restore) until it succeeded or failed."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = call(server, "GET", path, headers=headers)
        if status == 200 and body["data"]["state_code"] in (2, 3):
            return dict(body["data"])
        assert time.monotonic() < deadline, body
        time.sleep(0.3)
