"""MilvusBackupSchedule: create a MilvusBackup for each run, prune the old ones, report.

A Kopf timer looks at each schedule every :data:`TICK_SECONDS`. Each run is a MilvusBackup
labelled with the schedule's name and uid (owned by it only with ``backupOwnerReference:
schedule``: by default a run outlives its schedule) and named from the scheduled time, so a
restarted operator never creates one run twice (the second create is a 409); it catches up
at most the latest missed run, within ``startingDeadlineSeconds``. The ``backup.milvus.io/run-now``
annotation starts one extra run at once. Pruning deletes only this schedule's Completed and
Failed MilvusBackups that no retention rule keeps; each one's ``deletionPolicy`` then decides
whether its data goes too. A one-off MilvusBackup's ``ttl`` is pruned here as well.
"""

from __future__ import annotations

import copy
import logging
from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from ..api import API_VERSION, GROUP, VERSION, Kind, Phase
from ..api.retention import Run, expired, to_delete
from ..api.schedule import (
    FORBID,
    REPLACE,
    RUN_NOW,
    SCHEDULE_LABEL,
    SCHEDULE_UID,
    SCHEDULED_AT,
    ScheduleSpec,
    parse_schedule,
    prefix_in_use,
    same_prefix,
)
from ..api.specs import SpecError, parse_backup
from ..api.status import BackupStatus, ScheduleStatus, Status, iso, parse_time
from .metrics import counted
from .readers import restored_by_ref
from .services import Services, services

log = logging.getLogger(__name__)
TICK_SECONDS = 10.0  # how late a run may start, at most


@kopf.timer(GROUP, VERSION, Kind.SCHEDULE.plural, interval=TICK_SECONDS, initial_delay=1.0)
@counted
def tick(
    *, body: kopf.Body, spec: kopf.Spec, status: kopf.Status, name: str,
    namespace: str | None, patch: kopf.Patch, memo: kopf.Memo, **_: Any,
) -> None:  # fmt: skip
    """Start what is due, prune what no rule keeps, and write the schedule's status."""
    if namespace is None:
        return
    run, current = services(memo), ScheduleStatus.of(status)
    generation = body.metadata.get("generation", 1)
    try:
        parsed = parse_schedule(name, dict(spec), strict=False)  # stored: keep what runs
        _no_older_same_prefix(run, body, namespace)
    except SpecError as exc:
        reason = "PrefixInUse" if isinstance(exc, _PrefixInUseError) else "InvalidSpec"
        if current.message != str(exc):
            kopf.warn(body, reason=reason, message=str(exc))
        current.set_invalid(generation, str(exc), reason)
        patch.status.update(current.patch())
        return
    schedule = _ScheduleRun(run, body, namespace, parsed, current)
    now = run.clock()
    message = schedule.step(now)
    current.set_ready(generation, message)
    patch.status.update(current.patch())
    schedule.record_metrics(now)
    if RUN_NOW in body.metadata.annotations:
        patch.metadata.annotations[RUN_NOW] = None  # done: the run was created


class _PrefixInUseError(SpecError):
    """An older schedule of the namespace names its runs as this one would."""


def _no_older_same_prefix(run: Services, body: kopf.Body, namespace: str) -> None:
    """Refuse to run a schedule whose runs an older one names the same (made while the
    webhook was down, or before it checked prefixes): the older one keeps running."""
    meta, spec = body.metadata, dict(body.get("spec") or {})
    schedules = run.resources.list_all(Kind.SCHEDULE, namespace)
    older = [s for s in schedules if _age(s["metadata"]) < _age(meta)]
    found = same_prefix(meta["name"], spec, older)
    if found:
        raise _PrefixInUseError(prefix_in_use(meta["name"], spec, found[0]))


def _age(meta: Any) -> tuple[str, str]:
    return str(meta.get("creationTimestamp") or ""), str(meta["name"])


class _ScheduleRun:
    """One look at one schedule."""

    def __init__(
        self, run: Services, body: kopf.Body, namespace: str, spec: ScheduleSpec,
        status: ScheduleStatus,
    ) -> None:  # fmt: skip
        self.run, self.body, self.namespace = run, body, namespace
        self.spec, self.status = spec, status
        self.last_completed: dict[str, Any] | None = None

    def step(self, now: datetime) -> str:
        said = []
        owned = self._owned()
        self._align_owners(owned)
        token = self.body.metadata.annotations.get(RUN_NOW)
        if token is not None:
            manual = self.spec.manual_run_name(str(token))
            made = self._create(manual, now, owned)
            said.append(made or f"run-now {token!r} ignored: {manual} was made for that value "
                                "already; set another value (e.g. $(date +%s))")  # fmt: skip
        said.append(self._scheduled(now, owned))
        said.append(self._prune(now, owned))  # a run made or replaced just now is not done
        self._report(now, self._owned())
        return "; ".join(s for s in said if s) or self._next_message()

    def _scheduled(self, now: datetime, owned: list[dict[str, Any]]) -> str:
        created = parse_time(self.body.metadata.get("creationTimestamp", "")) or now
        last = parse_time(self.status.last_schedule_time) or created
        due = self.spec.schedule.latest_due(last, now)
        if self.spec.suspend:
            self.status.suspended_since = self.status.suspended_since or iso(now)
            return "suspended: no run is created"
        self.status.suspended_since = ""
        if due is None:
            return ""
        self.status.last_schedule_time = iso(due)
        late = now - due
        if self.spec.starting_deadline is not None and late > self.spec.starting_deadline:
            late_by = int(late.total_seconds())
            return f"missed the run of {iso(due)}: {late_by}s late (startingDeadlineSeconds)"
        active = [b["metadata"]["name"] for b in owned if not Status.of(b.get("status")).is_done()]
        if active and self.spec.concurrency_policy == FORBID:
            running = ", ".join(active)
            why = f"{running} still running (concurrencyPolicy Forbid)"
            return f"skipped the run of {iso(due)}: {why}"
        if active and self.spec.concurrency_policy == REPLACE:
            for name in active:
                self.run.resources.delete(Kind.BACKUP, self.namespace, name)
        return self._create(self.spec.run_name(due), due, owned)

    def _create(self, name: str, scheduled: datetime, owned: list[dict[str, Any]]) -> str:
        if any(b["metadata"]["name"] == name for b in owned):
            return ""
        meta = self.body.metadata
        labels = {SCHEDULE_LABEL: meta["name"], SCHEDULE_UID: meta["uid"]}
        owners = [self._owner_reference()] if self.spec.owned_by_schedule else []
        body = {
            "apiVersion": API_VERSION,
            "kind": Kind.BACKUP.kind,
            "metadata": {
                "name": name, "namespace": self.namespace, "labels": labels,
                "annotations": {SCHEDULED_AT: iso(scheduled)},
                **({"ownerReferences": owners} if owners else {}),
            },
            "spec": copy.deepcopy(self.spec.template),
        }  # fmt: skip
        try:
            self.run.resources.create(Kind.BACKUP, self.namespace, body)
        except ApiException as exc:
            if exc.status != 409:
                raise
            existing = self.run.resources.get(Kind.BACKUP, self.namespace, name) or {}
            if existing and not _made_by(existing, meta["uid"]):
                return (
                    f"could not create {name}: a MilvusBackup of that name exists that this "
                    "schedule did not make"
                )
            return ""  # made before a restart: one run, one MilvusBackup
        kopf.event(
            self.body, type="Normal", reason="Created", message=f"created MilvusBackup {name}"
        )
        return f"created {name}"

    def _prune(self, now: datetime, owned: list[dict[str, Any]]) -> str:
        runs = [_run_of(b) for b in owned]
        due = to_delete(runs, self.spec.retention, now, self.spec.schedule.zone)
        in_use = restored_by_ref(self.run.resources, self.namespace) if due else {}
        gone = [name for name in due if name not in in_use]
        for name in gone:
            self.run.resources.delete(Kind.BACKUP, self.namespace, name)
        said = [f"pruned {', '.join(gone)}"] if gone else []
        said += [f"kept {name} while MilvusRestore {in_use[name]} restores it"
                 for name in due if name in in_use]  # fmt: skip
        return "; ".join(said)

    def _report(self, now: datetime, owned: list[dict[str, Any]]) -> None:
        statuses = [(b["metadata"]["name"], Status.of(b.get("status"))) for b in owned]
        done = sorted((s.completion_time, n) for n, s in statuses if s.phase == Phase.COMPLETED)
        by_name = {b["metadata"]["name"]: b for b in owned}
        self.last_completed = by_name[done[-1][1]] if done else None
        newest = max(owned, key=lambda b: _run_of(b).scheduled, default=None)
        self.status.active = sorted(n for n, s in statuses if not s.is_done())
        self.status.completed = len(done)
        self.status.failed = sum(s.phase == Phase.FAILED for _, s in statuses)
        self.status.last_successful_time = done[-1][0] if done else self.status.last_successful_time
        self.status.last_backup = newest["metadata"]["name"] if newest else ""
        upcoming = None if self.spec.suspend else self.spec.schedule.next_after(now)
        self.status.next_schedule_time = iso(upcoming) if upcoming else ""

    def record_metrics(self, now: datetime) -> None:
        """What /metrics shows of this schedule (the alerts on missing backups read it)."""
        meta, status = self.body.metadata, self.status
        last = BackupStatus.of(self.last_completed["status"]) if self.last_completed else None
        duration = size = None
        if last is not None:
            started, ended = parse_time(last.start_time), parse_time(last.completion_time)
            duration = (ended - started).total_seconds() if started and ended else None
            size = last.backup_size
        self.run.metrics.record_schedule(
            self.namespace, meta["name"],
            period_seconds=self.spec.schedule.period_seconds(now),
            next_run_time=status.next_schedule_time or None,
            last_success_time=status.last_successful_time or None,
            created_time=meta.get("creationTimestamp") or None,
            suspended=self.spec.suspend, last_duration_seconds=duration,
            last_size_bytes=size, failures_total=status.failed,
        )  # fmt: skip

    def _next_message(self) -> str:
        if self.spec.suspend:
            return "suspended"
        return f"next run at {self.status.next_schedule_time or 'never'}"

    def _owned(self) -> list[dict[str, Any]]:
        """The runs this schedule made: labelled with its name (to list them) and with its
        uid, or, made by an older operator, owned by it (its uid as their controller). Anyone
        may put the name label on a MilvusBackup, and the runs of a deleted schedule of the
        same name carry it too; neither is this schedule's to replace or prune."""
        name, uid = self.body.metadata["name"], self.body.metadata.get("uid")
        labelled = self.run.resources.find(Kind.BACKUP, self.namespace, SCHEDULE_LABEL, name)
        return [b for b in labelled if uid and _made_by(b, uid)]

    def _owner_reference(self) -> dict[str, Any]:
        meta = self.body.metadata
        return {
            "apiVersion": API_VERSION, "kind": Kind.SCHEDULE.kind, "name": meta["name"],
            "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True,
        }  # fmt: skip

    def _align_owners(self, owned: list[dict[str, Any]]) -> None:
        """Each run owned by this schedule, or not, as ``backupOwnerReference`` says now, and
        labelled with its uid: an older operator's runs, and those made before the field
        changed, are released (or taken) here, so that deleting the schedule does what the
        field says. A run changed meanwhile (409) is seen again at the next tick."""
        uid, owning = self.body.metadata["uid"], self.spec.owned_by_schedule
        for body in owned:
            meta = body["metadata"]
            patch: dict[str, Any] = {"labels": {SCHEDULE_UID: uid},
                                     "resourceVersion": meta.get("resourceVersion")}  # fmt: skip
            if (_controller_uid(body) == uid) != owning:
                others = [r for r in meta.get("ownerReferences") or [] if r.get("uid") != uid]
                patch["ownerReferences"] = [*others, self._owner_reference()] if owning else others
            elif (meta.get("labels") or {}).get(SCHEDULE_UID) == uid:
                continue
            try:
                self.run.resources.patch_metadata(Kind.BACKUP, self.namespace, meta["name"], patch)
            except ApiException as exc:
                if exc.status not in (404, 409):
                    raise


def _made_by(body: dict[str, Any], uid: str) -> bool:
    """Whether the schedule of ``uid`` made this MilvusBackup: its controller, if it has one;
    else the schedule uid it is labelled with."""
    controller = _controller_uid(body)
    labels = body["metadata"].get("labels") or {}
    return controller == uid if controller else labels.get(SCHEDULE_UID) == uid


def _controller_uid(body: dict[str, Any]) -> str | None:
    owners = body["metadata"].get("ownerReferences") or []
    return next((o.get("uid") for o in owners if o.get("controller")), None)


def _run_of(body: dict[str, Any]) -> Run:
    meta = body["metadata"]
    scheduled = parse_time((meta.get("annotations") or {}).get(SCHEDULED_AT, ""))
    created = parse_time(meta.get("creationTimestamp", ""))
    when = scheduled or created or datetime.now(UTC)
    return Run(meta["name"], when, Status.of(body.get("status")).phase)


@kopf.on.event(GROUP, VERSION, Kind.SCHEDULE.plural)
def schedule_gone(
    *, type: str | None, name: str, namespace: str | None, memo: kopf.Memo, **_: Any
) -> None:
    """A deleted schedule: its series leave /metrics."""
    if type == "DELETED" and namespace is not None:
        services(memo).metrics.forget_schedule(namespace, name)


@kopf.timer(
    GROUP, VERSION, Kind.BACKUP.plural, interval=60.0,
    when=lambda spec, status, **_: bool(spec.get("ttl")) and Status.of(status).is_done(),
)  # fmt: skip
@counted
def ttl_expired(
    *, spec: kopf.Spec, status: kopf.Status, name: str, namespace: str | None,
    memo: kopf.Memo, **_: Any,
) -> None:  # fmt: skip
    """A one-off MilvusBackup with ``ttl``: deleted once it has been done that long."""
    done = parse_time(Status.of(status).completion_time)
    if namespace is None or done is None:
        return
    try:
        ttl = parse_backup(name, dict(spec)).ttl
    except SpecError:
        return
    run = services(memo)
    if ttl is not None and expired(done, ttl, run.clock()):
        user = restored_by_ref(run.resources, namespace).get(name)
        if user is not None:
            log.info("MilvusBackup %s/%s: ttl %s passed, kept while MilvusRestore %s "
                     "restores it", namespace, name, ttl, user)  # fmt: skip
            return
        log.info("MilvusBackup %s/%s: ttl %s passed, deleting it", namespace, name, ttl)
        run.resources.delete(Kind.BACKUP, namespace, name)
