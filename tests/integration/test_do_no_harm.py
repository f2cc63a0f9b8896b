"""Never destroy what is not ours, never report a backup another writer overwrote.

Each test here reproduces a way a hostile but ordinary user could make the tool delete
Milvus's data, lose a backup to a name race, or leak a secret, on the real stack.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from milvus_backup_operator.engine.backup import BackupRequest, create_backup
from milvus_backup_operator.engine.catalog import Catalog
from milvus_backup_operator.engine.errors import OperationError
from milvus_backup_operator.engine.selection import parse_list
from milvus_backup_operator.engine.storage import ObjectStore
from testbed import sample_data
from testbed.sample_data import BOOKS
from testbed.stack import Stack, stack_config
from testbed.stack.rgw import free_port
from tests.conftest import run_cli
from tests.integration.api_server import Server, call, running, wait_task
from tests.integration.test_bad_input import variant

pytestmark = pytest.mark.integration


def milvus_objects(stack: Stack) -> dict[str, int]:
    """Every object of Milvus's own (under its rootPath), with its size."""
    config = stack_config(stack)
    store = ObjectStore(config.storage, config.timeouts)
    return {o.key: o.size for o in store.list(config.storage.root_path + "/")}


def backup_store(stack: Stack) -> ObjectStore:
    config = stack_config(stack)
    return ObjectStore(config.backup_storage, config.timeouts)


@pytest.fixture(scope="module")
def server(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Any:
    with running(stack.config_path, tmp_path_factory.mktemp("harm")) as started:
        yield started


# ---- 1. a backup root that overlaps Milvus's rootPath ------------------------------------------


@pytest.mark.parametrize(
    ("root", "victim"),
    [("file", "insert_log"), ("/", "file"), ("file/backups", "x")],
    ids=["same-root", "bucket-root", "inside-milvus-root"],
)
def test_a_backup_root_overlapping_milvus_data_is_refused_everywhere(
    stack: Stack, samples: Any, tmp_path: Path, root: str, victim: str
) -> None:
    before = milvus_objects(stack)
    assert any("/insert_log/" in key for key in before)
    config = variant(stack, tmp_path, minio={"backupRootPath": root})
    for args in (
        ["check"],
        ["list"],
        ["delete", "-n", victim],
        ["create", "-n", "x", "-c", "tiny"],
    ):
        result = run_cli(config, *args)
        assert result.code == 1, (args, result.output)
        assert "overlaps Milvus's data" in result.stderr, (args, result.stderr)
        assert "minio.backupBucketName/minio.backupRootPath" in result.stderr
    assert milvus_objects(stack) == before


def test_the_rest_server_refuses_to_start_on_an_overlapping_root(
    stack: Stack, tmp_path: Path
) -> None:
    config = variant(stack, tmp_path, minio={"backupRootPath": "file"})
    command = [sys.executable, "-m", "milvus_backup_operator", "--config", str(config),
               "server", "-p", str(free_port()), "--state", str(tmp_path / "t.db")]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0 and "overlaps Milvus's data" in done.stderr, done.stderr


# ---- 2. delete removes only backups -------------------------------------------------------------


def test_delete_refuses_a_prefix_that_is_not_a_backup(stack: Stack, samples: Any) -> None:
    store = backup_store(stack)
    store.ensure_bucket()
    keys = ["backup/not_a_backup/notes.txt", "backup/not_a_backup/meta/readme.txt"]
    for key in keys:
        store.put(key, b"a user's file, not a backup")
    before = milvus_objects(stack)
    result = run_cli(stack.config_path, "delete", "-n", "not_a_backup")
    assert result.code == 1 and "is not a backup" in result.stderr, result.output
    assert [o.key for o in store.list("backup/not_a_backup/")] == sorted(keys)
    assert "not_a_backup" not in run_cli(stack.config_path, "list").stdout
    assert milvus_objects(stack) == before
    for key in keys:
        store.delete(key)


# ---- 4. two creates of one name -----------------------------------------------------------------


def test_two_synchronous_rest_creates_of_one_name_one_wins(server: Server, samples: Any) -> None:
    body = {"backup_name": "twin", "collection_names": ["tiny", "db1.docs"]}
    with ThreadPoolExecutor(2) as pool:
        replies = list(pool.map(lambda _: call(server, "POST", "/create", body), range(2)))
    statuses = sorted(status for status, _ in replies)
    assert statuses == [200, 409], replies
    winner = next(reply for status, reply in replies if status == 200)
    stored = call(server, "GET", "/get_backup?backup_name=twin")[1]["data"]
    assert stored["id"] == winner["data"]["id"] and stored["state_code"] == 2
    loser = next(reply for status, reply in replies if status == 409)
    assert "twin" in loser["msg"] and loser["code"] != 0


def test_twenty_async_rest_creates_of_one_name_make_one_backup(
    server: Server, samples: Any
) -> None:
    body = {"backup_name": "swarm", "collection_names": ["tiny"], "async": True}
    with ThreadPoolExecutor(20) as pool:
        replies = list(pool.map(lambda _: call(server, "POST", "/create", body), range(20)))
    accepted = [reply for status, reply in replies if status == 200]
    assert len(accepted) == 1, [status for status, _ in replies]
    assert all(status == 409 for status, _ in replies if status != 200)
    task_id = accepted[0]["data"]["id"]
    task = wait_task(server, f"/get_backup?backup_id={task_id}")
    assert task["state_code"] == 2 and task["id"] == task_id


def test_two_cli_processes_creating_one_name_one_wins(stack: Stack, samples: Any) -> None:
    barrier = threading.Barrier(2)

    def create(_: int) -> Any:
        barrier.wait()
        return run_cli(stack.config_path, "create", "-n", "cli_twin", "-c", "tiny")

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(create, range(2)))
    assert sorted(r.code for r in results) == [0, 1], [r.output for r in results]
    loser = next(r for r in results if r.code == 1)
    assert "cli_twin" in loser.stderr and ("being written" in loser.stderr
                                           or "already exists" in loser.stderr)  # fmt: skip
    got = run_cli(stack.config_path, "get", "-n", "cli_twin")
    assert got.code == 0 and json.loads(got.stdout)["state"] == "Completed"


def blocked_create(stack: Stack, name: str, config: Any = None) -> tuple[Any, Any, Any]:
    """A create of ``books`` in a thread, held after its first copied object until released.

    Returns (future, copying, release): ``copying`` is set once objects are being copied.
    """
    copying, release = threading.Event(), threading.Event()

    def hold(progress: Any) -> None:
        if progress.bytes_done > 0 and not copying.is_set():
            copying.set()
            assert release.wait(60)

    request = BackupRequest(name, tuple(parse_list("books")))
    pool = ThreadPoolExecutor(1)
    future = pool.submit(create_backup, config or stack_config(stack), request, hold)
    pool.shutdown(wait=False)
    assert copying.wait(60), "the backup never started copying"
    return future, copying, release


def test_a_backup_being_written_cannot_be_deleted_and_completes_intact(
    stack: Stack, samples: Any
) -> None:
    future, _, release = blocked_create(stack, "harm_busy")
    try:
        refused = run_cli(stack.config_path, "delete", "-n", "harm_busy")
        assert refused.code == 1 and "is being written" in refused.stderr, refused.output
        again = run_cli(stack.config_path, "create", "-n", "harm_busy", "-c", "tiny")
        assert again.code == 1 and "is being written" in again.stderr, again.output
    finally:
        release.set()
    info = future.result(timeout=120)
    stored = Catalog.of(stack_config(stack)).read("harm_busy")
    assert stored.id == info.id and [c.collection_name for c in stored.collection_backups] == [
        "books"
    ]
    keys = [o.key for o in backup_store(stack).list("backup/harm_busy/")]
    assert "backup/harm_busy/meta/in_progress.json" not in keys  # a completed one carries none
    assert run_cli(stack.config_path, "delete", "-n", "harm_busy").code == 0


def test_a_writer_whose_marker_is_deleted_stops_and_leaves_nothing(
    stack: Stack, samples: Any
) -> None:
    """Someone with S3 access deletes the marker of a running backup: the writer notices at
    its next renewal, stops copying and removes what it copied (the name is free again)."""
    config = stack_config(stack)
    config = replace(config, timeouts=replace(config.timeouts, writer_silence=1.2))
    future, _, release = blocked_create(stack, "harm_lost", config)
    store = backup_store(stack)
    store.delete("backup/harm_lost/meta/in_progress.json")
    time.sleep(0.5)  # several renewals (every 0.1 s here) find it gone
    release.set()
    with pytest.raises(OperationError, match=r"was abandoned .*its in-progress marker was deleted"):
        future.result(timeout=120)
    assert not store.has_any("backup/harm_lost/")


@pytest.mark.parametrize("started", ["1e400", '"nan"', '"soon"', "-5"])
def test_a_forged_marker_breaks_nothing(stack: Stack, samples: Any, started: str) -> None:
    store = backup_store(stack)
    key = "backup/harm_forged/meta/in_progress.json"
    store.put(key, ('{"tool": "milvus-backup-operator", "backup_id": "x", "token": "t", '
                    f'"started": {started}}}').encode())  # fmt: skip
    store.put("backup/harm_plain_object", b"a plain object, not a directory")
    try:
        listed = run_cli(stack.config_path, "list")
        assert listed.code == 0, listed.output
        assert "harm_forged" not in listed.stdout and "harm_plain_object" not in listed.stdout
        refused = run_cli(stack.config_path, "delete", "-n", "harm_forged")
        assert refused.code == 1 and "is not a backup" in refused.stderr, refused.output
        assert store.get(key)
    finally:
        store.delete(key)
        store.delete("backup/harm_plain_object")


# ---- 5. authentication fails closed -------------------------------------------------------------


@pytest.mark.parametrize(
    "content", ["", "  \n\t\n", None, "\0\0\0"], ids=["empty", "blank", "missing", "nul"]
)
def test_an_unusable_token_file_stops_the_server(
    stack: Stack, tmp_path: Path, content: str | None
) -> None:
    token = tmp_path / "token"
    if content is not None:
        token.write_text(content)
    command = [sys.executable, "-m", "milvus_backup_operator", "--config", str(stack.config_path),
               "server", "-p", str(free_port()), "--state", str(tmp_path / "t.db"),
               "--token-file", str(token)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0, done.stderr
    assert "token" in done.stderr and str(token) in done.stderr
    assert "Traceback" not in done.stderr


# ---- 6. secrets never quoted ---------------------------------------------------------------------


def test_a_yaml_error_names_the_line_not_the_secret(stack: Stack, tmp_path: Path) -> None:
    secret = yaml.safe_load(stack.config_path.read_text())["minio"]["secretAccessKey"]
    broken = stack.config_path.read_text().replace(
        f"secretAccessKey: {secret}", f"secretAccessKey: {secret}: oops"
    )
    path = tmp_path / "broken.yaml"
    path.write_text(broken)
    result = run_cli(path, "list")
    line = next(n for n, text in enumerate(broken.splitlines(), 1) if "secretAccessKey" in text)
    assert result.code == 1 and str(path) in result.stderr and f"line {line}," in result.stderr
    pieces = {secret[i : i + 8] for i in range(len(secret) - 7)}  # not even part of it
    assert not any(piece in result.output for piece in pieces), result.output


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [("minio", "port", "nine-thousand-and-secret"),
     ("minio", "accessKeyID", "AKSECRET1\nX-Injected: yes"),
     ("minio", "secretAccessKey", "SECRET\x00tail"),
     ("minio", "bucketName", "SECRETBUCKET30!"),
     ("minio", "address", "http://SECRETHOST/x"),
     ("milvus", "address", "SECRETHOST with spaces")],
)  # fmt: skip
def test_a_bad_value_names_the_key_not_the_value(
    stack: Stack, tmp_path: Path, section: str, key: str, value: str
) -> None:
    config = variant(stack, tmp_path, **{section: {key: value}})
    for command in ("list", "check"):
        result = run_cli(config, command)
        assert result.code == 1 and f"{section}.{key}" in result.stderr, result.output
        assert "line" in result.stderr and "Traceback" not in result.output
        assert "SECRET" not in result.output


# ---- 7. nothing named is not everything ---------------------------------------------------------


@pytest.mark.parametrize("colls", [",,,", " , ", "tiny,,books", "tiny,tiny"])
def test_blank_or_repeated_collection_names_are_refused(
    stack: Stack, samples: Any, colls: str
) -> None:
    result = run_cli(stack.config_path, "create", "-n", "nothing_named", "-c", colls)
    assert result.code != 0 and "collection" in result.stderr, result.output
    assert not backup_store(stack).has_any("backup/nothing_named/")


@pytest.fixture(scope="module")
def harm_base(server: Server, samples: Any) -> str:
    """A backup of tiny to restore from."""
    made = call(
        server, "POST", "/create", {"backup_name": "harm_base", "collection_names": ["tiny"]}
    )
    assert made[0] == 200, made
    return "harm_base"


# ---- 8. REST errors: the envelope and the documented status, before any work -------------------


@pytest.mark.parametrize(
    ("path", "body", "fragment"),
    [
        ("/create", {"backup_name": "e1", "collection_names": [""]}, "empty collection name"),
        ("/create", {"backup_name": "e2", "collection_names": ["tiny", "tiny"]}, "twice"),
        ("/create", {"backup_name": "e3", "db_collections": {"default": [123]}}, "db_collections"),
        ("/create", {"backup_name": "e4", "db_collections": '{"default":[123]}'}, "db_collections"),
        ("/create", {"backup_name": "e5", "db_collections": '{"": ["tiny"]}'}, "database"),
        ("/restore", {"backup_name": "harm_base", "collection_renames": {"tiny": "a.b.c"}},
         "a.b.c"),
        ("/restore", {"backup_name": "harm_base", "collection_renames": {"tiny": "bad-name"}},
         "bad-name"),
        ("/restore", {"backup_name": "harm_base", "collection_suffix": "_x",
                      "collection_names": ["tiny", ""]}, "empty collection name"),
        ("/create", {"backup_name": "e6", "db_collections": '{"default": ' + "1" * 5000 + "}"},
         "db_collections"),
        ("/create", {"backup_name": "e7",
                     "db_collections": '{"default": ["tiny"], "default": ["books"]}'}, "twice"),
        ("/restore", {"backup_name": "harm_base", "collection_renames": {"tiny": "*"}}, "'*'"),
        ("/restore", {"backup_name": "harm_base", "collection_renames": {"tiny": "db9.*"}},
         "db9.*"),
        ("/restore", {"backup_name": "harm_base", "collection_suffix": "x" * 300},
         "up to 255 characters"),
    ],
)  # fmt: skip
def test_bad_requests_are_400_in_the_envelope_before_any_work(
    server: Server, stack: Stack, harm_base: str, path: str, body: dict[str, Any], fragment: str
) -> None:
    collections_before = sorted(sample_data.client(stack.milvus.uri).list_collections())
    status, reply = call(server, "POST", path, body)
    assert status == 400, reply
    assert reply["code"] != 0 and fragment in reply["msg"] and "data" in reply, reply
    assert sorted(sample_data.client(stack.milvus.uri).list_collections()) == collections_before
    if path == "/create":
        assert not backup_store(stack).has_any(f"backup/{body['backup_name']}/")


def test_a_deeply_nested_body_gets_the_envelope(server: Server) -> None:
    nested = "[" * 100_000 + "]" * 100_000
    status, reply = call(server, "POST", "/create", '{"backup_name": "deep", "x": ' + nested + "}")
    assert status == 400 and "msg" in reply and "data" in reply, reply


def raw_post(server: Server, head: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """Send a request's head and body, then read the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as conn:
        conn.sendall(f"POST /api/v1/create HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode())
        with contextlib.suppress(OSError):
            conn.sendall(body)
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    status_line, _, rest = reply.partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])


def test_a_huge_body_is_refused_with_413(server: Server) -> None:
    huge = b"[" + b" " * (60 * 1024 * 1024) + b"]"
    status, reply = raw_post(server, f"Content-Length: {len(huge)}\r\n", huge)
    assert status == 413 and "larger than" in reply["msg"] and "data" in reply, reply
    chunk = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
    status, reply = raw_post(server, "Transfer-Encoding: chunked\r\n", chunk * 40 + b"0\r\n\r\n")
    assert status == 413 and "larger than" in reply["msg"], reply


def test_a_bad_request_id_header_is_refused_before_the_restore_runs(
    server: Server, stack: Stack, harm_base: str
) -> None:
    body = {"backup_name": "harm_base", "collection_suffix": "_hdr", "async": True}
    status, reply = call(server, "POST", "/restore", body, headers={"request_id": "a/b"})
    assert status == 400 and "invalid request id" in reply["msg"], reply
    time.sleep(1)
    assert not sample_data.client(stack.milvus.uri).has_collection("tiny_hdr")


def test_a_request_id_names_one_restore_too(server: Server, stack: Stack, harm_base: str) -> None:
    headers = {"request_id": "one_restore"}
    bodies = [{"backup_name": "harm_base", "collection_suffix": s} for s in ("_rid1", "_rid2")]
    first, second = (call(server, "POST", "/restore", b, headers=headers) for b in bodies)
    assert first[0] == 200 and first[1]["data"]["id"] == "one_restore", first
    assert second[0] == 409 and "one_restore" in second[1]["msg"], second
    client = sample_data.client(stack.milvus.uri)
    assert client.has_collection("tiny_rid1") and not client.has_collection("tiny_rid2")
    client.drop_collection("tiny_rid1")


def test_a_json_body_sent_as_a_form_is_read_as_json(server: Server, samples: Any) -> None:
    """curl -d without -H 'Content-Type: application/json' works with milvus-backup (Gin)."""
    body = {"backup_name": "harm_form", "collection_names": ["tiny"]}
    status, reply = call(server, "POST", "/create", body,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert status == 200 and reply["data"]["name"] == "harm_form", reply


def test_a_request_id_is_one_task(server: Server, samples: Any) -> None:
    headers = {"request_id": "once_only"}
    first = call(server, "POST", "/create", {"backup_name": "rid_a", "collection_names": ["tiny"]},
                 headers=headers)  # fmt: skip
    assert first[0] == 200, first
    second = call(server, "POST", "/create", {"backup_name": "rid_b", "collection_names": ["tiny"]},
                  headers=headers)  # fmt: skip
    assert second[0] == 409 and "once_only" in second[1]["msg"], second
    assert call(server, "GET", "/get_backup?backup_name=rid_b")[0] == 404


# ---- 9. a restarted server answers at once ------------------------------------------------------


def test_a_restarted_server_listens_while_it_resumes(
    stack: Stack, samples: Any, tmp_path: Path
) -> None:
    """The restore it resumes waits for Milvus (silent, here); the API answers meanwhile, and
    the restore completes once Milvus answers again."""
    live = sample_data.rows(stack.milvus.uri, BOOKS)
    server = Server(stack.config_path, tmp_path / "tasks.db", tmp_path / "server.log").start()
    silent = socket.create_server(("127.0.0.1", 0), backlog=64)
    try:
        made = call(server, "POST", "/create",
                    {"backup_name": "harm_books", "collection_names": ["books"]})  # fmt: skip
        assert made[0] == 200, made
        request = {"async": True, "backup_name": "harm_books", "collection_suffix": "_harm",
                   "id": "resume_me"}  # fmt: skip
        assert call(server, "POST", "/restore", request)[0] == 200
        deadline = time.monotonic() + 60
        while call(server, "GET", "/get_restore?id=resume_me")[1]["data"]["progress"] < 10:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        server.kill()
        # restarted, the server finds a Milvus that accepts connections but never answers:
        # resuming waits out the connect timeout, while the API answers
        good_config = server.config
        server.config = variant(stack, tmp_path, milvus={"port": silent.getsockname()[1]},
                                timeouts={"connect": 120})  # fmt: skip
        server.start()  # waits at most 30 s for /hello
        status, body = call(server, "GET", "/get_restore?id=resume_me")
        assert status == 200 and body["data"]["state_code"] == 1, body
        server.kill()
        server.config = good_config  # Milvus answers again: the restore resumes and completes
        server.start()
        task = wait_task(server, "/get_restore?id=resume_me")
        assert task["state_code"] == 2, task
    finally:
        server.kill()
        silent.close()
    sample_data.prepare_for_query(stack.milvus.uri, BOOKS, "books_harm")
    assert sample_data.rows(stack.milvus.uri, BOOKS, "books_harm") == live
    sample_data.client(stack.milvus.uri).drop_collection("books_harm")  # no import in flight


# ---- 10. the list table --------------------------------------------------------------------------


def test_the_list_table_has_a_column_per_heading(stack: Stack, samples: Any) -> None:
    if run_cli(stack.config_path, "get", "-n", "harm_listed").code != 0:
        assert run_cli(stack.config_path, "create", "-n", "harm_listed", "-c", "tiny").code == 0
    lines = run_cli(stack.config_path, "list").stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATE", "SIZE", "MILVUS", "COLLECTIONS"]
    row = next(line.split() for line in lines if line.startswith("harm_listed "))
    assert row[1] == "Completed" and row[3].startswith("v2.3.5") and row[4] == "tiny", row
