"""Live rows of storage v2 segments (Milvus 2.6): Parquet column groups and their deletes.

The files are written as milvus-io/milvus writes them (``tests/standin/binlogs.py``, after
``internal/storage/binlog_record_writer.go``, ``internal/storagecommon/split_policy.go``,
``internal/storage/rw.go`` and ``serde_delta.go``); the expected counts are computed here from
the rows and deletes written, by Milvus's rule: a delete removes the rows of its key written
before it (an upsert's delete and new row share a timestamp: the new row stays).
"""

from __future__ import annotations

from typing import Any, cast

import pyarrow as pa
import pytest

from milvus_backup_operator.engine.errors import DamagedBackupError, UnsupportedError
from milvus_backup_operator.engine.layout import BackupLayout
from milvus_backup_operator.engine.live_rows import live_rows
from milvus_backup_operator.engine.meta import (
    Binlog,
    CollectionBackupInfo,
    CollectionSchema,
    FieldBinlog,
    FieldSchema,
    PartitionBackupInfo,
    SegmentBackupInfo,
)
from milvus_backup_operator.engine.storage import ObjectStore
from tests.standin.binlogs import (
    column_group,
    delta_log,
    multi_field_delta_log,
    v2_delta_log,
    v2_field,
    v2_insert_groups,
)

LAYOUT = BackupLayout("backup", "b")
COLL, PART, PK, VEC = 1, 2, 100, 101


class Store:
    """The one call live_rows makes of an object store."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

        self.fetched: list[str] = []

    def get(self, key: str) -> bytes:
        self.fetched.append(key)
        return self.objects[key]


def segment(segment_id: int, rows: int, **kw: Any) -> SegmentBackupInfo:
    return SegmentBackupInfo(
        segment_id=segment_id, collection_id=COLL, partition_id=PART, num_of_rows=rows,
        group_id=segment_id, storage_version=2, **kw,
    )  # fmt: skip


def with_groups(store: Store, seg: SegmentBackupInfo, groups: dict[int, list[bytes]]) -> None:
    """Record a segment's column groups (group ID -> its files by log ID) and store them."""
    for group, files in sorted(groups.items()):
        logs = [Binlog(log_id=seg.segment_id * 100 + group * 10 + n) for n in range(len(files))]
        seg.binlogs.append(FieldBinlog(field_id=group, binlogs=logs))
        for b, data in zip(logs, files, strict=True):
            store.objects[LAYOUT.insert_key(seg, group, b)] = data


def with_deltas(store: Store, seg: SegmentBackupInfo, logs: list[bytes]) -> None:
    binlogs = [Binlog(log_id=seg.segment_id * 100 + 90 + n) for n in range(len(logs))]
    seg.deltalogs.append(FieldBinlog(binlogs=binlogs))
    for b, data in zip(binlogs, logs, strict=True):
        store.objects[LAYOUT.delta_key(seg, b)] = data


def collection(*segments: SegmentBackupInfo) -> CollectionBackupInfo:
    fields = [FieldSchema(field_id=PK, name="id", is_primary_key=True, data_type=5),
              FieldSchema(field_id=VEC, name="v", data_type=101)]  # fmt: skip
    data = [s for s in segments if not s.is_l0]
    return CollectionBackupInfo(
        collection_id=COLL, collection_name="c", schema=CollectionSchema(fields=fields),
        partition_backups=[PartitionBackupInfo(partition_id=PART, segment_backups=data)],
        l0_segments=[s for s in segments if s.is_l0],
    )  # fmt: skip


def count(store: Store, info: CollectionBackupInfo) -> int:
    return sum(live_rows(cast(ObjectStore, store), LAYOUT, info, workers=2).values())


def expected(rows: list[tuple[int, int]], deletes: list[tuple[int, int]]) -> int:
    latest: dict[int, int] = {}
    for pk, ts in deletes:
        latest[pk] = max(ts, latest.get(pk, ts))
    return sum(1 for pk, ts in rows if latest.get(pk, -1) <= ts)


def groups_of(rows: list[tuple[int, int]]) -> dict[int, list[bytes]]:
    files = v2_insert_groups((PK, "id"), [p for p, _ in rows], [t for _, t in rows], (VEC, "v"))
    return {group: [data] for group, data in files.items()}


ROWS = [(1, 100), (2, 100), (3, 100), (4, 100), (5, 100), (3, 150)]  # pk 3 upserted at 150
DELETES = [(2, 200), (3, 150), (4, 50), (9, 300)]  # 3's delete is the upsert's; 4's is older


@pytest.mark.parametrize("log", [delta_log, multi_field_delta_log, v2_delta_log])
def test_a_v2_segment_with_deletes_of_every_delta_format(log: Any) -> None:
    store, seg = Store(), segment(10, len(ROWS))
    with_groups(store, seg, groups_of(ROWS))
    with_deltas(store, seg, [log(DELETES)])
    assert count(store, collection(seg)) == expected(ROWS, DELETES) == 4
    assert not [k for k in store.fetched if f"/{VEC}/" in k]  # group 0 held both columns


def test_l0_deletes_reach_v2_segments_of_their_partition_and_of_the_collection() -> None:
    store, seg = Store(), segment(10, len(ROWS))
    with_groups(store, seg, groups_of(ROWS))
    in_partition, whole = segment(20, 0, is_l0=True), segment(30, 0, is_l0=True)
    whole.partition_id, whole.group_id = -1, 0
    with_deltas(store, in_partition, [v2_delta_log(DELETES[:2])])
    with_deltas(store, whole, [delta_log([*DELETES[2:], (5, 101)])])
    info = collection(seg, in_partition, whole)
    assert count(store, info) == expected(ROWS, [*DELETES, (5, 101)]) == 3


def test_a_column_group_of_several_files_is_read_in_log_order() -> None:
    first, second = ROWS[:4], ROWS[4:]
    groups = {g: groups_of(first)[g] + groups_of(second)[g] for g in groups_of(first)}
    store, seg = Store(), segment(10, len(ROWS))
    with_groups(store, seg, groups)
    with_deltas(store, seg, [delta_log(DELETES)])
    assert count(store, collection(seg)) == expected(ROWS, DELETES)


def test_primary_key_and_timestamp_in_other_groups_are_found_by_field_id() -> None:
    """An older split (``SplitBySchema``: every short field in group 0) or another policy."""
    pks, stamps = [p for p, _ in ROWS], [t for _, t in ROWS]
    ts_group = column_group([(v2_field(1, "Timestamp", pa.int64()), stamps)])
    pk_group = column_group([(v2_field(PK, "id", pa.int64()), pks),
                             (v2_field(0, "RowID", pa.int64()), pks)])  # fmt: skip
    store, seg = Store(), segment(10, len(ROWS))
    with_groups(store, seg, {0: [ts_group], 1: [pk_group]})
    with_deltas(store, seg, [delta_log(DELETES)])
    assert count(store, collection(seg)) == expected(ROWS, DELETES)


def test_varchar_primary_keys() -> None:
    rows = [(f"k{pk}", ts) for pk, ts in ROWS]
    deletes = [(f"k{pk}", ts) for pk, ts in DELETES]
    group = column_group([
        (v2_field(0, "RowID", pa.int64()), list(range(len(rows)))),
        (v2_field(1, "Timestamp", pa.int64()), [ts for _, ts in rows]),
        (v2_field(PK, "id", pa.string()), [pk for pk, _ in rows]),
    ])  # fmt: skip
    store, seg = Store(), segment(10, len(rows))
    with_groups(store, seg, {0: [group]})
    with_deltas(store, seg, [multi_field_delta_log(list(deletes))])
    latest = dict(deletes)
    assert count(store, collection(seg)) == sum(1 for k, ts in rows if latest.get(k, -1) <= ts)


def test_a_v2_segment_no_delete_reaches_is_not_read() -> None:
    store, seg = Store(), segment(10, 7)
    seg.binlogs.append(FieldBinlog(field_id=0, binlogs=[Binlog(log_id=1)]))  # never fetched
    assert count(store, collection(seg)) == 7


def test_a_column_group_of_the_wrong_row_count_is_damage_named_by_segment() -> None:
    store, seg = Store(), segment(10, len(ROWS) + 1)
    with_groups(store, seg, groups_of(ROWS))
    with_deltas(store, seg, [delta_log(DELETES)])
    with pytest.raises(DamagedBackupError, match=r"segment 10 holds 6 primary keys .* 7 rows"):
        count(store, collection(seg))


def test_a_column_group_that_is_not_parquet_is_damage_named_by_key() -> None:
    store, seg = Store(), segment(10, len(ROWS))
    with_groups(store, seg, {0: [b"PAR1 cut short"]})
    with_deltas(store, seg, [delta_log(DELETES)])
    with pytest.raises(DamagedBackupError, match=r"insert_log/1/2/10/10/0/1000 is not a read"):
        count(store, collection(seg))


def test_columns_without_field_ids_are_refused_by_name() -> None:
    named = column_group([(pa.field("id", pa.int64()), [1]), (pa.field("ts", pa.int64()), [1])])
    store, seg = Store(), segment(10, 1)
    with_groups(store, seg, {0: [named]})
    with_deltas(store, seg, [delta_log(DELETES)])
    with pytest.raises(UnsupportedError, match=r"/0/1000 has a column 'id' without a field ID"):
        count(store, collection(seg))


def test_no_group_holding_the_primary_key_is_refused_by_name() -> None:
    stamps = column_group([(v2_field(1, "Timestamp", pa.int64()), [100])])
    store, seg = Store(), segment(10, 1)
    with_groups(store, seg, {0: [stamps], VEC: [stamps]})
    with_deltas(store, seg, [delta_log(DELETES)])
    with pytest.raises(
        UnsupportedError, match=r"segment 10 \(storage v2\) has no column group holding field 100"
    ):
        count(store, collection(seg))


def test_files_of_one_group_holding_other_fields_are_refused_by_name() -> None:
    store, seg = Store(), segment(10, len(ROWS))
    one = groups_of(ROWS)
    with_groups(store, seg, {0: one[0] + one[VEC]})
    with_deltas(store, seg, [delta_log(DELETES)])
    says = r"holds fields \[\] of \[100, 1\] where the first file of column group 0"
    with pytest.raises(UnsupportedError, match=says):
        count(store, collection(seg))


def test_a_field_added_midway_leaves_the_count_alone() -> None:
    """A later file of group 0 with one more column (``AddCollectionField``, Milvus 2.6)."""
    first, second = ROWS[:4], ROWS[4:]
    columns = [
        (v2_field(0, "RowID", pa.int64()), [0] * len(second)),
        (v2_field(1, "Timestamp", pa.int64()), [ts for _, ts in second]),
        (v2_field(PK, "id", pa.int64()), [pk for pk, _ in second]),
        (v2_field(102, "added", pa.int64()), [7] * len(second)),
    ]
    store, seg = Store(), segment(10, len(ROWS))
    with_groups(store, seg, {0: [*groups_of(first)[0], column_group(columns)]})
    with_deltas(store, seg, [delta_log(DELETES)])
    assert count(store, collection(seg)) == expected(ROWS, DELETES)


def test_a_parquet_delta_log_of_other_fields_is_refused_by_name() -> None:
    odd = column_group([(v2_field(5, "", pa.int64()), [1]), (v2_field(1, "", pa.int64()), [2])])
    store, seg = Store(), segment(10, len(ROWS))
    with_groups(store, seg, groups_of(ROWS))
    with_deltas(store, seg, [odd])
    with pytest.raises(UnsupportedError, match=r"columns of field IDs \[1, 5\]"):
        count(store, collection(seg))


def test_an_unknown_storage_version_keeps_its_message() -> None:
    store, seg = Store(), segment(10, len(ROWS))
    seg.storage_version = 3
    with_deltas(store, seg, [delta_log(DELETES)])
    with pytest.raises(UnsupportedError, match="storage version 3, whose binlogs this version"):
        count(store, collection(seg))
