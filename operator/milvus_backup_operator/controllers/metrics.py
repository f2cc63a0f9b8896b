"""Prometheus metrics of the operator, derived from what the controllers see.

Values written by the Jobs reach the operator through the resources' status, which Kopf
watches: :meth:`Metrics.observe` records a MilvusBackup's or MilvusRestore's status each
time it changes, and :meth:`Metrics.forget` drops it when it is deleted, so a scrape shows
exactly the resources that exist (bounded cardinality, kube-state-metrics style). The
families are computed at scrape time from that table by a collector, in the
:class:`~prometheus_client.CollectorRegistry` this object holds (no module state).

Schedules are recorded by their controller through :meth:`Metrics.record_schedule` and
:meth:`Metrics.forget_schedule`. Handler calls are counted by :func:`counted`.

The metric names and their meaning are listed in docs/monitoring.md.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .. import __version__
from ..api import Kind, Phase
from ..api.schedule import SCHEDULE_LABEL
from ..api.status import BackupStatus, status_of

#: The label a schedule puts on each MilvusBackup it creates (its name).
PREFIX = "milvus_backup"
RESOURCE_LABELS = ("kind", "namespace", "name", "schedule")
SCHEDULE_LABELS = ("namespace", "name")
PHASES = tuple(str(p) for p in Phase)
#: the text format every Prometheus 2 reads (what generate_latest writes)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Timestamp = datetime | str | float | int | None


def timestamp(value: Timestamp) -> float | None:
    """Seconds since the epoch of an RFC 3339 string (as in status), a datetime or a number."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return value.timestamp()


@dataclass(frozen=True)
class Observed:
    """What the metrics show of one MilvusBackup or MilvusRestore."""

    phase: str
    start_time: float | None
    completion_time: float | None
    size_bytes: int | None  # backups only
    failures: int  # workers that died (each resumed in a new one), and the final failure

    @classmethod
    def of(cls, kind: Kind, raw_status: Mapping[str, Any] | None) -> Observed:
        status = status_of(kind, raw_status)
        size = status.backup_size if isinstance(status, BackupStatus) else None
        return cls(
            phase=str(status.phase) if status.phase else "",
            start_time=timestamp(status.start_time),
            completion_time=timestamp(status.completion_time),
            size_bytes=size if size or status.phase == Phase.COMPLETED else None,
            failures=status.attempts + (1 if status.phase == Phase.FAILED else 0),
        )

    @property
    def duration(self) -> float | None:
        done = self.phase in (Phase.COMPLETED, Phase.FAILED)
        if not done or self.start_time is None or self.completion_time is None:
            return None
        return max(0.0, self.completion_time - self.start_time)


@dataclass(frozen=True)
class ScheduleObserved:
    """What a schedule's controller reports of it (:meth:`Metrics.record_schedule`)."""

    period_seconds: float | None
    next_run_time: float | None
    last_success_time: float | None
    created_time: float | None
    suspended: bool
    last_duration_seconds: float | None
    last_size_bytes: int | None
    failures_total: int | None


F = TypeVar("F", bound=Callable[..., Any])


class Metrics:
    """The operator's metrics: a registry of its own, the resources' table, the counters."""

    def __init__(self, *, process: bool = True) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._lock = threading.Lock()
        self._resources: dict[tuple[Kind, str, str], tuple[str, Observed]] = {}
        self._schedules: dict[tuple[str, str], ScheduleObserved] = {}
        self.reconciles = Counter(
            "milvus_backup_operator_reconciles", "Handler calls, by handler.",
            ["handler"], registry=self.registry,
        )  # fmt: skip
        self.errors = Counter(
            "milvus_backup_operator_reconcile_errors",
            "Handler calls that raised (Kopf retries them), by handler and error class.",
            ["handler", "error"], registry=self.registry,
        )  # fmt: skip
        Info(
            "milvus_backup_operator", "The operator's version (always there: its absence "
            "means the operator is not scraped).", registry=self.registry,
        ).info({"version": __version__})  # fmt: skip
        self.registry.register(_TableCollector(self))
        if process:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)

    # ---- backups and restores --------------------------------------------------------------

    def observe(self, kind: Kind, body: Mapping[str, Any]) -> None:
        """Record a resource as Kopf sees it (metadata and status)."""
        metadata = body.get("metadata") or {}
        namespace, name = str(metadata.get("namespace", "")), str(metadata.get("name", ""))
        schedule = str((metadata.get("labels") or {}).get(SCHEDULE_LABEL, ""))
        observed = Observed.of(kind, body.get("status"))
        with self._lock:
            self._resources[(kind, namespace, name)] = (schedule, observed)

    def forget(self, kind: Kind, namespace: str, name: str) -> None:
        """A deleted resource: its series go."""
        with self._lock:
            self._resources.pop((kind, namespace, name), None)

    # ---- schedules (their controller calls these) ------------------------------------------

    def record_schedule(
        self, namespace: str, name: str, *, period_seconds: float | None = None,
        next_run_time: Timestamp = None, last_success_time: Timestamp = None,
        created_time: Timestamp = None, suspended: bool = False,
        last_duration_seconds: float | None = None, last_size_bytes: int | None = None,
        failures_total: int | None = None,
    ) -> None:  # fmt: skip
        """Record a MilvusBackupSchedule's state (call it whenever it changes).

        ``period_seconds``: the usual time between two runs (a day for ``@daily``), which
        the alert on missing successful backups compares ``last_success_time`` with (or
        ``created_time`` while no run has succeeded); ``failures_total``: failed runs so far.
        Times: datetimes, RFC 3339 strings or seconds since the epoch; ``None``: unknown (the
        series is left out).
        """
        observed = ScheduleObserved(
            period_seconds=period_seconds, next_run_time=timestamp(next_run_time),
            last_success_time=timestamp(last_success_time),
            created_time=timestamp(created_time), suspended=suspended,
            last_duration_seconds=last_duration_seconds, last_size_bytes=last_size_bytes,
            failures_total=failures_total,
        )  # fmt: skip
        with self._lock:
            self._schedules[(namespace, name)] = observed

    def forget_schedule(self, namespace: str, name: str) -> None:
        with self._lock:
            self._schedules.pop((namespace, name), None)

    # ---- reading ---------------------------------------------------------------------------

    def snapshot(
        self,
    ) -> tuple[dict[tuple[Kind, str, str], tuple[str, Observed]], dict[tuple[str, str], Any]]:
        with self._lock:
            return dict(self._resources), dict(self._schedules)

    def exposition(self) -> tuple[bytes, str]:
        """The text format of a scrape, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE

    # ---- handler calls ---------------------------------------------------------------------

    def count(self, handler: str, error: BaseException | None = None) -> None:
        self.reconciles.labels(handler).inc()
        if error is not None:
            self.errors.labels(handler, type(error).__name__).inc()


def counted(fn: F) -> F:
    """Count a (synchronous) Kopf handler's calls and the exceptions it raises, in the
    :class:`Metrics` of the services in its ``memo`` (none there: not counted)."""
    handler = f"{fn.__module__.rpartition('.')[2]}.{fn.__name__}"

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        memo: Any = kwargs.get("memo")
        found = memo.get("services") if hasattr(memo, "get") else None
        metrics: Metrics | None = getattr(found, "metrics", None)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            if metrics is not None:
                metrics.count(handler, exc)
            raise
        if metrics is not None:
            metrics.count(handler)
        return result

    return wrapper  # type: ignore[return-value]


class _TableCollector(Collector):
    """The per-resource and per-schedule families, computed from the table at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> Iterator[Metric]:
        return iter(())  # families are known only at collection

    def collect(self) -> Iterator[Metric]:
        resources, schedules = self.metrics.snapshot()
        yield from _resource_families(resources)
        yield from _schedule_families(schedules)


def _resource_families(
    resources: Mapping[tuple[Kind, str, str], tuple[str, Observed]],
) -> Iterator[Metric]:
    def gauge(suffix: str, doc: str, extra: tuple[str, ...] = ()) -> GaugeMetricFamily:
        return GaugeMetricFamily(f"{PREFIX}_{suffix}", doc, labels=[*RESOURCE_LABELS, *extra])

    phase = gauge(
        "phase", "1 for the current phase of a MilvusBackup or MilvusRestore (Pending, "
        "Running, Completed, Failed), 0 for the others.", ("phase",),
    )  # fmt: skip
    success = gauge(
        "last_success_timestamp_seconds",
        "When it completed (status.completionTime of a Completed resource).",
    )
    duration = gauge(
        "last_duration_seconds", "From status.startTime to status.completionTime, once done."
    )
    size = gauge("size_bytes", "Size of the backup (status.backupSize).")
    failures = CounterMetricFamily(
        f"{PREFIX}_failures", "Workers that died without a result (each resumed in a new "
        "Job), plus 1 once the resource is Failed.", labels=list(RESOURCE_LABELS),
    )  # fmt: skip
    for (kind, namespace, name), (schedule, seen) in sorted(
        resources.items(), key=lambda item: (item[0][0].value, *item[0][1:])
    ):
        labels = [kind.kind, namespace, name, schedule]
        for each in PHASES:
            phase.add_metric([*labels, each], 1.0 if seen.phase == each else 0.0)
        if seen.phase == Phase.COMPLETED and seen.completion_time is not None:
            success.add_metric(labels, seen.completion_time)
        if seen.duration is not None:
            duration.add_metric(labels, seen.duration)
        if seen.size_bytes is not None:
            size.add_metric(labels, float(seen.size_bytes))
        failures.add_metric(labels, float(seen.failures))
    yield from (phase, success, duration, size, failures)


def _schedule_families(schedules: Mapping[tuple[str, str], ScheduleObserved]) -> Iterator[Metric]:
    def gauge(suffix: str, doc: str) -> GaugeMetricFamily:
        return GaugeMetricFamily(f"{PREFIX}_schedule_{suffix}", doc, labels=list(SCHEDULE_LABELS))

    period = gauge("period_seconds", "Usual time between two runs of a MilvusBackupSchedule.")
    next_run = gauge("next_run_timestamp_seconds", "When its next run is due.")
    success = gauge("last_success_timestamp_seconds", "When its last successful backup completed.")
    created = gauge("created_timestamp_seconds", "When the schedule was created.")
    suspended = gauge("suspended", "1 while spec.suspend is true.")
    duration = gauge("last_duration_seconds", "Duration of its last completed backup.")
    size = gauge("last_size_bytes", "Size of its last completed backup.")
    failures = CounterMetricFamily(
        f"{PREFIX}_schedule_failures", "Runs of the schedule that failed.",
        labels=list(SCHEDULE_LABELS),
    )  # fmt: skip
    for (namespace, name), seen in sorted(schedules.items()):
        labels = [namespace, name]
        suspended.add_metric(labels, 1.0 if seen.suspended else 0.0)
        for family, value in (
            (period, seen.period_seconds), (next_run, seen.next_run_time),
            (success, seen.last_success_time), (created, seen.created_time),
            (duration, seen.last_duration_seconds), (size, seen.last_size_bytes),
            (failures, seen.failures_total),
        ):  # fmt: skip
            if value is not None:
                family.add_metric(labels, float(value))
    yield from (period, next_run, success, created, suspended, duration, size, failures)
