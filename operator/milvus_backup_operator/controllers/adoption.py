"""Copies of finished resources (a Velero restore of the namespace, a GitOps tool applying a
saved manifest) must never run their work again over live data.

When a resource completes, the operator writes :data:`COMPLETED` into its annotations, which
such copies keep while they lose the status. A resource that carries the annotation but no
status is adopted as done, with a message saying how to run it again on purpose.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..api import GROUP, Kind
from ..api.status import Status

COMPLETED = f"{GROUP}/completed"  # "<uid of the resource that completed> <completionTime>"
KOPF_HANDLED = f"{GROUP}/last-handled-configuration"  # Kopf's diff base (manager.configure)


def completion_mark(uid: str, status: Status) -> str:
    return f"{uid} {status.completion_time}".strip()


def adopt(kind: Kind, metadata: Mapping[str, Any], status: Status, generation: int) -> bool:
    """Mark ``status`` Completed if the resource is a copy of one that completed; say so."""
    mark = (metadata.get("annotations") or {}).get(COMPLETED, "")
    if not mark or status.is_started():
        return False
    _, _, when = str(mark).partition(" ")
    what = "backup" if kind is Kind.BACKUP else "restore"
    status.set_completed(
        generation,
        f"not run: a {kind.kind} of this name completed its {what} at {when or 'an earlier time'} "
        f"(annotation {COMPLETED}), and this one is a copy of it, so its work is done. To run "
        f"the {what} again, create it under a new name, or without that annotation",
    )
    return True
