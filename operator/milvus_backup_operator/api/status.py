"""Typed status of MilvusBackup and MilvusRestore, with its transitions as methods.

As CloudNativePG's ``api/v1/backup_funcs.go`` (``SetAsFailed``, ``SetAsCompleted``,
``IsDone``): a status is read from the resource once (:meth:`Status.of`), changed only by
its transitions, and written back whole as a merge patch (:meth:`Status.patch`). Conditions
follow kstatus (``Ready``, ``Reconciling``, ``Stalled``) so Flux and Argo CD compute health
without custom code; a condition's ``lastTransitionTime`` moves only when its status flips,
and ``startTime`` is kept across a resumed run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

from ..engine.progress import Progress
from . import Kind, Phase

Patch = dict[str, Any]
READY, RECONCILING, STALLED = "Ready", "Reconciling", "Stalled"
#: a deleted resource whose data is kept for now (read by a restore, its writer stopping)
DELETION_BLOCKED = "DeletionBlocked"
_ORDER = (READY, RECONCILING, STALLED, DELETION_BLOCKED)  # conditions of other types go last


TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # status times: RFC 3339, UTC, whole seconds


def iso(moment: datetime) -> str:
    """A status time."""
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime | None:
    """A status time read back; None when absent or not one."""
    try:
        return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def now() -> str:
    return iso(datetime.now(UTC))


@dataclass
class Condition:
    type: str
    status: bool
    reason: str = ""
    message: str = ""
    observed_generation: int = 0
    last_transition_time: str = ""

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> Condition:
        return cls(
            str(raw.get("type", "")),
            raw.get("status") == "True",
            str(raw.get("reason", "")),
            str(raw.get("message", "")),
            int(raw.get("observedGeneration", 0)),
            str(raw.get("lastTransitionTime", "")),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "status": "True" if self.status else "False",
            "reason": self.reason,
            "message": self.message,
            "observedGeneration": self.observed_generation,
            "lastTransitionTime": self.last_transition_time,
        }


@dataclass
class Status:
    """What both kinds record; :class:`BackupStatus` and :class:`RestoreStatus` add theirs."""

    phase: Phase | None = None
    message: str = ""
    observed_generation: int = 0
    start_time: str = ""
    completion_time: str = ""
    job_name: str = ""
    attempts: int = 0  # workers started after the first died; each resumes the work
    backup_name: str = ""
    conditions: list[Condition] = field(default_factory=list)
    progress: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, raw: Mapping[str, Any] | None) -> Self:
        """Read a resource's ``.status`` (absent or partial: the defaults)."""
        raw = raw or {}
        phase = str(raw.get("phase") or "")
        status = cls(
            phase=Phase(phase) if phase in Phase.__members__.values() else None,
            message=str(raw.get("message", "")),
            observed_generation=int(raw.get("observedGeneration", 0)),
            start_time=str(raw.get("startTime", "")),
            completion_time=str(raw.get("completionTime", "")),
            job_name=str(raw.get("jobName", "")),
            attempts=int(raw.get("attempts", 0)),
            backup_name=str(raw.get("backupName", "")),
            conditions=[Condition.of(c) for c in raw.get("conditions") or []],
            progress=dict(raw.get("progress") or {}),
        )
        status._read_own(raw)
        return status

    def _read_own(self, raw: Mapping[str, Any]) -> None:
        """Read the fields of a kind (overridden)."""

    # ---- questions --------------------------------------------------------------------------

    def is_done(self) -> bool:
        return self.phase is not None and self.phase.done

    def is_started(self) -> bool:
        return self.phase is not None

    def condition(self, kind: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == kind), None)

    @property
    def reason(self) -> str:
        """The Ready condition's reason: why it is (not) ready, e.g. ``NotFound``."""
        ready = self.condition(READY)
        return ready.reason if ready else ""

    # ---- transitions ------------------------------------------------------------------------

    def set_pending(self, generation: int, message: str) -> None:
        """Accepted; the work has not started yet (e.g. its Job is being created)."""
        self._set(Phase.PENDING, generation, message, "Pending")

    def set_running(self, generation: int, message: str) -> None:
        stamp = self._set(Phase.RUNNING, generation, message, "Running")
        self.start_time = self.start_time or stamp  # a resumed run keeps its start

    def set_completed(self, generation: int, message: str) -> None:
        self.completion_time = self._set(Phase.COMPLETED, generation, message, "Completed")

    def set_failed(self, generation: int, message: str, reason: str = "Failed") -> None:
        """Failed for good: the spec (or the world) must change before it can succeed."""
        self.completion_time = self._set(Phase.FAILED, generation, message, reason)

    def _set(self, phase: Phase, generation: int, message: str, reason: str) -> str:
        """Enter ``phase``; return the time it was entered."""
        self.phase, self.message, self.observed_generation = phase, message, generation
        working = phase in (Phase.PENDING, Phase.RUNNING)
        failed = phase == Phase.FAILED
        stamp = now()
        for kind, value in ((READY, phase == Phase.COMPLETED), (RECONCILING, working),
                            (STALLED, failed)):  # fmt: skip
            shown = message if value or kind == READY else ""
            self._condition(Condition(kind, value, reason, shown, generation, stamp))
        return stamp

    def block_deletion(self, reason: str, message: str) -> None:
        """Deleted, but its data is kept for now: say why in the message and a condition."""
        self.message = message
        stamp = now()
        blocked = Condition(
            DELETION_BLOCKED, True, reason, message, self.observed_generation, stamp
        )
        self._condition(blocked)

    def _condition(self, new: Condition) -> None:
        self.conditions = with_condition(self.conditions, new)

    def set_progress(self, progress: Progress) -> Patch:
        """Record progress; return the small patch that writes it alone."""
        self.progress = {
            "phase": progress.phase,
            "percent": progress.percent,
            "text": f"{progress.percent}%",
            "summary": progress.summary(),
            "collectionsDone": progress.collections_done,
            "collectionsTotal": progress.collections_total,
            "segmentsDone": progress.segments_done,
            "segmentsTotal": progress.segments_total,
            "bytesDone": progress.bytes_done,
            "bytesTotal": progress.bytes_total,
            "importsDone": progress.imports_done,
            "importsTotal": progress.imports_total,
        }
        return {"progress": self.progress}

    # ---- writing ----------------------------------------------------------------------------

    def patch(self) -> Patch:
        """The whole status, camelCase, as a merge patch (empty strings left out)."""
        patch: Patch = {
            "phase": str(self.phase) if self.phase else "",
            "message": self.message,
            "observedGeneration": self.observed_generation,
            "startTime": self.start_time,
            "completionTime": self.completion_time,
            "jobName": self.job_name,
            **({"attempts": self.attempts} if self.attempts else {}),
            "backupName": self.backup_name,
            "conditions": [c.to_dict() for c in self.conditions],
            **({"progress": self.progress} if self.progress else {}),
            **self._own(),
        }
        result: Patch = without_empty_strings(patch)
        return result

    def _own(self) -> Patch:
        """The fields of a kind, camelCase (overridden)."""
        return {}


@dataclass
class BackedUpCollection:
    name: str
    state: str
    rows: int
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state, "rows": self.rows, "size": self.size}


@dataclass
class BackupStatus(Status):
    backup_size: int = 0
    size: str = ""  # human-readable, for the printer column
    collections: list[BackedUpCollection] = field(default_factory=list)

    def _read_own(self, raw: Mapping[str, Any]) -> None:
        self.backup_size = int(raw.get("backupSize", 0))
        self.size = str(raw.get("size", ""))
        self.collections = [
            BackedUpCollection(
                str(c.get("name", "")), str(c.get("state", "")), int(c.get("rows", 0)),
                int(c.get("size", 0)),
            )
            for c in raw.get("collections") or []
        ]  # fmt: skip

    def _own(self) -> Patch:
        own: Patch = {"size": self.size}
        if self.collections:
            own["collections"] = [c.to_dict() for c in self.collections]
        if self.backup_size or self.phase == Phase.COMPLETED:
            own["backupSize"] = self.backup_size
        return own


_OPTIONAL = ("collectionID", "building", "replacesCollectionID")  # left out when empty


@dataclass
class RestoredCollection:
    name: str  # in the backup
    target: str
    state: str
    rows: int = 0
    checked: str = ""
    error: str = ""
    collection_id: int = 0  # the ID Milvus gave the target this restore created
    building: str = ""  # the temporary name it is built under, when it replaces one
    replaces: int = 0  # the ID of the collection it replaces

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> RestoredCollection:
        """Read one entry; a field left out (an older operator's status, a hand-edited one;
        the schema requires none) reads as empty instead of failing every handler."""
        return cls(
            str(raw.get("name", "")), str(raw.get("target", "")), str(raw.get("state", "")),
            int(raw.get("rows", 0)), str(raw.get("checked", "")), str(raw.get("error", "")),
            int(raw.get("collectionID", 0)), str(raw.get("building", "")),
            int(raw.get("replacesCollectionID", 0)),
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        entry = {f.name: getattr(self, f.name) for f in fields(self)}
        entry["collectionID"] = entry.pop("collection_id")
        entry["replacesCollectionID"] = entry.pop("replaces")
        return {k: v for k, v in entry.items() if v or k not in _OPTIONAL}


@dataclass
class RestoreStatus(Status):
    target: str = ""
    collections: list[RestoredCollection] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)  # a dry run's

    def _read_own(self, raw: Mapping[str, Any]) -> None:
        self.target = str(raw.get("target", ""))
        self.collections = [
            RestoredCollection.of(c) for c in raw.get("collections") or [] if isinstance(c, Mapping)
        ]
        self.plan = [str(line) for line in raw.get("plan") or []]

    def _own(self) -> Patch:
        own: Patch = {"target": self.target}
        if self.collections:
            own["collections"] = [c.to_dict() for c in self.collections]
        if self.plan:
            own["plan"] = self.plan
        return own

    def record(self, collection: RestoredCollection) -> None:
        """Add or replace one collection's result (by target)."""
        others = [c for c in self.collections if c.target != collection.target]
        self.collections = [*others, collection]


def with_condition(conditions: list[Condition], new: Condition) -> list[Condition]:
    """``conditions`` with ``new`` set, keeping the transition time of one that did not flip."""
    old = next((c for c in conditions if c.type == new.type), None)
    if old is not None and old.status == new.status and old.last_transition_time:
        new.last_transition_time = old.last_transition_time
    kept = [c for c in conditions if c.type != new.type] + [new]
    return sorted(kept, key=lambda c: _ORDER.index(c.type) if c.type in _ORDER else len(_ORDER))


@dataclass
class ScheduleStatus:
    """A MilvusBackupSchedule's status: its runs, and kstatus conditions (Ready while it
    schedules; Stalled when its spec cannot work)."""

    observed_generation: int = 0
    message: str = ""
    last_schedule_time: str = ""  # the latest run started (or skipped: the message says)
    next_schedule_time: str = ""
    last_successful_time: str = ""
    last_backup: str = ""
    suspended_since: str = ""
    active: list[str] = field(default_factory=list)
    completed: int = 0
    failed: int = 0
    conditions: list[Condition] = field(default_factory=list)

    _FIELDS: ClassVar[dict[str, str]] = {
        "observedGeneration": "observed_generation", "message": "message",
        "lastScheduleTime": "last_schedule_time", "nextScheduleTime": "next_schedule_time",
        "lastSuccessfulTime": "last_successful_time", "lastBackup": "last_backup",
        "suspendedSince": "suspended_since", "active": "active", "completed": "completed",
        "failed": "failed",
    }  # fmt: skip

    @classmethod
    def of(cls, raw: Mapping[str, Any] | None) -> ScheduleStatus:
        raw = raw or {}
        status = cls(**{attr: raw[key] for key, attr in cls._FIELDS.items() if key in raw})
        status.conditions = [Condition.of(c) for c in raw.get("conditions") or []]
        return status

    def set_ready(self, generation: int, message: str) -> None:
        self._set(generation, message, ready=True, reason="Scheduling")

    def set_invalid(self, generation: int, message: str, reason: str = "InvalidSpec") -> None:
        """The spec cannot work (``reason`` says why): nothing is scheduled until it changes."""
        self._set(generation, message, ready=False, reason=reason)

    def _set(self, generation: int, message: str, *, ready: bool, reason: str) -> None:
        self.observed_generation, self.message, stamp = generation, message, now()
        for kind, value in ((READY, ready), (RECONCILING, False), (STALLED, not ready)):
            shown = message if value or kind == READY else ""
            new = Condition(kind, value, reason, shown, generation, stamp)
            self.conditions = with_condition(self.conditions, new)

    def patch(self) -> Patch:
        """The whole status, camelCase (emptied fields sent as null: a merge patch clears)."""
        patch: Patch = {
            key: (getattr(self, attr) if getattr(self, attr) != "" else None)
            for key, attr in self._FIELDS.items()
        }
        patch["conditions"] = [c.to_dict() for c in self.conditions]
        result: Patch = without_empty_strings(patch)
        return result


def without_empty_strings(value: Any) -> Any:
    """Drop ``""`` values: optional strings are left out rather than sent empty.

    (The kube-apiserver 1.20 built for the tests reads an empty string in a custom
    resource's status as null and rejects it; leaving optional fields out is valid anywhere.)
    """
    if isinstance(value, dict):
        return {k: without_empty_strings(v) for k, v in value.items() if v != ""}
    if isinstance(value, list):
        return [without_empty_strings(item) for item in value]
    return value


def status_of(kind: Kind, raw: Mapping[str, Any] | None) -> BackupStatus | RestoreStatus:
    """The typed status of a MilvusBackup or a MilvusRestore."""
    return (BackupStatus if kind is Kind.BACKUP else RestoreStatus).of(raw)
