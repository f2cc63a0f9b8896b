"""The operator's metrics, from status objects as Kopf hands them over (no cluster): what a
scrape shows while a resource moves through its phases, for schedules, for handler calls,
and the HTTP endpoints on the health port."""

from __future__ import annotations

import asyncio
import logging
import socket
import urllib.request
from typing import Any

import kopf
import pytest
from prometheus_client.parser import text_string_to_metric_families

from milvus_backup_operator.api import Kind
from milvus_backup_operator.controllers import monitoring
from milvus_backup_operator.controllers.metrics import SCHEDULE_LABEL, Metrics, counted, timestamp
from milvus_backup_operator.controllers.services import Services
from tests.unit.controllers.test_controllers import RecordingExecutor

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

T0 = "2026-11-25T01:00:00Z"
T1 = "2026-11-25T01:02:30Z"


def scrape(metrics: Metrics) -> Samples:
    """Every sample of a scrape, by (name, labels)."""
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def value(samples: Samples, metric: str, /, **labels: str) -> float | None:
    return samples.get((metric, frozenset(labels.items())))


def names(samples: Samples, prefix: str = "milvus_backup_") -> set[str]:
    return {
        name for name, _ in samples if name.startswith(prefix) and "operator" not in name
    }  # fmt: skip


def body(name: str, status: dict[str, Any] | None = None, **labels: str) -> kopf.Body:
    raw = {
        "apiVersion": "backup.milvus.io/v1alpha1", "kind": "MilvusBackup",
        "metadata": {"name": name, "namespace": "milvus", "labels": labels, "uid": "u-1"},
        "spec": {}, "status": status or {},
    }  # fmt: skip
    return kopf.Body(raw)


BACKUP = {"kind": "MilvusBackup", "namespace": "milvus", "name": "nightly", "schedule": ""}


def phases(samples: Samples, **labels: str) -> dict[str, float | None]:
    return {
        phase: value(samples, "milvus_backup_phase", **labels, phase=phase)
        for phase in ("Pending", "Running", "Completed", "Failed")
    }


def test_a_backup_is_followed_through_its_phases_from_its_status() -> None:
    metrics = Metrics(process=False)
    monitoring._observe(Kind.BACKUP, body("nightly"), None, metrics)
    samples = scrape(metrics)
    assert phases(samples, **BACKUP) == dict.fromkeys(
        ("Pending", "Running", "Completed", "Failed"), 0.0
    )
    assert value(samples, "milvus_backup_failures_total", **BACKUP) == 0.0

    monitoring._observe(Kind.BACKUP, body("nightly", {"phase": "Running", "startTime": T0}),
                        "MODIFIED", metrics)  # fmt: skip
    samples = scrape(metrics)
    assert phases(samples, **BACKUP)["Running"] == 1.0
    assert phases(samples, **BACKUP)["Pending"] == 0.0
    for unknown in ("last_success_timestamp_seconds", "last_duration_seconds", "size_bytes"):
        assert value(samples, f"milvus_backup_{unknown}", **BACKUP) is None, unknown

    done = {"phase": "Completed", "startTime": T0, "completionTime": T1, "backupSize": 257434}
    monitoring._observe(Kind.BACKUP, body("nightly", done), "MODIFIED", metrics)
    samples = scrape(metrics)
    assert phases(samples, **BACKUP) == {"Pending": 0.0, "Running": 0.0, "Completed": 1.0,
                                         "Failed": 0.0}  # fmt: skip
    assert value(samples, "milvus_backup_last_success_timestamp_seconds", **BACKUP) == 1795568550
    assert value(samples, "milvus_backup_last_duration_seconds", **BACKUP) == 150.0
    assert value(samples, "milvus_backup_size_bytes", **BACKUP) == 257434.0
    assert value(samples, "milvus_backup_failures_total", **BACKUP) == 0.0


def test_a_failed_restore_counts_its_dead_workers_and_its_failure_and_has_no_size() -> None:
    metrics = Metrics(process=False)
    failed = {"phase": "Failed", "startTime": T0, "completionTime": T1, "attempts": 2}
    raw = dict(body("rehearsal", failed))
    raw["kind"] = "MilvusRestore"
    monitoring._observe(Kind.RESTORE, kopf.Body(raw), None, metrics)
    labels = {**BACKUP, "kind": "MilvusRestore", "name": "rehearsal"}
    samples = scrape(metrics)
    assert phases(samples, **labels)["Failed"] == 1.0
    assert value(samples, "milvus_backup_failures_total", **labels) == 3.0
    assert value(samples, "milvus_backup_last_duration_seconds", **labels) == 150.0
    assert value(samples, "milvus_backup_last_success_timestamp_seconds", **labels) is None
    assert value(samples, "milvus_backup_size_bytes", **labels) is None


def test_a_backup_made_by_a_schedule_carries_its_name() -> None:
    metrics = Metrics(process=False)
    labels = {SCHEDULE_LABEL: "nightly"}
    monitoring._observe(Kind.BACKUP, body("nightly-202611250100", {"phase": "Running"}, **labels),
                        None, metrics)  # fmt: skip
    samples = scrape(metrics)
    scheduled = {**BACKUP, "name": "nightly-202611250100", "schedule": "nightly"}
    assert phases(samples, **scheduled)["Running"] == 1.0


def test_a_deleted_resource_leaves_no_series() -> None:
    metrics = Metrics(process=False)
    done = {"phase": "Completed", "startTime": T0, "completionTime": T1, "backupSize": 1}
    monitoring._observe(Kind.BACKUP, body("nightly", done), None, metrics)
    monitoring._observe(Kind.BACKUP, body("other", {"phase": "Running"}), None, metrics)
    monitoring._observe(Kind.BACKUP, body("nightly", done), "DELETED", metrics)
    samples = scrape(metrics)
    assert not [key for key in samples if ("name", "nightly") in key[1]]
    assert phases(samples, **{**BACKUP, "name": "other"})["Running"] == 1.0
    monitoring._observe(Kind.BACKUP, body("other", {}), "DELETED", metrics)
    assert names(scrape(metrics)) == set()


def test_a_schedule_is_recorded_by_its_controller_and_forgotten() -> None:
    metrics = Metrics(process=False)
    metrics.record_schedule(
        "milvus", "nightly", period_seconds=86400, next_run_time=T1, last_success_time=T0,
        created_time=1_700_000_000, suspended=True, failures_total=2,
    )  # fmt: skip
    samples = scrape(metrics)
    labels = {"namespace": "milvus", "name": "nightly"}
    assert value(samples, "milvus_backup_schedule_period_seconds", **labels) == 86400
    assert value(samples, "milvus_backup_schedule_next_run_timestamp_seconds", **labels) == (
        timestamp(T1)
    )
    assert value(samples, "milvus_backup_schedule_last_success_timestamp_seconds", **labels) == (
        timestamp(T0)
    )
    assert value(samples, "milvus_backup_schedule_created_timestamp_seconds", **labels) == 1.7e9
    assert value(samples, "milvus_backup_schedule_suspended", **labels) == 1.0
    assert value(samples, "milvus_backup_schedule_failures_total", **labels) == 2.0
    assert value(samples, "milvus_backup_schedule_last_size_bytes", **labels) is None  # unknown
    metrics.record_schedule("milvus", "nightly", period_seconds=3600)
    samples = scrape(metrics)
    assert value(samples, "milvus_backup_schedule_suspended", **labels) == 0.0
    assert value(samples, "milvus_backup_schedule_last_success_timestamp_seconds", **labels) is None
    metrics.forget_schedule("milvus", "nightly")
    assert names(scrape(metrics), "milvus_backup_schedule_") == set()


def test_handler_calls_and_their_errors_are_counted_by_handler() -> None:
    run = Services(RecordingExecutor())
    run.metrics = Metrics(process=False)

    @counted
    def reconcile(*, memo: kopf.Memo, fail: bool = False, **_: Any) -> str:
        if fail:
            raise kopf.TemporaryError("not yet", delay=1)
        return "done"

    memo = kopf.Memo(services=run)
    assert reconcile(memo=memo) == "done"
    assert reconcile.__name__ == "reconcile"  # Kopf's handler id stays the same
    with pytest.raises(kopf.TemporaryError):
        reconcile(memo=memo, fail=True)
    assert reconcile(memo=kopf.Memo()) == "done"  # no services: not counted, not broken
    samples = scrape(run.metrics)
    handler = "test_metrics.reconcile"
    assert value(samples, "milvus_backup_operator_reconciles_total", handler=handler) == 2.0
    assert value(samples, "milvus_backup_operator_reconcile_errors_total", handler=handler,
                 error="TemporaryError") == 1.0  # fmt: skip


def test_the_real_handlers_are_counted() -> None:
    from milvus_backup_operator.controllers import backup, lifecycle, restore

    for handler in (backup.reconcile, backup.delete_data, restore.reconcile,
                    lifecycle.phase_changed, lifecycle.job_finished):  # fmt: skip
        assert hasattr(handler, "__wrapped__"), handler


def test_the_process_metrics_are_there_by_default() -> None:
    assert "process_cpu_seconds_total" in {name for name, _ in scrape(Metrics())}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def test_healthz_answers_once_kopf_is_ready_and_metrics_are_served_beside_it() -> None:
    metrics = Metrics(process=False)
    monitoring._observe(Kind.BACKUP, body("nightly", {"phase": "Running"}), None, metrics)
    port = free_port()

    async def main() -> list[tuple[int, str, str]]:
        ready = asyncio.Event()
        seen = []
        async with monitoring.health_server(port, metrics, ready, host="127.0.0.1"):
            loop = asyncio.get_running_loop()
            fetch = lambda path: loop.run_in_executor(  # noqa: E731
                None, get, f"http://127.0.0.1:{port}{path}"
            )
            seen.append(await fetch("/healthz"))
            ready.set()
            seen.append(await fetch("/healthz"))
            seen.append(await fetch("/metrics"))
        return seen

    before, after, scraped = asyncio.run(main())
    assert before[0] == 503
    assert after[0] == 200
    status, content_type, text = scraped
    assert status == 200
    assert content_type.startswith("text/plain; version=0.0.4")
    assert 'milvus_backup_phase{kind="MilvusBackup",name="nightly"' in text


def test_the_observers_successes_are_not_logged_but_their_failures_are() -> None:
    def record(level: int, message: str) -> logging.LogRecord:
        return logging.LogRecord("kopf.objects", level, __file__, 1, message, None, None)

    quiet = monitoring.QuietObservers()
    assert not quiet.filter(record(logging.INFO, "Handler 'backup_observed' succeeded."))
    assert not quiet.filter(record(logging.DEBUG, "Handler 'restore_observed' is invoked."))
    assert quiet.filter(record(logging.ERROR, "Handler 'backup_observed' failed: boom"))
    assert quiet.filter(record(logging.INFO, "Handler 'reconcile/create' succeeded."))
