"""Physical restore: recreate each collection, bulk-import its segments in backup mode.

Every check that can refuse the request runs before anything is written to Milvus. One
collection's failure does not stop the others; each gets its own result.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from . import schema
from .catalog import Catalog
from .config import BackupConfig
from .errors import (
    AlreadyExistsError,
    BackupError,
    InvalidRequestError,
    OperationError,
    UnsupportedError,
)
from .layout import BackupLayout, join
from .live_rows import live_rows
from .manifest import MANIFEST, Manifest
from .meta import BackupInfo, CollectionBackupInfo, PartitionBackupInfo, SegmentBackupInfo
from .milvus import Milvus, connect
from .names import validate_backup_name, validate_collection_suffix
from .progress import ProgressCallback, ProgressTracker
from .rbac import apply_rbac, plan_rbac
from .selection import ALL, CollectionRef, check_known
from .storage import ObjectStore, copy_object
from .verify import VerifyReport, require_intact

log = logging.getLogger(__name__)

LOG_KINDS = ("insert_log", "delta_log")
FIRST_FIELD_ID = 100  # Milvus numbers a new collection's fields from here (StartOfUserFieldID)
IMPORT_POLL_MAX = 0.5  # seconds; a state call costs milliseconds, a late notice costs seconds
RUNNING = "Running"
COMPLETED = "Completed"
FAILED = "Failed"


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

    def imports(self, info: CollectionBackupInfo) -> bool:
        """Whether this restore imports the collection's data (a meta-only one has none)."""
        return not (self.meta_only or info.meta_only)


@dataclass
class CollectionRestoreResult:
    source: str
    target: str
    state: str = "Pending"
    rows: int = 0
    imports: int = 0
    error: str = ""
    checked: str = ""  # how the restored rows were checked against the backup


@dataclass
class RestoreResult:
    task_id: str
    backup_name: str
    collections: list[CollectionRestoreResult] = field(default_factory=list)
    rbac: str = ""  # what was added of the backup's users, roles and grants

    @property
    def succeeded(self) -> bool:
        return all(c.state == COMPLETED for c in self.collections)

    def failure_summary(self) -> str:
        failed = [c for c in self.collections if c.state != COMPLETED]
        return "; ".join(f"{c.target}: {c.error}" for c in failed)


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


CollectionCallback = Callable[[CollectionRestoreResult], None]


def restore_backup(
    config: BackupConfig,
    request: RestoreRequest,
    on_progress: ProgressCallback | None = None,
    on_collection: CollectionCallback | None = None,
) -> RestoreResult:
    """Restore ``request.backup_name``; raise before writing anything if the request is wrong.

    ``on_collection`` hears of each collection when it starts (``Running``) and when it ends.
    """
    store, catalog, plan, report, backup = _refuse_early(config, request)
    task_id = request.task_id or f"restore_{uuid.uuid4().hex[:12]}"
    result = RestoreResult(task_id, request.backup_name)
    milvus_store = ObjectStore(config.storage, config.timeouts, config.parallelism.copy_data)
    progress = ProgressTracker("restore", on_progress)
    with connect(config.milvus, config.timeouts) as milvus:
        _precheck(milvus, plan, request)
        rbac = plan_rbac(milvus, backup.rbac_meta, request.backup_name) if request.rbac else None
        milvus_store.require_bucket()
        if rbac is not None:
            apply_rbac(milvus, rbac)
            result.rbac = rbac.describe()
        data = [info for info, _ in plan if request.imports(info)]
        progress.add(
            collections_total=len(plan),
            segments_total=sum(len(info.segments()) for info in data),
            imports_total=sum(len(_import_units(info)) for info in data),
        )
        job = _RestoreJob(
            config,
            request,
            milvus,
            store,
            milvus_store,
            catalog.layout(request.backup_name),
            progress,
            task_id,
            on_collection or (lambda _: None),
            report.manifest,
        )
        with ThreadPoolExecutor(config.parallelism.restore_collection) as pool:
            result.collections = list(pool.map(lambda item: job.run(*item), plan))
    if result.succeeded:
        progress.finish()
    else:
        progress.phase("failed")
    return result


@dataclass(frozen=True)
class PlannedCollection:
    """What a restore would do to one collection."""

    source: str
    target: str
    replaces: bool  # the target exists and would be dropped first
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
        action = "drop and re-create" if self.replaces else "create"
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
    _, _, plan, report, backup = _refuse_early(config, request)
    manifest = report.manifest
    with connect(config.milvus, config.timeouts) as milvus:
        existing = _precheck(milvus, plan, request)
        rbac = plan_rbac(milvus, backup.rbac_meta, request.backup_name) if request.rbac else None
    ObjectStore(config.storage, config.timeouts).require_bucket()
    return RestorePlan(
        request.backup_name,
        report.verdict(),
        tuple(
            PlannedCollection(
                source=str(_source_ref(info)),
                target=str(target),
                replaces=target in existing,
                partitions=len(info.partition_backups),
                segments=len(info.segments()),
                imports=len(_import_units(info)),
                rows=info.row_count(),
                live_rows=manifest.collection_rows(info.collection_id) if manifest else None,
                indexes=tuple(i.index_name for i in info.index_infos)
                if request.rebuild_index
                else (),
                load=request.load,
                aliases=tuple(info.aliases) if request.restore_aliases else (),
                shards_num=_shards_num(info, request, target),
                meta_only=_no_data_reason(info, request),
            )
            for info, target in plan
        ),
        rbac.describe() if rbac else "",
    )


def _refuse_early(
    config: BackupConfig, request: RestoreRequest
) -> tuple[
    ObjectStore, Catalog, list[tuple[CollectionBackupInfo, CollectionRef]], VerifyReport, BackupInfo
]:
    """Check the request and the backup (its objects included); return the plan, the
    integrity report and the backup."""
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
    store = ObjectStore(config.backup_storage, config.timeouts, config.parallelism.copy_data)
    catalog = Catalog(store, config.backup_storage.root_path)
    backup = catalog.read(request.backup_name)
    backup.require_binlog_format()
    plan = _plan(backup.collection_backups, request)
    chosen = {info.collection_id for info, _ in plan}
    report = require_intact(catalog, request.backup_name, backup, chosen)  # before anything
    return store, catalog, plan, report, backup


def _plan(
    collections: list[CollectionBackupInfo], request: RestoreRequest
) -> list[tuple[CollectionBackupInfo, CollectionRef]]:
    """Pick the requested collections of the backup and name their targets."""
    by_ref = {_source_ref(c): c for c in collections}
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


def _shards_num(info: CollectionBackupInfo, request: RestoreRequest, target: CollectionRef) -> int:
    """The backup's shard number, unless restorePlan overrides it for this target."""
    override = request.mapping.override(target) if request.mapping else CollectionOverride()
    return override.shards_num or info.shards_num or 1


def _no_data_reason(info: CollectionBackupInfo, request: RestoreRequest) -> str:
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
    unindexed = [str(_source_ref(info)) for info, _ in plan if not info.index_infos]
    if unindexed:
        raise InvalidRequestError(
            f"cannot load {', '.join(unindexed)}: the backup records no index for "
            "it, and Milvus loads only indexed collections; restore without load"
        )
    if not rebuild_index:
        raise InvalidRequestError(
            "load needs the indexes: ask for them to be rebuilt too (--rebuild_index, "
            "restoreIndex, rebuildIndex)"
        )


def _source_ref(info: CollectionBackupInfo) -> CollectionRef:
    return CollectionRef(info.db_name or "default", info.collection_name)


def _check_aliases(milvus: Milvus, plan: list[tuple[CollectionBackupInfo, CollectionRef]]) -> None:
    """Each alias to recreate must be free: no collection, and no alias of another one."""
    for info, target in plan:
        for alias in info.aliases:
            behind = milvus.collection_behind(target.db, alias)
            if behind is not None:
                raise AlreadyExistsError(
                    f"alias {alias} of {_source_ref(info)} cannot be restored: in Milvus at "
                    f"{milvus.config.endpoint}, {alias!r} already names collection {behind} "
                    f"(database {target.db}); restore without aliases, or drop that alias first"
                )


def _precheck(
    milvus: Milvus, plan: list[tuple[CollectionBackupInfo, CollectionRef]], request: RestoreRequest
) -> set[CollectionRef]:
    """What Milvus must allow before anything is written: each target free (or dropped, when
    asked) and, when asked, each alias free. Return the targets that exist."""
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
    if request.restore_aliases:
        _check_aliases(milvus, plan)
    for info, _ in plan:
        _check_target_takes(milvus, info, request.imports(info))
    return existing


def _check_target_takes(milvus: Milvus, info: CollectionBackupInfo, data: bool) -> None:
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
            f"{_source_ref(info)} of the backup has {' and '.join(needs)}, which {where} "
            "cannot create: restore into a Milvus that has them"
        )
    ids = [f.field_id for f in schema.fields if not f.is_dynamic] if schema else []
    if ids != list(range(FIRST_FIELD_ID, FIRST_FIELD_ID + len(ids))):
        raise UnsupportedError(
            f"{_source_ref(info)} of the backup has fields added after it was created (field "
            f"IDs {ids}): recreating them with the same IDs needs AddCollectionField, which "
            "this version does not do yet; nothing was created"
        )
    if not data:
        return
    if not can.l0_import and any(s.is_l0 for s in info.all_segments()):
        raise UnsupportedError(
            f"{_source_ref(info)} of the backup keeps deletes in L0 segments (Milvus >= 2.4), "
            f"which {where} cannot import (no l0_import); without them deleted rows would come "
            "back: restore into Milvus 2.4 or later"
        )
    unknown = sorted({s.storage_version for s in info.all_segments()} - can.storage_versions)
    if unknown:
        raise UnsupportedError(
            f"{_source_ref(info)} of the backup has segments in storage version "
            f"{', '.join(map(str, unknown))}, which {where} cannot import: restore into a "
            "Milvus that writes them (storage v2: Milvus 2.6)"
        )


def _import_units(info: CollectionBackupInfo) -> list[tuple[PartitionBackupInfo, int]]:
    """(partition, group) pairs: one import job each (a whole partition for legacy backups).
    L0 segments are imported apart, after these (:func:`_l0_units`)."""
    units: list[tuple[PartitionBackupInfo, int]] = []
    for partition in info.partition_backups:
        groups = dict.fromkeys(s.group_id for s in partition.segment_backups if not s.is_l0)
        units.extend((partition, group) for group in groups)
    return units


def _l0_units(info: CollectionBackupInfo) -> list[tuple[str, SegmentBackupInfo]]:
    """(partition name, L0 segment): one import each, "" naming the whole collection."""
    units = [(p.partition_name, s) for p in info.partition_backups for s in p.segment_backups]
    units = [(name, s) for name, s in units if s.is_l0]
    return units + [("", s) for s in info.l0_segments]


_DERIVED = "derived from the backup's binlogs: no count was recorded at backup"
_IMPORT_DIFFERS = (
    "Milvus imported another number of rows than the backup's binlogs hold (rows skipped or "
    "delete logs not applied); check the import's logs in Milvus's data node"
)


@dataclass
class _RestoreJob:
    config: BackupConfig
    request: RestoreRequest
    milvus: Milvus
    backup_store: ObjectStore
    milvus_store: ObjectStore
    layout: BackupLayout
    progress: ProgressTracker
    task_id: str
    on_collection: CollectionCallback
    manifest: Manifest | None
    _db_lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, info: CollectionBackupInfo, target: CollectionRef) -> CollectionRestoreResult:
        """Restore one collection; turn any failure into a Failed result (others go on)."""
        result = CollectionRestoreResult(str(_source_ref(info)), str(target), state=RUNNING)
        self.on_collection(result)
        created = False
        try:
            self._prepare_target(target)
            self._create_collection(info, target)
            created = True
            self._create_partitions(info, target)
            imported: dict[int, int] = {}
            if self.request.imports(info):
                imported = self._import(info, target, result)
                result.checked = self._check_rows(info, target, imported)
            else:
                result.checked = f"no rows imported: {_no_data_reason(info, self.request)}"
            if self.request.rebuild_index:
                self._rebuild_indexes(info, target)
            if self.request.load:
                self.milvus.load_collection(target.db, target.name)
                result.checked += self._check_count(target, self._expected_count(info, imported))
            if self.request.restore_aliases:
                for alias in info.aliases:
                    self.milvus.create_alias(target.db, target.name, alias)
            result.state = COMPLETED
        except BackupError as exc:
            result.state, result.error = FAILED, str(exc)
            if created:
                result.error += self._drop_partial(target)
        finally:
            self.progress.add(collections_done=1)
            self.on_collection(result)
        return result

    def _prepare_target(self, target: CollectionRef) -> None:
        milvus = self.milvus
        with self._db_lock:
            if target.db not in milvus.list_databases():
                milvus.create_database(target.db)
        if self.request.drop_existing and milvus.has_collection(target.db, target.name):
            log.warning("dropping existing collection %s as requested", target)
            milvus.drop_collection(target.db, target.name)

    def _create_collection(self, info: CollectionBackupInfo, target: CollectionRef) -> None:
        if info.schema is None:
            raise OperationError(f"backup has no schema for collection {info.collection_name}")
        has_key = any(f.is_partition_key for f in info.schema.fields)
        properties = {kv.key: kv.value for kv in info.properties or info.schema.properties}
        proto = schema.schema_to_proto(info.schema, target.name)
        if self.request.mapping and self.request.mapping.override(target).description:
            proto.description = self.request.mapping.override(target).description
        self.milvus.create_collection(
            target.db,
            proto,
            shards_num=_shards_num(info, self.request, target),
            consistency_level=info.consistency_level,
            properties=properties,
            num_partitions=len(info.partition_backups) if has_key else 0,
        )
        self._check_field_ids(info, target)

    def _create_partitions(self, info: CollectionBackupInfo, target: CollectionRef) -> None:
        existing = self.milvus.partitions(target.db, target.name)
        for partition in info.partition_backups:
            if partition.partition_name not in existing:
                self.milvus.create_partition(target.db, target.name, partition.partition_name)

    def _check_field_ids(self, info: CollectionBackupInfo, target: CollectionRef) -> None:
        """Binlogs are keyed by field ID: the new collection must have the same IDs."""
        created = self.milvus.describe_collection(target.db, target.name).schema.fields
        got = {f.name: f.fieldID for f in created}
        assert info.schema is not None
        want = {f.name: f.field_id for f in info.schema.fields if not f.is_dynamic}
        mismatched = {n: (i, got.get(n)) for n, i in want.items() if got.get(n) != i}
        if mismatched:
            raise OperationError(
                f"Milvus gave {target} different field IDs than the backup ({mismatched}): "
                "its binlogs cannot be imported into this Milvus version"
            )

    def _import(
        self, info: CollectionBackupInfo, target: CollectionRef, result: CollectionRestoreResult
    ) -> dict[int, int]:
        """Import every segment; return the rows Milvus imported into each partition."""
        units = _import_units(info)
        staging = self._stage(info, target) if self._needs_staging() else None
        try:
            workers = max(1, min(self.config.parallelism.import_job, len(units)))
            with ThreadPoolExecutor(workers, thread_name_prefix="import") as pool:
                rows = list(
                    pool.map(
                        lambda unit: self._import_unit(info, target, unit[0], unit[1], staging),
                        units,
                    )
                )
            for partition_name, segment in _l0_units(info):  # deletes, after every insert
                self._import_l0(info, target, partition_name, segment, staging)
        finally:
            if staging and not self.config.keep_temp_files:
                self.milvus_store.delete_prefix(staging + "/")
        result.rows, result.imports = sum(rows), len(units) + len(_l0_units(info))
        imported = {p.partition_id: 0 for p in info.partition_backups}
        for (partition, _), count in zip(units, rows, strict=True):
            imported[partition.partition_id] += count
        return imported

    def _import_unit(
        self,
        info: CollectionBackupInfo,
        target: CollectionRef,
        partition: PartitionBackupInfo,
        group: int,
        staging: str | None,
    ) -> int:
        segments = [s for s in partition.segment_backups if s.group_id == group]
        # always both directories: Milvus takes a single path for a data file, not binlogs
        paths = [
            self.layout.binlog_dir(kind, info.collection_id, partition.partition_id, group)
            for kind in LOG_KINDS
        ]
        if staging:
            paths = [join(staging, self.layout.relative(p)) + "/" for p in paths]
        version = max((s.storage_version for s in segments), default=0)  # one per group
        task = self.milvus.import_backup(
            target.db, target.name, partition.partition_name, paths, storage_version=version
        )
        rows = self._wait_import(task, target, paths[0])
        self.progress.add(imports_done=1, segments_done=len(segments))
        return rows

    def _import_l0(
        self,
        info: CollectionBackupInfo,
        target: CollectionRef,
        partition_name: str,
        segment: SegmentBackupInfo,
        staging: str | None,
    ) -> None:
        """Import one L0 segment's deletes (milvus-backup: ``restoreL0SegV1``)."""
        path = self.layout.binlog_dir(
            "delta_log", info.collection_id, segment.partition_id, segment.segment_id
        )
        if staging:
            path = join(staging, self.layout.relative(path)) + "/"
        task = self.milvus.import_backup(
            target.db, target.name, partition_name, [path], l0=True,
            storage_version=segment.storage_version,
        )  # fmt: skip
        self._wait_import(task, target, path)
        self.progress.add(imports_done=1, segments_done=1)

    def _wait_import(self, task: int, target: CollectionRef, path: str) -> int:
        deadline = time.monotonic() + self.config.timeouts.import_job
        delay = 0.1
        while True:
            state = self.milvus.import_state(task)
            if state.state == "completed":
                return state.row_count
            if state.state == "failed":
                raise OperationError(f"import of {path} into {target} failed: {state.reason}")
            if time.monotonic() > deadline:
                raise OperationError(
                    f"import of {path} into {target} did not finish within "
                    f"{self.config.timeouts.import_job:g}s (timeouts.importJob)"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, IMPORT_POLL_MAX)

    def _check_rows(
        self, info: CollectionBackupInfo, target: CollectionRef, imported: dict[int, int]
    ) -> str:
        """The rows Milvus imported must be the backup's live rows, partition by partition:
        as recorded at backup, or else as the backup's binlogs hold them. Say which."""
        recorded = self.manifest.live_rows.get(info.collection_id) if self.manifest else None
        if _l0_units(info):
            return (
                f"{sum(imported.values())} rows imported before Milvus applied the L0 deletes: "
                "the live rows are checked by count(*) after load only"
            )
        try:
            expected = recorded if recorded is not None else self._derived_rows(info)
        except UnsupportedError as exc:
            return f"{sum(imported.values())} rows imported, not checked: {exc}"
        source = "recorded at backup" if recorded is not None else _DERIVED
        got, want = sum(imported.values()), sum(expected.values())
        if imported != {p: expected.get(p, 0) for p in imported} or got != want:
            names = {p.partition_id: p.partition_name for p in info.partition_backups}
            differ = [
                f"{names.get(p, p)}: {imported.get(p, 0)} of {n}"
                for p, n in sorted(expected.items())
                if imported.get(p, 0) != n
            ]
            raise OperationError(
                f"Milvus imported {got} rows into {target} but the backup holds {want} live "
                f"rows ({source}; by partition, imported of expected: {', '.join(differ)}): "
                f"{self._likely_cause(info, imported, recorded)}"
            )
        return f"{want} live rows {source}, {got} imported"

    def _expected_count(self, info: CollectionBackupInfo, imported: dict[int, int]) -> int:
        """What count(*) must say once loaded: the recorded live rows where L0 deletes were
        applied after the import, else what was imported (already checked against them)."""
        recorded = self.manifest.collection_rows(info.collection_id) if self.manifest else None
        if _l0_units(info) and recorded is not None:
            return recorded
        return sum(imported.values())

    def _derived_rows(self, info: CollectionBackupInfo) -> dict[int, int]:
        workers = self.config.parallelism.copy_data
        return live_rows(self.backup_store, self.layout, info, workers)

    def _likely_cause(
        self, info: CollectionBackupInfo, imported: dict[int, int], recorded: dict[int, int] | None
    ) -> str:
        if recorded is None:
            return _IMPORT_DIFFERS
        derived = self._derived_rows(info)
        if derived == recorded:
            return _IMPORT_DIFFERS
        if sum(derived.values()) == sum(imported.values()):
            return (
                f"the backup's binlogs hold the imported rows, so the count recorded in "
                f"meta/{MANIFEST} was edited or damaged; take a new backup"
            )
        return (
            f"the backup's binlogs hold {sum(derived.values())} live rows, neither: the backup "
            "is damaged; take a new backup"
        )

    def _check_count(self, target: CollectionRef, want: int) -> str:
        """Once loaded, ``count(*)`` must agree with the import."""
        counted = self.milvus.count_rows(target.db, target.name)
        if counted != want:
            raise OperationError(
                f"count(*) of {target} after load is {counted}, but {want} rows were imported: "
                "Milvus lost or duplicated rows while loading; check its query node logs"
            )
        return ", count(*) after load agrees"

    def _needs_staging(self) -> bool:
        """Milvus imports only from its own bucket: stage when the backup lives elsewhere."""
        backup, milvus = self.config.backup_storage, self.config.storage
        return not (backup.same_service(milvus) and backup.bucket == milvus.bucket)

    def _stage(self, info: CollectionBackupInfo, target: CollectionRef) -> str:
        """Copy the collection's binlogs into Milvus's bucket; return the staging prefix."""
        staging = f"restore-temp-{self.task_id}-{target.db}-{target.name}"
        self.progress.phase("staging")
        objects = [
            obj
            for kind in LOG_KINDS
            for obj in self.backup_store.list(self.layout.binlog_dir(kind, info.collection_id))
        ]
        with ThreadPoolExecutor(self.config.parallelism.copy_data) as pool:
            list(
                pool.map(
                    lambda o: copy_object(
                        self.backup_store,
                        o.key,
                        self.milvus_store,
                        join(staging, self.layout.relative(o.key)),
                        o.size,
                    ),
                    objects,
                )
            )
        self.progress.phase("importing")
        return staging

    def _rebuild_indexes(self, info: CollectionBackupInfo, target: CollectionRef) -> None:
        for index in info.index_infos:
            self.milvus.create_index(
                target.db, target.name, index.field_name, index.index_name, index.params
            )
        self.milvus.wait_indexes_built(target.db, target.name)

    def _drop_partial(self, target: CollectionRef) -> str:
        """Drop a collection this restore created and could not finish."""
        try:
            self.milvus.drop_collection(target.db, target.name)
        except BackupError as exc:
            return f" (the partly restored collection could not be dropped: {exc})"
        return " (the partly restored collection was dropped)"
