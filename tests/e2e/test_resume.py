"""A restore whose Job dies mid-way is resumed by a new Job, and a copy of a finished restore
is never run again: on the real kube-apiserver, with the operator and the real Milvus + S3."""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest
from kubernetes import client

from testbed import sample_data
from testbed.bed import NAMESPACE, OperatorProcess
from testbed.jobrunner import LocalJobRunner
from testbed.kube import Cluster
from testbed.sample_data import SAMPLES
from testbed.stack import Stack
from tests.e2e.resources import apply, get, milvus_backup, milvus_restore, wait_for_phase

pytestmark = pytest.mark.e2e


def running_with_a_collection_started(
    kube: client.ApiClient, name: str, timeout: float = 120
) -> dict[str, Any]:
    """Poll until the restore has recorded a collection it created (``Running``, with the ID
    Milvus gave it: what lets the resumed run drop it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = (get(kube, "milvusrestores", name) or {}).get("status") or {}
        if any(
            c.get("state") == "Running" and c.get("collectionID")
            for c in status.get("collections", [])
        ):
            return status
        assert status.get("phase") not in ("Completed", "Failed"), status
        time.sleep(0.05)
    raise TimeoutError(f"milvusrestores/{name} never started a collection")


def test_a_restore_whose_job_is_killed_mid_way_is_resumed_by_a_new_job(
    cluster: Cluster, kube: client.ApiClient, stack: Stack, operator: OperatorProcess,
    jobrunner: LocalJobRunner, samples: Any,
) -> None:  # fmt: skip
    live = {s.ref: sample_data.rows(stack.milvus.uri, s) for s in SAMPLES}
    apply(cluster, milvus_backup("resume-src", stack, collections=[s.ref for s in SAMPLES]))
    assert wait_for_phase(kube, "milvusbackups", "resume-src")["phase"] == "Completed"
    restore = milvus_restore("resume-1", backupRef="resume-src", collectionSuffix="_res",
                             rebuildIndex=True, load=True)  # fmt: skip
    apply(cluster, restore)
    gateway = next(d for d in stack.rgw.daemons if d.name == "client.rgw")
    running_with_a_collection_started(kube, "resume-1")
    gateway.signal(signal.SIGSTOP)  # the restore is held mid-way: imports and copies stall
    try:
        at_kill = (get(kube, "milvusrestores", "resume-1") or {})["status"]
        jobrunner.pause("mrs-resume-1")  # its node stops answering...
    finally:
        gateway.signal(signal.SIGCONT)
    jobrunner.kill("mrs-resume-1")  # ...and its Pod is lost with it
    assert at_kill["phase"] == "Running"
    assert {c["state"] for c in at_kill["collections"]} & {"Running"}, at_kill

    status = wait_for_phase(kube, "milvusrestores", "resume-1", timeout=300)
    assert status["phase"] == "Completed", (status, jobrunner.log_of("mrs-resume-1-r1"))
    assert status["attempts"] == 1 and status["jobName"] == "mrs-resume-1-r1"
    assert status["startTime"] == at_kill["startTime"]  # one restore, resumed
    assert sorted(c["name"] for c in status["collections"]) == sorted(s.ref for s in SAMPLES)
    for sample in SAMPLES:  # every row back, none twice
        restored = sample_data.rows(stack.milvus.uri, sample, sample.name + "_res")
        assert restored == live[sample.ref], sample.ref


def test_a_copy_of_a_completed_restore_is_adopted_and_never_run_again(
    cluster: Cluster, kube: client.ApiClient, stack: Stack, operator: OperatorProcess,
    jobrunner: LocalJobRunner, samples: Any,
) -> None:  # fmt: skip
    apply(cluster, milvus_backup("adopt-src", stack, collections=["tiny"]))
    assert wait_for_phase(kube, "milvusbackups", "adopt-src")["phase"] == "Completed"
    spec = {"backupRef": "adopt-src", "collectionSuffix": "_adopt", "rebuildIndex": True,
            "load": True, "dropExistingCollection": True}  # fmt: skip
    apply(cluster, milvus_restore("adopt-1", **spec))
    assert wait_for_phase(kube, "milvusrestores", "adopt-1")["phase"] == "Completed"
    deadline = time.monotonic() + 30
    while "backup.milvus.io/completed" not in _annotations(kube, "adopt-1"):
        assert time.monotonic() < deadline, "the completion mark was never written"
        time.sleep(0.2)
    saved = get(kube, "milvusrestores", "adopt-1")
    assert saved is not None
    uri = stack.milvus.uri
    written = [{"code": f"new{i}", "emb": [0.5] * 4, "score": 1.0} for i in range(3)]
    sample_data.client(uri).insert("tiny_adopt", written)  # the restored data is live now
    after_restore = sample_data.rows(uri, sample_data.TINY, "tiny_adopt")
    assert {"new0", "new1", "new2"} <= set(after_restore)

    # Velero's restore of the namespace: the same object, its annotations, no status
    cluster.kubectl("delete", "mrs", "adopt-1", "-n", NAMESPACE, "--wait=true")
    copy = {"apiVersion": saved["apiVersion"], "kind": saved["kind"], "spec": saved["spec"],
            "metadata": {"name": "adopt-1", "namespace": NAMESPACE,
                         "annotations": saved["metadata"]["annotations"]}}  # fmt: skip
    apply(cluster, copy)
    status = wait_for_phase(kube, "milvusrestores", "adopt-1")
    assert status["phase"] == "Completed"
    assert "not run" in status["message"] and "new name" in status["message"]
    assert sample_data.rows(uri, sample_data.TINY, "tiny_adopt") == after_restore  # untouched
    assert not jobrunner.running("mrs-adopt-1")


def _annotations(
    kube: client.ApiClient, name: str, plural: str = "milvusrestores"
) -> dict[str, str]:
    body = get(kube, plural, name) or {}
    return dict(body.get("metadata", {}).get("annotations") or {})


def test_a_copy_of_a_completed_backup_whose_data_is_there_is_adopted(
    cluster: Cluster, kube: client.ApiClient, stack: Stack, operator: OperatorProcess,
    jobrunner: LocalJobRunner, samples: Any,
) -> None:  # fmt: skip
    apply(cluster, milvus_backup("adopt-b", stack, collections=["tiny"]))
    done = wait_for_phase(kube, "milvusbackups", "adopt-b")
    assert done["phase"] == "Completed"
    deadline = time.monotonic() + 30
    while "backup.milvus.io/completed" not in _annotations(kube, "adopt-b", "milvusbackups"):
        assert time.monotonic() < deadline, "the completion mark was never written"
        time.sleep(0.2)
    saved = get(kube, "milvusbackups", "adopt-b")
    assert saved is not None
    cluster.kubectl("delete", "mbk", "adopt-b", "-n", NAMESPACE, "--wait=true")  # Retain
    copy = {"apiVersion": saved["apiVersion"], "kind": saved["kind"], "spec": saved["spec"],
            "metadata": {"name": "adopt-b", "namespace": NAMESPACE,
                         "annotations": saved["metadata"]["annotations"]}}  # fmt: skip
    apply(cluster, copy)
    status = wait_for_phase(kube, "milvusbackups", "adopt-b")
    assert status["phase"] == "Completed" and "not run" in status["message"]
    assert status["backupName"] == "adopt_b"
    assert len(jobrunner.runs["mbk-adopt-b"]) == 1  # the first backup's Job only


def test_a_completion_mark_naming_another_writer_adopts_nothing(
    cluster: Cluster, kube: client.ApiClient, stack: Stack, operator: OperatorProcess,
    jobrunner: LocalJobRunner, samples: Any,
) -> None:  # fmt: skip
    """A new MilvusBackup with the completion mark written by hand over a backup it did not
    make (here one made by the command line) is not adopted: it would own that backup, and
    deleting it with deletionPolicy Delete would delete the data of another."""
    from milvus_backup_operator.engine.backup import BackupRequest, create_backup
    from milvus_backup_operator.engine.catalog import Catalog
    from milvus_backup_operator.engine.selection import parse_list
    from testbed.stack import stack_config

    config = stack_config(stack)
    create_backup(config, BackupRequest("claimed_from_cli", tuple(parse_list("tiny"))))
    claim = milvus_backup("claim", stack, backupName="claimed_from_cli", deletionPolicy="Delete")
    claim["metadata"]["annotations"] = {"backup.milvus.io/completed": "forged 2026-01-01T00:00:00Z"}
    apply(cluster, claim)
    status = wait_for_phase(kube, "milvusbackups", "claim")
    assert status["phase"] == "Failed" and "not adopted" in status["message"], status
    assert "mbk-claim" not in jobrunner.runs
    cluster.kubectl("delete", "mbk", "claim", "-n", NAMESPACE, "--wait=true")
    assert Catalog.of(config).exists("claimed_from_cli"), "another writer's backup was deleted"
    Catalog.of(config).delete("claimed_from_cli")
