"""Admission: a spec must make sense when created, and cannot change once its work started.

Kubernetes 1.20 has no CEL rules, so what the schema cannot say is checked here: Kopf serves
``/spec-valid`` (CREATE: the same spec rules the controllers apply, e.g. a backup location
that overlaps Milvus's data) and ``/spec-immutable`` (UPDATE) when the operator runs with
``--webhook-port``; the ValidatingWebhookConfiguration ships with the chart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from ..api import GROUP, VERSION, Kind
from ..api.schedule import parse_schedule, prefix_in_use, prefix_of, same_prefix
from ..api.specs import SpecError, parse_backup, parse_restore
from ..api.status import Status
from .services import services

WEBHOOK_ID = "spec-immutable"
VALID_ID = "spec-valid"
SCHEDULE_ID = "schedule-valid"


@kopf.on.validate(GROUP, VERSION, Kind.BACKUP.plural, id=WEBHOOK_ID, operations=["UPDATE"])
@kopf.on.validate(GROUP, VERSION, Kind.RESTORE.plural, id=WEBHOOK_ID, operations=["UPDATE"])
def spec_immutable(*, body: kopf.Body, **kwargs: Any) -> None:
    """Refuse a spec change once the resource has a phase (its work is scheduled or done)."""
    old = kwargs.get("old") or {}  # Kopf passes old and new on UPDATE
    phase = Status.of(old.get("status")).phase
    if phase and old.get("spec") != body.get("spec"):
        kind = body.get("kind", "resource")
        raise kopf.AdmissionError(
            f"the spec of a {kind} cannot change once its work has started (phase {phase}): "
            "create a new resource instead",
            code=422,
        )


@kopf.on.validate(GROUP, VERSION, Kind.BACKUP.plural, id=VALID_ID, operations=["CREATE"])
def backup_spec_valid(*, body: kopf.Body, **_: Any) -> None:
    """Refuse at ``kubectl apply`` what the schema cannot say (overlapping locations...)."""
    # a generateName'd resource has no name yet: its default backupName is derived later
    _admit(lambda: parse_backup(body.metadata.name or "generated", dict(body.get("spec") or {})))


@kopf.on.validate(GROUP, VERSION, Kind.RESTORE.plural, id=VALID_ID, operations=["CREATE"])
def restore_spec_valid(*, body: kopf.Body, **_: Any) -> None:
    """Refuse at ``kubectl apply`` a restore spec that could never run."""
    _admit(lambda: parse_restore(dict(body.get("spec") or {})))


@kopf.on.validate(GROUP, VERSION, Kind.SCHEDULE.plural, id=SCHEDULE_ID,
                  operations=["CREATE", "UPDATE"])  # fmt: skip
def schedule_spec_valid(*, body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    """Refuse a cron expression, time zone or template that could never run, naming the field
    (the schema says what it can: five fields, a duration's shape), and a run prefix another
    schedule of the namespace uses. Checked when the spec is new or changes: a stored spec the
    rules refuse (made while the webhook was down, or under older rules) is the controller's to
    report, and must not block metadata updates (Kopf removing its finalizer on delete)."""
    name, spec = body.metadata.name or "schedule", dict(body.get("spec") or {})
    old = kwargs.get("old") or {}
    if old and (old.get("spec") or {}) == spec:
        return
    _admit(lambda: parse_schedule(name, spec))
    if not old or prefix_of(name, old.get("spec") or {}) != prefix_of(name, spec):
        _prefix_free(name, spec, body.metadata.namespace or "", memo)


def _prefix_free(name: str, spec: dict[str, Any], namespace: str, memo: kopf.Memo) -> None:
    """Refuse a run prefix another schedule of the namespace uses. Schedules the operator
    may not list (a namespace it does not watch) are left to the controller's check."""
    try:
        schedules = services(memo).resources.list_all(Kind.SCHEDULE, namespace)
    except ApiException:
        return
    found = same_prefix(name, spec, schedules)
    if found:
        raise kopf.AdmissionError(prefix_in_use(name, spec, found[0]), code=422)


def _admit(parse: Callable[[], object]) -> None:
    try:
        parse()
    except SpecError as exc:
        raise kopf.AdmissionError(str(exc), code=422) from None
