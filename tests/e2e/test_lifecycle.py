"""Restarts, lost Jobs and deletion: nothing lost, nothing duplicated, nothing half-complete."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from kubernetes import client

from milvus_backup_operator.controllers.backup import BLOCKED_RETRY
from milvus_backup_operator.engine.layout import BackupLayout
from milvus_backup_operator.engine.storage import ObjectStore
from testbed import sample_data
from testbed.bed import GROUP, NAMESPACE, OperatorProcess, wait
from testbed.jobrunner import LocalJobRunner
from testbed.kube import Cluster
from testbed.s3relay import S3Relay
from testbed.sample_data import TINY
from testbed.stack import Stack, stack_config
from tests.e2e.resources import apply, get, milvus_backup, milvus_restore, wait_for_phase
from tests.e2e.test_operator import catalog

pytestmark = pytest.mark.e2e


def jobs(kube: client.ApiClient) -> list[str]:
    return [j.metadata.name for j in client.BatchV1Api(kube).list_namespaced_job(NAMESPACE).items]


def job_of(kube: client.ApiClient, name: str) -> client.V1Job:
    return client.BatchV1Api(kube).read_namespaced_job(name, NAMESPACE)


def handled_phase(kube: client.ApiClient, name: str) -> str | None:
    """The phase in the configuration the operator last handled (Kopf's record of it, kept in
    an annotation): it reads Completed once an operator has seen the backup complete."""
    body = get(kube, "milvusbackups", name) or {}
    annotations = body.get("metadata", {}).get("annotations") or {}
    handled = json.loads(annotations.get(f"{GROUP}/last-handled-configuration") or "{}")
    return (handled.get("status") or {}).get("phase")


def backup_objects(stack: Stack, name: str) -> dict[str, str]:
    """Every object under the backup's name in the backup bucket (read directly), by ETag."""
    config = stack_config(stack)
    store = ObjectStore(config.backup_storage, config.timeouts)
    prefix = BackupLayout(config.backup_storage.root_path, name).prefix
    return {o.key: o.etag for o in store.list(prefix)}


def test_operator_killed_mid_backup_the_job_finishes_and_is_recorded(
    cluster: Cluster, kube: client.ApiClient, stack: Stack, operator: OperatorProcess,
    jobrunner: LocalJobRunner, samples: Any,
) -> None:  # fmt: skip
    apply(cluster, milvus_backup("during-restart", stack))
    wait_for_phase(kube, "milvusbackups", "during-restart", phases=("Running",), timeout=60)
    operator.kill()  # the Job keeps going without its operator
    status = wait_for_phase(kube, "milvusbackups", "during-restart", phases=("Completed",),
                            timeout=120)  # fmt: skip
    job = job_of(kube, "mbk-during-restart")
    objects = backup_objects(stack, "during_restart")
    info = catalog(stack).read("during_restart")
    assert info.size == status["backupSize"] > 0
    assert jobrunner.runs["mbk-during-restart"] == [job.metadata.uid]

    operator.start()
    wait(lambda: handled_phase(kube, "during-restart") == "Completed", 60,
         "the restarted operator to handle mbk/during-restart")  # fmt: skip
    # a second run would be a new Job object (a second create of the name is a 409, so
    # counting Jobs proves nothing), a new process, a reset status or a rewritten backup
    again = job_of(kube, "mbk-during-restart")
    assert (again.metadata.uid, again.metadata.creation_timestamp) == (
        job.metadata.uid, job.metadata.creation_timestamp), "the Job was created again"  # fmt: skip
    assert jobrunner.runs["mbk-during-restart"] == [job.metadata.uid], "the work ran twice"
    assert (get(kube, "milvusbackups", "during-restart") or {}).get("status") == status
    assert backup_objects(stack, "during_restart") == objects
    assert catalog(stack).read("during_restart").id == info.id


@contextmanager
def job_lost_mid_copy(
    cluster: Cluster, kube: client.ApiClient, stack: Stack, jobrunner: LocalJobRunner, name: str
) -> Iterator[None]:
    """Create MilvusBackup ``name`` (its storage through a relay), freeze its Job right after
    its first binlog copy (the copy is made, the backup cannot have written its meta: the
    relay holds the answer), check that, and kill it. The relay passes everything on after
    that, until the ``with`` block ends."""
    backup = name.replace("-", "_")
    copies = f"/backup/{backup}/binlogs/"
    relay = S3Relay(
        stack.s3.endpoint,
        trigger=lambda method, path: method == "PUT" and copies in path,
        on_trigger=lambda: jobrunner.pause(f"mbk-{name}"),
    ).start()
    try:
        storage = {"endpoint": relay.endpoint, "credentialsSecret": {"name": "milvus-s3"}}
        apply(cluster, milvus_backup(name, stack, storage=storage))
        if not relay.triggered.wait(120):
            status = (get(kube, "milvusbackups", name) or {}).get("status")
            raise TimeoutError(f"the backup never copied a binlog through the relay: {status}")
        half = backup_objects(stack, backup)
        assert any(copies.lstrip("/") in key for key in half), half
        assert f"backup/{backup}/meta/in_progress.json" in half, half
        assert f"backup/{backup}/meta/backup_meta.json" not in half, half
        jobrunner.kill(f"mbk-{name}")
        yield
    finally:
        relay.stop()


def test_a_lost_job_is_followed_by_a_new_job_that_resumes_the_backup(
    cluster: Cluster, kube: client.ApiClient, stack: Stack, operator: OperatorProcess,
    jobrunner: LocalJobRunner, samples: Any,
) -> None:  # fmt: skip
    with job_lost_mid_copy(cluster, kube, stack, jobrunner, "lost-job"):
        status = wait_for_phase(kube, "milvusbackups", "lost-job", timeout=300)
    assert status["phase"] == "Completed", (status, jobrunner.log_of("mbk-lost-job-r1"))
    assert (status["attempts"], status["jobName"]) == (1, "mbk-lost-job-r1")
    assert jobrunner.runs["mbk-lost-job"] and jobrunner.runs["mbk-lost-job-r1"]
    info = catalog(stack).read("lost_job")  # whole: the dead Job's half was cleared first
    assert info.size == status["backupSize"] > 0
    stored = backup_objects(stack, "lost_job")
    assert "backup/lost_job/meta/in_progress.json" not in stored
    assert {c["name"] for c in status["collections"]} == {
        c.qualified_name for c in info.collection_backups
    }


def test_a_lost_job_with_no_retry_left_fails_with_a_reason_and_leaves_no_half_backup(
    cluster: Cluster, kube: client.ApiClient, stack: Stack, operator: OperatorProcess,
    jobrunner: LocalJobRunner, samples: Any, tmp_path: Any,
) -> None:  # fmt: skip
    operator.stop()  # the same operator, told to start no new Job
    strict = OperatorProcess(operator.kubeconfig, tmp_path / "operator.log",
                             webhook=operator.webhook, extra=("--job-retries", "0"))  # fmt: skip
    strict.start()
    try:
        with job_lost_mid_copy(cluster, kube, stack, jobrunner, "lost-for-good"):
            status = wait_for_phase(kube, "milvusbackups", "lost-for-good")
    finally:
        strict.stop()
        operator.start()
    assert status["phase"] == "Failed", status
    assert "Job mbk-lost-for-good failed" in status["message"]
    assert "no retry is left (0 new Jobs at most" in status["message"]
    assert "see its logs" in status["message"]
    assert "its partial data was removed" in status["message"], status["message"]
    assert backup_objects(stack, "lost_for_good") == {}
    assert "mbk-lost-for-good-r1" not in jobrunner.runs


def test_deletion_policy_retain_keeps_the_backup(
    cluster: Cluster, kube: client.ApiClient, stack: Stack, operator: OperatorProcess,
    jobrunner: LocalJobRunner, samples: Any,
) -> None:  # fmt: skip
    apply(cluster, milvus_backup("kept", stack, collections=["tiny"]))
    assert wait_for_phase(kube, "milvusbackups", "kept")["phase"] == "Completed"
    cluster.kubectl("delete", "mbk", "kept", "-n", NAMESPACE, "--wait=true", "--timeout=60s")
    assert get(kube, "milvusbackups", "kept") is None
    assert catalog(stack).read("kept").collection_backups[0].collection_name == "tiny"


def test_deletion_policy_delete_removes_the_backup_and_its_job(
    cluster: Cluster, kube: client.ApiClient, stack: Stack, operator: OperatorProcess,
    jobrunner: LocalJobRunner, samples: Any,
) -> None:  # fmt: skip
    apply(cluster, milvus_backup("scratch", stack, collections=["tiny"], deletionPolicy="Delete"))
    assert wait_for_phase(kube, "milvusbackups", "scratch")["phase"] == "Completed"
    assert catalog(stack).exists("scratch")
    cluster.kubectl("delete", "mbk", "scratch", "-n", NAMESPACE, "--wait=true", "--timeout=60s")
    assert get(kube, "milvusbackups", "scratch") is None
    assert not catalog(stack).exists("scratch")
    deadline = time.monotonic() + 30
    while "mbk-scratch" in jobs(kube) and time.monotonic() < deadline:
        time.sleep(0.5)  # the garbage collector follows the ownerReference
    assert "mbk-scratch" not in jobs(kube)


def test_a_restore_applied_with_its_backup_waits_for_it(
    cluster: Cluster, kube: client.ApiClient, stack: Stack, operator: OperatorProcess,
    jobrunner: LocalJobRunner, samples: Any,
) -> None:  # fmt: skip
    """GitOps applies both at once: the restore waits, Pending, until the backup completes."""
    restore = {"backupRef": "together", "collections": ["tiny"], "collectionSuffix": "_together"}
    apply(cluster, milvus_backup("together", stack, collections=["tiny"]),
          milvus_restore("together-restore", **restore))  # fmt: skip
    seen: list[dict[str, Any]] = []
    status = wait_for_phase(kube, "milvusrestores", "together-restore", seen=seen)
    assert status["phase"] == "Completed", status
    assert any("waiting for MilvusBackup 'together'" in s.get("message", "") for s in seen)


def _blocked(kube: client.ApiClient, name: str, timeout: float = 60) -> dict[str, Any]:
    """Wait for the deleted MilvusBackup's DeletionBlocked condition; return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = (get(kube, "milvusbackups", name) or {}).get("status") or {}
        found = [c for c in status.get("conditions") or [] if c["type"] == "DeletionBlocked"]
        if found:
            return dict(found[0])
        time.sleep(0.3)
    raise TimeoutError(f"MilvusBackup {name} was never held: {status}")


def _gone(kube: client.ApiClient, name: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while get(kube, "milvusbackups", name) is not None:
        assert time.monotonic() < deadline, f"MilvusBackup {name} is still there"
        time.sleep(0.5)


def _warnings(kube: client.ApiClient, name: str) -> list[str]:
    events = client.CoreV1Api(kube).list_namespaced_event(
        NAMESPACE, field_selector=f"involvedObject.name={name}"
    )
    return [f"{e.reason}: {e.message}" for e in events.items if e.type == "Warning"]


def test_a_backup_a_restore_reads_is_deleted_only_once_the_restore_ends(
    cluster: Cluster, kube: client.ApiClient, stack: Stack, operator: OperatorProcess,
    jobrunner: LocalJobRunner, samples: Any,
) -> None:  # fmt: skip
    """Issue 18's race: ``kubectl delete mbk`` (deletionPolicy Delete) while a MilvusRestore
    of it runs. The backup stays Terminating, saying why, until the restore has ended; then
    its data goes. The restore gets every row."""
    apply(cluster, milvus_backup("read-under", stack, collections=["tiny"],
                                 deletionPolicy="Delete"))  # fmt: skip
    assert wait_for_phase(kube, "milvusbackups", "read-under")["phase"] == "Completed"
    apply(cluster, milvus_restore("reader", backupRef="read-under", collectionSuffix="_reader"))
    deadline = time.monotonic() + 60
    while not jobrunner.running("mrs-reader"):
        assert time.monotonic() < deadline, "the restore's Job never started"
        time.sleep(0.1)
    jobrunner.pause("mrs-reader")  # held mid-way, as a slow import would hold it
    cluster.kubectl("delete", "mbk", "read-under", "-n", NAMESPACE, "--wait=false")
    held = _blocked(kube, "read-under")
    assert held["reason"] == "InUse" and "MilvusRestore reader restores it" in held["message"]
    assert any("DeletionBlocked" in w and "reader" in w for w in _warnings(kube, "read-under"))
    time.sleep(BLOCKED_RETRY + 1)  # the finalizer looked again, and kept it again
    assert catalog(stack).exists("read_under") and get(kube, "milvusbackups", "read-under")
    jobrunner.resume("mrs-reader")
    restored = wait_for_phase(kube, "milvusrestores", "reader", timeout=180)
    assert restored["phase"] == "Completed", restored
    sample_data.prepare_for_query(stack.milvus.uri, TINY, "tiny_reader")
    assert sample_data.rows(stack.milvus.uri, TINY, "tiny_reader") == samples["tiny"]
    _gone(kube, "read-under")
    assert not catalog(stack).exists("read_under")
    sample_data.client(stack.milvus.uri).drop_collection("tiny_reader")


def test_a_running_backup_deleted_is_stopped_before_its_data_goes(
    cluster: Cluster, kube: client.ApiClient, stack: Stack, operator: OperatorProcess,
    jobrunner: LocalJobRunner, samples: Any,
) -> None:  # fmt: skip
    """Its Job is deleted first (its worker told to stop, SIGTERM), and only then its data:
    no copy lands after the delete."""
    name, backup = "stopped-mid", "stopped_mid"
    relay = S3Relay(
        stack.s3.endpoint,
        trigger=lambda method, path: method == "PUT" and f"/{backup}/binlogs/" in path,
        on_trigger=lambda: jobrunner.pause(f"mbk-{name}"),
    ).start()
    try:
        storage = {"endpoint": relay.endpoint, "credentialsSecret": {"name": "milvus-s3"}}
        apply(cluster, milvus_backup(name, stack, storage=storage, deletionPolicy="Delete",
                                     timeouts={"writerSilence": 12}))  # fmt: skip
        assert relay.triggered.wait(120), get(kube, "milvusbackups", name)
        assert backup_objects(stack, backup), "nothing was copied before the pause"
        cluster.kubectl("delete", "mbk", name, "-n", NAMESPACE, "--wait=false")
        _gone(kube, name)
        assert not jobrunner.running(f"mbk-{name}")
        assert "SIGTERM" in jobrunner.log_of(f"mbk-{name}"), jobrunner.log_of(f"mbk-{name}")
        time.sleep(2)  # anything still on its way would land now
        assert backup_objects(stack, backup) == {}
    finally:
        relay.stop()


def test_a_backup_a_restore_elsewhere_reads_is_kept_while_its_lease_lives(
    cluster: Cluster, kube: client.ApiClient, stack: Stack, operator: OperatorProcess,
    jobrunner: LocalJobRunner, samples: Any,
) -> None:  # fmt: skip
    """A restore outside this cluster (a CLI, a REST server) announces itself by its reader's
    lease beside the backup: the finalizer keeps the data, naming it, until the lease goes."""
    apply(cluster, milvus_backup("read-elsewhere", stack, collections=["tiny"],
                                 deletionPolicy="Delete"))  # fmt: skip
    assert wait_for_phase(kube, "milvusbackups", "read-elsewhere")["phase"] == "Completed"
    with catalog(stack).reading("read_elsewhere", "CLI restore on cluster b", "drill-7"):
        cluster.kubectl("delete", "mbk", "read-elsewhere", "-n", NAMESPACE, "--wait=false")
        held = _blocked(kube, "read-elsewhere")
        assert held["reason"] == "InUse", held
        assert "being read by a restore (CLI restore on cluster b" in held["message"], held
        assert catalog(stack).exists("read_elsewhere")
    _gone(kube, "read-elsewhere", timeout=BLOCKED_RETRY * 3)
    assert not catalog(stack).exists("read_elsewhere")
