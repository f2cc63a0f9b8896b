"""From milvus-backup's request bodies to the engine's requests."""

from __future__ import annotations

import json
import re

from ..engine.backup import BackupRequest
from ..engine.errors import InvalidRequestError
from ..engine.names import default_backup_name
from ..engine.restore import RestoreRequest, parse_renames
from ..engine.selection import ALL, CollectionRef, parse_list, unique
from .protocol import CreateBackupRequest, RestoreBackupRequest

TASK_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
DB_COLLECTIONS_SHAPE = 'db_collections must be {"db": ["collection", ...]}'


def collections(
    names: list[str], db_collections: str | dict[str, list[str]] | None
) -> tuple[CollectionRef, ...]:
    """``collection_names`` plus ``db_collections`` (``{"db": []}`` is every collection of db)."""
    refs = parse_list(names)
    if isinstance(db_collections, str):
        db_collections = _json_object(db_collections)
    for db, colls in (db_collections or {}).items():
        if not isinstance(colls, list) or not all(isinstance(c, str) for c in colls):
            raise InvalidRequestError(DB_COLLECTIONS_SHAPE)
        database = CollectionRef.parse(f"{db}.{ALL}").db if db else ""
        if not database:
            raise InvalidRequestError(
                f"db_collections: empty database name; {DB_COLLECTIONS_SHAPE}"
            )
        wanted = [f"{database}.{c}" if c.strip() else "" for c in colls] or [f"{database}.{ALL}"]
        refs += [CollectionRef.parse(text) for text in wanted]
    return tuple(unique(refs))


def _json_object(text: str) -> dict[str, list[str]]:
    try:
        value = json.loads(text, object_pairs_hook=_no_repeated_keys) if text.strip() else {}
    except (ValueError, RecursionError):  # JSONDecodeError, an integer too long to convert
        raise InvalidRequestError(DB_COLLECTIONS_SHAPE) from None
    if not isinstance(value, dict):
        raise InvalidRequestError(DB_COLLECTIONS_SHAPE)
    return value


def _no_repeated_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise InvalidRequestError(f"db_collections names database {', '.join(repeated)} twice")
    return dict(pairs)


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
        restore_aliases=request.restore_aliases,
        task_id=task_id,
    )


def validate_task_id(task_id: str) -> str:
    """A request or task id: up to 128 letters, digits and ``_.:-`` (it names staging keys)."""
    if not TASK_ID.fullmatch(task_id):
        raise InvalidRequestError(
            "invalid request id: use up to 128 letters, digits and the characters _ . : -"
        )
    return task_id
