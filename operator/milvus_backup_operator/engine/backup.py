"""Physical backup: flush, record the metadata, copy the binlogs, write the meta last."""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from . import schema
from .capabilities import KNOWN_STORAGE_VERSIONS, STORAGE_V1
from .catalog import Catalog
from .config import BackupConfig, GcPause
from .encryption import CIPHER_EZ_ID, describe_databases
from .errors import (
    BackupError,
    InvalidRequestError,
    OperationError,
    UnreachableError,
    UnsupportedError,
)
from .gc_pause import GcHold, gc_paused
from .layout import BackupLayout, ObjectCopy, join, milvus_collection_dir
from .live_rows import live_rows
from .management import Management
from .manifest import MANIFEST, Manifest, StoredObject
from .meta import (
    BackupInfo,
    Binlog,
    CollectionBackupInfo,
    DatabaseBackupInfo,
    FieldBinlog,
    PartitionBackupInfo,
    SegmentBackupInfo,
    render_meta_files,
)
from .milvus import ALL_PARTITIONS, Milvus, SegmentInfo, connect
from .milvus_rest import MilvusRest, SegmentFiles
from .names import validate_backup_name
from .progress import ProgressCallback, ProgressTracker
from .rbac import read_rbac
from .reservation import Reservation, require_free, reserve
from .selection import ALL, CollectionRef, check_known
from .storage import ObjectInfo, ObjectStore, copy_object

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackupRequest:
    name: str
    collections: tuple[CollectionRef, ...] = ()  # empty: every collection
    backup_id: str = ""  # recorded as the meta's id (milvus-backup: the task's id); default new
    rbac: bool = False  # record Milvus's users, roles and grants too
    #: milvus-backup's ``gc_pause_enable``/``_seconds``/``_address``, over the configuration's
    pause_gc: bool = False
    gc_pause_seconds: int = 0
    gc_pause_address: str = ""

    def gc_pause(self, config: BackupConfig) -> GcPause:
        """The GC pause this backup asks for, on top of the configuration's."""
        ask = (self.pause_gc, self.gc_pause_seconds, self.gc_pause_address)
        return config.gc_pause.asked(*ask)

    #: record schemas, indexes and partitions only: no flush, no binlog copied (milvus-backup's
    #: ``strategy=meta_only``); such a backup restores as empty collections
    meta_only: bool = False


META_ONLY = "meta_only"
#: milvus-backup's other strategies (``core/backup/func.go`` at v0.5.16): how it flushes
FLUSH_STRATEGIES = ("skip_flush", "bulk_flush", "serial_flush")


def is_meta_only(strategy: str) -> bool:
    """milvus-backup's ``strategy``: "" or ``meta_only``; its flush strategies are refused."""
    if strategy in ("", META_ONLY):
        return strategy == META_ONLY
    if strategy in FLUSH_STRATEGIES:
        raise InvalidRequestError(
            f"strategy {strategy} is milvus-backup's, not supported by milvus-backup-operator "
            "(it always flushes each collection it backs up): leave it out, or use meta_only"
        )
    raise InvalidRequestError(
        f"invalid strategy {strategy!r}: use meta_only, or leave it out "
        f"(milvus-backup also has {', '.join(FLUSH_STRATEGIES)})"
    )


@dataclass
class _CollectionPlan:
    info: CollectionBackupInfo
    copies: list[ObjectCopy]


def create_backup(
    config: BackupConfig,
    request: BackupRequest,
    on_progress: ProgressCallback | None = None,
    reservation: Reservation | None = None,
) -> BackupInfo:
    """Back up the requested collections under ``request.name``; return the written meta.

    Nothing is written before every input has been checked and the name reserved (or
    ``reservation``, from :func:`reserve_backup`, is given). If anything fails after that,
    the backup's prefix is deleted again: a backup is either complete (meta written last) or
    absent.
    """
    progress = ProgressTracker("backup", on_progress, config.progress_interval)
    source, target, catalog = _refuse_early(config, request, held=reservation)
    with connect(config.milvus, config.timeouts) as milvus:
        refs = _resolve(milvus, list(request.collections))
        databases = _databases(config, request, milvus, refs)  # an encrypted one's key, or no
        progress.add(collections_total=len(refs))
        silence = config.timeouts.writer_silence
        layout = catalog.layout(request.name)
        claim = reservation or reserve(target, layout, request.backup_id, silence)
        pause = request.gc_pause(config)
        gc = gc_paused(pause, config.milvus, milvus.capabilities, config.timeouts.rpc)
        try:
            renewed = claim.renewed(silence, lambda: progress.current.percent)
            with renewed, gc as held:
                meta_only = request.meta_only
                job = _BackupJob(config, milvus, source, target, claim, progress, held, meta_only)
                info = job.run(refs, request.rbac, databases)
                log.info("backup %s: %s", request.name, held.text)
        except BackupError as exc:
            abandoned = claim.abandoned()  # the true cause, when the name was lost meanwhile
            _discard(claim)
            if abandoned is not None:
                raise abandoned from exc
            raise
        except BaseException:
            _discard(claim)
            raise
    progress.finish()
    return info


def check_backup_request(config: BackupConfig, request: BackupRequest) -> None:
    """Raise what :func:`create_backup` would refuse before writing, and write nothing."""
    _refuse_early(config, request, create_bucket=False)
    with connect(config.milvus, config.timeouts) as milvus:
        _databases(config, request, milvus, _resolve(milvus, list(request.collections)))


def reserve_backup(config: BackupConfig, request: BackupRequest) -> Reservation:
    """Check the request and claim its name now, for a :func:`create_backup` run later.

    The claim carries ``request.backup_id``: a restarted caller finds its own leftovers by it
    (:meth:`Catalog.finished_or_cleared`).
    """
    _, target, catalog = _refuse_early(config, request)
    with connect(config.milvus, config.timeouts) as milvus:
        _databases(config, request, milvus, _resolve(milvus, list(request.collections)))
    layout = catalog.layout(request.name)
    return reserve(target, layout, request.backup_id, config.timeouts.writer_silence)


def _refuse_early(
    config: BackupConfig,
    request: BackupRequest,
    create_bucket: bool = True,
    held: Reservation | None = None,
) -> tuple[ObjectStore, ObjectStore, Catalog]:
    validate_backup_name(request.name)
    request.gc_pause(config)  # a bad address or length is refused now, not mid-backup
    source = ObjectStore(config.storage, config.timeouts)
    target = ObjectStore(config.backup_storage, config.timeouts, config.parallelism.copy_data)
    source.require_bucket()
    if create_bucket:
        target.ensure_bucket()
    catalog = Catalog(target, config.backup_storage.root_path)
    if held is None:
        require_free(target, catalog.layout(request.name))
    return source, target, catalog


@dataclass
class _BackupJob:
    config: BackupConfig
    milvus: Milvus
    source: ObjectStore
    target: ObjectStore
    reservation: Reservation
    progress: ProgressTracker
    gc: GcHold
    meta_only: bool

    @property
    def layout(self) -> BackupLayout:
        return self.reservation.layout

    def run(
        self, refs: list[CollectionRef], rbac: bool, databases: list[DatabaseBackupInfo]
    ) -> BackupInfo:
        backup_id = self.reservation.marker.backup_id
        rbac_meta = read_rbac(self.milvus) if rbac else None
        self.progress.phase("describing" if self.meta_only else "flushing")
        with ThreadPoolExecutor(self.config.parallelism.backup_collection) as pool:
            plans = list(pool.map(self._plan, refs))
        _refuse_keyless(plans, databases)
        for plan in plans:
            plan.info.id = backup_id
            segments = len(plan.info.all_segments())
            self.progress.add(segments_total=segments, bytes_total=plan.info.size)
        self.progress.phase("copying")
        etags = self._copy_all(plans)
        self.progress.phase("verifying")
        stored = _verify(self.target, self.layout, plans, etags)
        self.progress.phase("counting rows")
        manifest = Manifest(stored, self._live_rows(plans))
        info = BackupInfo(
            id=backup_id,
            name=self.layout.name,
            backup_timestamp=max((p.info.backup_timestamp for p in plans), default=0),
            collection_backups=[p.info for p in plans],
            size=sum(p.info.size for p in plans),
            milvus_version=self.milvus.version(),
            rbac_meta=rbac_meta,
            database_backups=databases,
        )
        self.progress.phase("writing meta")
        self.reservation.require()
        self.target.put(self.layout.meta_key(MANIFEST), manifest.to_json())
        for filename, content in render_meta_files(info).items():
            self.target.put(self.layout.meta_key(filename), content)
        self.reservation.release()
        return info

    def _live_rows(self, plans: list[_CollectionPlan]) -> dict[int, dict[int, int]]:
        """Each collection's live rows by partition, read from the copies just made; none
        for a collection without data (never a false 0) or whose binlogs are not read here
        (a storage version or column layout not read: the restore says its rows were not
        checked)."""
        workers = self.config.parallelism.copy_data
        counts = {}
        for plan in (p for p in plans if not p.info.meta_only):
            try:
                counts[plan.info.collection_id] = live_rows(
                    self.target, self.layout, plan.info, workers
                )
            except UnsupportedError as exc:
                log.warning("%s: %s", plan.info.qualified_name, exc)
        return counts

    def _copy_all(self, plans: list[_CollectionPlan]) -> dict[str, str]:
        """Copy every object, ``copydata`` at a time; stop at the first failure, or as soon
        as the name is lost (its marker deleted or replaced). Return each copy's ETag."""
        remaining = Counter(task.segment_id for plan in plans for task in plan.copies)
        lock = threading.Lock()
        etags: dict[str, str] = {}

        def copy(task: ObjectCopy) -> None:
            self.reservation.check_not_lost()
            etag = copy_object(self.source, task.src_key, self.target, task.dst_key, task.size)
            with lock:
                etags[task.dst_key] = etag
                remaining[task.segment_id] -= 1
                segment_done = remaining[task.segment_id] == 0
            self.progress.add(bytes_done=task.size, segments_done=int(segment_done))

        pool = ThreadPoolExecutor(self.config.parallelism.copy_data, thread_name_prefix="copy")
        try:
            for plan in plans:
                for future in [pool.submit(copy, task) for task in plan.copies]:
                    future.result()
                self.gc.release(plan.info.collection_id)
                self.progress.add(collections_done=1)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return etags

    def _plan(self, ref: CollectionRef) -> _CollectionPlan:
        """Flush one collection and describe everything to copy, without copying yet."""
        milvus, at = self.milvus, (ref.db, ref.name)
        info = schema.collection_from_describe(milvus.describe_collection(*at), ref.db)
        info.index_infos = [schema.index_from_proto(i) for i in milvus.describe_indexes(*at)]
        info.has_index = bool(info.index_infos)
        info.load_state = schema.load_state(milvus.loading_progress(*at))
        segments: list[SegmentInfo] = []
        binlogs = _Binlogs()
        if not self.meta_only:  # as milvus-backup's meta_only: no flush, no timestamp
            self.gc.hold(info.collection_id)  # until its copies are done (Milvus >= 2.6.8)
            flushed = milvus.flush(*at)
            info.backup_timestamp = flushed.flush_ts
            info.backup_physical_timestamp = flushed.seal_time
            info.channel_checkpoints = flushed.channel_checkpoints
            found = milvus.persistent_segments(*at)
            segments = [s for s in found if s.is_flushed and (s.num_rows or s.is_l0)]
            binlogs = self._binlogs(ref, info.collection_id, segments)
            info.l0_segments = [
                self._segment(info, s, binlogs)
                for s in segments
                if s.partition_id == ALL_PARTITIONS
            ]
        for name, partition_id in milvus.partitions(*at).items():
            partition = PartitionBackupInfo(
                partition_id=partition_id,
                partition_name=name,
                collection_id=info.collection_id,
                load_state=info.load_state,
                segment_backups=[
                    self._segment(info, s, binlogs)
                    for s in segments
                    if s.partition_id == partition_id
                ],
            )
            partition.size = sum(s.size for s in partition.segment_backups)
            info.partition_backups.append(partition)
        info.size = sum(p.size for p in info.partition_backups)
        info.size += sum(s.size for s in info.l0_segments)
        everything = info.all_segments()
        copies = [task for seg in everything for task in self.layout.segment_copies(seg)]
        log.info("planned %s: %d segments, %d bytes", ref, len(everything), info.size)
        return _CollectionPlan(info, copies)

    def _binlogs(
        self, ref: CollectionRef, collection_id: int, segments: list[SegmentInfo]
    ) -> _Binlogs:
        """The logs of ``segments``: those Milvus names (>= 2.5.8), else every one listed.

        Only the flushed segments Milvus reports are kept from the listing either way, so
        objects of compacted or dropped segments that its garbage collector has not removed
        yet are never taken for data; with the names, neither are the files a failed
        compaction or flush left in a live segment's directory.
        """
        listing = self._list_logs(collection_id)
        listing.refuse_unknown(segments, ref)
        if not (self.milvus.capabilities.segment_info and segments):
            return listing.parsed()
        named, failures = self._describe(ref, collection_id, [s.segment_id for s in segments])
        if not named:
            log.warning(
                "%s: %s did not name its segments' files (%s); taking every file listed "
                "under them instead, as for Milvus < 2.5.8 (check milvus.rest.endpoint)",
                ref, self.milvus.capabilities.describe(), next(iter(failures.values())),
            )  # fmt: skip
            return listing.parsed()
        if failures:
            log.warning(
                "%s: Milvus did not describe segments %s (%s: compacted away since they were "
                "listed?); taking the files listed under them instead",
                ref, sorted(failures), next(iter(failures.values())),
            )  # fmt: skip
        return listing.named(segments, named, ref, self.source)

    def _describe(
        self, ref: CollectionRef, collection_id: int, segment_ids: list[int]
    ) -> tuple[dict[int, SegmentFiles], dict[int, str]]:
        """The files Milvus names per segment, and why it named none for the others.

        Asked in batches; a batch Milvus refuses (one segment of it compacted away since the
        listing fails the whole request) is asked again one segment at a time, as
        milvus-backup asks (``core/backup/coll_dml_task.go`` ``getSegment``: per segment,
        each one it cannot describe listed instead). Unreachable, none is named.
        """
        rest = MilvusRest(self.config.milvus, self.config.timeouts)
        try:
            return rest.segment_files(ref.db, collection_id, segment_ids), {}
        except UnreachableError as exc:
            return {}, dict.fromkeys(segment_ids, str(exc))
        except OperationError:
            pass
        named: dict[int, SegmentFiles] = {}
        failures: dict[int, str] = {}
        for segment_id in segment_ids:
            try:
                named.update(rest.segment_files(ref.db, collection_id, [segment_id]))
            except (OperationError, UnreachableError) as exc:
                failures[segment_id] = str(exc)
        return named, failures

    def _list_logs(self, collection_id: int) -> _Listing:
        """Every insert and delta log object of a collection: one listing of each directory."""
        root = self.config.storage.root_path
        insert_dir = milvus_collection_dir(root, "insert_log", collection_id)
        delta_dir = milvus_collection_dir(root, "delta_log", collection_id)
        with ThreadPoolExecutor(2) as pool:
            inserts, deltas = pool.map(lambda d: list(self.source.list(d)), (insert_dir, delta_dir))
        return _Listing(insert_dir, delta_dir, inserts, deltas)

    def _segment(
        self, collection: CollectionBackupInfo, segment: SegmentInfo, binlogs: _Binlogs
    ) -> SegmentBackupInfo:
        """Describe one segment's binlogs (an L0 segment has delta logs only)."""
        collection_id = collection.collection_id
        if segment.storage_version not in KNOWN_STORAGE_VERSIONS:
            raise UnsupportedError(
                f"segment {segment.segment_id} is in storage version {segment.storage_version}, "
                "which this version does not know how to back up; nothing was kept"
            )
        by_field: dict[int, list[Binlog]] = binlogs.inserts.get(segment.segment_id, {})
        named = segment.segment_id in binlogs.v_channels
        if not segment.is_l0:
            root = self.config.storage.root_path
            _check_insert_logs(segment.segment_id, by_field, self.source, root, named)
            if segment.storage_version in STORAGE_V1:  # v2 keys its files by column group
                _check_every_field(segment.segment_id, by_field, _always_written(collection))
        deltas = binlogs.deltas.get(segment.segment_id, [])
        whole_collection = segment.partition_id == ALL_PARTITIONS
        info = SegmentBackupInfo(
            segment_id=segment.segment_id,
            collection_id=collection_id,
            partition_id=segment.partition_id,
            num_of_rows=segment.num_rows,
            binlogs=[
                FieldBinlog(field_id=f, binlogs=_by_id(by_field[f])) for f in sorted(by_field)
            ],
            deltalogs=[FieldBinlog(binlogs=_by_id(deltas))] if deltas else [],
            group_id=0 if whole_collection else segment.segment_id,  # as milvus-backup's groupID
            is_l0=segment.is_l0,
            v_channel=binlogs.v_channels.get(segment.segment_id, ""),  # "" listed, as upstream
            storage_version=segment.storage_version,
        )
        info.size = info.log_bytes()
        return info


@dataclass
class _Binlogs:
    """A collection's logs by segment: insert logs by field, and delta logs."""

    inserts: defaultdict[int, defaultdict[int, list[Binlog]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )
    deltas: defaultdict[int, list[Binlog]] = field(default_factory=lambda: defaultdict(list))
    #: the segments whose logs Milvus named (segments/describe), with their virtual channel;
    #: the others' logs were guessed from a listing
    v_channels: dict[int, str] = field(default_factory=dict)


_INSERT_LOG = re.compile(r"^-?\d+/\d+/\d+/\d+$")  # partition/segment/field/log
_DELTA_LOG = re.compile(r"^-?\d+/\d+/\d+$")  # partition/segment/log


@dataclass(frozen=True)
class _Listing:
    """A collection's insert and delta log objects, as listed in Milvus's bucket.

    Keys: ``<insert_dir><p>/<s>/<field>/<log>`` and ``<delta_dir><p>/<s>/<log>``; in storage
    v2 ``<field>`` is a column group's ID (Milvus's ``metautil.BuildInsertLogPath``, called
    with ``columnGroup.GroupID`` by ``internal/flushcommon/syncmgr/pack_writer_v2.go``).
    """

    insert_dir: str
    delta_dir: str
    inserts: list[ObjectInfo]
    deltas: list[ObjectInfo]

    def parsed(self) -> _Binlogs:
        """Every listed log, by segment (and field): what Milvus < 2.5.8 allows. Objects
        of another shape are left out here (see :meth:`refuse_unknown`)."""
        found = _Binlogs()
        for obj in self.inserts:
            rel = obj.key.removeprefix(self.insert_dir)
            if _INSERT_LOG.match(rel):
                _, segment, field_id, log_id = rel.split("/")
                found.inserts[int(segment)][int(field_id)].append(
                    _binlog(obj.key, obj.size, log_id)
                )
        for obj in self.deltas:
            rel = obj.key.removeprefix(self.delta_dir)
            if _DELTA_LOG.match(rel):
                _, segment, log_id = rel.split("/")
                found.deltas[int(segment)].append(_binlog(obj.key, obj.size, log_id))
        return found

    def refuse_unknown(self, segments: list[SegmentInfo], ref: CollectionRef) -> None:
        """Refuse a segment to back up that holds objects of a shape this version does not
        know (e.g. the ``lob/`` files of large text values newer Milvus writes beside the
        binlogs, ``metautil.BuildLOBLogPath``): copying it without them would lose data."""
        for segment in segments:
            at = f"{join(segment.partition_id, segment.segment_id)}/"
            for top, shape, objects in ((self.insert_dir, _INSERT_LOG, self.inserts),
                                        (self.delta_dir, _DELTA_LOG, self.deltas)):  # fmt: skip
                strange = [
                    o.key for o in objects
                    if o.key.startswith(top + at) and not shape.match(o.key.removeprefix(top))
                ]  # fmt: skip
                if strange:
                    raise UnsupportedError(
                        f"segment {segment.segment_id} of {ref} holds {len(strange)} objects "
                        f"this version does not know how to back up (e.g. {strange[0]!r}): "
                        "Milvus keeps data there that is not in its binlogs (large values in "
                        "lob/?); nothing was kept"
                    )

    def named(
        self, segments: list[SegmentInfo], named: dict[int, SegmentFiles], ref: CollectionRef,
        source: ObjectStore,
    ) -> _Binlogs:  # fmt: skip
        """The logs Milvus names for ``segments``, sized from the listing; a named log that
        is not there fails the backup, a listed one Milvus does not name is skipped. A
        segment Milvus did not describe keeps every log listed under it."""
        sizes = {obj.key: obj.size for obj in (*self.inserts, *self.deltas)}
        bucket = source.describe()
        found = self.parsed()
        for segment in (s for s in segments if s.segment_id in named):
            files, at = named[segment.segment_id], join(segment.partition_id, segment.segment_id)
            where = f"segment {segment.segment_id} of {ref}"
            found.inserts.pop(segment.segment_id, None)
            found.deltas.pop(segment.segment_id, None)
            found.v_channels[segment.segment_id] = files.v_channel
            for group in (g for g in files.insert_logs if g.log_ids):
                found.inserts[segment.segment_id][group.field_id] += [
                    _named(sizes, f"{self.insert_dir}{at}/{group.field_id}/{i}", i, where, bucket)
                    for i in group.log_ids
                ]
            deltas = [i for group in files.delta_logs for i in group.log_ids]
            found.deltas[segment.segment_id] += [
                _named(sizes, f"{self.delta_dir}{at}/{i}", i, where, bucket) for i in deltas
            ]
        self._report_orphans(segments, found, ref)
        return found

    def _report_orphans(
        self, segments: list[SegmentInfo], found: _Binlogs, ref: CollectionRef
    ) -> None:
        """Log how many listed files of the kept segments Milvus does not name."""
        dirs = tuple(
            f"{top}{join(s.partition_id, s.segment_id)}/"
            for s in segments
            if s.segment_id in found.v_channels
            for top in (self.insert_dir, self.delta_dir)
        )
        kept = {b.log_path for logs in found.inserts.values() for f in logs.values() for b in f}
        kept |= {b.log_path for logs in found.deltas.values() for b in logs}
        orphans = [
            o.key
            for o in (*self.inserts, *self.deltas)
            if o.key.startswith(dirs) and o.key not in kept
        ]
        if orphans:
            log.info(
                "%s: skipped %d files Milvus does not name in its segments (left by failed "
                "compactions or flushes), e.g. %s", ref, len(orphans), orphans[0],
            )  # fmt: skip


def _named(sizes: dict[str, int], key: str, log_id: int, where: str, bucket: str) -> Binlog:
    """The log Milvus names at ``key``, sized from the listing; absent, the backup fails."""
    size = sizes.get(key)
    if size is None:
        raise OperationError(
            f"{where}: Milvus names {key!r}, which is not in {bucket}: removed by a compaction "
            "or the garbage collector while the backup ran? Retry the backup; if it persists, "
            "Milvus's bucket is missing data"
        )
    return _binlog(key, size, log_id)


def _binlog(key: str, size: int, log_id: str | int) -> Binlog:
    return Binlog(log_path=key, log_size=size, log_id=int(log_id))


def _by_id(binlogs: list[Binlog]) -> list[Binlog]:
    return sorted(binlogs, key=lambda b: b.log_id)


def _check_insert_logs(
    segment_id: int,
    by_field: dict[int, list[Binlog]],
    source: ObjectStore,
    root_path: str,
    named: bool,
) -> None:
    """A data segment has insert logs; listed ones (not named by Milvus) one count per field:
    a listing during a compaction can catch some fields' files and not others."""
    if not by_field:
        raise OperationError(
            f"segment {segment_id} has no insert logs under rootPath {root_path!r} in "
            f"{source.describe()}: minio.bucketName and minio.rootPath must be Milvus's own"
        )
    counts = {len(logs) for logs in by_field.values()}
    if len(counts) != 1 and not named:
        raise OperationError(
            f"segment {segment_id} has misaligned binlogs (file counts per field: "
            f"{sorted(counts)}): Milvus may be compacting it; retry the backup"
        )


def _always_written(collection: CollectionBackupInfo) -> dict[int, str]:
    """The fields every data segment (storage v1) holds a binlog directory of, by ID: not
    the nullable ones or those with a default value (a field added after creation is both
    (AddCollectionField), and segments written before it have none), nor ``$meta``."""
    if collection.schema is None:
        return {}
    return {
        f.field_id: f.name
        for f in collection.schema.fields
        if not (f.nullable or f.is_dynamic or f.default_value_base64 or f.default_value_proto)
    }


def _check_every_field(
    segment_id: int, by_field: dict[int, list[Binlog]], required: dict[int, str]
) -> None:
    """Milvus cannot import a segment that lacks a field's binlogs: refuse it at backup, not
    months later at restore."""
    missing = [f"{name} (field {fid})" for fid, name in sorted(required.items())
               if fid not in by_field]  # fmt: skip
    if missing:
        raise OperationError(
            f"segment {segment_id} holds no binlogs of {', '.join(missing)} in Milvus's "
            "bucket: its data there is incomplete and could not be restored; nothing was "
            "kept. Check minio.rootPath and Milvus's logs for that segment"
        )


def _databases(
    config: BackupConfig, request: BackupRequest, milvus: Milvus, refs: list[CollectionRef]
) -> list[DatabaseBackupInfo]:
    """The databases of ``refs`` as milvus-backup records them, each encrypted one with its
    key, read from the management endpoint the GC pause uses (milvus-backup's one ``manage``
    client, ``core/backup/task.go``); a meta-only backup imports nothing and needs no key."""
    names = sorted({r.db for r in refs})
    if request.meta_only:
        return [DatabaseBackupInfo(db_name=name) for name in names]
    management = Management(request.gc_pause(config), config.milvus, config.timeouts.rpc)
    return describe_databases(milvus, names, management)


def _refuse_keyless(plans: list[_CollectionPlan], databases: list[DatabaseBackupInfo]) -> None:
    """A collection Milvus describes as in an encryption zone (its ``cipher.ezID`` property,
    ``hookutil.GetEzByCollProperties``) whose database has no key: refused before any copy."""
    keyed = {d.db_name for d in databases if d.ezk}
    for plan in plans:
        info = plan.info
        zoned = any(kv.key == CIPHER_EZ_ID and kv.value for kv in info.properties)
        if zoned and not info.meta_only and info.db_name not in keyed:
            raise UnsupportedError(
                f"collection {info.qualified_name} is encrypted (property {CIPHER_EZ_ID}), but "
                f"Milvus does not describe its database {info.db_name} as an encryption zone, "
                "so its key cannot be read: its backup could not be restored; nothing was copied"
            )


def _resolve(milvus: Milvus, wanted: list[CollectionRef]) -> list[CollectionRef]:
    """The requested collections (all of them when none are named), checked to exist."""
    existing = [
        CollectionRef(db, name)
        for db in milvus.list_databases()
        for name in milvus.list_collections(db)
    ]
    if not wanted:
        return sorted(existing)
    explicit = [ref for ref in wanted if ref.name != ALL]
    check_known(explicit, existing, f"Milvus at {milvus.config.endpoint}")
    every_of = {ref.db for ref in wanted if ref.name == ALL}
    unknown_dbs = every_of - set(milvus.list_databases())
    if unknown_dbs:
        raise InvalidRequestError(f"database {', '.join(sorted(unknown_dbs))} does not exist")
    expanded = explicit + sorted(ref for ref in existing if ref.db in every_of)
    return list(dict.fromkeys(expanded))


def _verify(
    target: ObjectStore, layout: BackupLayout, plans: list[_CollectionPlan], etags: dict[str, str]
) -> dict[str, StoredObject]:
    """Every copied object is there with its source's size and the ETag its copy returned;
    return them, keyed relative to the backup (the manifest)."""
    stored = {obj.key: obj for obj in target.list(layout.binlogs_dir() + "/")}
    manifest: dict[str, StoredObject] = {}
    for task in (t for plan in plans for t in plan.copies):
        found = stored.get(task.dst_key)
        if found is None or found.size != task.size:
            raise OperationError(
                f"copy of {task.src_key!r} to {task.dst_key!r} is missing or has the wrong "
                f"size ({found.size if found else None} bytes, expected {task.size})"
            )
        if etags.get(task.dst_key) and found.etag != etags[task.dst_key]:
            raise OperationError(
                f"copy of {task.src_key!r} to {task.dst_key!r} changed after it was written "
                "(another ETag): another writer? take the backup again"
            )
        manifest[layout.relative(task.dst_key)] = StoredObject(task.size, found.etag)
    return manifest


def _discard(reservation: Reservation) -> None:
    """Remove what a failed backup copied, so that it can neither look complete nor linger."""
    name = reservation.layout.name
    try:
        removed = reservation.discard()
        log.warning("backup %s failed: removed its %d objects", name, removed)
    except Exception as exc:  # the original error matters more; list shows it as Incomplete
        log.error("backup %s failed and its leftovers could not be removed: %s", name, exc)
