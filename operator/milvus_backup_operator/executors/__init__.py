"""Where the work runs: a Kubernetes Job per resource, or a thread in the operator (inline)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ..api import Kind


@dataclass(frozen=True)
class WorkItem:
    """One resource whose work must run."""

    kind: Kind
    namespace: str
    name: str
    owner: dict[str, Any]  # the resource, for the Job's ownerReference
    secrets: tuple[str, ...]  # Secrets the work reads
    attempt: int = 0  # workers started before this one, which died without a result


class StartRefusedError(Exception):
    """The work cannot be started as asked (e.g. the API server finds the Job's Pod settings
    invalid): retrying would not help; the message says what to fix."""


class Executor(Protocol):
    def runner_name(self, item: WorkItem) -> str:
        """What will run the work, for the status (e.g. the Job's name)."""
        ...

    def start(self, item: WorkItem) -> None:
        """Start the work unless it already runs (:class:`StartRefusedError` if it cannot)."""
        ...

    def stop(self, namespace: str, runner: str) -> bool:
        """Ask the work ``runner`` runs to stop (a worker told to stop exits once Milvus has
        answered its calls in flight); True if it was asked, False if it cannot be."""
        ...
