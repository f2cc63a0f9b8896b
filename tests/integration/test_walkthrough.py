"""Milvus's walkthrough "Back up and Restore Data Using APIs", run as written against our server.

The curl commands are the documentation's own (tests/fixtures/walkthrough.json), run by curl
with only the host and the placeholders the page asks the reader to fill in replaced; the
example scripts prepare, clean and verify the data as the page says.

A backup is caught while it runs by a relay in front of the S3 server for the backup
location (:class:`Gate`): closed, it holds each binlog a backup writes, so the writer waits
with its in-progress marker written, and nothing depends on timing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed import sample_data
from testbed.s3relay import S3Relay
from testbed.stack import Stack
from tests.conftest import run_cli
from tests.integration.api_server import Server, call, running

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]
WALKTHROUGH = json.loads((ROOT / "tests" / "fixtures" / "walkthrough.json").read_text())
#: milvus-backup's answers to an async create and restore (core/server/create.go ``runAsync``,
#: core/server/restore.go)
ASYNC = {
    "create": "create backup is executing asynchronously",
    "restore": "restore backup is executing asynchronously",
}


class Gate:
    """A relay in front of the S3 server for the backup location: while closed, each binlog
    a backup writes waits (its marker and meta pass)."""

    def __init__(self, stack: Stack, folder: Path) -> None:
        self.open, self.holding = threading.Event(), threading.Event()
        self.open.set()
        self.relay = S3Relay(stack.s3.endpoint, delay=self._hold).start()
        config = yaml.safe_load(stack.config_path.read_text())
        host, port = self.relay.endpoint.split(":")
        config["minio"].update(backupAddress=host, backupPort=int(port))
        self.config = folder / "through-the-gate.yaml"
        self.config.write_text(yaml.safe_dump(config))

    def _hold(self, method: str, path: str) -> float:
        if method == "PUT" and "/binlogs/" in path and not self.open.is_set():
            self.holding.set()
            assert self.open.wait(120)
        return 0.0

    def close(self) -> None:
        self.holding.clear()
        self.open.clear()


@pytest.fixture
def gate(stack: Stack, tmp_path: Path) -> Iterator[Gate]:
    gate = Gate(stack, tmp_path)
    try:
        yield gate
    finally:
        gate.open.set()
        gate.relay.stop()


@pytest.fixture
def server(stack: Stack, gate: Gate, tmp_path: Path) -> Iterator[Server]:
    client = sample_data.client(stack.milvus.uri)
    assert not client.has_collection("hello_milvus"), "another test left hello_milvus behind"
    try:
        with running(gate.config, tmp_path) as started:
            yield started
    finally:
        for name in ("hello_milvus", "hello_milvus_recover"):
            client.drop_collection(name)
        run_cli(stack.config_path, "delete", "-n", "my_backup")


def example(script: str, stack: Stack, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), "--uri", stack.milvus.uri, *args],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def curl(server: Server, step: dict[str, Any], **placeholders: str) -> dict[str, Any]:
    """Run the page's curl command verbatim (host and placeholders filled in); parse the reply."""
    command = step["curl"].replace(WALKTHROUGH["base_url"], f"http://127.0.0.1:{server.port}")
    for placeholder, value in placeholders.items():
        command = command.replace(placeholder, value)
    command += " --silent --show-error --write-out '\\n%{http_code}'"
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=True)
    body, _, status = done.stdout.rpartition("\n")
    assert status == "200", (step["step"], status, body)
    reply: dict[str, Any] = json.loads(body)
    path = step["curl"].split("/api/v1/")[1].split("'")[0].split("?")[0]
    expected = ASYNC[path] if '"async": true' in step["curl"] else "success"
    assert "code" not in reply and reply["msg"] == expected, reply
    return reply


def get(server: Server, path: str) -> dict[str, Any]:
    status, reply = call(server, "GET", path)
    assert status == 200 and reply["msg"] == "success", (path, status, reply)
    data: dict[str, Any] = reply["data"]
    return data


def listed(server: Server, name: str) -> dict[str, Any]:
    entries = {e["name"]: e for e in get(server, "/list")}
    assert name in entries, entries
    return entries[name]


def reads_as_running(server: Server, name: str, backup_id: str) -> None:
    """What a poller sees of a backup being written: list, get_backup by id and by name."""
    entry = listed(server, name)
    assert entry["state_code"] == 1 and entry["id"] == backup_id, entry
    assert entry["start_time"] > 0 and 1 <= entry["progress"] < 100, entry
    for query in (f"backup_id={backup_id}", f"backup_name={name}",
                  f"backup_id={backup_id}&backup_name={name}"):  # fmt: skip
        got = get(server, f"/get_backup?{query}")
        assert (got["state_code"], got["id"], got["name"]) == (1, backup_id, name), (query, got)
    status, reply = call(server, "GET", f"/get_backup?backup_id=not-its-id&backup_name={name}")
    assert status == 404 and f"has id '{backup_id}'" in reply["msg"], reply  # never another


def until_done(server: Server, step: dict[str, Any], **placeholders: str) -> dict[str, Any]:
    deadline = time.monotonic() + 300
    while True:
        reply = curl(server, step, **placeholders)
        if reply["data"]["state_code"] in (2, 3):
            return reply
        assert time.monotonic() < deadline, reply
        time.sleep(0.5)


def test_the_walkthrough_as_written(
    server: Server, gate: Gate, stack: Stack, tmp_path: Path
) -> None:
    create, listing, get_backup, restore, restore_again, get_restore = WALKTHROUGH["commands"]
    example("prepare_data.py", stack)

    (tmp_path / "replica").mkdir()
    with running(stack.config_path, tmp_path / "replica") as replica:
        gate.close()
        created = curl(server, create)["data"]
        assert created["name"] == "my_backup" and created["state_code"] == 1
        assert gate.holding.wait(60), "the backup never started copying"
        try:
            # the page lists, then gets the backup by the id the list shows: while it runs, on
            # the server writing it and on a second replica of the same storage, as running
            listing_entry = {e["name"]: e for e in curl(server, listing)["data"]}["my_backup"]
            assert listing_entry["id"] == created["id"], listing_entry
            for where in (server, replica):
                reads_as_running(where, "my_backup", created["id"])
            status, reply = call(replica, "DELETE", "/delete?backup_name=my_backup")
            assert status == 409 and "being written" in reply["msg"], reply  # a cleanup can't
        finally:
            gate.open.set()
    got = until_done(server, get_backup, **{"<test_backup_id>": created["id"]})["data"]
    assert (got["name"], got["state_code"], got["id"]) == ("my_backup", 2, created["id"])
    assert [c["collection_name"] for c in got["collection_backups"]] == ["hello_milvus"]
    assert got["meta_size"] > 0
    assert listed(server, "my_backup")["state_code"] == 2

    restored = curl(server, restore)["data"]
    done = until_done(server, get_restore, **{"<test_restore_id>": restored["id"]})["data"]
    assert done["state_code"] == 2, done
    (collection,) = done["collection_restore_tasks"]
    assert collection["target_collection_name"] == "hello_milvus_recover"

    example("clean_data.py", stack)  # drops hello_milvus, as the page does between restores
    again = curl(server, restore_again)["data"]
    done = until_done(server, get_restore, **{"<test_restore_id>": again["id"]})["data"]
    assert done["state_code"] == 2, done

    assert "OK" in example("verify_data.py", stack)  # hello_milvus_recover
    assert "OK" in example("verify_data.py", stack, "--collection", "hello_milvus")


def test_a_backup_the_cli_writes_reads_as_running_then_completed(
    server: Server, gate: Gate, stack: Stack, samples: Any
) -> None:
    """The walkthrough's reads, for a backup another process (the CLI) writes."""
    command = [sys.executable, "-m", "milvus_backup_operator", "--config", str(gate.config),
               "create", "-n", "by_the_cli", "-c", "tiny"]  # fmt: skip
    gate.close()
    writer = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert gate.holding.wait(60), writer.stdout
        backup_id = listed(server, "by_the_cli")["id"]
        reads_as_running(server, "by_the_cli", backup_id)
        gate.open.set()
        out, _ = writer.communicate(timeout=120)
        assert writer.returncode == 0, out
        got = get(server, f"/get_backup?backup_id={backup_id}")
        assert (got["name"], got["state_code"], got["id"]) == ("by_the_cli", 2, backup_id)
        assert got["meta_size"] > 0 and listed(server, "by_the_cli")["id"] == backup_id
    finally:
        writer.kill()
        run_cli(stack.config_path, "delete", "-n", "by_the_cli")
