"""What the API returns in ``data``: milvus-backup's BackupInfo and RestoreBackupTask shapes."""

from __future__ import annotations

from typing import Any

from ..engine.catalog import COMPLETED, RUNNING, BackupSummary
from ..engine.meta import BackupInfo
from ..engine.restore_plan import RestorePlan
from ..engine.verify import VerifyReport
from .protocol import StateCode
from .tasks import Task

_COLLECTION_STATES = {
    "Pending": StateCode.INITIAL,
    "Running": StateCode.EXECUTING,
    "Swapping": StateCode.EXECUTING,
    "Completed": StateCode.SUCCESS,
    "Failed": StateCode.FAIL,
}


def backup(info: BackupInfo, task: Task | None = None, meta_size: int = 0) -> dict[str, Any]:
    """A finished backup as stored (the meta's BackupInfo), marked successful."""
    data = info.public()  # never an encrypted database's key
    data.update(state_code=int(StateCode.SUCCESS), progress=100)
    if meta_size:
        data["meta_size"] = meta_size  # the bytes of its meta files, as milvus-backup's brief
    if info.meta_only:
        data["meta_only"] = True  # ours: milvus-backup's meta has no such mark
    if task is not None:
        data.update(start_time=task.start_time, end_time=task.end_time)
    return data


def backup_task(task: Task) -> dict[str, Any]:
    """A backup that is still being written, or failed: the task's own record."""
    return {**_task_fields(task), "name": task.backup_name}


def running(entry: BackupSummary) -> dict[str, Any]:
    """A backup another process is writing, as its in-progress marker tells."""
    return {
        "id": entry.id,
        "name": entry.name,
        "state_code": int(StateCode.EXECUTING),
        "start_time": int(entry.started),
        "progress": max(1, entry.progress),
    }


def _task_fields(task: Task) -> dict[str, Any]:
    """What every task shows: id, state, times, progress and (when it failed) why."""
    data: dict[str, Any] = {
        "id": task.id,
        "state_code": task.state_code,
        "start_time": task.start_time,
        "progress": task.progress,
    }
    if task.error:
        data["errorMessage"] = task.error
    if task.end_time:
        data["end_time"] = task.end_time
    return data


_SUMMARY_STATES = {COMPLETED: StateCode.SUCCESS, RUNNING: StateCode.EXECUTING}


def summary(entry: BackupSummary) -> dict[str, Any]:
    """One ``list`` entry; a backup being written is executing, one whose writer stopped
    before it completed is listed as failed, never hidden."""
    data: dict[str, Any] = {
        "name": entry.name,
        "state_code": int(_SUMMARY_STATES.get(entry.state, StateCode.FAIL)),
        "size": entry.size,
    }
    if entry.id:
        data["id"] = entry.id
    if entry.state == RUNNING:
        data.update(start_time=int(entry.started), progress=max(1, entry.progress))
    if entry.milvus_version:
        data["milvus_version"] = entry.milvus_version
    if entry.backup_timestamp:
        data["backup_timestamp"] = entry.backup_timestamp
    if entry.collections:
        data["collection_names"] = list(entry.collections)
    if entry.meta_only:
        data["meta_only"] = True  # ours: the backup holds schemas, no data
    if entry.error:
        data["errorMessage"] = entry.error
    return data


def restore_task(task: Task) -> dict[str, Any]:
    """milvus-backup's RestoreBackupTask: state, progress, times, one entry per collection."""
    entries = [_collection_task(task, i, c) for i, c in enumerate(task.collections)]
    return {**_task_fields(task), "collection_restore_tasks": entries}


def _collection_task(task: Task, index: int, entry: dict[str, Any]) -> dict[str, Any]:
    db, _, name = str(entry["target"]).rpartition(".")
    data: dict[str, Any] = {
        "id": f"{task.id}_{index}",
        "state_code": int(_COLLECTION_STATES.get(entry.get("state", ""), StateCode.INITIAL)),
        "target_db_name": db or "default",
        "target_collection_name": name,
        "source": entry["source"],
        "restored_rows": entry.get("rows", 0),
        "progress": 100 if entry.get("state") == "Completed" else 0,
    }
    if entry.get("checked"):
        data["rows_checked"] = entry["checked"]  # ours: milvus-backup's clients ignore it
    if entry.get("error"):
        data["errorMessage"] = entry["error"]
    return data


def verification(report: VerifyReport) -> dict[str, Any]:
    """``verify``: whether the backup is intact, which check ran, and each problem by key."""
    return {
        "name": report.name,
        "intact": report.ok,
        "check": report.check,
        "objects": report.objects,
        "problems": [{"key": key, "problem": problem} for key, problem in report.problems],
        "summary": report.verdict(),
    }


def restore_plan(plan: RestorePlan) -> dict[str, Any]:
    """A dry run's answer: the checks passed and what the restore would do."""
    return {
        "backup_name": plan.backup_name,
        "dry_run": True,
        "integrity": plan.integrity,
        "collections": [vars(c) | {"indexes": list(c.indexes)} for c in plan.collections],
        "summary": plan.render(),
    }
