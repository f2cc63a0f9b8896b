"""Status of MilvusBackup and MilvusRestore, and the one place that changes a phase.

Each transition returns a merge patch for ``.status``. Conditions follow kstatus
(``Ready``, ``Reconciling``, ``Stalled``) so Flux and Argo CD compute health without custom code.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..engine.progress import Progress

PENDING, RUNNING, COMPLETED, FAILED = "Pending", "Running", "Completed", "Failed"
DONE = (COMPLETED, FAILED)

Patch = dict[str, Any]


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def phase_of(status: Mapping[str, Any] | None) -> str:
    return str((status or {}).get("phase") or "")


def is_done(status: Mapping[str, Any] | None) -> bool:
    return phase_of(status) in DONE


def pending(generation: int, message: str, **fields: Any) -> Patch:
    """Accepted; the work has not started yet (e.g. its Job is being created)."""
    return _patch(PENDING, generation, message, ready=False, reason="Pending", **fields)


def running(generation: int, message: str, **fields: Any) -> Patch:
    patch = _patch(RUNNING, generation, message, ready=False, reason="Running", **fields)
    patch.setdefault("startTime", now())
    return patch


def progressed(progress: Progress) -> Patch:
    """The progress block alone (written often, so small)."""
    return {
        "progress": {
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
    }


def completed(generation: int, message: str, **fields: Any) -> Patch:
    patch = _patch(COMPLETED, generation, message, ready=True, reason="Completed", **fields)
    patch["completionTime"] = now()
    return patch


def failed(generation: int, message: str, reason: str = "Failed", **fields: Any) -> Patch:
    """Failed for good: the spec (or the world) must change before it can succeed."""
    patch = _patch(FAILED, generation, message, ready=False, reason=reason, **fields)
    patch["completionTime"] = now()
    return patch


def _patch(
    phase: str, generation: int, message: str, *, ready: bool, reason: str, **fields: Any
) -> Patch:
    stamp = now()
    working = phase in (PENDING, RUNNING)
    stalled = phase == FAILED
    conditions = [
        _condition("Ready", ready, reason, message, generation=generation, stamp=stamp),
        _condition("Reconciling", working, reason, message if working else "",
                   generation=generation, stamp=stamp),
        _condition("Stalled", stalled, reason, message if stalled else "",
                   generation=generation, stamp=stamp),
    ]  # fmt: skip
    patch: Patch = without_empty_strings(
        {
            "phase": phase,
            "message": message,
            "observedGeneration": generation,
            "conditions": conditions,
            **fields,
        }
    )
    return patch


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


def _condition(
    kind: str, value: bool, reason: str, message: str, *, generation: int, stamp: str
) -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True" if value else "False",
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": stamp,
    }
