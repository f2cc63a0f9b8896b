"""The operator end to end: kubectl apply, a Job, real data, status a human can read."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from milvus_backup_operator.engine.catalog import Catalog
from testbed import sample_data
from testbed.bed import NAMESPACE, OperatorProcess
from testbed.jobrunner import LocalJobRunner
from testbed.kube import Cluster
from testbed.sample_data import SAMPLES
from testbed.stack import Stack, stack_config
from tests.e2e.resources import (
    apply,
    condition,
    events_for,
    milvus_backup,
    milvus_restore,
    wait_for_phase,
)

pytestmark = pytest.mark.e2e

Rows = dict[Any, dict[str, Any]]


@pytest.fixture(scope="module")
def live(stack: Stack, samples: Any) -> dict[str, Rows]:
    """The rows as they are now (other test modules may have changed the samples)."""
    return {s.ref: sample_data.rows(stack.milvus.uri, s) for s in SAMPLES}


def catalog(stack: Stack) -> Catalog:
    return Catalog.of(stack_config(stack))


def test_backup_then_restore_through_the_operator(
    cluster: Cluster, kube: client.ApiClient, stack: Stack, operator: OperatorProcess,
    jobrunner: LocalJobRunner, live: dict[str, Rows],
) -> None:  # fmt: skip
    apply(cluster, milvus_backup("nightly-1", stack, collections=[s.ref for s in SAMPLES]))
    seen: list[dict[str, Any]] = []
    status = wait_for_phase(kube, "milvusbackups", "nightly-1", seen=seen)
    assert status["phase"] == "Completed", (status, jobrunner.log_of("mbk-nightly-1"))
    assert status["backupName"] == "nightly_1"  # milvus-backup names cannot hold '-'
    assert status["jobName"] == "mbk-nightly-1"
    assert status["progress"]["text"] == "100%" and status["size"].endswith("KiB")
    assert {s.ref for s in SAMPLES} <= {c["name"] for c in status["collections"]}
    assert condition(status, "Ready")["status"] == "True"
    assert condition(status, "Reconciling")["status"] == "False"
    assert status["observedGeneration"] == 1 and status["startTime"] <= status["completionTime"]
    # progress was visible while it ran
    phases = [s.get("phase") for s in seen]
    assert "Running" in phases and phases[-1] == "Completed"
    steps = {
        s["progress"]["phase"] for s in seen if s.get("phase") == "Running" and "progress" in s
    }
    assert steps & {"flushing", "copying", "verifying", "writing meta"}, seen
    assert catalog(stack).read("nightly_1").size == status["backupSize"]

    printed = cluster.kubectl("get", "mbk", "-n", NAMESPACE).stdout.splitlines()
    assert printed[0].split() == ["NAME", "PHASE", "PROGRESS", "SIZE", "AGE"]
    row = next(line.split() for line in printed if line.startswith("nightly-1 "))
    assert row[1:3] == ["Completed", "100%"] and row[4] == "KiB"

    rehearsal = milvus_restore(
        "nightly-1-rehearsal", backupRef="nightly-1", collectionSuffix="_rehearsal",
        rebuildIndex=True, load=True,
    )  # fmt: skip
    apply(cluster, rehearsal)
    restored = wait_for_phase(kube, "milvusrestores", "nightly-1-rehearsal")
    assert restored["phase"] == "Completed", (restored, jobrunner.log_of("mrs-nightly-1-rehearsal"))
    assert restored["backupName"] == "nightly_1"
    assert restored["target"] == f"{stack.milvus.host}:{stack.milvus.port}"
    for sample in SAMPLES:
        rows = sample_data.rows(stack.milvus.uri, sample, sample.name + "_rehearsal")
        assert rows == live[sample.ref], sample.ref
    printed = cluster.kubectl("get", "mrs", "-n", NAMESPACE).stdout.splitlines()
    assert printed[0].split() == ["NAME", "PHASE", "PROGRESS", "BACKUP", "TARGET", "AGE"]
    reasons = [reason for _, reason, _ in events_for(kube, "nightly-1")]
    assert {"Started", "Completed"} <= set(reasons)
