"""A restore killed mid-way, then run again with drop: Milvus's import queue must survive.

Milvus 2.3.5 stalls its import queue for good when a collection is dropped while imports
into it are in flight (found by a hostile run: every later import stayed Pending). This runs
on a Milvus of its own, so that a regression cannot stall the suite's shared one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from testbed import sample_data
from testbed.node_loss import lose
from testbed.stack import Stack
from testbed.stack.milvus import MilvusProcess, start_milvus
from tests.conftest import run_cli

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def own_milvus(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[MilvusProcess, Path]]:
    stack.s3.ensure_bucket("killbucket")
    tmp = tmp_path_factory.mktemp("kill")
    milvus = start_milvus(tmp / "milvus", stack.s3, "killbucket", "file", die_with_parent=True)
    config = yaml.safe_load(stack.config_path.read_text())
    config["milvus"].update(address=milvus.endpoint.host, port=milvus.endpoint.port)
    config["minio"].update(bucketName="killbucket", backupBucketName="killbucket")
    path = tmp / "backup.yaml"
    path.write_text(yaml.safe_dump(config))
    try:
        yield milvus, path
    finally:
        milvus.stop()


def unfinished(milvus: MilvusProcess, collection: str) -> int:
    """Import tasks into ``collection`` that Milvus has not finished (pymilvus's own view)."""
    from pymilvus import connections, utility

    alias = f"kill-{collection}"
    connections.connect(alias, host=milvus.endpoint.host, port=str(milvus.endpoint.port))
    try:
        tasks = utility.list_bulk_insert_tasks(collection_name=collection, using=alias)
    finally:
        connections.disconnect(alias)
    return sum(t.state_name in ("Pending", "Started", "Persisted") for t in tasks)


def test_a_killed_restore_run_again_with_drop_waits_for_the_dead_runs_imports(
    own_milvus: tuple[MilvusProcess, Path],
) -> None:
    milvus, config = own_milvus
    uri = milvus.endpoint.uri
    sample_data.create_books(sample_data.client(uri))
    assert run_cli(config, "create", "-n", "killed", "-c", "books").code == 0
    command = [sys.executable, "-m", "milvus_backup_operator", "--config", str(config),
               "restore", "-n", "killed", "-r", "books:books_k"]  # fmt: skip
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=os.environ.copy())  # fmt: skip
    deadline = time.monotonic() + 120
    while (
        not sample_data.client(uri).has_collection("books_k") or unfinished(milvus, "books_k") == 0
    ):
        assert time.monotonic() < deadline and first.poll() is None, "no import started"
        time.sleep(0.2)
    lose(first)

    again = run_cli(config, "restore", "-n", "killed", "-r", "books:books_k",
                    "--drop_exist_collection", timeout=600)  # fmt: skip

    assert again.code == 0, again.output
    assert "books -> books_k: Completed" in again.stdout
    assert unfinished(milvus, "books_k") == 0


def test_a_restore_told_to_stop_lets_milvus_answer_first_and_can_be_run_again(
    own_milvus: tuple[MilvusProcess, Path],
) -> None:
    """SIGTERM (a Pod evicted or deleted) mid-import: nothing new is sent, the calls in flight
    get their answers, the process exits 143 and Milvus is still up (a client cut off during
    an import call takes Milvus 2.3's proxy down with it: ``engine/milvus_calls.py``)."""
    milvus, config = own_milvus
    uri = milvus.endpoint.uri
    if not sample_data.client(uri).has_collection("books"):
        sample_data.create_books(sample_data.client(uri))
    if run_cli(config, "get", "-n", "stopped").code != 0:
        assert run_cli(config, "create", "-n", "stopped", "-c", "books").code == 0
    command = [sys.executable, "-m", "milvus_backup_operator", "--config", str(config),
               "restore", "-n", "stopped", "-r", "books:books_s"]  # fmt: skip
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=os.environ.copy(), text=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while (
        not sample_data.client(uri).has_collection("books_s") or unfinished(milvus, "books_s") == 0
    ):
        assert time.monotonic() < deadline and first.poll() is None, "no import started"
        time.sleep(0.1)
    first.send_signal(signal.SIGTERM)
    _, stderr = first.communicate(timeout=60)

    assert first.returncode == 143, stderr
    assert "SIGTERM: stopping once the calls to Milvus in flight have their answers" in stderr
    assert milvus.daemon.running(), milvus.log.read_text()[-3000:]
    again = run_cli(config, "restore", "-n", "stopped", "-r", "books:books_s",
                    "--drop_exist_collection", timeout=600)  # fmt: skip
    assert again.code == 0, again.output
    for name in ("books", "books_s"):
        sample_data.prepare_for_query(uri, sample_data.BOOKS, name)
    restored = sample_data.rows(uri, sample_data.BOOKS, "books_s")
    assert restored == sample_data.rows(uri, sample_data.BOOKS)
