"""Fixtures of the end-to-end bed: a real kube-apiserver, the real Milvus + S3 stack, the
operator as a process under the RBAC the chart ships, and the test-only Job runner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from testbed.bed import (
    SYSTEM,
    OperatorProcess,
    WebhookTLS,
    create_secrets,
    install_webhook,
    make_webhook_tls,
    prepare_cluster,
    service_account_token,
)
from testbed.jobrunner import LocalJobRunner
from testbed.kube import Cluster, ensure_built, start_cluster
from testbed.stack import Stack


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    ensure_built()
    started = start_cluster(tmp_path_factory.mktemp("kube"), die_with_parent=True)
    try:
        prepare_cluster(started)
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="session")
def operator_kubeconfig(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    token = service_account_token(cluster, SYSTEM, "milvus-backup-operator")
    return cluster.kubeconfig_for_token(token, tmp_path_factory.mktemp("op") / "kubeconfig")


@pytest.fixture(scope="session")
def kube(cluster: Cluster) -> client.ApiClient:
    """An admin API client (the tests' own view, like a cluster admin's kubectl)."""
    return config.new_client_from_config(str(cluster.kubeconfig))


@pytest.fixture(scope="session")
def secrets(cluster: Cluster, stack: Stack) -> dict[str, str]:
    """The credentials Secrets, as a platform team would create them."""
    return create_secrets(cluster, stack)


@pytest.fixture(scope="session")
def jobrunner(
    cluster: Cluster, kube: client.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalJobRunner]:
    runner = LocalJobRunner(kube, tmp_path_factory.mktemp("jobs"), cluster.kubeconfig_for_token)
    runner.start()
    try:
        yield runner
    finally:
        runner.stop()


@pytest.fixture(scope="session")
def webhook_tls(tmp_path_factory: pytest.TempPathFactory) -> WebhookTLS:
    return make_webhook_tls(tmp_path_factory.mktemp("webhook"))


@pytest.fixture(scope="module")
def operator(
    cluster: Cluster, operator_kubeconfig: Path, jobrunner: LocalJobRunner, secrets: Any,
    webhook_tls: WebhookTLS, tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:  # fmt: skip
    log = tmp_path_factory.mktemp("oplog") / "operator.log"
    process = OperatorProcess(operator_kubeconfig, log, webhook=webhook_tls).start()
    install_webhook(cluster, webhook_tls)
    try:
        yield process
    finally:
        process.stop()
