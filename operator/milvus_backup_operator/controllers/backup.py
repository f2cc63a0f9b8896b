"""MilvusBackup: validate, start the work, delete the data when the policy says so."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from ..api import BACKUP_PLURAL, GROUP, VERSION
from ..api import status as st
from ..api.specs import DELETE, BackupSpec, SpecError, parse_backup
from ..engine.catalog import Catalog
from ..engine.errors import BackupError, NotABackupError, NotFoundError
from ..executors import BACKUP, WorkItem
from ..k8s import resources
from ..k8s.credentials import ApiSecrets, config_for, gather, secret_names
from .options import OPTIONS

log = logging.getLogger(__name__)


@kopf.on.resume(GROUP, VERSION, BACKUP_PLURAL)
@kopf.on.create(GROUP, VERSION, BACKUP_PLURAL)
def reconcile(
    *, body: kopf.Body, spec: kopf.Spec, status: kopf.Status, name: str,
    namespace: str | None, patch: kopf.Patch, **_: Any,
) -> None:  # fmt: skip
    """Start the backup once; a resource that is done, or already started, is left alone."""
    if st.is_done(status) or namespace is None:
        return
    generation = body.metadata.get("generation", 1)
    try:
        parsed = validate(name, namespace, dict(spec))
    except SpecError as exc:
        patch.status.update(st.failed(generation, str(exc), reason="InvalidSpec"))
        kopf.warn(body, reason="InvalidSpec", message=str(exc))
        return
    item = WorkItem(BACKUP, namespace, name, dict(body), tuple(secret_names(parsed)))
    if not st.phase_of(status):
        runner = OPTIONS.executor.runner_name(item)
        message = f"backup {parsed.backup_name} scheduled ({runner})"
        # written now, not with Kopf's patch after the handler: the work may report first
        pending = st.pending(generation, message, backupName=parsed.backup_name, jobName=runner)
        resources.patch_status(BACKUP_PLURAL, namespace, name, pending)
        kopf.event(body, type="Normal", reason="Started", message=message)
    OPTIONS.executor.start(item)


def validate(name: str, namespace: str, spec: dict[str, Any]) -> BackupSpec:
    """Everything that can be refused before any work: spec rules, Secrets, name clashes."""
    parsed = parse_backup(name, spec)
    gather(ApiSecrets(namespace), parsed)
    for other in resources.list_all(BACKUP_PLURAL, namespace):
        other_name = other["metadata"]["name"]
        if other_name == name or st.phase_of(other.get("status")) == st.FAILED:
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
    GROUP, VERSION, BACKUP_PLURAL,
    when=lambda spec, **_: spec.get("deletionPolicy") == DELETE,
)  # fmt: skip
def delete_data(
    *, body: kopf.Body, spec: kopf.Spec, status: kopf.Status, name: str,
    namespace: str | None, **_: Any,
) -> None:  # fmt: skip
    """deletionPolicy Delete: remove the backup's objects, if this resource wrote them.

    What is under the name but is not a backup (no meta, no marker of ours) is left alone,
    with a warning: the resource goes, nothing else does.
    """
    if namespace is None or not status.get("backupName") or st.phase_of(status) == st.FAILED:
        return  # nothing of ours was written (a failed backup cleans up after itself)
    parsed = parse_backup(name, dict(spec))
    catalog = Catalog.of(config_for(ApiSecrets(namespace), parsed))
    try:
        removed = catalog.delete(parsed.backup_name)
    except NotFoundError:
        return
    except NotABackupError as exc:
        kopf.warn(body, reason="NotDeleted", message=f"backup data kept: {exc}")
        return
    except BackupError as exc:
        raise kopf.TemporaryError(
            f"could not delete backup {parsed.backup_name}: {exc}", delay=30
        ) from None
    log.info(
        "deleted backup %s (%d objects) of %s/%s", parsed.backup_name, removed, namespace, name
    )
