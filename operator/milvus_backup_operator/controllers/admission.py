"""Admission: a spec cannot change once its work has started (Kubernetes 1.20 has no CEL).

Served by Kopf's webhook server at ``/spec-immutable`` when the operator runs with
``--webhook-port``; the ValidatingWebhookConfiguration ships with the chart.
"""

from __future__ import annotations

from typing import Any

import kopf

from ..api import BACKUP_PLURAL, GROUP, RESTORE_PLURAL, VERSION
from ..api import status as st

WEBHOOK_ID = "spec-immutable"


@kopf.on.validate(GROUP, VERSION, BACKUP_PLURAL, id=WEBHOOK_ID, operations=["UPDATE"])
@kopf.on.validate(GROUP, VERSION, RESTORE_PLURAL, id=WEBHOOK_ID, operations=["UPDATE"])
def spec_immutable(*, body: kopf.Body, **kwargs: Any) -> None:
    """Refuse a spec change once the resource has a phase (its work is scheduled or done)."""
    old = kwargs.get("old") or {}  # Kopf passes old and new on UPDATE
    phase = st.phase_of(old.get("status"))
    if phase and old.get("spec") != body.get("spec"):
        kind = body.get("kind", "resource")
        raise kopf.AdmissionError(
            f"the spec of a {kind} cannot change once its work has started (phase {phase}): "
            "create a new resource instead",
            code=422,
        )
