"""What the handlers work with, handed to each of them in Kopf's ``memo`` (no module state)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..api.status import Status
from ..executors import Executor, StartRefusedError, WorkItem
from ..k8s.credentials import ApiSecrets, SecretSource
from ..k8s.resources import Resources
from .metrics import Metrics


@dataclass
class Services:
    executor: Executor
    resources: Resources = field(default_factory=Resources)
    secrets: Callable[[str], SecretSource] = ApiSecrets  # a namespace's Secrets
    #: new workers started for one resource after its worker died without a result (its
    #: Job's Pod killed or evicted); each resumes the work (engine.runs)
    job_retries: int = 3
    #: what /metrics shows (controllers.metrics); a schedule's controller records it here
    metrics: Metrics = field(default_factory=Metrics)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))  # schedules' "now"


def services(memo: Any) -> Services:
    """The services the operator was started with (``memo.services``)."""
    found = memo.get("services") if hasattr(memo, "get") else None
    if not isinstance(found, Services):
        raise RuntimeError("the operator was started without its services in Kopf's memo")
    return found


def start_work(run: Services, item: WorkItem, status: Status, generation: int) -> None:
    """Start the work; work that cannot start as asked (a Job the API server refuses) fails
    the resource with the reason, instead of being retried forever."""
    try:
        run.executor.start(item)
    except StartRefusedError as exc:
        status.set_failed(generation, str(exc), reason="InvalidSpec")
        run.resources.patch_status(item.kind, item.namespace, item.name, status.patch())
