"""Physical restore: recreate each collection, bulk-import its segments in backup mode.

Every check that can refuse the request runs before anything is written to Milvus. One
collection's failure does not stop the others; each gets its own result.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from . import schema
from .catalog import Catalog
from .config import BackupConfig
from .encryption import CIPHER_PROPERTIES, redact
from .errors import (
    AlreadyExistsError,
    BackupError,
    OperationError,
    UnsupportedError,
)
from .import_jobs import ImportJob, collection_jobs, l0_units
from .layout import BackupLayout, join
from .live_rows import live_rows
from .manifest import MANIFEST, Manifest
from .meta import CollectionBackupInfo
from .milvus import ImportState, Milvus, connect, import_options
from .milvus_rest import MilvusRest
from .progress import ProgressCallback, ProgressTracker
from .rbac import apply_rbac, plan_rbac
from .restore_plan import (
    RestoreRequest,
    check_request,
    no_data_reason,
    precheck,
    refuse_early,
    shards_num,
    source_ref,
)
from .selection import CollectionRef
from .storage import ObjectStore, copy_object
from .swap import Swap, SwapError, building_name

log = logging.getLogger(__name__)

LOG_KINDS = ("insert_log", "delta_log")
IMPORT_POLL_MAX = 0.5  # seconds; a state call costs milliseconds, a late notice costs seconds
RUNNING = "Running"
SWAPPING = "Swapping"  # built and checked under a temporary name; replacing the original
COMPLETED = "Completed"
FAILED = "Failed"


@dataclass
class CollectionRestoreResult:
    source: str
    target: str
    state: str = "Pending"
    rows: int = 0
    imports: int = 0
    error: str = ""
    checked: str = ""  # how the restored rows were checked against the backup
    collection_id: int = 0  # the ID Milvus gave the target this restore created (0: none yet)
    building: str = ""  # the temporary name it is built under, when it replaces one (swap)
    replaces: int = 0  # the ID of the collection it replaces (0: none)

    def swap(self) -> Swap:
        """The replacement this result records (``building`` set)."""
        target = CollectionRef.parse(self.target)
        build = CollectionRef(target.db, self.building)
        return Swap(target, build, self.collection_id, self.replaces)


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


CollectionCallback = Callable[[CollectionRestoreResult], None]


def restore_backup(
    config: BackupConfig,
    request: RestoreRequest,
    on_progress: ProgressCallback | None = None,
    on_collection: CollectionCallback | None = None,
) -> RestoreResult:
    """Restore ``request.backup_name``; raise before writing anything if the request is wrong.

    ``on_collection`` hears of each collection when it starts (``Running``) and when it ends.
    A reader's lease on the backup is held throughout (:mod:`.leases`): a delete refuses the
    backup meanwhile, and a backup being deleted is refused before Milvus is touched.
    """
    check_request(request)
    task_id = request.task_id or f"restore_{uuid.uuid4().hex[:12]}"
    reader = request.reader or f"restore {task_id}"
    with Catalog.of(config).reading(request.backup_name, reader, task_id):
        return _restore(config, request, task_id, on_progress, on_collection)


def _restore(
    config: BackupConfig,
    request: RestoreRequest,
    task_id: str,
    on_progress: ProgressCallback | None,
    on_collection: CollectionCallback | None,
) -> RestoreResult:
    store, catalog, plan, report, backup = refuse_early(config, request)
    result = RestoreResult(task_id, request.backup_name)
    milvus_store = ObjectStore(config.storage, config.timeouts, config.parallelism.copy_data)
    progress = ProgressTracker("restore", on_progress, config.progress_interval)
    with connect(config.milvus, config.timeouts) as milvus:
        precheck(milvus, plan, request, backup)
        rbac = plan_rbac(milvus, backup.rbac_meta, request.backup_name) if request.rbac else None
        milvus_store.require_bucket()
        if rbac is not None:
            apply_rbac(milvus, rbac)
            result.rbac = rbac.describe()
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
            backup.ezk_of,
        )
        jobs = [job.jobs(info) for info, _ in plan if request.imports(info)]
        progress.add(
            collections_total=len(plan),
            segments_total=sum(j.segments for data, l0 in jobs for j in data + l0),
            imports_total=sum(len(data) + len(l0) for data, l0 in jobs),
        )
        with ThreadPoolExecutor(config.parallelism.restore_collection) as pool:
            result.collections = list(pool.map(lambda item: job.run(*item), plan))
    if result.succeeded:
        progress.finish()
    else:
        progress.phase("failed")
    return result


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
    ezk_of: Callable[[str], str]  # the key of a source database's encryption zone, or ""
    _db_lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, info: CollectionBackupInfo, target: CollectionRef) -> CollectionRestoreResult:
        """Restore one collection; turn any failure into a Failed result (others go on)."""
        result = CollectionRestoreResult(str(source_ref(info)), str(target), state=RUNNING)
        self.on_collection(result)
        created: int | None = None  # the ID Milvus gave the collection this run created
        build = target
        try:
            build = self._prepare_target(target, result)
            created = self._create_collection(info, build)
            self._record_created(result, build, created)
            self._build(info, build, result)
            if build != target:  # proven: now it may take the original's place
                result.state = SWAPPING
                self.on_collection(result)
                result.checked += result.swap().run(self.milvus)
            result.state = COMPLETED
        except BackupError as exc:
            result.state, result.error = FAILED, str(exc)
            placed = isinstance(exc, SwapError) and exc.placed  # then nothing may be dropped
            if created is not None and not placed:
                result.error += self._drop_partial(build, created)
        finally:
            self.progress.add(collections_done=1)
            self.on_collection(result)
        return result

    def _build(
        self, info: CollectionBackupInfo, build: CollectionRef, result: CollectionRestoreResult
    ) -> None:
        """Everything after creating it: fields, partitions, data checked, indexes, load,
        the backup's aliases (those the replaced collection holds move to it in the swap)."""
        self._add_fields(info, build)
        self._create_partitions(info, build)
        imported: dict[int, int] = {}
        if self.request.imports(info):
            imported = self._import(info, build, result)
            result.checked = self._check_rows(info, build, imported)
        else:
            result.checked = f"no rows imported: {no_data_reason(info, self.request)}"
        if self.request.rebuild_index:
            self._rebuild_indexes(info, build)
        if self.request.load:
            self.milvus.load_collection(build.db, build.name)
            result.checked += self._check_count(build, self._expected_count(info, imported))
        if self.request.restore_aliases:
            for alias in info.aliases:
                if self.milvus.collection_behind(build.db, alias) is None:
                    self.milvus.create_alias(build.db, build.name, alias)

    def _prepare_target(
        self, target: CollectionRef, result: CollectionRestoreResult
    ) -> CollectionRef:
        """Create the database if needed; return where to build: the target itself, or, when
        it exists and is to be replaced, a temporary name beside it (:mod:`.swap`)."""
        milvus = self.milvus
        with self._db_lock:
            if target.db not in milvus.list_databases():
                milvus.create_database(target.db)
        existing = (
            milvus.collection_id(target.db, target.name) if self.request.drop_existing else None
        )
        if existing is None:
            return target
        build = building_name(target, self.task_id)
        result.building, result.replaces = build.name, existing
        log.info("%s exists: restoring it as %s, which replaces it once checked", target, build)
        return build

    def _record_created(
        self, result: CollectionRestoreResult, target: CollectionRef, created: int
    ) -> None:
        """Record the ID Milvus gave the target, before anything goes into it: a resumed run
        drops an unfinished target only while it holds that ID. If it cannot be recorded,
        the empty collection is dropped again, so that none is left that no record names."""
        result.collection_id = created
        try:
            self.on_collection(result)
        except BaseException:
            log.warning("%s: could not record its collection ID%s", target,
                        self._drop_partial(target, created))  # fmt: skip
            raise

    def _create_collection(self, info: CollectionBackupInfo, target: CollectionRef) -> int:
        """Create the target (without the fields added after creation); return its ID."""
        if info.schema is None:
            raise OperationError(f"backup has no schema for collection {info.collection_name}")
        taken = self.milvus.collection_id(target.db, target.name)
        if taken is not None:  # Milvus 2.3 answers a create of an identical schema with success:
            # its collection would be taken for this restore's, imported into, maybe dropped
            raise AlreadyExistsError(
                f"{target} exists already (ID {taken}) and this restore did not make it: it "
                "was left alone; if it is an earlier restore's leftover, drop it, then restore "
                "again"
            )
        has_key = any(f.is_partition_key for f in info.schema.fields)
        properties = {kv.key: kv.value for kv in info.properties or info.schema.properties}
        for key in CIPHER_PROPERTIES:  # Milvus's, set by the target database's own zone
            properties.pop(key, None)
        proto = schema.schema_to_proto(info.schema, target.name)
        if self.request.mapping and self.request.mapping.override(target).description:
            proto.description = self.request.mapping.override(target).description
        self.milvus.create_collection(
            target.db,
            proto,
            shards_num=shards_num(info, self.request, target),
            consistency_level=info.consistency_level,
            properties=properties,
            num_partitions=len(info.partition_backups) if has_key else 0,
        )
        return int(self.milvus.describe_collection(target.db, target.name).collectionID)

    def _add_fields(self, info: CollectionBackupInfo, target: CollectionRef) -> None:
        """Add the fields added after creation, in order; then check every field's ID."""
        assert info.schema is not None
        for added in schema.split_added_fields(info.schema)[1]:
            self.milvus.add_field(target.db, target.name, schema.field_to_proto(added))
        self._check_field_ids(info, target)

    def _create_partitions(self, info: CollectionBackupInfo, target: CollectionRef) -> None:
        existing = self.milvus.partitions(target.db, target.name)
        for partition in info.partition_backups:
            if partition.partition_name not in existing:
                self.milvus.create_partition(target.db, target.name, partition.partition_name)

    def _check_field_ids(self, info: CollectionBackupInfo, target: CollectionRef) -> None:
        """Binlogs are keyed by field ID: the new collection must have the same IDs."""
        described = self.milvus.describe_collection(target.db, target.name)
        got = {f.name: f.fieldID for f in described.schema.fields}
        assert info.schema is not None
        want = {f.name: f.field_id for f in info.schema.fields if not f.is_dynamic}
        mismatched = {n: (i, got.get(n)) for n, i in want.items() if got.get(n) != i}
        if mismatched:
            raise OperationError(
                f"Milvus gave {target} different field IDs than the backup ({mismatched}): "
                "its binlogs cannot be imported into this Milvus version"
            )

    def jobs(self, info: CollectionBackupInfo) -> tuple[list[ImportJob], list[ImportJob]]:
        """The collection's import jobs: data, then L0 (several per job only with the v2
        restore, and several L0 only where Milvus takes them)."""
        v2, can = self.request.use_v2_restore, self.milvus.capabilities
        return collection_jobs(info, self.layout, self.config.parallelism, v2, can)

    def _import(
        self, info: CollectionBackupInfo, target: CollectionRef, result: CollectionRestoreResult
    ) -> dict[int, int]:
        """Import every segment, the L0 ones last; return the rows imported per partition."""
        data, deletes = self.jobs(info)
        staging = self._stage(info, target) if self._needs_staging() else None
        ezk = self.ezk_of(info.db_name)  # the source database's (milvus-backup's ``ezk()``)
        try:
            workers = max(1, min(self.config.parallelism.import_job, len(data)))
            with ThreadPoolExecutor(workers, thread_name_prefix="import") as pool:
                rows = list(pool.map(lambda job: self._run_job(job, target, staging, ezk), data))
            for job in deletes:  # deletes, once every row they may delete is in
                self._run_job(job, target, staging, ezk)
        finally:
            if staging and not self.config.keep_temp_files:
                self._remove_staging(staging, target)
        result.rows, result.imports = sum(rows), len(data) + len(deletes)
        imported = {p.partition_id: 0 for p in info.partition_backups}
        for job, count in zip(data, rows, strict=True):
            imported[job.partition_id] += count
        return imported

    def _run_job(self, job: ImportJob, target: CollectionRef, staging: str | None, ezk: str) -> int:
        """One import job, with the encryption zone key of its database if it has one (a
        failure that echoes the key says ``<ezk>`` instead)."""
        try:
            return self._import_job(job, target, staging, ezk)
        except BackupError as exc:
            if ezk and ezk in str(exc):
                raise type(exc)(redact(str(exc), ezk)) from None
            raise

    def _import_job(
        self, job: ImportJob, target: CollectionRef, staging: str | None, ezk: str
    ) -> int:
        """One import job, over gRPC (one segment group) or REST (v2 restore: several)."""
        files = [
            [join(staging, self.layout.relative(p)) + "/" if staging else p for p in pair]
            for pair in job.files
        ]
        where = files[0][0] + (f" and {len(files) - 1} more" if len(files) > 1 else "")
        if self.request.use_v2_restore:
            options = import_options(l0=job.l0, storage_version=job.storage_version, ezk=ezk)
            rest = MilvusRest(self.config.milvus, self.config.timeouts)
            handle = rest.create_import(target.db, target.name, job.partition_name, files,
                                        options)  # fmt: skip
            rows = self._wait_import(lambda: rest.import_state(target.db, handle), target, where)
        else:
            task = self.milvus.import_backup(
                target.db, target.name, job.partition_name, files[0], l0=job.l0,
                storage_version=job.storage_version, ezk=ezk,
            )  # fmt: skip
            rows = self._wait_import(lambda: self.milvus.import_state(task), target, where)
        self.progress.add(imports_done=1, segments_done=job.segments)
        return 0 if job.l0 else rows

    def _wait_import(
        self, state_of: Callable[[], ImportState], target: CollectionRef, path: str
    ) -> int:
        deadline = time.monotonic() + self.config.timeouts.import_job
        delay = 0.1
        while True:
            state = state_of()
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
        if l0_units(info):
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
                f"{names.get(p, p)}: {imported.get(p, 0)} of {expected.get(p, 0)}"
                for p in sorted(set(expected) | set(imported))
                if imported.get(p, 0) != expected.get(p, 0)
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
        if l0_units(info) and recorded is not None:
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
        try:
            derived = self._derived_rows(info)
        except UnsupportedError as exc:
            return f"which one is wrong cannot be told here ({exc}); take a new backup"
        if derived == recorded:
            return _IMPORT_DIFFERS
        if sum(derived.values()) == sum(imported.values()):
            return (
                f"the backup's binlogs hold the imported rows, not the count recorded in "
                f"meta/{MANIFEST}: the record, or the binlogs and their records, were changed "
                "after the backup; take a new backup"
            )
        return (
            f"the backup's binlogs hold {sum(derived.values())} live rows, neither: the backup "
            "is damaged; take a new backup"
        )

    def _check_count(self, target: CollectionRef, want: int) -> str:
        """Once loaded, ``count(*)`` must agree with what the restore expects."""
        counted = self.milvus.count_rows(target.db, target.name)
        if counted != want:
            raise OperationError(
                f"count(*) of {target} after load is {counted}, but {want} rows were expected "
                "(imported, or alive at the backup where L0 deletes were applied after the "
                "import): Milvus lost, duplicated or kept deleted rows; check its logs"
            )
        return ", count(*) after load agrees"

    def _imports_in_flight(self, target: CollectionRef) -> bool:
        """Whether Milvus has imports into ``target`` pending or running (when it cannot
        say, assume it does: keeping is safe, dropping is not)."""
        try:
            return self.milvus.unfinished_imports(target.db, target.name) > 0
        except BackupError:
            return True

    def _remove_staging(self, staging: str, target: CollectionRef) -> None:
        """Remove the staged copies, unless imports still in flight read them."""
        if self._imports_in_flight(target):
            log.warning(
                "kept %s in Milvus's bucket: imports into %s are still in flight; remove it "
                "once they have ended", staging, target,
            )  # fmt: skip
            return
        self.milvus_store.delete_prefix(staging + "/")

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

    def _drop_partial(self, target: CollectionRef, created: int) -> str:
        """Drop the collection this restore created (Milvus's ID ``created``) and could not
        finish, unless Milvus still imports into it (dropping it then would stall Milvus's
        import queue) or the name now holds another collection (another restore with
        dropExistingCollection, or a user, replaced it meanwhile: not ours to drop)."""
        if self._imports_in_flight(target):
            return (
                " (the partly restored collection was kept: Milvus still has imports into it "
                "in flight; drop it once they have ended)"
            )
        try:
            now_there = self.milvus.collection_id(target.db, target.name)
        except BackupError as exc:
            return f" (the partly restored collection was kept: {exc})"
        if now_there is None:
            return " (the partly restored collection is gone already)"
        if now_there != created:
            return (
                f" (the collection now named {target} is another one than this restore "
                "created, which was dropped by someone else: it was kept)"
            )
        try:
            self.milvus.drop_collection(target.db, target.name)
        except BackupError as exc:
            return f" (the partly restored collection could not be dropped: {exc})"
        return " (the partly restored collection was dropped)"
