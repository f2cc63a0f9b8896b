"""What happens around the work: milestone events, the completion mark, and Jobs that end
without a result (retried in a new Job that resumes the work, a bounded number of times)."""

from __future__ import annotations

from typing import Any

import kopf

from ..api import GROUP, VERSION, Kind, Phase
from ..api.specs import SpecError, parse_backup
from ..api.status import Status, status_of
from ..executors import WorkItem
from ..executors.job import KIND_LABEL, MANAGED_BY, NAME_LABEL, OPERATOR
from ..k8s.abandoned import mark_crashed
from ..k8s.credentials import secret_names
from ..k8s.references import resolve_restore
from . import backup, restore
from .adoption import COMPLETED, KOPF_HANDLED, completion_mark
from .metrics import counted
from .services import Services, services, start_work


def _copied(body: kopf.Body, status: kopf.Status, type: str | None, **_: Any) -> bool:
    """A copy Kopf will not call a create handler for: it carries Kopf's own record that it
    was handled (a Velero restore keeps annotations) but no status of ours."""
    return type != "DELETED" and not status and KOPF_HANDLED in body.metadata.annotations


@kopf.on.event(GROUP, VERSION, Kind.BACKUP.plural, when=_copied)
def backup_copied(**kwargs: Any) -> None:
    """Reconcile it as a new resource: adopted if it is a copy of a completed one."""
    backup.reconcile(**kwargs)


@kopf.on.event(GROUP, VERSION, Kind.RESTORE.plural, when=_copied)
def restore_copied(**kwargs: Any) -> None:
    """Reconcile it as a new resource: adopted if it is a copy of a completed one."""
    restore.reconcile(**kwargs)


@kopf.on.field(GROUP, VERSION, Kind.BACKUP.plural, field="status.phase")
@kopf.on.field(GROUP, VERSION, Kind.RESTORE.plural, field="status.phase")
@counted
def phase_changed(
    *, body: kopf.Body, new: Any, status: kopf.Status, patch: kopf.Patch, **_: Any
) -> None:
    """An event for each milestone the worker reached (it writes status, not events); a
    Completed resource is marked so that copies of it are never run again."""
    current = Status.of(status)
    if new == Phase.RUNNING:
        kopf.event(body, type="Normal", reason="Running", message=current.message)
    elif new == Phase.COMPLETED:
        kopf.event(body, type="Normal", reason="Completed", message=current.message)
        if COMPLETED not in body.metadata.annotations:
            patch.metadata.annotations[COMPLETED] = completion_mark(body.metadata.uid, current)
    elif new == Phase.FAILED:
        kopf.warn(body, reason="Failed", message=current.message)


@kopf.on.event("batch", "v1", "jobs", labels={MANAGED_BY: OPERATOR})
@counted
def job_finished(*, body: kopf.Body, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    """A Job that failed before its worker wrote a result: start a new one, which resumes
    the work; after ``job_retries`` of them, the resource is Failed."""
    job_status = body.get("status") or {}
    if namespace is None or not job_status.get("failed"):
        return
    labels = body.metadata.labels
    kind = Kind(labels.get(KIND_LABEL, ""))
    name = labels.get(NAME_LABEL, "")
    reasons = [
        f"{c.get('reason', '')}: {c.get('message', '')}".strip(": ")
        for c in job_status.get("conditions") or []
        if c.get("type") == "Failed"
    ]
    failure = f"Job {body.metadata.name} failed ({'; '.join(reasons) or 'its Pod failed'})"
    run = services(memo)
    try:
        retried = _retry(run, kind, namespace, name, job=body.metadata.name, failure=failure)
    except SpecError as exc:  # e.g. the restore's MilvusBackup was deleted meanwhile
        message = f"{failure} before reporting a result, and it cannot be resumed: {exc}"
        mark_crashed(kind, namespace, name, message, run.resources)
        return
    if not retried:
        limit = f"{run.job_retries} new Jobs at most, --job-retries"
        message = (
            f"{failure} before reporting a result, and no retry is left ({limit}): see its logs"
        )
        mark_crashed(kind, namespace, name, message, run.resources)


def _retry(run: Services, kind: Kind, namespace: str, name: str, *, job: str, failure: str) -> bool:
    """Start the next worker if this Job was the current one and retries remain; True if the
    resource needs nothing more from this Job (done, retried, or already moved on)."""
    resource = run.resources.get(kind, namespace, name)
    if resource is None:
        return True
    status = status_of(kind, resource.get("status"))
    if status.is_done() or status.job_name != job:
        return True  # it ended, or this is an older attempt's Job
    if status.attempts >= run.job_retries:
        return False
    spec = _spec(run, kind, namespace, resource)
    item = WorkItem(kind, namespace, name, resource, tuple(secret_names(spec)),
                    attempt=status.attempts + 1)  # fmt: skip
    status.attempts, status.job_name = item.attempt, run.executor.runner_name(item)
    status.message = f"{failure}; resuming in Job {status.job_name}"
    run.resources.patch_status(kind, namespace, name, status.patch())
    start_work(run, item, status, int(resource["metadata"].get("generation", 1)))
    return True


def _spec(run: Services, kind: Kind, namespace: str, resource: dict[str, Any]) -> Any:
    raw = resource.get("spec") or {}
    if kind is Kind.BACKUP:
        return parse_backup(resource["metadata"]["name"], raw)
    return resolve_restore(run.resources, namespace, raw)
