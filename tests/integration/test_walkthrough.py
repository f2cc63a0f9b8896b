"""Milvus's walkthrough "Back up and Restore Data Using APIs", run as written against our server.

The curl commands are the documentation's own (tests/fixtures/walkthrough.json), run by curl
with only the host and the placeholders the page asks the reader to fill in replaced; the
example scripts prepare, clean and verify the data as the page says.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testbed import sample_data
from testbed.stack import Stack
from tests.conftest import run_cli
from tests.integration.api_server import Server, running

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]
WALKTHROUGH = json.loads((ROOT / "tests" / "fixtures" / "walkthrough.json").read_text())


@pytest.fixture
def server(stack: Stack, tmp_path: Path) -> Iterator[Server]:
    client = sample_data.client(stack.milvus.uri)
    assert not client.has_collection("hello_milvus"), "another test left hello_milvus behind"
    try:
        with running(stack.config_path, tmp_path) as started:
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
    assert "code" not in reply and reply["msg"] == "success", reply
    return reply


def until_done(server: Server, step: dict[str, Any], **placeholders: str) -> dict[str, Any]:
    deadline = time.monotonic() + 300
    while True:
        reply = curl(server, step, **placeholders)
        if reply["data"]["state_code"] in (2, 3):
            return reply
        assert time.monotonic() < deadline, reply
        time.sleep(0.5)


def test_the_walkthrough_as_written(server: Server, stack: Stack) -> None:
    create, listing, get_backup, restore, restore_again, get_restore = WALKTHROUGH["commands"]
    example("prepare_data.py", stack)

    created = curl(server, create)
    assert created["data"]["name"] == "my_backup" and created["data"]["state_code"] == 1

    deadline = time.monotonic() + 120
    while True:  # the page lists, then gets the backup by the id the list shows
        entries = {e["name"]: e for e in curl(server, listing)["data"]}
        if entries.get("my_backup", {}).get("state_code") == 2:
            break
        assert time.monotonic() < deadline, entries
        time.sleep(0.5)
    backup_id = entries["my_backup"]["id"]
    assert backup_id == created["data"]["id"]
    got = curl(server, get_backup, **{"<test_backup_id>": backup_id})["data"]
    assert got["name"] == "my_backup" and got["state_code"] == 2
    assert [c["collection_name"] for c in got["collection_backups"]] == ["hello_milvus"]

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
