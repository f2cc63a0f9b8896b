"""A resource whose worker ended for good without writing a result: recorded as Failed."""

from __future__ import annotations

from ..api import Kind
from ..api.specs import parse_backup
from ..api.status import status_of
from ..engine.catalog import Catalog
from ..engine.errors import BackupError, MalformedMetaError
from .credentials import ApiSecrets, config_for
from .resources import Resources


def mark_crashed(
    kind: Kind, namespace: str, name: str, message: str, api: Resources | None = None
) -> None:
    """Record that the worker ended without reporting (unless it did); a backup's partial
    objects are removed if they are provably this resource's."""
    api = api or Resources()
    body = api.get(kind, namespace, name)
    status = status_of(kind, (body or {}).get("status"))
    if body is None or status.is_done():
        return
    meta = body["metadata"]
    if kind is Kind.BACKUP and status.backup_name:
        message += _remove_leftovers(namespace, name, body.get("spec") or {}, meta.get("uid", ""))
    status.set_failed(int(meta.get("generation", 1)), message, "WorkerFailed")
    api.patch_status(kind, namespace, name, status.patch())


def _remove_leftovers(namespace: str, name: str, spec: dict[str, object], uid: str) -> str:
    """Delete what a dead worker copied (its marker names this resource), unless its backup
    completed after all."""
    try:
        parsed = parse_backup(name, dict(spec))
        catalog = Catalog.of(config_for(ApiSecrets(namespace), parsed))
        if not catalog.exists(parsed.backup_name):
            return ""
        info = catalog.finished_or_cleared(parsed.backup_name, uid)
    except MalformedMetaError as exc:
        return f"; what is under its name was kept, as it is not this resource's: {exc}"
    except BackupError as exc:
        return f"; its partial data may remain (could not check: {exc})"
    if info is None:
        return "; its partial data was removed"
    return "; its data is complete but unconfirmed: check it with get, or delete it"
