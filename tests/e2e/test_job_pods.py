"""Job pods as a platform team sets them, on the real kube-apiserver: the operator's defaults
(``--job-defaults``, as the chart passes them) under a resource's ``spec.jobTemplate``, the
Job's labels ours, the Job logging at the operator's level and format, and the backup done."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from testbed.bed import NAMESPACE, OperatorProcess, WebhookTLS, install_webhook
from testbed.jobrunner import LocalJobRunner
from testbed.kube import Cluster
from testbed.stack import Stack
from tests.e2e.resources import apply, milvus_backup, wait_for_phase
from tests.e2e.test_operator import catalog

pytestmark = pytest.mark.e2e

#: the operator's defaults (the chart's jobTemplate values)
DEFAULTS = {
    "nodeSelector": {"pool": "batch", "disk": "ssd"},
    "tolerations": [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}],
    "resources": {"requests": {"cpu": "200m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}},
    "podAnnotations": {"sidecar.istio.io/inject": "false"},
    "podLabels": {"team": "platform"},
}
#: one resource's own settings, over the defaults
OWN = {
    "nodeSelector": {"disk": "nvme"},
    "tolerations": [{"key": "backup", "operator": "Equal", "value": "yes",
                     "effect": "NoExecute", "tolerationSeconds": 300}],
    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]}]}}},
    "imagePullSecrets": [{"name": "registry-cred"}],
    "resources": {"limits": {"memory": "4Gi", "cpu": "2"}},
    "podAnnotations": {"backup.example.com/owner": "search-team"},
    "podLabels": {"team": "search", "app": "nightly-backup"},
    "priorityClassName": "backup-critical",
}  # fmt: skip


@pytest.fixture(scope="module")
def operator(
    cluster: Cluster, operator_kubeconfig: Path, jobrunner: LocalJobRunner, secrets: Any,
    webhook_tls: WebhookTLS, tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:  # fmt: skip
    """The operator as the chart runs it with jobTemplate values, JSON logs at level info."""
    folder = tmp_path_factory.mktemp("jobpods")
    defaults = folder / "job-defaults.yaml"
    defaults.write_text(yaml.safe_dump(DEFAULTS))
    process = OperatorProcess(
        operator_kubeconfig, folder / "operator.log", webhook=webhook_tls,
        options=("--log-level", "info"), extra=("--json-logs", "--job-defaults", str(defaults)),
    ).start()  # fmt: skip
    install_webhook(cluster, webhook_tls)
    try:
        yield process
    finally:
        process.stop()


def test_a_backups_job_carries_the_defaults_and_its_own_settings(
    cluster: Cluster, kube: client.ApiClient, stack: Stack, operator: OperatorProcess,
    jobrunner: LocalJobRunner, samples: Any,
) -> None:  # fmt: skip
    priority = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                "metadata": {"name": "backup-critical"}, "value": 100000,
                "description": "backups before batch work"}  # fmt: skip
    apply(cluster, priority)  # what the Pod's priority admission would look up on a real cluster
    body = milvus_backup("pods-1", stack, collections=["tiny"], jobTemplate=OWN,
                         timeouts={"flush": 900, "rpc": 120})  # fmt: skip
    apply(cluster, body)
    status = wait_for_phase(kube, "milvusbackups", "pods-1")
    assert status["phase"] == "Completed", (status, jobrunner.log_of("mbk-pods-1"))
    assert catalog(stack).read("pods_1").size == status["backupSize"]

    job = client.BatchV1Api(kube).read_namespaced_job("mbk-pods-1", NAMESPACE)
    job = client.ApiClient().sanitize_for_serialization(job)
    template = job["spec"]["template"]
    pod = template["spec"]
    assert pod["nodeSelector"] == {"pool": "batch", "disk": "nvme"}  # maps merged
    assert pod["tolerations"] == OWN["tolerations"]  # lists replaced
    assert pod["affinity"] == OWN["affinity"]
    assert pod["imagePullSecrets"] == OWN["imagePullSecrets"]
    assert pod["priorityClassName"] == "backup-critical"
    assert pod["containers"][0]["resources"] == {
        "requests": {"cpu": "200m", "memory": "512Mi"}, "limits": {"memory": "4Gi", "cpu": "2"},
    }  # fmt: skip
    assert template["metadata"]["annotations"] == {
        "sidecar.istio.io/inject": "false", "backup.example.com/owner": "search-team",
    }  # fmt: skip
    ours = {"app.kubernetes.io/managed-by": "milvus-backup-operator",
            "backup.milvus.io/kind": "backup", "backup.milvus.io/name": "pods-1"}  # fmt: skip
    labels = template["metadata"]["labels"]
    assert {k: labels[k] for k in ours} == ours and labels["team"] == "search"
    assert labels["app"] == "nightly-backup" and job["metadata"]["labels"] == ours

    # the Job logs as the operator does: level info, one JSON object per line (the worktree's
    # code ran in it: an older ``job`` command refuses --json-logs)
    command = pod["containers"][0]["command"]
    assert command[1:4] == ["--log-level", "info", "job"] and command[-1] == "--json-logs"
    lines = [line for line in jobrunner.log_of("mbk-pods-1").splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    assert any("planned tiny" in r["message"] for r in records), lines


def test_an_unknown_job_setting_is_refused_by_name_at_apply(
    cluster: Cluster, stack: Stack, operator: OperatorProcess
) -> None:
    for spec, named in (
        ({"jobTemplate": {"nodeSelectr": {"pool": "x"}}}, "spec.jobTemplate.nodeSelectr"),
        ({"jobTemplate": {"podLabels": {"backup.milvus.io/name": "x"}}},
         "spec.jobTemplate.podLabels.backup.milvus.io/name"),
        ({"timeouts": {"flush": 0}}, "spec.timeouts.flush"),
    ):  # fmt: skip
        result = apply(cluster, milvus_backup("refused-pods", stack, **spec), check=False)
        assert result.returncode != 0 and named in result.stderr, result.stderr


def test_a_job_the_api_server_refuses_fails_the_backup_with_its_reason(
    cluster: Cluster, kube: client.ApiClient, stack: Stack, operator: OperatorProcess
) -> None:
    """Inside an affinity only the API server checks: the Job is refused, the backup Fails
    with the server's reason (not Pending forever), and nothing is written."""
    empty_terms = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": []}}}  # fmt: skip
    body = milvus_backup("pods-bad-affinity", stack, collections=["tiny"],
                         jobTemplate={"affinity": empty_terms})  # fmt: skip
    apply(cluster, body)
    status = wait_for_phase(kube, "milvusbackups", "pods-bad-affinity", timeout=60)
    assert status["phase"] == "Failed", status
    assert "the API server refused Job mbk-pods-bad-affinity" in status["message"], status
    assert "nodeSelectorTerms" in status["message"] and "fix spec.jobTemplate" in status["message"]
    assert not catalog(stack).exists("pods_bad_affinity")
