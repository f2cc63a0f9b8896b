"""The inline executor: the work runs inside the operator, and survives its restart."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from testbed.bed import OperatorProcess, WebhookTLS
from testbed.kube import Cluster
from testbed.stack import Stack
from tests.e2e.resources import apply, milvus_backup, wait_for_phase
from tests.e2e.test_operator import catalog

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def inline_operator(
    operator_kubeconfig: Path, secrets: Any, webhook_tls: WebhookTLS,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:  # fmt: skip
    log = tmp_path_factory.mktemp("inline") / "operator.log"
    process = OperatorProcess(operator_kubeconfig, log, "inline", webhook_tls).start()
    try:
        yield process
    finally:
        process.stop()


def test_inline_backup_killed_mid_way_resumes_after_restart(
    cluster: Cluster, kube: client.ApiClient, stack: Stack, inline_operator: OperatorProcess,
    samples: Any,
) -> None:  # fmt: skip
    gateway = next(d for d in stack.rgw.daemons if d.name == "client.rgw")
    gateway.signal(signal.SIGSTOP)  # S3 stalls: the backup is caught in flight, deterministically
    try:
        apply(cluster, milvus_backup("inline-1", stack))
        wait_for_phase(kube, "milvusbackups", "inline-1", phases=("Running",), timeout=60)
        inline_operator.kill()  # the work dies with it, half way
    finally:
        gateway.signal(signal.SIGCONT)
    inline_operator.start()
    status = wait_for_phase(kube, "milvusbackups", "inline-1")
    assert status["phase"] == "Completed", (status, inline_operator.log.read_text()[-3000:])
    assert status["jobName"] == "inline"
    info = catalog(stack).read("inline_1")  # complete, and only once
    assert info.size == status["backupSize"]
    assert {"books", "tiny", "db1.docs"} <= {c.qualified_name for c in info.collection_backups}
