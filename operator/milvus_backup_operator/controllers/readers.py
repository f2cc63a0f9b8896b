"""Which MilvusRestores still read a MilvusBackup's data: deleting it under them would pull
the backup from under their imports (and, before the swap, cost them their collections)."""

from __future__ import annotations

from typing import Any

from ..api import Kind
from ..api.specs import BackupSpec, SpecError, StorageSpec, parse_restore
from ..api.status import Status
from ..k8s.resources import Resources


def restored_by_ref(resources: Resources, namespace: str) -> dict[str, str]:
    """The MilvusBackups that MilvusRestores not yet done refer to (``backupRef``), each with
    one such restore: retention and ``ttl`` keep them (deleting one would also make the
    restore's next Job fail, its backupRef gone)."""
    found: dict[str, str] = {}
    for body in _unfinished(resources, namespace):
        ref = str((body.get("spec") or {}).get("backupRef") or "")
        if ref:
            found.setdefault(ref, body["metadata"]["name"])
    return found


def restores_reading(
    resources: Resources, namespace: str, backup: str, spec: BackupSpec
) -> list[str]:
    """The MilvusRestores of ``namespace`` not yet done that read MilvusBackup ``backup``:
    by ``backupRef``, or by ``backupName`` in the same backup storage."""
    return [b["metadata"]["name"] for b in _unfinished(resources, namespace)
            if _reads(b, backup, spec)]  # fmt: skip


def _unfinished(resources: Resources, namespace: str) -> list[dict[str, Any]]:
    return [
        body
        for body in resources.list_all(Kind.RESTORE, namespace)
        if not Status.of(body.get("status")).is_done()
    ]


def _reads(body: dict[str, Any], backup: str, spec: BackupSpec) -> bool:
    raw = body.get("spec") or {}
    if raw.get("backupRef"):
        return str(raw["backupRef"]) == backup
    try:
        restore = parse_restore(raw)
    except SpecError:
        return False  # it cannot run, so it reads nothing
    where = restore.backup_storage
    return (
        restore.backup_name == spec.backup_name
        and where is not None
        and _same(where, spec.backup_storage)
    )


def _same(a: StorageSpec, b: StorageSpec) -> bool:
    return (a.endpoint, a.bucket, a.root_path) == (b.endpoint, b.bucket, b.root_path)
