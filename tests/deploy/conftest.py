"""Fixtures of the deployment tests: helm, and the chart installed on the end-to-end bed.

The bed's fixtures (a real kube-apiserver, the admin client, the test-only Job runner) come from
``tests/e2e/conftest.py``. pytest keeps a session fixture per conftest that defines it, so when
this folder runs together with ``tests/e2e`` it gets an API server of its own: nothing either
folder leaves behind (namespaces, webhooks, RBAC) can reach the other.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from testbed.bed import service_account_token
from testbed.jobrunner import LocalJobRunner
from testbed.kube import Cluster
from testbed.stack import Stack
from testbed.stack.rgw import free_ports
from tests.deploy.chart import (
    ChartInstall,
    ChartOperator,
    apply,
    container,
    create_stack_secrets,
    local_args,
    namespaces,
    render,
    write_job_defaults,
    write_webhook_certs,
)
from tests.e2e.conftest import cluster, jobrunner, kube

__all__ = ["cluster", "jobrunner", "kube"]  # the bed's fixtures, for this folder too

#: The release the end-to-end tests install: namespaced mode, watching one namespace of its own
#: (one operator per namespace: the e2e suite's operators watch team-a).
RELEASE, RELEASE_NAMESPACE, WATCHED = "mbo", "mbo-chart", "chart-e2e"
#: The Job settings the e2e release sets (every backup's Job must carry them).
CHART_JOB_TEMPLATE = {
    "nodeSelector": {"pool": "backup"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "backup",
                     "effect": "NoSchedule"}],
    "resources": {"limits": {"memory": "2Gi"}},
    "podAnnotations": {"sidecar.istio.io/inject": "false"},
    "podLabels": {"team": "platform"},
}  # fmt: skip


def e2e_values(stack: Stack) -> dict[str, Any]:
    """Namespaced mode, the REST server on, and the stack's Milvus and S3 for its template."""
    return {
        "watchNamespaces": [WATCHED],
        "restServer": {"enabled": True, "namespace": WATCHED},
        "milvus": {"address": stack.milvus.host, "port": stack.milvus.port,
                   "existingSecret": "milvus-auth"},
        "storage": {"endpoint": stack.s3.endpoint, "existingSecret": "milvus-s3"},
        "jobTemplate": CHART_JOB_TEMPLATE,
    }  # fmt: skip


@pytest.fixture(scope="module")
def chart_install(
    cluster: Cluster, stack: Stack, samples: Any, jobrunner: LocalJobRunner,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ChartInstall]:  # fmt: skip
    """The chart applied with kubectl, and the operator started with its Deployment's args,
    under its ServiceAccount's token: the RBAC it gets is the chart's."""
    namespaces(cluster, RELEASE_NAMESPACE, WATCHED)
    docs = render(RELEASE, RELEASE_NAMESPACE, e2e_values(stack))
    apply(cluster, docs, dry_run=True)
    apply(cluster, docs)
    create_stack_secrets(cluster, stack, WATCHED)
    folder = tmp_path_factory.mktemp("chart")
    certs = write_webhook_certs(docs, folder / "certs")
    token = service_account_token(cluster, RELEASE_NAMESPACE, f"{RELEASE}-milvus-backup-operator")
    kubeconfig = cluster.kubeconfig_for_token(token, folder / "kubeconfig")
    health_port, webhook_port = free_ports(2)
    deployment = next(
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("operator")
    )
    args = local_args(
        container(deployment)["args"], health_port=health_port, webhook_port=webhook_port,
        certs=certs, job_defaults=write_job_defaults(docs, folder / "job-defaults.yaml"),
    )  # fmt: skip
    operator = ChartOperator(
        kubeconfig, folder / "operator.log", args=args, health_port=health_port
    )
    operator.start()
    try:
        yield ChartInstall(RELEASE, RELEASE_NAMESPACE, WATCHED, docs, operator, webhook_port, certs)
    finally:
        operator.stop()
