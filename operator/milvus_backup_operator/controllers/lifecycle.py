"""What happens around the work: milestone events, and Jobs that end without a result."""

from __future__ import annotations

from typing import Any

import kopf

from ..api import BACKUP_PLURAL, GROUP, RESTORE_PLURAL, VERSION
from ..api import status as st
from ..executors.job import KIND_LABEL, MANAGED_BY, NAME_LABEL, OPERATOR
from ..worker import mark_crashed


@kopf.on.field(GROUP, VERSION, BACKUP_PLURAL, field="status.phase")
@kopf.on.field(GROUP, VERSION, RESTORE_PLURAL, field="status.phase")
def phase_changed(*, body: kopf.Body, new: Any, status: kopf.Status, **_: Any) -> None:
    """An event for each milestone the worker reached (it writes status, not events)."""
    message = str(status.get("message", ""))
    if new == st.RUNNING:
        kopf.event(body, type="Normal", reason="Running", message=message)
    elif new == st.COMPLETED:
        kopf.event(body, type="Normal", reason="Completed", message=message)
    elif new == st.FAILED:
        kopf.warn(body, reason="Failed", message=message)


@kopf.on.event("batch", "v1", "jobs", labels={MANAGED_BY: OPERATOR})
def job_finished(*, body: kopf.Body, namespace: str | None, **_: Any) -> None:
    """A Job that failed before its worker wrote a result turns the resource Failed."""
    job_status = body.get("status") or {}
    if namespace is None or not job_status.get("failed"):
        return
    labels = body.metadata.labels
    reasons = [
        f"{c.get('reason', '')}: {c.get('message', '')}".strip(": ")
        for c in job_status.get("conditions") or []
        if c.get("type") == "Failed"
    ]
    detail = "; ".join(reasons) or "its Pod failed"
    mark_crashed(
        labels.get(KIND_LABEL, ""),
        namespace,
        labels.get(NAME_LABEL, ""),
        f"Job {body.metadata.name} failed ({detail}) before reporting a result: see its logs",
    )
