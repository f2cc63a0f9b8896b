"""What is in use is never deleted: a backup being written (its writer's marker, renewed on
the real gateway) or read by a restore."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from minio.error import S3Error

from milvus_backup_operator.engine import storage
from milvus_backup_operator.engine.backup import BackupRequest, create_backup
from milvus_backup_operator.engine.catalog import RUNNING, Catalog
from milvus_backup_operator.engine.config import BackupConfig
from milvus_backup_operator.engine.errors import (
    AlreadyExistsError,
    InUseError,
    NotFoundError,
    OperationError,
)
from milvus_backup_operator.engine.layout import BackupLayout
from milvus_backup_operator.engine.leases import Notice
from milvus_backup_operator.engine.liveness import ProcessId
from milvus_backup_operator.engine.reservation import Marker, marker_key, silent_for
from milvus_backup_operator.engine.restore import restore_backup
from milvus_backup_operator.engine.restore_plan import RestoreRequest
from milvus_backup_operator.engine.selection import parse_list
from milvus_backup_operator.engine.storage import BARE, QUOTED, ObjectStore
from testbed import sample_data
from testbed.s3relay import S3Relay
from testbed.sample_data import TINY
from testbed.stack import BACKUP_ROOT_PATH, Stack, stack_config
from tests.conftest import run_cli
from tests.integration.api_server import call, running
from tests.integration.test_bad_input import variant

pytestmark = pytest.mark.integration


def backup_store(stack: Stack) -> ObjectStore:
    config = stack_config(stack)
    return ObjectStore(config.backup_storage, config.timeouts)


def leftovers(stack: Stack, name: str, kind: str) -> list[str]:
    """What is under the backup's ``meta/<kind>/`` (``meta/`` for an empty kind)."""
    where = "/".join(p for p in (BACKUP_ROOT_PATH, name, "meta", kind) if p) + "/"
    return [o.key for o in backup_store(stack).list(where)]


def test_the_gateway_takes_if_match_in_its_own_form_and_a_mismatch_still_fails(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RADOS Gateway 16.2 refuses the RFC's quoted ETag (412 for the object's own ETag): the
    store learns the bare form, and never overwrites an object that truly changed."""
    monkeypatch.setattr(storage, "_if_match_forms", {})  # as in a fresh process
    store, key = backup_store(stack), f"probe/{uuid.uuid4().hex}"
    etag = store.put_new(key, b"one")
    with pytest.raises(S3Error) as refused:  # the gateway's behaviour this works around
        headers: Any = {"If-Match": f'"{etag}"'}
        store.client._put_object(store.bucket, key, b"quoted", headers=headers)
    assert refused.value.code == "PreconditionFailed"
    assert store.if_match_form() == QUOTED  # what is tried first, as RFC 7232 and AWS say
    etag = store.put_if_match(key, b"two", etag)
    assert store.get(key) == b"two" and store.if_match_form() == BARE  # learned
    assert backup_store(stack).if_match_form() == BARE  # for the endpoint, not one store
    with pytest.raises(AlreadyExistsError, match="was replaced"):
        store.put_if_match(key, b"three", "0" * 32)
    assert store.get(key) == b"two"
    store.delete(key)
    with pytest.raises(NotFoundError, match="is gone"):
        store.put_if_match(key, b"four", etag)
    assert store.get_if_exists(key) is None  # never re-created


# ---- the writer's marker ------------------------------------------------------------------------

SILENCE = 3.0  # timeouts.writerSilence here: the marker is renewed every 0.25 s


class HeldCopies:
    """A relay in front of the gateway that holds every binlog PUT until released."""

    def __init__(self, stack: Stack) -> None:
        self.copying, self.release = threading.Event(), threading.Event()
        self.relay = S3Relay(stack.s3.endpoint, delay=self._hold).start()

    def _hold(self, method: str, path: str) -> float:
        if method == "PUT" and "/binlogs/" in path:
            self.copying.set()
            assert self.release.wait(120)
        return 0.0

    def config(self, stack: Stack) -> BackupConfig:
        """The stack's, with the backup location behind the relay, one copy at a time."""
        config = stack_config(stack)
        host, port = self.relay.endpoint.split(":")
        return replace(
            config,
            backup_storage=replace(config.backup_storage, address=host, port=int(port)),
            parallelism=replace(config.parallelism, copy_data=1),
            timeouts=replace(config.timeouts, writer_silence=SILENCE),
        )


@pytest.fixture
def held(stack: Stack) -> Iterator[HeldCopies]:
    held = HeldCopies(stack)
    try:
        yield held
    finally:
        held.release.set()
        held.relay.stop()


def start_backup(config: BackupConfig, name: str, backup_id: str) -> Future[Any]:
    request = BackupRequest(name, tuple(parse_list("tiny")), backup_id=backup_id)
    pool = ThreadPoolExecutor(1)
    future = pool.submit(create_backup, config, request)
    pool.shutdown(wait=False)
    return future


def test_a_backup_running_for_many_renewals_is_never_deleted_and_restores(
    stack: Stack, samples: Any, held: HeldCopies, tmp_path: Path
) -> None:
    """Its copies held by a relay for three times writerSilence, a backup keeps its marker
    fresh on the gateway: every delete (engine and CLI) is refused, naming the writer, and
    the backup then completes and restores every row. It is listed as running all along."""
    future = start_backup(held.config(stack), "inuse_long", "the-long-writer")
    assert held.copying.wait(60), "the backup never started copying"
    catalog = Catalog(backup_store(stack), BACKUP_ROOT_PATH, SILENCE)
    cli_config = variant(stack, tmp_path, timeouts={"writerSilence": SILENCE})
    started, refusals = time.monotonic(), 0
    while time.monotonic() - started < 3 * SILENCE:
        with pytest.raises(InUseError, match="is being written") as refused:
            catalog.delete("inuse_long")
        assert "the-long-writer" in str(refused.value)
        listed = catalog.summary("inuse_long")  # running all along, never "failed"
        assert listed is not None and (listed.state, listed.id) == (RUNNING, "the-long-writer")
        refusals += 1
        time.sleep(0.3)
    by_cli = run_cli(cli_config, "delete", "-n", "inuse_long")
    assert by_cli.code == 1 and "is being written" in by_cli.stderr, by_cli.output
    assert "the-long-writer" in by_cli.stderr
    layout = BackupLayout(BACKUP_ROOT_PATH, "inuse_long")
    silent = silent_for(backup_store(stack), layout)
    assert silent is not None and silent < 1.5, silent  # renewed all along
    held.release.set()
    info = future.result(timeout=120)
    assert info.id == "the-long-writer" and refusals >= 10
    assert backup_store(stack).get_if_exists(marker_key(layout)) is None
    restored = run_cli(stack.config_path, "restore", "-n", "inuse_long", "-s", "_long")
    assert restored.code == 0, restored.output
    sample_data.prepare_for_query(stack.milvus.uri, TINY, "tiny_long")
    live = sample_data.rows(stack.milvus.uri, TINY)
    assert sample_data.rows(stack.milvus.uri, TINY, "tiny_long") == live


def test_a_writer_whose_marker_is_deleted_fails_saying_so(
    stack: Stack, samples: Any, held: HeldCopies
) -> None:
    """Someone deletes the marker of a running backup: the backup fails with that cause
    (never "copy ... is missing"), and leaves nothing."""
    future = start_backup(held.config(stack), "inuse_lost", "the-lost-writer")
    assert held.copying.wait(60), "the backup never started copying"
    store = backup_store(stack)
    store.delete(marker_key(BackupLayout(BACKUP_ROOT_PATH, "inuse_lost")))
    time.sleep(1.0)  # renewals find it gone
    held.release.set()
    with pytest.raises(OperationError, match=r"was abandoned .*marker was deleted") as failed:
        future.result(timeout=120)
    assert "missing" not in str(failed.value)
    assert not store.has_any(f"{BACKUP_ROOT_PATH}/inuse_lost/")


KILLED = """
import sys, time
from pathlib import Path
from milvus_backup_operator.engine.config_file import load_config
from milvus_backup_operator.engine.catalog import Catalog
from milvus_backup_operator.engine.reservation import reserve
catalog = Catalog.of(load_config(Path(sys.argv[1]), {}, required=True))
if sys.argv[3] == "writer":
    reserve(catalog.store, catalog.layout(sys.argv[2]), "the-killed-child")
    print("ready", flush=True)
    time.sleep(600)
with catalog.reading(sys.argv[2], "the killed restore", "killed-task"):
    print("ready", flush=True)
    time.sleep(600)
"""


def killed(stack: Stack, name: str, role: str) -> int:
    """The pid of a child process that claimed ``name`` (as a writer or a reader), then was
    killed by SIGKILL: it left its marker or lease."""
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED, str(stack.config_path), name, role],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
    finally:
        child.kill()
        child.wait()
    return child.pid


@pytest.mark.parametrize("role", ["writer", "reader"])
def test_a_writer_or_restore_killed_on_this_host_is_not_waited_for(
    stack: Stack, samples: Any, role: str
) -> None:
    """A writer or restore of this host, boot and pid namespace whose process is gone cannot
    renew: delete goes on without waiting writerSilence (120 s here), and says why."""
    name = f"inuse_killed_{role}"
    if role == "reader":
        fresh_backup(stack, name)
    pid = killed(stack, name, role)
    assert leftovers(stack, name, "readers" if role == "reader" else "") != []
    started = time.monotonic()
    deleted = run_cli(stack.config_path, "delete", "-n", name)
    assert deleted.code == 0, deleted.output
    assert f"process {pid} on this host is not running" in deleted.stderr
    assert "without waiting" in deleted.stderr or "not waited for" in deleted.stderr
    assert time.monotonic() - started < 30
    assert not backup_store(stack).has_any(f"{BACKUP_ROOT_PATH}/{name}/")


@pytest.mark.parametrize(
    "elsewhere",
    [
        {"pid_namespace": 1},
        {"host": "another-host"},
        {"boot_id": None, "pid_namespace": None, "pid_start": None},
    ],
    ids=["other-pid-namespace", "other-host", "older-marker"],
)
def test_a_writer_that_cannot_be_proven_gone_is_waited_for(
    stack: Stack, elsewhere: dict[str, Any]
) -> None:
    """A dead pid proves nothing in another pod (pid namespace), on another host, or in a
    marker written before these fields: delete waits for writerSilence."""
    store, layout = backup_store(stack), BackupLayout(BACKUP_ROOT_PATH, "inuse_elsewhere")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    process = replace(ProcessId.here(), pid=int(dead.stdout))
    raw = json.loads(Marker("someone-else", "t", time.time(), process).to_json())
    raw.update(elsewhere)
    store.put(
        marker_key(layout), json.dumps({k: v for k, v in raw.items() if v is not None}).encode()
    )
    try:
        refused = run_cli(stack.config_path, "delete", "-n", "inuse_elsewhere")
        assert refused.code == 1 and "is being written" in refused.stderr, refused.output
        assert "someone-else" in refused.stderr
    finally:
        store.delete(marker_key(layout))


# ---- a restore's lease --------------------------------------------------------------------------


def fresh_backup(stack: Stack, name: str) -> None:
    create_backup(stack_config(stack), BackupRequest(name, tuple(parse_list("tiny"))))


def test_a_restore_holds_its_backup_against_every_delete(
    stack: Stack, samples: Any, tmp_path: Path
) -> None:
    """While a restore runs (held here before it touches a collection, for twice
    writerSilence), deletes by the CLI and by the REST server are refused, naming it; once
    it has ended its lease is gone and the delete goes through."""
    fresh_backup(stack, "inuse_read")
    holding, release = threading.Event(), threading.Event()

    def hold(_: Any) -> None:
        if not holding.is_set():
            holding.set()
            assert release.wait(120)

    config = replace(stack_config(stack), timeouts=replace(stack_config(stack).timeouts,
                                                           writer_silence=SILENCE))  # fmt: skip
    request = RestoreRequest("inuse_read", tuple(parse_list("tiny")), suffix="_read",
                             task_id="read-task", reader="the test's restore")  # fmt: skip
    pool = ThreadPoolExecutor(1)
    future = pool.submit(restore_backup, config, request, None, hold)
    pool.shutdown(wait=False)
    cli_config = variant(stack, tmp_path, timeouts={"writerSilence": SILENCE})
    try:
        assert holding.wait(60), "the restore never started"
        (tmp_path / "server").mkdir()
        with running(stack.config_path, tmp_path / "server") as server:
            started = time.monotonic()
            while time.monotonic() - started < 2 * SILENCE:
                by_cli = run_cli(cli_config, "delete", "-n", "inuse_read")
                assert by_cli.code == 1, by_cli.output
                assert "is being read by a restore (the test's restore, task read-task" in (
                    by_cli.stderr
                )
                assert "once that restore ends" in by_cli.stderr
            status, body = call(server, "DELETE", "/delete?backup_name=inuse_read")
            assert status == 409 and "the test's restore, task read-task" in body["msg"], body
    finally:
        release.set()
    assert future.result(timeout=300).succeeded
    assert leftovers(stack, "inuse_read", "readers") == []
    assert run_cli(cli_config, "delete", "-n", "inuse_read").code == 0
    assert not backup_store(stack).has_any(f"{BACKUP_ROOT_PATH}/inuse_read/")


def test_a_backup_being_deleted_is_not_restored_and_milvus_is_untouched(
    stack: Stack, samples: Any
) -> None:
    """A delete held by the relay at its first removal: a restore that starts meanwhile
    refuses before creating anything, and the delete then completes, leaving nothing."""
    fresh_backup(stack, "inuse_deleting")
    deleting, release = threading.Event(), threading.Event()

    def hold(method: str, path: str) -> float:
        if method == "POST" and "delete" in path:
            deleting.set()
            assert release.wait(120)
        return 0.0

    relay = S3Relay(stack.s3.endpoint, delay=hold).start()
    try:
        host, port = relay.endpoint.split(":")
        config = stack_config(stack)
        behind = replace(config.backup_storage, address=host, port=int(port))
        catalog = Catalog(ObjectStore(behind, config.timeouts), BACKUP_ROOT_PATH)
        pool = ThreadPoolExecutor(1)
        future = pool.submit(catalog.delete, "inuse_deleting")
        pool.shutdown(wait=False)
        assert deleting.wait(60), "the delete never started removing"
        refused = run_cli(stack.config_path, "restore", "-n", "inuse_deleting", "-s", "_del")
        assert refused.code == 1, refused.output
        assert "backup 'inuse_deleting' is being deleted since" in refused.stderr
        assert "if that delete stopped, run it again" in refused.stderr
        assert not sample_data.client(stack.milvus.uri).has_collection("tiny_del")
        release.set()
        assert future.result(timeout=60) > 0
    finally:
        release.set()
        relay.stop()
    assert not backup_store(stack).has_any(f"{BACKUP_ROOT_PATH}/inuse_deleting/")


def test_a_delete_that_stopped_blocks_restores_until_it_is_run_again(
    stack: Stack, samples: Any
) -> None:
    """The deletion mark of a delete that was killed: restores refuse, saying to run the
    delete again; killed half way, the backup reads as being deleted; a new delete
    proceeds."""
    fresh_backup(stack, "inuse_stopped")
    layout = BackupLayout(BACKUP_ROOT_PATH, "inuse_stopped")
    mark = Notice.new()  # what a delete writes first
    backup_store(stack).put_new(layout.meta_key(f"deleting/{mark.token}.json"), mark.to_json())
    refused = run_cli(stack.config_path, "restore", "-n", "inuse_stopped", "-s", "_stopped")
    assert refused.code == 1 and "run it again" in refused.stderr, refused.output
    assert leftovers(stack, "inuse_stopped", "readers") == []  # the lease was withdrawn
    listed = run_cli(stack.config_path, "list")  # killed before any object went: not whole
    line = next(x for x in listed.stdout.splitlines() if "inuse_stopped" in x)
    assert "Incomplete" in line and "Completed" not in line, listed.stdout
    backup_store(stack).delete(layout.meta_key("backup_meta.json"))  # killed half way
    got = run_cli(stack.config_path, "get", "-n", "inuse_stopped")
    assert got.code == 1 and "is being deleted since" in got.stderr, got.output
    assert "run it again" in got.stderr
    deleted = run_cli(stack.config_path, "delete", "-n", "inuse_stopped")
    assert deleted.code == 0, deleted.output
    assert not backup_store(stack).has_any(f"{BACKUP_ROOT_PATH}/inuse_stopped/")


READER_KEY, READER_SECRET = "INUSEREADONLY0000000", "inuse-read-only-secret-0000000000000000"


@pytest.fixture
def read_only(stack: Stack) -> Iterator[tuple[str, str]]:
    """Keys of a gateway user that may read the backup bucket and write nothing."""
    subprocess.run(
        ["radosgw-admin", "-c", str(stack.rgw.conf), "user", "create", "--uid=inuse-reader",
         "--display-name=inuse-reader", f"--access-key={READER_KEY}",
         f"--secret-key={READER_SECRET}"],
        capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    bucket = stack_config(stack).backup_storage.bucket
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam:::user/inuse-reader"]},
        "Action": ["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"],
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
    }]}  # fmt: skip
    owner = stack.s3.client()
    owner.set_bucket_policy(bucket, json.dumps(policy))
    try:
        yield READER_KEY, READER_SECRET
    finally:
        owner.delete_bucket_policy(bucket)


def test_read_only_credentials_restore_unprotected_with_a_warning(
    stack: Stack, samples: Any, read_only: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """Keys that may only read the backups cannot write a lease: the restore goes on, and
    says the backup was not protected from deletion meanwhile."""
    fresh_backup(stack, "inuse_readonly")
    config = stack_config(stack)
    key, secret = read_only
    reader = replace(config.backup_storage, access_key=key, secret_key=secret)
    with pytest.raises(S3Error, match="AccessDenied"):  # the keys really are read-only
        ObjectStore(reader, config.timeouts).client.put_object(
            reader.bucket, "backup/inuse_readonly/x", io.BytesIO(b"x"), 1
        )
    request = RestoreRequest("inuse_readonly", tuple(parse_list("tiny")), suffix="_ro")
    result = restore_backup(replace(config, backup_storage=reader), request)
    assert result.succeeded, result.failure_summary()
    assert "backup inuse_readonly is not protected from deletion during this restore" in (
        caplog.text
    )
    sample_data.prepare_for_query(stack.milvus.uri, TINY, "tiny_ro")
    assert sample_data.rows(stack.milvus.uri, TINY, "tiny_ro") == sample_data.rows(
        stack.milvus.uri, TINY
    )
    assert run_cli(stack.config_path, "delete", "-n", "inuse_readonly").code == 0


def test_a_lease_left_under_a_deleted_backups_name_is_deleted_and_the_name_freed(
    stack: Stack, samples: Any
) -> None:
    """A restore stopped just as a delete ended leaves only its lease under the name: while
    its process may live, delete says so; once it is provably gone, delete removes it and
    the name can be used again (found by a hostile run: the name was stuck)."""
    layout = BackupLayout(BACKUP_ROOT_PATH, "inuse_ghost")
    alive = Notice.new("CLI restore", "ghost-task")  # this very process: alive
    key = layout.meta_key(f"readers/{alive.token}.json")
    backup_store(stack).put_new(key, alive.to_json())
    refused = run_cli(stack.config_path, "delete", "-n", "inuse_ghost")
    assert refused.code == 1 and "being read by a restore (CLI restore" in refused.stderr
    gone = replace(alive, process=replace(alive.process, pid_start=alive.process.pid_start + 1))
    backup_store(stack).put(key, gone.to_json())  # the same pid, another process now
    deleted = run_cli(stack.config_path, "delete", "-n", "inuse_ghost")
    assert deleted.code == 0, deleted.output
    assert not backup_store(stack).has_any(layout.prefix)
    created = run_cli(stack.config_path, "create", "-n", "inuse_ghost", "-c", "tiny")
    assert created.code == 0, created.output
    assert run_cli(stack.config_path, "delete", "-n", "inuse_ghost").code == 0
