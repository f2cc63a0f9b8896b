"""How many rows a backup holds alive: its segments' rows, less those its delete logs remove.

Milvus deletes a row when a delete of its primary key carries a later timestamp than the
row (an upsert writes the delete and the new row at one timestamp: the new row stays). A
backup's deletes of a segment live in that segment's delta logs (Milvus 2.2/2.3 route each
delete to every segment that may hold its key). Counting from the backup's own objects
gives the rows at the backup's flush exactly, whatever was written to Milvus afterwards,
without loading the collection: Milvus 2.3 ignores a query's travel or guarantee timestamp
for ``count(*)`` and counts only loaded collections.

A segment that no delete reaches holds ``num_of_rows`` live rows; only segments with deletes
are read (their primary key and timestamp columns and the delta logs). A storage v2 segment
(Milvus 2.6) keeps its columns in Parquet column groups (:mod:`.column_groups`): the group files
are read lowest group ID first (group 0 holds the system fields and the primary key,
``internal/storagecommon/split_policy.go``) until both columns are found.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from . import binlog, column_groups
from .capabilities import KNOWN_STORAGE_VERSIONS, STORAGE_V1
from .errors import DamagedBackupError, MalformedMetaError, UnsupportedError
from .layout import BackupLayout
from .meta import CollectionBackupInfo, FieldBinlog, SegmentBackupInfo
from .milvus import ALL_PARTITIONS
from .storage import ObjectStore

TIMESTAMP_FIELD = 1  # Milvus's system field of each row's write timestamp (common.TimeStampField)


def live_rows(
    store: ObjectStore, layout: BackupLayout, info: CollectionBackupInfo, workers: int = 8
) -> dict[int, int]:
    """Live rows of each partition of a backed-up collection (partition ID -> rows).

    L0 segments (Milvus >= 2.4) hold no rows; their deletes apply to every segment of their
    partition, or of the whole collection. Raise :class:`UnsupportedError` for a segment
    that must be read but is in a storage version, or a column layout, not read here.
    """
    pk_field = _primary_key_field(info)
    counts = {partition.partition_id: 0 for partition in info.partition_backups}
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="rows") as pool:
        l0 = {s.segment_id: s for s in info.all_segments() if s.is_l0}
        read = pool.map(lambda s: _deletes(store, layout, s), l0.values())
        l0_deletes = dict(zip(l0, read, strict=True))
        segments = [s for s in info.segments() if not s.is_l0]

        def alive(segment: SegmentBackupInfo) -> int:
            scope = [
                l0_deletes[i]
                for i, s in l0.items()
                if s.partition_id in (segment.partition_id, ALL_PARTITIONS)
            ]
            return _segment_live_rows(store, layout, segment, pk_field, scope)

        for segment, rows in zip(segments, pool.map(alive, segments), strict=True):
            counts[segment.partition_id] = counts.get(segment.partition_id, 0) + rows
    return counts


def _primary_key_field(info: CollectionBackupInfo) -> int:
    fields = info.schema.fields if info.schema else []
    keys = [f.field_id for f in fields if f.is_primary_key]
    if len(keys) != 1:
        raise MalformedMetaError(
            f"collection {info.qualified_name} of the backup has {len(keys)} primary key "
            "fields in its schema (one expected): its meta is damaged"
        )
    return keys[0]


def _segment_live_rows(
    store: ObjectStore,
    layout: BackupLayout,
    segment: SegmentBackupInfo,
    pk_field: int,
    l0_deletes: list[dict[int | str, int]],
) -> int:
    latest = _deletes(store, layout, segment)
    for deletes in l0_deletes:
        for pk, ts in deletes.items():
            latest[pk] = max(ts, latest.get(pk, ts))
    if not latest:
        return segment.num_of_rows
    _require_readable(segment)
    keys, stamps = _keys_and_stamps(store, layout, segment, pk_field)
    if not len(keys) == len(stamps) == segment.num_of_rows:
        raise DamagedBackupError(
            f"segment {segment.segment_id} holds {len(keys)} primary keys and {len(stamps)} "
            f"timestamps where its meta records {segment.num_of_rows} rows: the backup is "
            "damaged"
        )
    alive = [latest.get(pk, -1) <= ts for pk, ts in zip(keys, stamps, strict=True)]
    return alive.count(True)


def _keys_and_stamps(
    store: ObjectStore, layout: BackupLayout, segment: SegmentBackupInfo, pk_field: int
) -> tuple[list[int | str], list[int]]:
    """Each row's primary key and timestamp: from per-field insert logs (v1), or from the
    column groups holding them (v2)."""
    if segment.storage_version in STORAGE_V1:
        keys = _column(store, layout, segment, pk_field)
        return keys, [int(ts) for ts in _column(store, layout, segment, TIMESTAMP_FIELD)]
    found = _group_columns(store, layout, segment, (pk_field, TIMESTAMP_FIELD))
    return found[pk_field], [int(ts) for ts in found[TIMESTAMP_FIELD]]


def _deletes(
    store: ObjectStore, layout: BackupLayout, segment: SegmentBackupInfo
) -> dict[int | str, int]:
    """The latest delete timestamp of each primary key a segment's delta logs delete."""
    keys = [layout.delta_key(segment, b) for fb in segment.deltalogs for b in fb.binlogs]
    if keys:
        _require_readable(segment)
    latest: dict[int | str, int] = {}
    for key in keys:
        for pk, ts in binlog.deletes(store.get(key), key):
            latest[pk] = max(ts, latest.get(pk, ts))
    return latest


def _require_readable(segment: SegmentBackupInfo) -> None:
    if segment.storage_version not in KNOWN_STORAGE_VERSIONS:
        raise UnsupportedError(
            f"segment {segment.segment_id} is in storage version {segment.storage_version}, "
            "whose binlogs this version does not read: its live rows are not counted"
        )


def _column(
    store: ObjectStore, layout: BackupLayout, segment: SegmentBackupInfo, field_id: int
) -> list[int | str]:
    logs = [fb for fb in segment.binlogs if fb.field_id == field_id]
    if not logs:
        raise DamagedBackupError(
            f"segment {segment.segment_id} of the backup has no insert log of field "
            f"{field_id}: the backup is damaged"
        )
    values: list[int | str] = []
    for b in logs[0].binlogs:
        key = layout.insert_key(segment, field_id, b)
        values += binlog.insert_values(store.get(key), key)
    return values


def _group_columns(
    store: ObjectStore, layout: BackupLayout, segment: SegmentBackupInfo, fields: tuple[int, ...]
) -> dict[int, list[int | str]]:
    """The values of ``fields`` in a storage v2 segment, each from the column group holding it.

    A segment's ``binlogs`` are its column groups (``FieldBinlog.FieldID`` is the group ID,
    ``binlog_record_writer.go``); their files, by log ID, hold consecutive rows (``rw.go``).
    """
    values: dict[int, list[int | str]] = {}
    held: dict[int, frozenset[int]] = {}
    for group in sorted(segment.binlogs, key=lambda fb: fb.field_id):
        if values.keys() >= set(fields):
            break
        wanted = [f for f in fields if f not in values]
        for f, column in _group(store, layout, segment, group, wanted=wanted, held=held).items():
            values[f] = column
    missing = [f for f in fields if f not in values]
    if missing:
        groups = ", ".join(f"{g}: {sorted(ids)}" for g, ids in held.items()) or "none"
        raise UnsupportedError(
            f"segment {segment.segment_id} (storage v2) has no column group holding field "
            f"{', '.join(map(str, missing))} (field IDs by group: {groups}): a column layout "
            "this version does not read; its live rows are not counted"
        )
    return values


def _group(
    store: ObjectStore,
    layout: BackupLayout,
    segment: SegmentBackupInfo,
    group: FieldBinlog,
    *,
    wanted: list[int],
    held: dict[int, frozenset[int]],
) -> dict[int, list[int | str]]:
    """The ``wanted`` columns one group holds, over all its files: each file must hold the
    same of them (other fields may differ: a field added to the collection midway)."""
    values: dict[int, list[int | str]] = {}
    for n, b in enumerate(group.binlogs):
        key = layout.insert_key(segment, group.field_id, b)
        found = column_groups.read_group(store.get(key), key, wanted)
        held.setdefault(group.field_id, found.field_ids)
        if n and found.values.keys() != values.keys():
            raise UnsupportedError(
                f"{key} holds fields {sorted(found.values)} of {wanted} where the first file of "
                f"column group {group.field_id} of segment {segment.segment_id} holds "
                f"{sorted(values)}: a column layout this version does not read"
            )
        if not found.values:
            return {}
        for f, column in found.values.items():
            values.setdefault(f, []).extend(column)
    return values
