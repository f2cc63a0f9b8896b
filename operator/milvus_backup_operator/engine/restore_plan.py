"""Planning a restore: the request, every check that can refuse it before anything is
written, and what it would do (a dry run's plan). :mod:`.restore` runs it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .capabilities import KNOWN_STORAGE_VERSIONS
from .catalog import Catalog
from .config import BackupConfig
from .encryption import CIPHER_EZ_ID
from .errors import AlreadyExistsError, InvalidRequestError, MalformedMetaError, UnsupportedError
from .import_jobs import check_groups, collection_jobs
from .meta import BackupInfo, CollectionBackupInfo
from .milvus import Milvus, connect
from .names import validate_backup_name, validate_collection_suffix
from .rbac import plan_rbac
from .schema import split_added_fields
from .selection import ALL, CollectionRef, check_known
from .storage import ObjectStore
from .verify import VerifyReport, require_intact


@dataclass(frozen=True)
class CollectionOverride:
    """What a restored collection gets instead of the backup's (milvus-backup's
    ``RestoreCollectionOverride``): 0 and "" keep the backup's."""

    shards_num: int = 0
    description: str = ""


@dataclass(frozen=True)
class RestoreMapping:
    """milvus-backup's ``restorePlan`` (``core/server/restore.go`` at v0.5.16).

    Each selected collection is restored into each of its ``targets`` (a source may be
    mapped more than once), or under its own name when it has none. Its filter is the
    request's ``only``.
    """

    targets: tuple[tuple[CollectionRef, CollectionRef], ...] = ()  # (source, target)
    overrides: tuple[tuple[CollectionRef, CollectionOverride], ...] = ()  # by target

    def targets_of(self, source: CollectionRef) -> list[CollectionRef]:
        return [target for s, target in self.targets if s == source] or [source]

    def override(self, target: CollectionRef) -> CollectionOverride:
        return dict(self.overrides).get(target, CollectionOverride())


@dataclass(frozen=True)
class RestoreRequest:
    backup_name: str
    collections: tuple[CollectionRef, ...] = ()  # empty: every collection in the backup
    suffix: str = ""
    renames: tuple[tuple[CollectionRef, CollectionRef], ...] = ()
    drop_existing: bool = False
    rebuild_index: bool = False
    load: bool = False
    restore_aliases: bool = False
    rbac: bool = False  # add the backup's users, roles and grants the target lacks
    task_id: str = ""
    mapping: RestoreMapping | None = None  # restorePlan; excludes suffix and renames
    #: restore only these targets (``db.*``: every target in db), picked after naming them
    #: (milvus-backup's restorePlan.filter and restore ``--filter``); empty: every target
    only: tuple[CollectionRef, ...] = ()
    meta_only: bool = False  # create collections, partitions (indexes if asked): import nothing
    #: milvus-backup's v2 restore: many segments per import job, through Milvus's REST API
    use_v2_restore: bool = False
    #: who restores, as a delete refused meanwhile names it ("MilvusRestore team-a/rv")
    reader: str = ""

    def imports(self, info: CollectionBackupInfo) -> bool:
        """Whether this restore imports the collection's data (a meta-only one has none)."""
        return not (self.meta_only or info.meta_only)


def parse_renames(text: str | Iterable[str]) -> tuple[tuple[CollectionRef, CollectionRef], ...]:
    """``"a:b,db.c:db.d"`` (or a list of ``old:new``) as pairs of references."""
    items = text.split(",") if isinstance(text, str) else list(text)
    pairs = []
    for item in (i.strip() for i in items if i.strip()):
        old, sep, new = item.partition(":")
        if not sep or not old or not new:
            raise InvalidRequestError(f"invalid rename {item!r}: use old:new (or db.old:db.new)")
        pairs.append((CollectionRef.parse_one(old), CollectionRef.parse_one(new)))
    return tuple(pairs)


@dataclass(frozen=True)
class PlannedCollection:
    """What a restore would do to one collection."""

    source: str
    target: str
    replaces: bool  # the target exists and would be replaced (:mod:`.swap`)
    partitions: int
    segments: int
    imports: int
    rows: int  # rows in the backup's segments (rows deleted later included)
    live_rows: int | None  # rows alive at the backup, as recorded then (None: not recorded)
    indexes: tuple[str, ...]  # rebuilt after the import
    load: bool
    aliases: tuple[str, ...] = ()  # recreated at the end
    shards_num: int = 0  # the shards it is created with
    meta_only: str = ""  # why no data is imported ("": data is imported)

    def describe(self) -> str:
        action = "build beside the existing one, then swap it in" if self.replaces else "create"
        then = [f"rebuild {', '.join(self.indexes)}"] if self.indexes else []
        then += ["load"] if self.load else []
        then += [f"alias it as {', '.join(self.aliases)}"] if self.aliases else []
        live = "" if self.live_rows is None else f", {self.live_rows} live"
        counts = f"{_count(self.partitions, 'partition')}, " + (
            f"no data: {self.meta_only}"
            if self.meta_only
            else f"import {_count(self.segments, 'segment')} ({_count(self.rows, 'row')}{live}) "
            f"in {_count(self.imports, 'job')}"
        )
        tail = f", then {' and '.join(then)}" if then else ""
        return f"{self.source} -> {self.target}: {action}, {counts}{tail}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


@dataclass(frozen=True)
class RestorePlan:
    """A dry run's result: every check passed, and what the restore would do."""

    backup_name: str
    integrity: str  # the verify verdict of the collections restored
    collections: tuple[PlannedCollection, ...]
    rbac: str = ""  # what would be added of the backup's users, roles and grants

    def render(self) -> list[str]:
        return [
            f"dry run of the restore of {self.backup_name}: every check passed, nothing written",
            f"  {self.integrity}",
            *([f"  {self.rbac}"] if self.rbac else []),
            *(f"  {c.describe()}" for c in self.collections),
        ]


def check_restore_request(config: BackupConfig, request: RestoreRequest) -> RestorePlan:
    """Every check :func:`restore_backup` makes before writing (request, backup intact,
    targets free or droppable, both buckets reachable): raise what it would refuse, else
    return what it would do. Nothing is written (a dry run)."""
    _, catalog, plan, report, backup = refuse_early(config, request)
    manifest, layout = report.manifest, catalog.layout(request.backup_name)
    with connect(config.milvus, config.timeouts) as milvus:
        existing = precheck(milvus, plan, request, backup)
        can = milvus.capabilities
        rbac = plan_rbac(milvus, backup.rbac_meta, request.backup_name) if request.rbac else None
    ObjectStore(config.storage, config.timeouts).require_bucket()
    v2 = request.use_v2_restore
    return RestorePlan(
        request.backup_name,
        report.verdict(),
        tuple(
            PlannedCollection(
                source=str(source_ref(info)),
                target=str(target),
                replaces=target in existing,
                partitions=len(info.partition_backups),
                segments=len(info.segments()),
                imports=sum(map(len, collection_jobs(info, layout, config.parallelism, v2, can))),
                rows=info.row_count(),
                live_rows=manifest.collection_rows(info.collection_id) if manifest else None,
                indexes=tuple(i.index_name for i in info.index_infos)
                if request.rebuild_index
                else (),
                load=request.load,
                aliases=tuple(info.aliases) if request.restore_aliases else (),
                shards_num=shards_num(info, request, target),
                meta_only=no_data_reason(info, request),
            )
            for info, target in plan
        ),
        rbac.describe() if rbac else "",
    )


def refuse_early(
    config: BackupConfig, request: RestoreRequest
) -> tuple[
    ObjectStore, Catalog, list[tuple[CollectionBackupInfo, CollectionRef]], VerifyReport, BackupInfo
]:
    """Check the request and the backup (its objects included); return the plan, the
    integrity report and the backup."""
    check_request(request)
    store = ObjectStore(config.backup_storage, config.timeouts, config.parallelism.copy_data)
    catalog = Catalog(store, config.backup_storage.root_path)
    backup = catalog.read(request.backup_name)
    backup.require_binlog_format()
    plan = _plan(backup.collection_backups, request)
    for info, _ in plan:
        if request.imports(info):
            check_groups(info)  # before anything is created (or RBAC applied)
    chosen = {info.collection_id for info, _ in plan}
    report = require_intact(catalog, request.backup_name, backup, chosen)  # before anything
    return store, catalog, plan, report, backup


def check_request(request: RestoreRequest) -> None:
    """Refuse a request that is wrong in itself, before anything is read."""
    validate_backup_name(request.backup_name)
    if request.suffix and request.renames:
        raise InvalidRequestError("give either a collection suffix or renames, not both")
    if request.mapping is not None and (request.suffix or request.renames):
        raise InvalidRequestError(
            "restorePlan cannot be given with a collection suffix or renames (milvus-backup "
            "refuses both combinations too): name each target in restorePlan.mapping"
        )
    if request.suffix:
        validate_collection_suffix(request.suffix)


def _plan(
    collections: list[CollectionBackupInfo], request: RestoreRequest
) -> list[tuple[CollectionBackupInfo, CollectionRef]]:
    """Pick the requested collections of the backup and name their targets."""
    by_ref = {source_ref(c): c for c in collections}
    where = f"backup {request.backup_name!r}"
    wanted = _expand(list(request.collections) or list(by_ref), by_ref, request.backup_name)
    check_known(wanted, by_ref, where)
    check_known(list(dict(request.renames)), wanted, "the collections being restored")
    if request.mapping is not None:
        check_known([source for source, _ in request.mapping.targets], by_ref, where)
    plan = [(by_ref[ref], target.exact()) for ref in wanted for target in _targets(ref, request)]
    if request.only:
        plan = _keep_only(plan, request.only)
    targets = [t for _, t in plan]
    duplicates = sorted({str(t) for t in targets if targets.count(t) > 1})
    if duplicates:
        raise InvalidRequestError(f"two collections would be restored into {duplicates}")
    if request.load:
        _check_loadable(plan, request.rebuild_index)
    return plan


def planned_pairs(
    collections: list[CollectionBackupInfo], request: RestoreRequest
) -> set[tuple[str, str]]:
    """The (source, target) names this request restores: what a record of its may name."""
    return {(str(source_ref(info)), str(target)) for info, target in _plan(collections, request)}


def _targets(ref: CollectionRef, request: RestoreRequest) -> list[CollectionRef]:
    """Where one selected collection is restored: restorePlan's mapping, a rename or suffix."""
    if request.mapping is not None:
        return request.mapping.targets_of(ref)
    return [dict(request.renames).get(ref) or CollectionRef(ref.db, ref.name + request.suffix)]


def _keep_only(
    plan: list[tuple[CollectionBackupInfo, CollectionRef]], only: tuple[CollectionRef, ...]
) -> list[tuple[CollectionBackupInfo, CollectionRef]]:
    """The targets ``only`` names (milvus-backup's task filter: it names targets)."""
    kept = [
        (info, target)
        for info, target in plan
        if target in only or CollectionRef(target.db, ALL) in only
    ]
    if not kept:
        names = ", ".join(str(t) for _, t in plan) or "none"
        raise InvalidRequestError(
            "the filter (restorePlan.filter, --filter) keeps none of the collections this "
            f"restore would create: it names targets, after renaming; they are: {names}"
        )
    return kept


def shards_num(info: CollectionBackupInfo, request: RestoreRequest, target: CollectionRef) -> int:
    """The backup's shard number, unless restorePlan overrides it for this target."""
    override = request.mapping.override(target) if request.mapping else CollectionOverride()
    return override.shards_num or info.shards_num or 1


def no_data_reason(info: CollectionBackupInfo, request: RestoreRequest) -> str:
    """Why a collection is restored without data ("" when its data is imported)."""
    if info.meta_only:
        return "the backup is meta only (schema, indexes and partitions; no data)"
    if request.meta_only:
        return "meta only restore (metaOnly, --meta_only)"
    return ""


def _expand(
    refs: list[CollectionRef], known: Iterable[CollectionRef], backup: str
) -> list[CollectionRef]:
    """``db.*`` as the backup's collections of db (a database it lacks is an error)."""
    expanded: list[CollectionRef] = []
    for ref in refs:
        if ref.name != ALL:
            expanded.append(ref)
            continue
        of_db = sorted(r for r in known if r.db == ref.db)
        if not of_db:
            raise InvalidRequestError(f"backup {backup!r} holds no collection of database {ref.db}")
        expanded += of_db
    return list(dict.fromkeys(expanded))


def _check_loadable(
    plan: list[tuple[CollectionBackupInfo, CollectionRef]], rebuild_index: bool
) -> None:
    """Milvus loads only indexed collections: refuse a load that cannot work, up front."""
    unindexed = [str(source_ref(info)) for info, _ in plan if not info.index_infos]
    if unindexed:
        raise InvalidRequestError(
            f"cannot load {', '.join(unindexed)}: the backup records no index for "
            "it, and Milvus loads only indexed collections; restore without load"
        )
    if not rebuild_index:
        raise InvalidRequestError(
            "load needs the indexes, and rebuilding them was turned off (--no_rebuild_index, "
            "restoreIndex: false, rebuildIndex: false): leave that out, or restore without load"
        )


def source_ref(info: CollectionBackupInfo) -> CollectionRef:
    return CollectionRef(info.db_name or "default", info.collection_name)


def _check_aliases(
    milvus: Milvus,
    plan: list[tuple[CollectionBackupInfo, CollectionRef]],
    replaced: set[CollectionRef],
) -> None:
    """Each alias to recreate must be free: no collection, and no alias of another one than
    a collection this restore replaces (its aliases move to the restored one)."""
    for info, target in plan:
        for alias in info.aliases:
            behind = milvus.collection_behind(target.db, alias)
            if behind is not None and not (target in replaced and behind == target.name):
                raise AlreadyExistsError(
                    f"alias {alias} of {source_ref(info)} cannot be restored: in Milvus at "
                    f"{milvus.config.endpoint}, {alias!r} already names collection {behind} "
                    f"(database {target.db}); restore without aliases, or drop that alias first"
                )


def precheck(
    milvus: Milvus,
    plan: list[tuple[CollectionBackupInfo, CollectionRef]],
    request: RestoreRequest,
    backup: BackupInfo | None = None,
) -> set[CollectionRef]:
    """What Milvus must allow before anything is written: each target free (or dropped, when
    asked), when asked each alias free, and the data of encrypted databases importable.
    Return the targets that exist."""
    existing_dbs = set(milvus.list_databases())
    existing = {
        target
        for _, target in plan
        if target.db in existing_dbs and milvus.has_collection(target.db, target.name)
    }
    if existing and not request.drop_existing:
        raise AlreadyExistsError(
            f"collection {min(existing)} already exists in Milvus at {milvus.config.endpoint}: "
            "restore under another name (suffix or rename), or ask to drop it "
            "(--drop_exist_collection)"
        )
    for target in existing:
        behind = milvus.collection_behind(target.db, target.name)
        if behind != target.name:
            raise InvalidRequestError(
                f"{target} is an alias of collection {behind} in Milvus at "
                f"{milvus.config.endpoint}: a restore replaces collections, not aliases; "
                f"restore into {behind}'s name, or under another name"
            )
    if request.restore_aliases:
        _check_aliases(milvus, plan, existing if request.drop_existing else set())
    for info, _ in plan:
        _check_target_takes(milvus, info, request.imports(info), request.use_v2_restore)
        if backup is not None and request.imports(info):
            _check_decryptable(milvus, info, backup.ezk_of(info.db_name))
    return existing


def _check_decryptable(milvus: Milvus, info: CollectionBackupInfo, ezk: str) -> None:
    """Data of an encrypted database imports only with its key, into a Milvus that takes it
    (the import option ``ezk``); refused by name before anything is created."""
    can, db = milvus.capabilities, info.db_name or "default"
    if ezk and not can.import_ezk:
        raise UnsupportedError(
            f"{source_ref(info)} of the backup is in the encrypted database {db}, whose data "
            f"{can.describe()} at {milvus.config.endpoint} cannot decrypt (no ezk import "
            "option: Milvus >= 2.6); nothing was created: restore into Milvus 2.6 or later"
        )
    properties = [*info.properties, *(info.schema.properties if info.schema else [])]
    if not ezk and any(kv.key == CIPHER_EZ_ID and kv.value for kv in properties):
        raise UnsupportedError(
            f"{source_ref(info)} of the backup is encrypted (property {CIPHER_EZ_ID}), but the "
            f"backup holds no key for its database {db} (database_backups[].ezk, in "
            "full_meta.json): Milvus would import ciphertext; nothing was created"
        )


def _check_target_takes(
    milvus: Milvus, info: CollectionBackupInfo, data: bool, request_v2: bool = False
) -> None:
    """Refuse, before anything is created, a schema the target Milvus cannot create, or
    (with ``data``) data it cannot import whole."""
    can = milvus.capabilities
    where = f"{can.describe()} at {milvus.config.endpoint}"
    schema = info.schema
    needs = []
    if schema is not None and schema.functions and not can.functions:
        names = ", ".join(f.name for f in schema.functions)
        needs.append(f"functions ({names}: BM25 or embedding, Milvus >= 2.5)")
    if schema is not None and schema.struct_array_fields and not can.struct_arrays:
        names = ", ".join(f.name for f in schema.struct_array_fields)
        needs.append(f"struct array fields ({names}: Milvus >= 2.6)")
    if needs:
        raise UnsupportedError(
            f"{source_ref(info)} of the backup has {' and '.join(needs)}, which {where} "
            "cannot create: restore into a Milvus that has them"
        )
    try:
        added = split_added_fields(schema)[1] if schema else []
    except ValueError as exc:
        raise UnsupportedError(
            f"{source_ref(info)} of the backup has {exc}: fields were dropped from it, and a "
            "new collection cannot have the same field IDs; nothing was created"
        ) from None
    if added and not can.add_field:
        names = ", ".join(f.name for f in added)
        raise UnsupportedError(
            f"{source_ref(info)} of the backup has fields added after it was created ({names}), "
            f"which {where} cannot add again with the same IDs (AddCollectionField: Milvus "
            ">= 2.6); nothing was created"
        )
    if not data:
        return
    if request_v2 and not can.l0_import:  # the REST import API came with the L0 import, in 2.4
        raise UnsupportedError(
            f"the v2 restore (useV2Restore, --use_v2_restore) needs Milvus's REST import API, "
            f"which {where} does not have (Milvus >= 2.4): restore without it"
        )
    if not can.l0_import and any(s.is_l0 for s in info.all_segments()):
        raise UnsupportedError(
            f"{source_ref(info)} of the backup keeps deletes in L0 segments (Milvus >= 2.4), "
            f"which {where} cannot import (no l0_import); without them deleted rows would come "
            "back: restore into Milvus 2.4 or later"
        )
    versions = {s.storage_version for s in info.all_segments()}
    if versions - KNOWN_STORAGE_VERSIONS:
        raise MalformedMetaError(
            f"{source_ref(info)} of the backup records storage versions "
            f"{sorted(versions - KNOWN_STORAGE_VERSIONS)}, which no Milvus writes: its meta is "
            "damaged"
        )
    unknown = sorted(versions - can.storage_versions)
    if unknown:
        raise UnsupportedError(
            f"{source_ref(info)} of the backup has segments in storage version "
            f"{', '.join(map(str, unknown))}, which {where} cannot import: restore into a "
            "Milvus that writes them (storage v2: Milvus 2.6)"
        )
