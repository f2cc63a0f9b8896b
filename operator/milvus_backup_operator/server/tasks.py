"""Durable task records (async creates and restores) in an embedded SQLite database.

milvus-backup keeps task state in memory only, so a restart loses it (#742); here every
change is written through, and a restarted server finds its tasks where they were.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..engine.errors import AlreadyExistsError
from .protocol import StateCode

CREATE, RESTORE = "create", "restore"


@dataclass
class Task:
    id: str
    kind: str  # create or restore
    backup_name: str
    request: dict[str, Any]
    state_code: int = StateCode.EXECUTING
    error: str = ""
    progress: int = 1
    start_time: int = field(default_factory=lambda: int(time.time()))
    end_time: int = 0
    collections: list[dict[str, Any]] = field(default_factory=list)

    def advance(self, percent: int) -> None:
        """Record progress, which never goes back: a resumed run counts its work anew."""
        self.progress = max(self.progress, min(99, percent), 1)

    def finish(self, error: str = "") -> None:
        self.state_code = StateCode.FAIL if error else StateCode.SUCCESS
        self.error = error
        self.progress = self.progress if error else 100
        self.end_time = int(time.time())


class TaskStore:
    """Tasks by id, written through to ``path`` (``:memory:`` for tests of the API alone)."""

    def __init__(self, path: Path | str) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS tasks (id TEXT PRIMARY KEY, body TEXT)")

    def add(self, task: Task) -> None:
        """Record a new task; its id must be new (one request id is one task)."""
        try:
            with self._lock:
                self._db.execute(
                    "INSERT INTO tasks (id, body) VALUES (?, ?)",
                    (task.id, json.dumps(asdict(task))),
                )
        except sqlite3.IntegrityError:
            raise AlreadyExistsError(
                f"a task with id {task.id!r} exists: use another request id"
            ) from None

    def remove(self, task_id: str) -> None:
        """Forget a task that was refused before it did anything."""
        with self._lock:
            self._db.execute("DELETE FROM tasks WHERE id = ?", (task_id,))

    def save(self, task: Task) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO tasks (id, body) VALUES (?, ?)",
                (task.id, json.dumps(asdict(task))),
            )

    def get(self, task_id: str) -> Task | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM tasks WHERE id = ?", (task_id,)).fetchone()
        return Task(**json.loads(row[0])) if row else None

    def all(self) -> list[Task]:
        with self._lock:
            rows = self._db.execute("SELECT body FROM tasks").fetchall()
        return [Task(**json.loads(row[0])) for row in rows]

    def latest_for_backup(self, kind: str, backup_name: str) -> Task | None:
        tasks = [t for t in self.all() if t.kind == kind and t.backup_name == backup_name]
        return max(tasks, key=lambda t: t.start_time, default=None)

    def close(self) -> None:
        with self._lock:
            self._db.close()
