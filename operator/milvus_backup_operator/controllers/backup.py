"""MilvusBackup: validate, start the work, delete the data when the policy says so."""

from __future__ import annotations

import logging
from typing import Any, NoReturn

import kopf

from ..api import GROUP, VERSION, Kind, Phase
from ..api.specs import DELETE, BackupSpec, SpecError, parse_backup
from ..api.status import BackupStatus
from ..engine.catalog import Catalog
from ..engine.errors import BackupError, InUseError, NotABackupError, NotFoundError
from ..executors import WorkItem
from ..k8s.credentials import config_for, gather, secret_names
from .adoption import COMPLETED, adopt
from .metrics import counted
from .readers import restores_reading
from .services import Services, services, start_work

log = logging.getLogger(__name__)
PLURAL = Kind.BACKUP.plural
BLOCKED_RETRY = 10.0  # s between two looks at what keeps a deleted backup's data


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@counted
def reconcile(
    *, body: kopf.Body, spec: kopf.Spec, status: kopf.Status, name: str,
    namespace: str | None, patch: kopf.Patch, memo: kopf.Memo, **_: Any,
) -> None:  # fmt: skip
    """Start the backup once; a resource that is done, or already started, is left alone."""
    current = BackupStatus.of(status)
    if current.is_done() or namespace is None:
        return
    run = services(memo)
    generation = body.metadata.get("generation", 1)
    try:
        parsed = validate(run, name, namespace, dict(spec))
    except SpecError as exc:
        current.set_failed(generation, str(exc), reason="InvalidSpec")
        patch.status.update(current.patch())
        kopf.warn(body, reason="InvalidSpec", message=str(exc))
        return
    if _adopted(run, body, parsed, current, generation):
        patch.status.update(current.patch())
        return
    item = WorkItem(Kind.BACKUP, namespace, name, dict(body), tuple(secret_names(parsed)),
                    attempt=current.attempts)  # fmt: skip
    if not current.is_started():
        current.job_name = run.executor.runner_name(item)
        current.backup_name = parsed.backup_name
        message = f"backup {parsed.backup_name} scheduled ({current.job_name})"
        current.set_pending(generation, message)
        # written now, not with Kopf's patch after the handler: the work may report first
        run.resources.patch_status(Kind.BACKUP, namespace, name, current.patch())
        kopf.event(body, type="Normal", reason="Started", message=message)
    start_work(run, item, current, generation)


def _adopted(
    run: Services, body: kopf.Body, spec: BackupSpec, status: BackupStatus, generation: int
) -> bool:
    """A copy of a completed MilvusBackup whose backup is still there is that backup, if
    that backup was written by the resource its completion mark names (a backup's id is
    the uid of the MilvusBackup that wrote it); a mark naming another writer fails it."""
    namespace = body.metadata.get("namespace")
    if status.is_started() or namespace is None or COMPLETED not in body.metadata.annotations:
        return False
    config = config_for(run.secrets(namespace), spec)
    catalog = Catalog.of(config)
    if not catalog.exists(spec.backup_name):
        return False  # nothing to adopt: the copy backs up afresh
    original = str(body.metadata.annotations[COMPLETED]).partition(" ")[0]
    try:
        written_by = catalog.read(spec.backup_name).id
    except BackupError as exc:
        written_by = f"unknown ({exc})"
    if written_by != original:
        # the mark was written by hand, or copied onto another spec: adopting would make
        # this resource the owner of a backup it did not make (deletionPolicy Delete would
        # then delete it)
        status.set_failed(
            generation,
            f"not adopted: annotation {COMPLETED} names the MilvusBackup {original!r}, but "
            f"backup {spec.backup_name} was written by {written_by!r}; remove the annotation "
            "and set another spec.backupName to make a new backup",
            reason="InvalidSpec",
        )
        return True
    status.backup_name = spec.backup_name
    return adopt(Kind.BACKUP, body.metadata, status, generation)


def validate(run: Services, name: str, namespace: str, spec: dict[str, Any]) -> BackupSpec:
    """Everything that can be refused before any work: spec rules, Secrets, name clashes."""
    parsed = parse_backup(name, spec)
    gather(run.secrets(namespace), parsed)
    for other in run.resources.list_all(Kind.BACKUP, namespace):
        other_name = other["metadata"]["name"]
        if other_name == name or BackupStatus.of(other.get("status")).phase == Phase.FAILED:
            continue
        other_spec = _parse_quietly(other_name, other.get("spec") or {})
        if other_spec and _same_target(other_spec, parsed):
            raise SpecError(
                f"MilvusBackup {other_name!r} already writes backup {parsed.backup_name!r} "
                "to the same place: set a different spec.backupName"
            )
    return parsed


def _parse_quietly(name: str, spec: dict[str, Any]) -> BackupSpec | None:
    try:
        return parse_backup(name, spec)
    except SpecError:
        return None


def _same_target(a: BackupSpec, b: BackupSpec) -> bool:
    fields = ("endpoint", "bucket", "root_path")
    same = all(getattr(a.backup_storage, f) == getattr(b.backup_storage, f) for f in fields)
    return same and a.backup_name == b.backup_name


@kopf.on.delete(
    GROUP, VERSION, PLURAL,
    when=lambda spec, **_: spec.get("deletionPolicy") == DELETE,
)  # fmt: skip
@counted
def delete_data(
    *, body: kopf.Body, spec: kopf.Spec, status: kopf.Status, name: str,
    namespace: str | None, memo: kopf.Memo, **_: Any,
) -> None:  # fmt: skip
    """deletionPolicy Delete: remove the backup's objects, if this resource wrote them.

    A backup still running is stopped first (its Job deleted); the data is kept, the resource
    Terminating with a DeletionBlocked condition, while a MilvusRestore not yet done reads it,
    a restore elsewhere holds its reader's lease, or its writer may still be writing. What is
    under the name but is not a backup (no meta, no marker of ours) is left alone, with a
    warning: the resource goes, nothing else does.
    """
    current = BackupStatus.of(status)
    if namespace is None or not current.backup_name or current.phase == Phase.FAILED:
        return  # nothing of ours was written (a failed backup cleans up after itself)
    run = services(memo)
    parsed = parse_backup(name, dict(spec))
    if not current.is_done():
        _stop_writer(run, body, current, namespace)
    readers = restores_reading(run.resources, namespace, name, parsed)
    if readers:
        restores = (f"MilvusRestores {', '.join(readers)} restore" if len(readers) > 1
                    else f"MilvusRestore {readers[0]} restores")  # fmt: skip
        _block(run, body, current, f"backup data kept while {restores} it: it is deleted "
               "once no unfinished restore reads it")  # fmt: skip
    catalog = Catalog.of(config_for(run.secrets(namespace), parsed))
    try:
        removed = catalog.delete(parsed.backup_name)
    except NotFoundError:
        return
    except NotABackupError as exc:
        kopf.warn(body, reason="NotDeleted", message=f"backup data kept: {exc}")
        return
    except InUseError as exc:
        _block(run, body, current, f"backup data kept: {exc}")
    except BackupError as exc:
        raise kopf.TemporaryError(
            f"could not delete backup {parsed.backup_name}: {exc}", delay=30
        ) from None
    log.info(
        "deleted backup %s (%d objects) of %s/%s", parsed.backup_name, removed, namespace, name
    )


def _stop_writer(run: Services, body: kopf.Body, status: BackupStatus, namespace: str) -> None:
    """A deleted backup that has not finished: tell its worker to stop before its data goes
    (its marker then falls silent, and the delete waits for that)."""
    if status.job_name and run.executor.stop(namespace, status.job_name):
        log.info("%s/%s deleted while running: stopped its Job %s", namespace,
                 body.metadata.name, status.job_name)  # fmt: skip
        return
    _block(run, body, status, "backup data kept: the backup runs inside the operator "
           "(--executor inline), which cannot stop it; its data goes once it ends")  # fmt: skip


def _block(run: Services, body: kopf.Body, status: BackupStatus, message: str) -> NoReturn:
    """Keep the resource (Terminating) and its data for now, saying why; look again later."""
    namespace, name = body.metadata.namespace, body.metadata.name
    if status.message != message and namespace and name:
        status.block_deletion("InUse", message)
        run.resources.patch_status(Kind.BACKUP, namespace, name, status.patch())
        kopf.warn(body, reason="DeletionBlocked", message=message)
    raise kopf.TemporaryError(message, delay=BLOCKED_RETRY)
