"""The work of one MilvusBackup or MilvusRestore: run the engine, report into the status.

It runs inside a Job (``milvus-backup-operator job backup|restore NS/NAME``) or, with the
inline executor, in the operator's own process. Either way the resource's status is the
record: a worker that finds its resource done does nothing, and one that finds it Running
(its predecessor died) resumes without losing or duplicating work.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .api import BACKUP_PLURAL, RESTORE_PLURAL
from .api import status as st
from .api.specs import (
    BackupSpec,
    RestoreSpec,
    SpecError,
    complete_restore,
    parse_backup,
    parse_restore,
)
from .engine.backup import BackupRequest, create_backup
from .engine.catalog import Catalog
from .engine.errors import BackupError, MalformedMetaError
from .engine.manifest import Manifest
from .engine.meta import BackupInfo, CollectionBackupInfo
from .engine.progress import Progress, human_size
from .engine.restore import restore_backup
from .engine.restore_plan import RestoreRequest, check_restore_request
from .engine.verify import require_intact
from .k8s import resources
from .k8s.credentials import ApiSecrets, SecretSource, config_for

log = logging.getLogger(__name__)


class StatusReporter:
    """Writes progress into the resource's status: on every step, else every ``interval`` s."""

    def __init__(self, plural: str, namespace: str, name: str, interval: float = 2.0) -> None:
        self.target = (plural, namespace, name)
        self.interval = interval
        self._last = (0.0, "")
        self._lock = threading.Lock()

    def __call__(self, progress: Progress) -> None:
        with self._lock:
            last_time, last_phase = self._last
            if time.monotonic() - last_time < self.interval and progress.phase == last_phase:
                return
            self._last = (time.monotonic(), progress.phase)
        try:
            resources.patch_status(*self.target, st.progressed(progress))
        except Exception as exc:  # progress is best effort; the result is written separately
            log.warning("could not write progress of %s/%s: %s", *self.target[1:], exc)

    def write(self, patch: dict[str, Any]) -> None:
        resources.patch_status(*self.target, patch)


@dataclass
class _Work:
    """A resource whose work is not done yet, and the way to report on it."""

    name: str
    namespace: str
    spec: dict[str, Any]
    phase: str
    generation: int
    reporter: StatusReporter
    uid: str = ""  # the resource's: recorded as the backup's id, so a successor knows it


def _run(plural: str, namespace: str, name: str, work: Callable[[_Work], bool]) -> bool:
    """Do ``work`` unless the resource is gone or done; a refusal or failure becomes Failed."""
    body = resources.get(plural, namespace, name)
    if body is None:
        log.warning("%s %s/%s is gone: nothing to do", plural, namespace, name)
        return False
    status = body.get("status") or {}
    if st.is_done(status):
        return st.phase_of(status) == st.COMPLETED
    generation = body["metadata"].get("generation", 1)
    reporter = StatusReporter(plural, namespace, name)
    item = _Work(
        name,
        namespace,
        body.get("spec") or {},
        st.phase_of(status),
        generation,
        reporter,
        uid=str(body["metadata"].get("uid", "")),
    )
    try:
        return work(item)
    except BackupError as exc:
        reporter.write(st.failed(generation, str(exc), reason=_reason(exc)))
        return False


def run_backup(namespace: str, name: str, secrets: SecretSource) -> bool:
    """Back up what the MilvusBackup asks for; return True when it is Completed."""
    return _run(BACKUP_PLURAL, namespace, name, lambda work: _backup(work, secrets))


def _backup(work: _Work, secrets: SecretSource) -> bool:
    spec = parse_backup(work.name, work.spec)
    config = config_for(secrets, spec)
    if work.phase == st.RUNNING and _resume(Catalog.of(config), spec, work):
        return True
    message = f"backing up into {spec.backup_name}"
    work.reporter.write(st.running(work.generation, message, backupName=spec.backup_name))
    request = BackupRequest(spec.backup_name, spec.collections, backup_id=work.uid, rbac=spec.rbac)
    info = create_backup(config, request, work.reporter)
    work.reporter.write(_backup_completed(work.generation, Catalog.of(config), info))
    return True


def _resume(catalog: Catalog, spec: BackupSpec, work: _Work) -> bool:
    """A predecessor died while Running: finish its record, or clear its leftovers."""
    info = catalog.finished_or_cleared(spec.backup_name, work.uid)
    if info is None:
        return False
    work.reporter.write(_backup_completed(work.generation, catalog, info))
    return True


def _backup_completed(generation: int, catalog: Catalog, info: BackupInfo) -> dict[str, Any]:
    manifest = catalog.manifest(info.name)
    results: list[dict[str, Any]] = [
        {
            "name": c.qualified_name,
            "state": st.COMPLETED,
            "rows": _rows(c, manifest),
            "size": c.size,
        }
        for c in info.collection_backups
    ]
    size = info.size
    names = ", ".join(c.qualified_name for c in info.collection_backups) or "no collections"
    return st.completed(
        generation,
        f"backed up {names} ({human_size(size)})",
        backupSize=size,
        size=human_size(size),
        collections=results,
    )


def _rows(collection: CollectionBackupInfo, manifest: Manifest | None) -> int:
    """The live rows recorded at backup; the rows of its segments if none were."""
    recorded = manifest.collection_rows(collection.collection_id) if manifest else None
    return collection.row_count() if recorded is None else recorded


def run_restore(namespace: str, name: str, secrets: SecretSource) -> bool:
    """Restore what the MilvusRestore asks for; return True when it is Completed."""
    return _run(RESTORE_PLURAL, namespace, name, lambda work: _restore(work, secrets))


def _restore(work: _Work, secrets: SecretSource) -> bool:
    spec = resolve_restore(work.namespace, work.spec)
    if work.phase == st.RUNNING:
        raise SpecError(
            "the restore was interrupted (its worker stopped) and is not resumed: "
            "collections may be partly restored; check them, then create a new "
            "MilvusRestore with dropExistingCollection"
        )
    config = config_for(secrets, spec)
    if spec.verify:
        require_intact(Catalog.of(config), spec.backup_name)
    if spec.dry_run:
        plan = check_restore_request(config, _restore_request(spec, work.name))
        message = f"dry run: every check passed, nothing written; {plan.integrity}"
        planned = [c.describe() for c in plan.collections]
        work.reporter.write(st.completed(work.generation, message, plan=planned))
        return True
    work.reporter.write(st.running(work.generation, f"restoring {spec.backup_name}"))
    result = restore_backup(config, _restore_request(spec, work.name), work.reporter)
    collections = [
        {
            "name": c.source,
            "target": c.target,
            "state": c.state,
            "rows": c.rows,
            "checked": c.checked,
            "error": c.error,
        }
        for c in result.collections
    ]
    if result.succeeded:
        targets = ", ".join(c.target for c in result.collections)
        message = f"restored {targets}"
        work.reporter.write(st.completed(work.generation, message, collections=collections))
        return True
    message = f"restore failed for {result.failure_summary()}"
    failed = st.failed(work.generation, message, reason="RestoreFailed", collections=collections)
    work.reporter.write(failed)
    return False


class BackupNotReadyError(SpecError):
    """The referenced MilvusBackup has not finished yet: wait, do not fail."""


def resolve_restore(namespace: str, raw_spec: dict[str, Any]) -> RestoreSpec:
    """The restore's spec, completed from the MilvusBackup it refers to (which must be done)."""
    spec = parse_restore(raw_spec)
    if not spec.backup_ref:
        if spec.milvus is None or spec.storage is None:
            raise SpecError("spec.milvus and spec.storage are required with spec.backupName")
        return spec
    backup = resources.get(BACKUP_PLURAL, namespace, spec.backup_ref)
    if backup is None:
        raise SpecError(f"MilvusBackup {spec.backup_ref!r} not found in namespace {namespace!r}")
    phase = st.phase_of(backup.get("status"))
    if phase == st.FAILED:
        raise SpecError(f"MilvusBackup {spec.backup_ref!r} failed: there is nothing to restore")
    if phase != st.COMPLETED:
        raise BackupNotReadyError(
            f"waiting for MilvusBackup {spec.backup_ref!r} to complete (it is "
            f"{phase or 'not started'})"
        )
    return complete_restore(spec, parse_backup(spec.backup_ref, backup.get("spec") or {}))


def _restore_request(spec: RestoreSpec, name: str) -> RestoreRequest:
    return RestoreRequest(
        backup_name=spec.backup_name,
        collections=spec.collections,
        suffix=spec.collection_suffix,
        renames=spec.collection_renames,
        drop_existing=spec.drop_existing,
        rebuild_index=spec.rebuild_index,
        load=spec.load,
        restore_aliases=spec.restore_aliases,
        rbac=spec.rbac,
        use_v2_restore=spec.use_v2_restore,
        task_id=name,
    )


def _reason(exc: BackupError) -> str:
    """A CamelCase condition reason from the error class, e.g. ``InvalidRequest``."""
    return type(exc).__name__.removesuffix("Error") or "Failed"


def mark_crashed(kind: str, namespace: str, name: str, message: str) -> None:
    """Record that the worker ended without reporting (crash, Job failure) unless it did."""
    plural = BACKUP_PLURAL if kind == "backup" else RESTORE_PLURAL
    body = resources.get(plural, namespace, name)
    if body is None or st.is_done(body.get("status")):
        return
    generation = body["metadata"].get("generation", 1)
    if kind == "backup" and (body.get("status") or {}).get("backupName"):
        message += _remove_leftovers(namespace, name, body)
    resources.patch_status(plural, namespace, name, st.failed(generation, message, "WorkerFailed"))


def _remove_leftovers(namespace: str, name: str, body: dict[str, Any]) -> str:
    """Delete what a dead worker copied (its marker names this resource), unless its backup
    completed after all."""
    try:
        spec = parse_backup(name, body.get("spec") or {})
        catalog = Catalog.of(config_for(ApiSecrets(namespace), spec))
        if not catalog.exists(spec.backup_name):
            return ""
        info = catalog.finished_or_cleared(spec.backup_name, body["metadata"].get("uid", ""))
    except MalformedMetaError as exc:
        return f"; what is under its name was kept, as it is not this resource's: {exc}"
    except BackupError as exc:
        return f"; its partial data may remain (could not check: {exc})"
    if info is None:
        return "; its partial data was removed"
    return "; its data is complete but unconfirmed: check it with get, or delete it"
