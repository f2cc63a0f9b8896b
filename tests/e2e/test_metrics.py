"""/metrics of the operator process, scraped while a backup runs on the real kube-apiserver
and Milvus: the values follow the backup's status as its Job writes it, and go with it."""

from __future__ import annotations

import threading
import time
import urllib.request
from datetime import datetime
from typing import Any

import pytest
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from testbed.bed import NAMESPACE, OperatorProcess, healthz_ok
from testbed.jobrunner import LocalJobRunner
from testbed.kube import Cluster
from testbed.sample_data import SAMPLES
from testbed.stack import Stack
from tests.e2e.resources import apply, get, milvus_backup, wait_for_phase

pytestmark = pytest.mark.e2e

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
NAME = "metered"
LABELS = {"kind": "MilvusBackup", "namespace": NAMESPACE, "name": NAME, "schedule": "hourly"}


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, metric: str, /, **labels: str) -> float | None:
    return samples.get((metric, frozenset(labels.items())))


def current_phase(samples: Samples) -> str | None:
    on = [
        dict(labels)["phase"] for (metric, labels), v in samples.items()
        if metric == "milvus_backup_phase" and dict(labels)["name"] == NAME and v == 1.0
    ]  # fmt: skip
    assert len(on) <= 1, on
    return on[0] if on else None


def seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_metrics_follow_a_backup_from_its_status_and_go_with_it(
    cluster: Cluster, kube: client.ApiClient, stack: Stack, samples: Any,
    operator: OperatorProcess, jobrunner: LocalJobRunner,
) -> None:  # fmt: skip
    port = operator.health_port
    first = scrape(port)
    assert value(first, "milvus_backup_operator_info", version="0.1.0") == 1.0
    assert ("process_cpu_seconds_total", frozenset()) in first
    assert current_phase(first) is None

    phases: list[str | None] = []  # as the scrapes saw them, every 50 ms
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            phase = current_phase(scrape(port))
            if not phases or phases[-1] != phase:
                phases.append(phase)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    backup = milvus_backup(NAME, stack, collections=[s.ref for s in SAMPLES])
    backup["metadata"]["labels"] = {"backup.milvus.io/schedule": "hourly"}  # made by a schedule
    try:
        apply(cluster, backup)
        status = wait_for_phase(kube, "milvusbackups", NAME)
        assert status["phase"] == "Completed", (status, jobrunner.log_of(f"mbk-{NAME}"))
        deadline = time.monotonic() + 30
        while phases[-1:] != ["Completed"] and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        watcher.join(10)
    assert phases[0] is None and phases[-1] == "Completed", phases
    assert {"Pending", "Running"} & set(phases), phases  # it was seen under way first
    assert "Failed" not in phases

    done = scrape(port)
    assert value(done, "milvus_backup_phase", **LABELS, phase="Completed") == 1.0
    for other in ("Pending", "Running", "Failed"):
        assert value(done, "milvus_backup_phase", **LABELS, phase=other) == 0.0
    completed = seconds(status["completionTime"])
    assert value(done, "milvus_backup_last_success_timestamp_seconds", **LABELS) == completed
    assert value(done, "milvus_backup_last_duration_seconds", **LABELS) == (
        completed - seconds(status["startTime"])
    )
    assert status["backupSize"] > 0
    assert value(done, "milvus_backup_size_bytes", **LABELS) == float(status["backupSize"])
    assert value(done, "milvus_backup_failures_total", **LABELS) == 0.0
    calls = value(done, "milvus_backup_operator_reconciles_total", handler="backup.reconcile")
    assert calls is not None and calls >= 1

    cluster.kubectl("delete", "mbk", "-n", NAMESPACE, NAME, "--wait=true")
    deadline = time.monotonic() + 30
    while get(kube, "milvusbackups", NAME) is not None or current_phase(scrape(port)):
        assert time.monotonic() < deadline, "the deleted backup's series stayed"
        time.sleep(0.1)
    gone = scrape(port)
    assert not [key for key in gone if ("name", NAME) in key[1]]
    assert healthz_ok(port)
