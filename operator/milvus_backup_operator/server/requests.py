"""From milvus-backup's request bodies to the engine's requests."""

from __future__ import annotations

import json

from ..engine.backup import BackupRequest
from ..engine.errors import InvalidRequestError
from ..engine.names import default_backup_name
from ..engine.restore import RestoreRequest, parse_renames
from ..engine.selection import ALL, CollectionRef, parse_list
from .protocol import CreateBackupRequest, RestoreBackupRequest


def collections(
    names: list[str], db_collections: str | dict[str, list[str]] | None
) -> tuple[CollectionRef, ...]:
    """``collection_names`` plus ``db_collections`` (``{"db": []}`` is every collection of db)."""
    refs = parse_list(names)
    if isinstance(db_collections, str):
        db_collections = _json_object(db_collections)
    for db, colls in (db_collections or {}).items():
        refs += [CollectionRef(db, c) for c in colls] if colls else [CollectionRef(db, ALL)]
    return tuple(dict.fromkeys(refs))


def _json_object(text: str) -> dict[str, list[str]]:
    try:
        value = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        raise InvalidRequestError('db_collections must be {"db": ["collection", ...]}') from None
    if not isinstance(value, dict) or not all(isinstance(v, list) for v in value.values()):
        raise InvalidRequestError('db_collections must be {"db": ["collection", ...]}')
    return value


def backup_request(request: CreateBackupRequest) -> BackupRequest:
    return BackupRequest(
        name=request.backup_name or default_backup_name(),
        collections=collections(request.collection_names, request.db_collections),
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
        task_id=task_id,
    )
