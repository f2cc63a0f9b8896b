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
from typing import Any

from .api import BACKUP_PLURAL, RESTORE_PLURAL
from .api import status as st
from .api.engine_config import engine_config
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
from .engine.progress import Progress
from .engine.restore import RestoreRequest, restore_backup
from .engine.storage import ObjectStore
from .k8s import resources
from .k8s.credentials import ApiSecrets, SecretSource, gather

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


def run_backup(namespace: str, name: str, secrets: SecretSource) -> bool:
    """Back up what the MilvusBackup asks for; return True when it is Completed."""
    body = resources.get(BACKUP_PLURAL, namespace, name)
    if body is None:
        log.warning("MilvusBackup %s/%s is gone: nothing to do", namespace, name)
        return False
    status = body.get("status") or {}
    if st.is_done(status):
        return st.phase_of(status) == st.COMPLETED
    generation = body["metadata"].get("generation", 1)
    reporter = StatusReporter(BACKUP_PLURAL, namespace, name)
    try:
        spec = parse_backup(name, body.get("spec") or {})
        config = engine_config(
            spec.milvus, spec.storage, spec.backup_storage,
            gather(secrets, spec.milvus, spec.storage, spec.backup_storage),
        )  # fmt: skip
        catalog = Catalog(
            ObjectStore(config.backup_storage, config.timeouts), spec.backup_storage.root_path
        )
        if st.phase_of(status) == st.RUNNING and _resume(catalog, spec, reporter, generation):
            return True
        reporter.write(
            st.running(
                generation, f"backing up into {spec.backup_name}", backupName=spec.backup_name
            )
        )
        info = create_backup(config, BackupRequest(spec.backup_name, spec.collections), reporter)
    except BackupError as exc:
        reporter.write(st.failed(generation, str(exc), reason=_reason(exc)))
        return False
    reporter.write(_backup_completed(generation, info.size, info.collection_backups))
    return True


def _resume(catalog: Catalog, spec: BackupSpec, reporter: StatusReporter, generation: int) -> bool:
    """A predecessor died while Running: finish its record, or clear its leftovers."""
    info = catalog.finished_or_cleared(spec.backup_name)
    if info is None:
        return False
    reporter.write(_backup_completed(generation, info.size, info.collection_backups))
    return True


def _backup_completed(generation: int, size: int, collections: list[Any]) -> dict[str, Any]:
    results = [
        {"name": c.qualified_name, "state": st.COMPLETED, "rows": c.row_count(), "size": c.size}
        for c in collections
    ]
    names = ", ".join(r["name"] for r in results) or "no collections"
    return st.completed(
        generation,
        f"backed up {names} ({st.human_size(size)})",
        backupSize=size,
        size=st.human_size(size),
        collections=results,
    )


def run_restore(namespace: str, name: str, secrets: SecretSource) -> bool:
    """Restore what the MilvusRestore asks for; return True when it is Completed."""
    body = resources.get(RESTORE_PLURAL, namespace, name)
    if body is None:
        return False
    status = body.get("status") or {}
    if st.is_done(status):
        return st.phase_of(status) == st.COMPLETED
    generation = body["metadata"].get("generation", 1)
    reporter = StatusReporter(RESTORE_PLURAL, namespace, name)
    try:
        spec = resolve_restore(namespace, body.get("spec") or {})
        if st.phase_of(status) == st.RUNNING:
            raise SpecError(
                "the restore was interrupted (its worker stopped) and is not resumed: "
                "collections may be partly restored; check them, then create a new "
                "MilvusRestore with dropExistingCollection"
            )
        assert spec.milvus and spec.storage and spec.backup_storage
        config = engine_config(
            spec.milvus, spec.storage, spec.backup_storage,
            gather(secrets, spec.milvus, spec.storage, spec.backup_storage),
        )  # fmt: skip
        reporter.write(st.running(generation, f"restoring {spec.backup_name}"))
        result = restore_backup(config, _restore_request(spec, name), reporter)
    except BackupError as exc:
        reporter.write(st.failed(generation, str(exc), reason=_reason(exc)))
        return False
    collections = [
        {"name": c.source, "target": c.target, "state": c.state, "rows": c.rows, "error": c.error}
        for c in result.collections
    ]
    if result.succeeded:
        targets = ", ".join(c.target for c in result.collections)
        reporter.write(st.completed(generation, f"restored {targets}", collections=collections))
        return True
    message = f"restore failed for {result.failure_summary()}"
    reporter.write(st.failed(generation, message, reason="RestoreFailed", collections=collections))
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
        message += _remove_leftovers(namespace, name, body.get("spec") or {})
    resources.patch_status(plural, namespace, name, st.failed(generation, message, "WorkerFailed"))


def _remove_leftovers(namespace: str, name: str, raw_spec: dict[str, Any]) -> str:
    """Delete what a dead worker copied, unless its backup completed after all."""
    try:
        spec = parse_backup(name, raw_spec)
        credentials = gather(ApiSecrets(namespace), spec.milvus, spec.storage, spec.backup_storage)
        config = engine_config(spec.milvus, spec.storage, spec.backup_storage, credentials)
        store = ObjectStore(config.backup_storage, config.timeouts)
        catalog = Catalog(store, spec.backup_storage.root_path)
        if not catalog.exists(spec.backup_name):
            return ""
        catalog.read(spec.backup_name)
    except MalformedMetaError:
        catalog.delete(spec.backup_name)
        return "; its partial data was removed"
    except BackupError as exc:
        return f"; its partial data may remain (could not check: {exc})"
    return "; its data is complete but unconfirmed: check it with get, or delete it"
