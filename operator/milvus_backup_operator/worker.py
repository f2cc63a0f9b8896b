"""The work of one MilvusBackup or MilvusRestore: run it, report into the resource's status.

It runs inside a Job (``milvus-backup-operator job backup|restore NS/NAME``) or, with the
inline executor, in the operator's own process. Either way the resource's status is the
record: a worker that finds its resource done does nothing, and one that finds it Running
(its predecessor died: a Job's Pod killed, the operator restarted) resumes it as
:mod:`engine.runs` says, without losing or duplicating work.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from .api import Kind, Phase
from .api.specs import BackupSpec, RestoreSpec, parse_backup
from .api.status import (
    BackedUpCollection,
    BackupStatus,
    RestoredCollection,
    RestoreStatus,
    Status,
    status_of,
)
from .engine.backup import BackupRequest
from .engine.catalog import Catalog
from .engine.config import BackupConfig
from .engine.errors import BackupError, kind_of
from .engine.manifest import Manifest
from .engine.meta import BackupInfo, CollectionBackupInfo
from .engine.progress import Progress, human_size
from .engine.restore import CollectionRestoreResult, RestoreResult
from .engine.restore_plan import RestoreRequest, check_restore_request
from .engine.runs import run_backup, run_restore
from .engine.verify import require_intact
from .k8s.credentials import SecretSource, config_for
from .k8s.references import resolve_restore
from .k8s.resources import Resources

log = logging.getLogger(__name__)
PROGRESS_INTERVAL = 2.0  # seconds between two progress writes into a status


@dataclass
class Work:
    """A resource whose work is not done yet: its spec, and its status being written."""

    kind: Kind
    namespace: str
    name: str
    uid: str  # the resource's: recorded as the backup's id, so a successor knows it
    generation: int
    spec: dict[str, Any]
    status: Status
    api: Resources
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def resumed(self) -> bool:
        return self.status.phase == Phase.RUNNING

    def save(self, change: Callable[[], None] = lambda: None) -> None:
        """Apply ``change`` to the status and write the whole status (under the lock: two
        threads' writes must not land in the other order, the older over the newer)."""
        with self._lock:
            change()
            self.api.patch_status(self.kind, self.namespace, self.name, self.status.patch())

    def progress(self, progress: Progress) -> None:
        """Best effort: the result is written separately, whatever happens to this."""
        with self._lock:
            patch = self.status.set_progress(progress)
        try:
            self.api.patch_status(self.kind, self.namespace, self.name, patch)
        except Exception as exc:
            log.warning("could not write progress of %s/%s: %s", self.namespace, self.name, exc)


def _load(kind: Kind, namespace: str, name: str, api: Resources) -> Work | None:
    body = api.get(kind, namespace, name)
    if body is None:
        log.warning("%s %s/%s is gone: nothing to do", kind.kind, namespace, name)
        return None
    meta = body["metadata"]
    return Work(
        kind, namespace, name, str(meta.get("uid", "")), int(meta.get("generation", 1)),
        body.get("spec") or {}, status_of(kind, body.get("status")), api,
    )  # fmt: skip


def _run(
    kind: Kind, namespace: str, name: str, api: Resources | None, do: Callable[[Work], bool]
) -> bool:
    """Do the work unless the resource is gone or done; a refusal or failure becomes Failed."""
    work = _load(kind, namespace, name, api or Resources())
    if work is None:
        return False
    if work.status.is_done():
        return work.status.phase == Phase.COMPLETED
    try:
        return do(work)
    except BackupError as exc:
        message, reason = str(exc), kind_of(exc).reason
        work.save(lambda: work.status.set_failed(work.generation, message, reason))
        return False


def _config(secrets: SecretSource, spec: BackupSpec | RestoreSpec) -> BackupConfig:
    return replace(config_for(secrets, spec), progress_interval=PROGRESS_INTERVAL)


# ---- backups -------------------------------------------------------------------------------


def backup(namespace: str, name: str, secrets: SecretSource, api: Resources | None = None) -> bool:
    """Back up what the MilvusBackup asks for; return True when it is Completed."""
    return _run(Kind.BACKUP, namespace, name, api, lambda work: _backup(work, secrets))


def _backup(work: Work, secrets: SecretSource) -> bool:
    spec = parse_backup(work.name, work.spec)
    config = _config(secrets, spec)
    status = work.status
    assert isinstance(status, BackupStatus)
    resumed = work.resumed

    def running() -> None:
        status.backup_name = spec.backup_name
        verb = "resuming the backup" if resumed else "backing up"
        status.set_running(work.generation, f"{verb} into {spec.backup_name}")

    work.save(running)
    request = BackupRequest(spec.backup_name, spec.collections, backup_id=work.uid, rbac=spec.rbac)
    info = run_backup(config, request, work.progress, resumed=resumed)
    catalog = Catalog.of(config)
    work.save(lambda: _backup_completed(status, work.generation, catalog, info))
    return True


def _backup_completed(
    status: BackupStatus, generation: int, catalog: Catalog, info: BackupInfo
) -> None:
    manifest = catalog.manifest(info.name)
    status.collections = [
        BackedUpCollection(c.qualified_name, Phase.COMPLETED, _rows(c, manifest), c.size)
        for c in info.collection_backups
    ]
    status.backup_size, status.size = info.size, human_size(info.size)
    names = ", ".join(c.qualified_name for c in info.collection_backups) or "no collections"
    status.set_completed(generation, f"backed up {names} ({human_size(info.size)})")


def _rows(collection: CollectionBackupInfo, manifest: Manifest | None) -> int:
    """The live rows recorded at backup; the rows of its segments if none were."""
    recorded = manifest.collection_rows(collection.collection_id) if manifest else None
    return collection.row_count() if recorded is None else recorded


# ---- restores ------------------------------------------------------------------------------


def restore(namespace: str, name: str, secrets: SecretSource, api: Resources | None = None) -> bool:
    """Restore what the MilvusRestore asks for; return True when it is Completed."""
    return _run(Kind.RESTORE, namespace, name, api, lambda work: _restore(work, secrets))


def _restore(work: Work, secrets: SecretSource) -> bool:
    spec = resolve_restore(work.api, work.namespace, work.spec)
    config = _config(secrets, spec)
    status = work.status
    assert isinstance(status, RestoreStatus)
    if spec.verify:
        require_intact(Catalog.of(config), spec.backup_name)
    request = _restore_request(spec, work.name, work.namespace)
    if spec.dry_run:
        plan = check_restore_request(config, request)

        def planned() -> None:
            status.plan = [c.describe() for c in plan.collections]
            message = f"dry run: every check passed, nothing written; {plan.integrity}"
            status.set_completed(work.generation, message)

        work.save(planned)
        return True
    previous = [_engine_result(c) for c in status.collections] if work.resumed else None
    verb = "resuming the restore of" if previous is not None else "restoring"
    work.save(lambda: status.set_running(work.generation, f"{verb} {spec.backup_name}"))

    def on_collection(result: CollectionRestoreResult) -> None:
        work.save(lambda: status.record(_status_result(result)))

    result = run_restore(config, request, work.progress, on_collection, previous=previous)
    work.save(lambda: _restore_ended(status, work.generation, result))
    return result.succeeded


def _restore_ended(status: RestoreStatus, generation: int, result: RestoreResult) -> None:
    status.collections = [_status_result(c) for c in result.collections]
    if result.succeeded:
        targets = ", ".join(c.target for c in result.collections)
        status.set_completed(generation, f"restored {targets}")
    else:
        message = f"restore failed for {result.failure_summary()}"
        status.set_failed(generation, message, "RestoreFailed")


def _status_result(result: CollectionRestoreResult) -> RestoredCollection:
    return RestoredCollection(
        result.source, result.target, result.state, result.rows, result.checked, result.error,
        result.collection_id, result.building, result.replaces,
    )  # fmt: skip


def _engine_result(collection: RestoredCollection) -> CollectionRestoreResult:
    return CollectionRestoreResult(
        collection.name, collection.target, collection.state, collection.rows,
        error=collection.error, checked=collection.checked,
        collection_id=collection.collection_id, building=collection.building,
        replaces=collection.replaces,
    )  # fmt: skip


def _restore_request(spec: RestoreSpec, name: str, namespace: str) -> RestoreRequest:
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
        reader=f"MilvusRestore {namespace}/{name}",
    )
