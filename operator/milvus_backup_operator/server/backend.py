"""What the REST handlers need from whatever does the work (engine here, resources in a
cluster), and how both read a backup from its location."""

from __future__ import annotations

from typing import Any, Protocol

from ..engine.catalog import INCOMPLETE, RUNNING, Catalog
from ..engine.errors import MalformedMetaError, NotFoundError
from . import views
from .protocol import CreateBackupRequest, RestoreBackupRequest
from .tasks import Task


class Backend(Protocol):
    def create(self, request: CreateBackupRequest, task_id: str) -> dict[str, Any]: ...

    def list(self) -> list[dict[str, Any]]: ...

    def get_backup(self, backup_id: str, backup_name: str) -> dict[str, Any]: ...

    def delete(self, backup_name: str) -> None: ...

    def verify(self, backup_name: str) -> dict[str, Any]: ...

    def restore(self, request: RestoreBackupRequest, task_id: str) -> dict[str, Any]: ...

    def get_restore(self, task_id: str) -> dict[str, Any]: ...

    def check(self) -> tuple[bool, str]: ...


def stored_backup(catalog: Catalog, name: str, task: Task | None = None) -> dict[str, Any]:
    """Backup ``name`` as its location holds it: its meta (with ``task``'s times if that
    task wrote it), or, while it is being written, its writer's marker; else what reading
    it raised."""
    try:
        info = catalog.read(name)
    except (MalformedMetaError, NotFoundError):
        entry = catalog.summary(name)
        if entry is None or entry.state == INCOMPLETE:
            raise
        if entry.state == RUNNING:
            return views.running(entry)  # whichever process writes it
        info = catalog.read(name)  # it completed meanwhile
    own = task if task is not None and task.id == info.id else None
    return views.backup(info, own, catalog.meta_size(name))


def name_of(catalog: Catalog, backup_id: str) -> str:
    """The name of the backup whose id is ``backup_id``."""
    found = catalog.find_id(backup_id)
    if found is None:
        raise NotFoundError(
            f"no backup with id {backup_id!r} in {catalog.store.describe()}: check the id "
            "(list shows each backup's), or give backup_name"
        )
    return found


def require_name(backup_id: str, name_of_id: str, backup_name: str) -> None:
    """Refuse an id and a name of two different backups."""
    if backup_name and backup_name != name_of_id:
        raise NotFoundError(
            f"backup id {backup_id!r} belongs to backup {name_of_id!r}, not to {backup_name!r}: "
            "give the id list shows for that name, or the name alone"
        )


def require_id(data: dict[str, Any], backup_id: str, name: str) -> dict[str, Any]:
    """``data`` if it is the backup with ``backup_id`` (when one is asked for)."""
    if backup_id and data.get("id") != backup_id:
        raise NotFoundError(
            f"no backup with id {backup_id!r}: backup {name!r} has id {data.get('id')!r} (the "
            "one with that id was deleted, or the id and the name are of two backups)"
        )
    return data
