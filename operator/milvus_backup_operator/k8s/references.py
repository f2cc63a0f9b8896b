"""A MilvusRestore's ``backupRef``: the MilvusBackup it restores, which must be done."""

from __future__ import annotations

from typing import Any

from ..api import Kind, Phase
from ..api.specs import RestoreSpec, SpecError, complete_restore, parse_backup, parse_restore
from ..api.status import Status
from .resources import Resources


class BackupNotReadyError(SpecError):
    """The referenced MilvusBackup has not finished yet: wait, do not fail."""


def resolve_restore(api: Resources, namespace: str, raw_spec: dict[str, Any]) -> RestoreSpec:
    """The restore's spec, completed from the MilvusBackup it refers to (which must be done)."""
    spec = parse_restore(raw_spec)
    if not spec.backup_ref:
        if spec.milvus is None or spec.storage is None:
            raise SpecError("spec.milvus and spec.storage are required with spec.backupName")
        return spec
    backup = api.get(Kind.BACKUP, namespace, spec.backup_ref)
    if backup is None:
        raise SpecError(f"MilvusBackup {spec.backup_ref!r} not found in namespace {namespace!r}")
    phase = Status.of(backup.get("status")).phase
    if phase == Phase.FAILED:
        raise SpecError(f"MilvusBackup {spec.backup_ref!r} failed: there is nothing to restore")
    if phase != Phase.COMPLETED:
        raise BackupNotReadyError(
            f"waiting for MilvusBackup {spec.backup_ref!r} to complete (it is "
            f"{phase or 'not started'})"
        )
    return complete_restore(spec, parse_backup(spec.backup_ref, backup.get("spec") or {}))
