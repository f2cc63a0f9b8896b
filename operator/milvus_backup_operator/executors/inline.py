"""Run the work in a thread of the operator itself (small clusters, development)."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from .. import worker
from ..api import Kind
from ..k8s.abandoned import mark_crashed
from ..k8s.credentials import ApiSecrets
from . import WorkItem

log = logging.getLogger(__name__)


class InlineExecutor:
    def __init__(self, workers: int = 4) -> None:
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="inline")
        self._running: set[tuple[Kind, str, str]] = set()
        self._lock = threading.Lock()

    def runner_name(self, item: WorkItem) -> str:
        return "inline"

    def stop(self, namespace: str, runner: str) -> bool:
        """A thread of the operator cannot be stopped from outside: it runs to its end."""
        return False

    def start(self, item: WorkItem) -> None:
        key = (item.kind, item.namespace, item.name)
        with self._lock:
            if key not in self._running:
                self._running.add(key)
                self._pool.submit(self._run, item, key)

    def _run(self, item: WorkItem, key: tuple[Kind, str, str]) -> None:
        run = worker.backup if item.kind is Kind.BACKUP else worker.restore
        try:
            run(item.namespace, item.name, ApiSecrets(item.namespace))
        except Exception as exc:
            log.exception("inline %s of %s/%s crashed", item.kind.value, item.namespace, item.name)
            mark_crashed(item.kind, item.namespace, item.name, f"worker crashed: {exc}")
        finally:
            with self._lock:
                self._running.discard(key)
