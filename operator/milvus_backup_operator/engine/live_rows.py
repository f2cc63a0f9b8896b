"""How many rows a backup holds alive: its segments' rows, less those its delete logs remove.

Milvus deletes a row when a delete of its primary key carries a later timestamp than the
row (an upsert writes the delete and the new row at one timestamp: the new row stays). A
backup's deletes of a segment live in that segment's delta logs (Milvus 2.2/2.3 route each
delete to every segment that may hold its key). Counting from the backup's own objects
gives the rows at the backup's flush exactly, whatever was written to Milvus afterwards,
without loading the collection: Milvus 2.3 ignores a query's travel or guarantee timestamp
for ``count(*)`` and counts only loaded collections.

A segment that no delete reaches holds ``num_of_rows`` live rows; only segments with deletes
are read (their primary key and timestamp columns and the delta logs).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from . import binlog
from .capabilities import STORAGE_V1
from .errors import DamagedBackupError, MalformedMetaError, UnsupportedError
from .layout import BackupLayout
from .meta import CollectionBackupInfo, SegmentBackupInfo
from .milvus import ALL_PARTITIONS
from .storage import ObjectStore

TIMESTAMP_FIELD = 1  # Milvus's system field of each row's write timestamp (common.TimeStampField)


def live_rows(
    store: ObjectStore, layout: BackupLayout, info: CollectionBackupInfo, workers: int = 8
) -> dict[int, int]:
    """Live rows of each partition of a backed-up collection (partition ID -> rows).

    L0 segments (Milvus >= 2.4) hold no rows; their deletes apply to every segment of their
    partition, or of the whole collection. Raise :class:`UnsupportedError` for a segment
    that must be read but is in storage v2 (Parquet column groups, not read here).
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
    keys = _column(store, layout, segment, pk_field)
    stamps = [int(ts) for ts in _column(store, layout, segment, TIMESTAMP_FIELD)]
    if not len(keys) == len(stamps) == segment.num_of_rows:
        raise DamagedBackupError(
            f"segment {segment.segment_id} holds {len(keys)} primary keys and {len(stamps)} "
            f"timestamps where its meta records {segment.num_of_rows} rows: the backup is "
            "damaged"
        )
    alive = [latest.get(pk, -1) <= ts for pk, ts in zip(keys, stamps, strict=True)]
    return alive.count(True)


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
    if segment.storage_version not in STORAGE_V1:
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
