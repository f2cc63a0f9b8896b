"""From milvus-backup's request bodies to the engine's requests."""

from __future__ import annotations

import re

from ..engine.backup import BackupRequest, is_meta_only
from ..engine.errors import InvalidRequestError
from ..engine.names import default_backup_name
from ..engine.restore_plan import CollectionOverride, RestoreMapping, RestoreRequest, parse_renames
from ..engine.selection import ALL, CollectionRef, collections, unique
from .protocol import CreateBackupRequest, Filter, RestoreBackupRequest, RestorePlan

TASK_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


def backup_request(request: CreateBackupRequest) -> BackupRequest:
    selected = collections(request.collection_names, request.db_collections)
    if request.filter is not None:
        if selected:
            raise InvalidRequestError(
                "give filter or collection_names/db_collections, not both (milvus-backup "
                "would ignore the latter)"
            )
        selected = filter_refs(request.filter, "filter")
    return BackupRequest(
        name=request.backup_name or default_backup_name(),
        collections=selected,
        meta_only=request.meta_only or is_meta_only(request.strategy),
        rbac=request.rbac,
        pause_gc=request.gc_pause_enable,
        gc_pause_seconds=request.gc_pause_seconds,
        gc_pause_address=request.gc_pause_address,
    )


def filter_refs(selection: Filter, where: str) -> tuple[CollectionRef, ...]:
    """milvus-backup's ``filter`` (``{"db": {"colls": ["c"]}}``, ``["*"]``: all of db)."""
    if not selection:
        raise InvalidRequestError(
            f"{where} names no database: milvus-backup then selects nothing; name the "
            'collections, e.g. {"default": {"colls": ["*"]}}, or leave it out'
        )
    refs: list[CollectionRef] = []
    for db, colls in selection.items():
        if not db or not colls.colls:
            raise InvalidRequestError(
                f"{where}: database {db!r} with collections {colls.colls}: give a database "
                'name and its collections ({"colls": ["*"]}: all of them)'
            )
        if ALL in colls.colls and colls.colls != [ALL]:
            raise InvalidRequestError(f'{where}.{db}: "*" means every collection: give it alone')
        for coll in colls.colls:
            ref = CollectionRef.parse(f"{db}.{coll}")
            refs.append(ref if coll == ALL else ref.exact())
    return tuple(unique(refs))


def restore_request(request: RestoreBackupRequest, task_id: str) -> RestoreRequest:
    renames = [f"{old}:{new}" for old, new in request.collection_renames.items()]
    plan = request.restore_plan
    if plan is not None and (request.collection_suffix or renames):
        raise InvalidRequestError(
            "restorePlan cannot be given with collection_suffix or collection_renames "
            "(milvus-backup refuses both too): name each target in restorePlan.mapping"
        )
    return RestoreRequest(
        backup_name=request.backup_name,
        collections=collections(request.collection_names, request.db_collections),
        suffix=request.collection_suffix,
        renames=parse_renames(renames),
        drop_existing=request.drop_exist_collection,
        rebuild_index=rebuild_index(request),
        load=request.load,
        restore_aliases=request.restore_aliases,
        rbac=request.rbac,
        use_v2_restore=request.use_v2_restore,
        task_id=task_id,
        reader=f"REST restore task {task_id}",
        mapping=restore_mapping(plan) if plan else None,
        only=filter_refs(plan.filter, "restorePlan.filter") if plan else (),
        meta_only=request.meta_only,
    )


def rebuild_index(request: RestoreBackupRequest) -> bool:
    """``restoreIndex`` as given; left out, what ``load`` needs (a loaded collection is an
    indexed one). milvus-backup has no ``load``, so its requests mean what they always did."""
    if "restore_index" in request.model_fields_set:
        return request.restore_index
    return request.load


def restore_mapping(plan: RestorePlan) -> RestoreMapping:
    """milvus-backup's ``restorePlan`` (``newPlanFromRequest``, core/server/restore.go)."""
    targets: list[tuple[CollectionRef, CollectionRef]] = []
    overrides: dict[CollectionRef, CollectionOverride] = {}
    for i, db in enumerate(plan.mapping):
        where = f"restorePlan.mapping.{i}"
        if not db.source or not db.target:
            raise InvalidRequestError(f"{where}: give both source and target database names")
        if not db.colls and db.source != db.target:
            raise InvalidRequestError(
                f"{where} maps database {db.source} to {db.target} without colls: milvus-backup "
                f"then restores {db.source}'s collections under their own names and database "
                f"(over them, with dropExistCollection); name each collection in colls"
            )
        for j, coll in enumerate(db.colls):
            if not coll.source or not coll.target:
                raise InvalidRequestError(
                    f"{where}.colls.{j}: give both source and target collection names"
                )
            source = CollectionRef.parse_one(f"{db.source}.{coll.source}")
            target = CollectionRef.parse_one(f"{db.target}.{coll.target}")
            targets.append((source, target))
            if coll.override and (coll.override.shard_num or coll.override.description):
                overrides[target] = CollectionOverride(
                    coll.override.shard_num, coll.override.description
                )
    return RestoreMapping(targets=tuple(targets), overrides=tuple(overrides.items()))


def validate_task_id(task_id: str) -> str:
    """A request or task id: up to 128 letters, digits and ``_.:-`` (it names staging keys)."""
    if not TASK_ID.fullmatch(task_id):
        raise InvalidRequestError(
            "invalid request id: use up to 128 letters, digits and the characters _ . : -"
        )
    return task_id
