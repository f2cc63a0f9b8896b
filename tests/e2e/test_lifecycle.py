"""Restarts, lost Jobs and deletion: nothing lost, nothing duplicated, nothing half-complete."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes import client

from tests.e2e.bed import NAMESPACE, OperatorProcess
from tests.e2e.jobrunner import LocalJobRunner
from tests.e2e.resources import apply, get, milvus_backup, milvus_restore, wait_for_phase
from tests.e2e.test_operator import catalog
from tests.kube import Cluster
from tests.stack import Stack

pytestmark = pytest.mark.e2e


def jobs(kube: client.ApiClient) -> list[str]:
    return [j.metadata.name for j in client.BatchV1Api(kube).list_namespaced_job(NAMESPACE).items]


def test_operator_killed_mid_backup_the_job_finishes_and_is_recorded(
    cluster: Cluster, kube: client.ApiClient, stack: Stack, operator: OperatorProcess,
    jobrunner: LocalJobRunner, samples: Any,
) -> None:  # fmt: skip
    apply(cluster, milvus_backup("during-restart", stack))
    wait_for_phase(kube, "milvusbackups", "during-restart", phases=("Running",), timeout=60)
    operator.kill()  # the Job keeps going without its operator
    wait_for_phase(kube, "milvusbackups", "during-restart", phases=("Completed",), timeout=120)
    operator.start()
    status = wait_for_phase(kube, "milvusbackups", "during-restart")
    assert status["phase"] == "Completed"
    assert jobs(kube).count("mbk-during-restart") == 1  # resumed, not started again
    info = catalog(stack).read("during_restart")
    assert info.size == status["backupSize"] > 0


def test_a_lost_job_fails_the_backup_with_a_reason_and_leaves_no_half_backup(
    cluster: Cluster, kube: client.ApiClient, stack: Stack, operator: OperatorProcess,
    jobrunner: LocalJobRunner, samples: Any,
) -> None:  # fmt: skip
    apply(cluster, milvus_backup("lost-job", stack))
    seen: list[dict[str, Any]] = []
    wait_for_phase(kube, "milvusbackups", "lost-job", phases=("Running",), timeout=60, seen=seen)
    jobrunner.kill("mbk-lost-job")
    status = wait_for_phase(kube, "milvusbackups", "lost-job")
    if status["phase"] == "Completed":  # the Job finished before the kill: nothing to prove
        pytest.skip("the backup completed before its Job could be killed")
    assert status["phase"] == "Failed"
    assert "Job mbk-lost-job failed" in status["message"]
    assert "see its logs" in status["message"]
    assert not catalog(stack).exists("lost_job")  # removed, or never written


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
