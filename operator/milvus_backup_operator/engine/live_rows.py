"""How many rows a backup holds alive: its segments' rows, less those its delete logs remove.

Milvus deletes a row when a delete of its primary key carries a later timestamp than the
row (an upsert writes the delete and the new row at one timestamp: the new row stays). A
backup's deletes of a segment live in that segment's delta logs (Milvus 2.2/2.3 route each
delete to every segment that may hold its key). Counting from the backup's own objects
gives the rows at the backup's flush exactly, whatever was written to Milvus afterwards,
without loading the collection: Milvus 2.3 ignores a query's travel or guarantee timestamp
for ``count(*)`` and counts only loaded collections.

A segment without delta logs holds ``num_of_rows`` live rows; only segments with deletes
are read (their primary key and timestamp columns and their delta logs).
"""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

from . import binlog
from .errors import DamagedBackupError, MalformedMetaError
from .layout import BackupLayout
from .meta import CollectionBackupInfo, SegmentBackupInfo
from .storage import ObjectStore

TIMESTAMP_FIELD = 1  # Milvus's system field of each row's write timestamp (common.TimeStampField)


def live_rows(
    store: ObjectStore, layout: BackupLayout, info: CollectionBackupInfo, workers: int = 8
) -> dict[int, int]:
    """Live rows of each partition of a backed-up collection (partition ID -> rows)."""
    pk_field = _primary_key_field(info)
    counts: defaultdict[int, int] = defaultdict(int)
    for partition in info.partition_backups:
        counts[partition.partition_id] += 0
    segments = info.segments()
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="rows") as pool:
        alive = pool.map(lambda s: _segment_live_rows(store, layout, s, pk_field), segments)
        for segment, rows in zip(segments, alive, strict=True):
            counts[segment.partition_id] += rows
    return dict(counts)


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
    store: ObjectStore, layout: BackupLayout, segment: SegmentBackupInfo, pk_field: int
) -> int:
    delta_keys = [layout.delta_key(segment, b) for fb in segment.deltalogs for b in fb.binlogs]
    if not delta_keys:
        return segment.num_of_rows
    latest: dict[int | str, int] = {}
    for key in delta_keys:
        for pk, ts in binlog.deletes(store.get(key), key):
            latest[pk] = max(ts, latest.get(pk, ts))
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
