"""milvus-backup's REST API on our engine, served for real, against the real stack."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from milvus_backup_operator.engine.config_file import load_config
from milvus_backup_operator.engine.storage import ObjectStore
from milvus_backup_operator.server.tasks import TaskStore
from testbed import sample_data
from testbed.sample_data import BOOKS, TINY
from testbed.stack import Stack
from tests.conftest import run_cli
from tests.integration.api_server import Server, call, running, wait_task

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running(stack.config_path, tmp_path_factory.mktemp("server")) as started:
        yield started


def test_synchronous_create_returns_the_real_backup(server: Server, samples: Any) -> None:
    status, body = call(server, "POST", "/create",
                        {"backup_name": "api_sync", "collection_names": ["tiny", "db1.docs"]},
                        headers={"request_id": "req-1"})  # fmt: skip
    assert status == 200, body
    assert "code" not in body and body["msg"] == "success" and body["requestId"] == "req-1"
    data = body["data"]
    assert data["name"] == "api_sync" and data["state_code"] == 2 and data["progress"] == 100
    names = [c["collection_name"] for c in data["collection_backups"]]
    assert sorted(names) == ["docs", "tiny"] and data["size"] > 0


def test_get_backup_reads_storage_whoever_made_the_backup(
    server: Server, stack: Stack, samples: Any
) -> None:
    assert run_cli(stack.config_path, "create", "-n", "made_by_cli", "-c", "tiny").code == 0
    status, body = call(server, "GET", "/get_backup?backup_name=made_by_cli")
    assert status == 200 and body["data"]["name"] == "made_by_cli"
    assert body["data"]["collection_backups"][0]["collection_name"] == "tiny"
    listed = call(server, "GET", "/list")[1]["data"]
    assert {"made_by_cli", "api_sync"} <= {entry["name"] for entry in listed}
    # the command line's machine-readable list is the REST list, entry for entry
    as_json = run_cli(stack.config_path, "list", "-o", "json")
    assert as_json.code == 0 and json.loads(as_json.stdout) == listed, as_json.output


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "fragment"),
    [
        ("POST", "/create", "{not json", 400, "not valid JSON"),
        ("POST", "/create", {"backup_name": 7}, 400, "backup_name"),
        ("POST", "/create", {"backup_name": "x", "async": "yes"}, 400, "async"),
        ("POST", "/create", {"backup_name": "bad-name"}, 400, "only letters, digits and '_'"),
        ("POST", "/create", {"backup_name": "api_x", "collection_names": ["nope"]}, 400,
         "collection nope does not exist"),
        ("GET", "/get_backup?backup_name=ghost", None, 404, "backup 'ghost' does not exist"),
        ("GET", "/get_backup", None, 400, "give backup_name"),
        ("GET", "/get_restore?id=ghost", None, 404, "no restore task with id 'ghost'"),
        ("DELETE", "/delete?backup_name=ghost", None, 404, "does not exist"),
        ("POST", "/restore", {"backup_name": "api_sync", "collection_suffix": "_a",
                              "collection_renames": {"tiny": "t2"}}, 400, "not both"),
        ("POST", "/restore", {"backup_name": "api_sync"}, 409, "already exists"),
        ("POST", "/restore", {"collection_suffix": "_a"}, 400, "backup_name"),
        # milvus-backup's fields we do not implement are refused by name, never ignored
        ("POST", "/create", {"backup_name": "api_r", "strategy": "skip_flush"}, 400,
         "strategy skip_flush is milvus-backup's"),
        ("POST", "/create", {"backup_name": "api_r", "gc_pause_address": "milvus:9091"}, 400,
         "http:// or https://"),
        ("POST", "/create", {"backup_name": "api_r", "gc_pause_seconds": -1}, 400,
         "gc_pause_seconds"),
        ("POST", "/create", {"backup_name": "api_r", "filter": {"db.c": {}}}, 400, "filter"),
        ("POST", "/create", {"backup_name": "api_r", "colection_names": ["tiny"]}, 400,
         "unknown field colection_names"),
        ("POST", "/restore", {"backup_name": "api_sync", "restorePlan": {"mapping": []}}, 400,
         "restorePlan"),
        ("POST", "/restore", {"backup_name": "api_sync", "skipParams": {"fieldIndex": ["x"]}},
         400, "skipParams"),
        ("POST", "/restore", {"backup_name": "api_sync", "collection_suffix": "_rb", "rbac": True},
         400, "holds no users, roles or grants (it was taken without rbac)"),
        ("POST", "/create", {"backup_name": "api_r", "rbac": "yes"}, 400, "rbac"),
    ],
)  # fmt: skip
def test_bad_requests_get_an_error_status_and_say_what_to_fix(
    server: Server, samples: Any, method: str, path: str, body: Any, status: int, fragment: str
) -> None:
    got, payload = call(server, method, path, body)
    assert got == status, payload
    assert payload["code"] != 0 and fragment in payload["msg"], payload
    assert "data" in payload


def test_async_restore_survives_a_server_restart(
    server: Server, stack: Stack, samples: Any
) -> None:
    """Killed with one collection restored and the other's imports in flight: the first is
    kept as it is, the second dropped and redone, and every row backed up is restored."""
    uri = stack.milvus.uri
    live = {sample.name: sample_data.rows(uri, sample) for sample in (BOOKS, TINY)}
    made = call(server, "POST", "/create",
                {"backup_name": "api_restart", "collection_names": ["books", "tiny"]})  # fmt: skip
    assert made[0] == 200, made
    request = {"async": True, "backup_name": "api_restart", "collection_suffix": "_api",
               "id": "restart_me"}  # fmt: skip
    status, body = call(server, "POST", "/restore", request)
    assert status == 200 and body["data"]["state_code"] == 1, body

    def one_done_one_not() -> bool:
        task = call(server, "GET", "/get_restore?id=restart_me")[1]["data"]
        assert task["state_code"] == 1, f"the restore ended before the kill: {task}"
        states = [c["state_code"] for c in task["collection_restore_tasks"]]
        return (
            len(states) == 2
            and sorted(states)[-1] == 2
            and sorted(states)[0] != 2
            and all(c["state"] != "Running" or c["collection_id"] for c in recorded_collections())
        )  # the one running has recorded the ID of the collection it created

    def recorded_collections() -> list[dict[str, Any]]:
        store = TaskStore(server.state)
        try:
            found = store.get("restart_me")
        finally:
            store.close()
        return found.collections if found else []

    deadline = time.monotonic() + 300
    while not one_done_one_not():
        assert time.monotonic() < deadline, "no collection was restored within 300 s"
        time.sleep(0.1)
    server.kill()
    # the task as the killed server left it (written through on every change)
    store = TaskStore(server.state)
    try:
        killed = store.get("restart_me")
    finally:
        store.close()
    assert killed is not None and killed.state_code == 1, killed
    states = {c["target"]: c["state"] for c in killed.collections}
    assert sorted(states.values()) == ["Completed", "Running"], f"at the kill: {states}"
    (kept,) = (target for target, state in states.items() if state == "Completed")
    kept_id = sample_data.client(uri).describe_collection(kept)["collection_id"]

    server.start()
    task = wait_task(server, "/get_restore?id=restart_me")
    assert task["state_code"] == 2, task
    done = {c["target_collection_name"]: c["state_code"] for c in task["collection_restore_tasks"]}
    assert done == {"books_api": 2, "tiny_api": 2}, task
    assert sample_data.client(uri).describe_collection(kept)["collection_id"] == kept_id
    for sample in (BOOKS, TINY):
        sample_data.prepare_for_query(uri, sample, f"{sample.name}_api")
        restored = sample_data.rows(uri, sample, f"{sample.name}_api")
        assert restored == live[sample.name], f"{sample.name}_api: restored rows differ"


def test_one_collection_failing_does_not_hide_the_others(
    server: Server, stack: Stack, samples: Any
) -> None:
    body = {"backup_name": "api_broken", "collection_names": ["tiny", "db1.docs"]}
    made = call(server, "POST", "/create", body)[1]["data"]
    tiny = next(c for c in made["collection_backups"] if c["collection_name"] == "tiny")
    config = load_config(stack.config_path, {})
    store = ObjectStore(config.backup_storage, config.timeouts)
    prefix = f"backup/api_broken/binlogs/insert_log/{tiny['collection_id']}/"
    # one binlog of tiny rots in place, past what verify can see (as if the storage had
    # corrupted it and kept its checksum): only Milvus's import finds out
    victim = max(store.list(prefix), key=lambda o: o.size)
    store.put(victim.key, b"\0" * victim.size)
    manifest_key = "backup/api_broken/meta/operator_manifest.json"
    manifest = json.loads(store.get(manifest_key))
    rotten = next(o for o in store.list(victim.key))
    manifest["objects"][victim.key.removeprefix("backup/api_broken/")]["etag"] = rotten.etag
    store.put(manifest_key, json.dumps(manifest).encode())

    request = {"backup_name": "api_broken", "collection_suffix": "_broken"}
    status, body = call(server, "POST", "/restore", request)
    assert status == 200, body  # the request was fine; its result is in data
    task = body["data"]
    assert task["state_code"] == 3 and "tiny_broken" in task["errorMessage"]
    states = {c["target_collection_name"]: c for c in task["collection_restore_tasks"]}
    assert (
        states["docs_broken"]["state_code"] == 2 and states["docs_broken"]["restored_rows"] == 500
    )
    assert states["tiny_broken"]["state_code"] == 3 and states["tiny_broken"]["errorMessage"]
    client = sample_data.client(stack.milvus.uri)
    assert not client.has_collection("tiny_broken")  # ours, half restored: dropped


def test_fields_at_their_zero_value_are_what_scripts_send_and_are_accepted(
    server: Server, samples: Any
) -> None:
    body = {"backup_name": "api_zero", "collection_names": ["tiny"], "rbac": False,
            "force": False, "strategy": "", "gc_pause_enable": False, "filter": {}}  # fmt: skip
    status, reply = call(server, "POST", "/create", body)
    assert status == 200 and reply["msg"] == "success", reply


def test_delete_then_the_name_is_free(server: Server, samples: Any) -> None:
    assert (
        call(server, "POST", "/create", {"backup_name": "api_tmp", "collection_names": ["tiny"]})[0]
        == 200
    )
    status, body = call(server, "DELETE", "/delete?backup_name=api_tmp")
    assert status == 200 and "code" not in body and body["msg"] == "success", body
    assert call(server, "GET", "/get_backup?backup_name=api_tmp")[0] == 404
    assert (
        call(server, "POST", "/create", {"backup_name": "api_tmp", "collection_names": ["tiny"]})[0]
        == 200
    )


def test_check_is_plain_text(server: Server) -> None:
    status, text = call(server, "GET", "/check", raw=True)
    assert status == 200 and "all checks passed" in text


def test_bearer_token_when_configured(stack: Stack, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cr3t-token\n")
    with running(stack.config_path, tmp_path, "--token-file", str(token)) as guarded:
        assert call(guarded, "GET", "/list")[0] == 401
        assert call(guarded, "GET", "/list", headers={"Authorization": "Bearer wrong"})[0] == 401
        status, _ = call(guarded, "GET", "/list", headers={"Authorization": "Bearer s3cr3t-token"})
        assert status == 200
