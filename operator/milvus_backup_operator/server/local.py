"""The standalone backend: the engine in this process, tasks in an embedded database."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from ..engine.backup import reserve_backup
from ..engine.catalog import Catalog
from ..engine.check import run_check
from ..engine.config import BackupConfig
from ..engine.errors import BackupError, InUseError, MalformedMetaError, NotFoundError
from ..engine.meta import BackupInfo
from ..engine.progress import Progress
from ..engine.reservation import Reservation
from ..engine.restore import CollectionRestoreResult
from ..engine.restore_plan import RestoreRequest, check_restore_request
from ..engine.runs import run_backup, run_restore
from ..engine.verify import verify_backup
from . import views
from .backend import name_of, require_id, require_name, stored_backup
from .protocol import CreateBackupRequest, RestoreBackupRequest, StateCode
from .requests import backup_request, restore_request
from .tasks import CREATE, RESTORE, Task, TaskStore

log = logging.getLogger(__name__)


class LocalBackend:
    def __init__(self, config: BackupConfig, tasks: TaskStore, workers: int = 4) -> None:
        self.config = config
        self.tasks = tasks
        self.catalog = Catalog.of(config)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="task")

    # ---- backups --------------------------------------------------------------------------

    def create(self, request: CreateBackupRequest, task_id: str) -> dict[str, Any]:
        """Claim the name before answering (a second create of it is a 409), then back up."""
        engine_request = replace(backup_request(request), backup_id=task_id)
        task = Task(task_id, CREATE, engine_request.name, request.model_dump(by_alias=True))
        self.tasks.add(task)
        try:
            reservation = reserve_backup(self.config, engine_request)
        except BaseException:
            self.tasks.remove(task_id)  # refused before any work: no task to show
            raise
        if request.run_async:
            self._pool.submit(self._run_backup, task, reservation)
            return views.backup_task(task)
        info = self._run_backup(task, reservation, raise_errors=True)
        assert info is not None  # a failure was raised
        return views.backup(info, task, self.catalog.meta_size(task.backup_name))

    def _refuse_running(self, name: str) -> None:
        task = self.tasks.latest_for_backup(CREATE, name)
        if task and task.state_code == StateCode.EXECUTING:
            raise InUseError(
                f"backup {name!r} is being created by task {task.id}: wait for it to finish"
            )

    def _run_backup(
        self,
        task: Task,
        reservation: Reservation | None = None,
        raise_errors: bool = False,
        resumed: bool = False,
    ) -> BackupInfo | None:
        """Run the task's backup and record how it ended (raise its error if asked to)."""
        request = backup_request(CreateBackupRequest.model_validate(task.request))
        request = replace(request, name=task.backup_name, backup_id=task.id)
        progress = self._progress_of(task)
        try:
            info = run_backup(
                self.config, request, progress, resumed=resumed, reservation=reservation
            )
        except Exception as exc:
            if not isinstance(exc, BackupError):
                log.exception("task %s crashed", task.id)
            task.finish(str(exc) if isinstance(exc, BackupError) else f"internal error: {exc!r}")
            self.tasks.save(task)
            if raise_errors:
                raise
            return None
        task.finish()
        self.tasks.save(task)
        return info

    def _progress_of(self, task: Task) -> Any:
        def report(progress: Progress) -> None:
            task.advance(progress.percent)
            self.tasks.save(task)

        return report

    def list(self) -> list[dict[str, Any]]:
        return [views.summary(entry) for entry in self.catalog.list()]

    def get_backup(self, backup_id: str, backup_name: str) -> dict[str, Any]:
        """By id or by name (both: the same backup), whichever process makes it: this
        server's own task while it runs or once it failed, else what the backup location
        holds (its meta, or its writer's marker)."""
        task = self.tasks.get(backup_id) if backup_id else None
        if task is not None and task.kind == CREATE:
            require_name(backup_id, task.backup_name, backup_name)
            if task.state_code != StateCode.SUCCESS:
                return views.backup_task(task)  # running here, or failed: its own record
            backup_name = task.backup_name
        name = backup_name or name_of(self.catalog, backup_id)
        return require_id(self._by_name(name), backup_id, name)

    def _by_name(self, name: str) -> dict[str, Any]:
        task = self.tasks.latest_for_backup(CREATE, name)
        if task is not None and task.state_code == StateCode.EXECUTING:
            return views.backup_task(task)
        try:
            return stored_backup(self.catalog, name, task)
        except (MalformedMetaError, NotFoundError):
            if task is not None and task.state_code == StateCode.FAIL:
                return views.backup_task(task)  # it failed: say why
            raise

    def delete(self, backup_name: str) -> None:
        self._refuse_running(backup_name)
        self.catalog.delete(backup_name)

    def verify(self, backup_name: str) -> dict[str, Any]:
        return views.verification(verify_backup(self.catalog, backup_name))

    # ---- restores -------------------------------------------------------------------------

    def restore(self, request: RestoreBackupRequest, task_id: str) -> dict[str, Any]:
        engine_request = restore_request(request, task_id)
        if request.dry_run:
            return views.restore_plan(check_restore_request(self.config, engine_request))
        task = Task(task_id, RESTORE, request.backup_name, request.model_dump(by_alias=True))
        self.tasks.add(task)
        try:
            if request.run_async:
                check_restore_request(self.config, engine_request)
                self._pool.submit(self._run_restore, task, engine_request)
            else:
                self._run_restore(task, engine_request, raise_refusal=True)
        except BackupError:
            if not task.collections:
                self.tasks.remove(task_id)  # refused before anything was written
            raise
        return views.restore_task(task)

    def _run_restore(
        self,
        task: Task,
        request: RestoreRequest,
        raise_refusal: bool = False,
        previous: Sequence[CollectionRestoreResult] | None = None,
    ) -> None:
        written = threading.Lock()  # collections restored in parallel report here

        def on_collection(result: CollectionRestoreResult) -> None:
            with written:
                entries = [c for c in task.collections if c["target"] != result.target]
                task.collections = [*entries, {**vars(result)}]
                self.tasks.save(task)

        progress = self._progress_of(task)
        try:
            result = run_restore(self.config, request, progress, on_collection, previous=previous)
        except BackupError as exc:
            task.finish(str(exc))
            self.tasks.save(task)
            if raise_refusal and not task.collections:
                raise  # refused before anything was written: an error, not a result
            return
        task.collections = [{**vars(c)} for c in result.collections]
        task.finish("" if result.succeeded else f"restore failed for {result.failure_summary()}")
        self.tasks.save(task)

    def get_restore(self, task_id: str) -> dict[str, Any]:
        task = self.tasks.get(task_id)
        if task is None or task.kind != RESTORE:
            raise NotFoundError(f"no restore task with id {task_id!r}")
        return views.restore_task(task)

    def check(self) -> tuple[bool, str]:
        report = run_check(self.config)
        return report.ok, report.render()

    # ---- after a restart ------------------------------------------------------------------

    def resume(self) -> None:
        """Pick up, in the background, the tasks a previous process left running: finish or
        redo them, never duplicate. Their state is readable meanwhile (still executing)."""
        self._pool.submit(self._resume_all)

    def _resume_all(self) -> None:
        for task in self.tasks.all():
            if task.state_code != StateCode.EXECUTING:
                continue
            log.warning("resuming %s task %s of %s", task.kind, task.id, task.backup_name)
            if task.kind == CREATE:
                self._resume_backup(task)
            else:
                self._resume_restore(task)

    def _resume_backup(self, task: Task) -> None:
        self._pool.submit(self._run_backup, task, resumed=True)

    def _resume_restore(self, task: Task) -> None:
        """The same request again, with what the dead run recorded (see engine.runs)."""
        previous = [CollectionRestoreResult(**c) for c in task.collections]
        try:
            request = restore_request(RestoreBackupRequest.model_validate(task.request), task.id)
        except BackupError as exc:
            task.finish(f"interrupted by a server restart, and could not resume: {exc}")
            self.tasks.save(task)
            return
        self._pool.submit(self._run_restore, task, request, previous=previous)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
