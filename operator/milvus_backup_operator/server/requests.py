"""From milvus-backup's request bodies to the engine's requests."""

from __future__ import annotations

import re

from ..engine.backup import BackupRequest
from ..engine.errors import InvalidRequestError
from ..engine.names import default_backup_name
from ..engine.restore import RestoreRequest, parse_renames
from ..engine.selection import collections
from .protocol import CreateBackupRequest, RestoreBackupRequest

TASK_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


def backup_request(request: CreateBackupRequest) -> BackupRequest:
    return BackupRequest(
        name=request.backup_name or default_backup_name(),
        collections=collections(request.collection_names, request.db_collections),
        rbac=request.rbac,
    )


def restore_request(request: RestoreBackupRequest, task_id: str) -> RestoreRequest:
    renames = [f"{old}:{new}" for old, new in request.collection_renames.items()]
    return RestoreRequest(
        backup_name=request.backup_name,
        collections=collections(request.collection_names, request.db_collections),
        suffix=request.collection_suffix,
        renames=parse_renames(renames),
        drop_existing=request.drop_exist_collection,
        rebuild_index=request.restore_index,
        load=request.load,
        restore_aliases=request.restore_aliases,
        rbac=request.rbac,
        task_id=task_id,
    )


def validate_task_id(task_id: str) -> str:
    """A request or task id: up to 128 letters, digits and ``_.:-`` (it names staging keys)."""
    if not TASK_ID.fullmatch(task_id):
        raise InvalidRequestError(
            "invalid request id: use up to 128 letters, digits and the characters _ . : -"
        )
    return task_id
