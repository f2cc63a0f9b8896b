"""Read storage v2 files (Milvus 2.6): Parquet column groups, and Parquet delta logs.

Learned from milvus-io/milvus (read, not run: no Milvus 2.6 runs here):

- ``internal/storage/binlog_record_writer.go`` (``PackedBinlogRecordWriter``) and
  ``internal/flushcommon/syncmgr/pack_writer_v2.go`` (``writeInsertsIntoStorage``): a segment's
  fields are split into column groups, each written by the packed writer as one plain Parquet
  file (no binlog magic, no events) at ``insert_log/<coll>/<part>/<seg>/<groupID>/<logID>``
  (``metautil.BuildInsertLogPath``); the segment's ``FieldBinlog.FieldID`` is the group ID.
- ``internal/storagecommon/split_policy.go`` (``DefaultPolicies`` in
  ``column_group_splitter.go``): the first group, ID 0, holds the system fields (RowID 0,
  Timestamp 1) and the primary key; each vector or text field gets a group of its own,
  named by its field ID; the other fields share one more group.
- ``internal/storage`` ``ConvertToArrowSchema``/``ConvertToArrowField``: each column is named
  after its field and carries the field ID in the Arrow field metadata ``PARQUET:field_id``
  (``internal/storagev2/packed/constant.go``, ``ArrowFieldIdMetadataKey``), which Parquet
  keeps as the column's field ID. Timestamps are Int64.
- ``internal/storage/rw.go``: a reader zips the i-th file of every group (by log ID), so a
  group's files hold the segment's rows in order; ``NewDeltalogWriter`` for storage v2 writes a
  plain Parquet delta log of two columns, field ID 0 the primary key and 1 the timestamp
  (milvus-backup's ``internal/l0compact/parquet.go`` reads it the same way).

Columns are found by field ID only, never by position or name: a column without a field ID
of its own is refused by name rather than guessed at.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import DamagedBackupError, UnsupportedError

PARQUET_MAGIC = b"PAR1"
FIELD_ID_KEY = b"PARQUET:field_id"
#: the field IDs of a storage v2 delta log's columns (``rw.go`` ``NewDeltalogWriter``)
DELTA_PK, DELTA_TS = 0, 1


@dataclass(frozen=True)
class GroupFile:
    """What one column group file holds: every field ID, and the values of those asked for."""

    field_ids: frozenset[int]
    values: dict[int, list[Any]]


def read_group(data: bytes, where: str, wanted: Iterable[int]) -> GroupFile:
    """The values of the ``wanted`` fields that one column group file holds, in row order."""
    parquet = _open(data, where)
    columns = field_columns(parquet.schema_arrow, where)
    found = [f for f in wanted if f in columns]
    table = _read(parquet, [columns[f] for f in found], where)
    values = {f: _values(table[i], where, f) for i, f in enumerate(found)}
    return GroupFile(frozenset(columns), values)


def deletes(data: bytes, where: str) -> list[tuple[int | str, int]]:
    """Every ``(primary key, timestamp)`` of a storage v2 (plain Parquet) delta log."""
    parquet = _open(data, where)
    columns = field_columns(parquet.schema_arrow, where)
    if set(columns) != {DELTA_PK, DELTA_TS}:
        raise UnsupportedError(
            f"{where} is a Parquet delta log with columns of field IDs {sorted(columns)} "
            f"(expected {DELTA_PK} the primary key, {DELTA_TS} the timestamp): a delta log "
            "layout this version does not read"
        )
    pk, ts = _read(parquet, [columns[DELTA_PK], columns[DELTA_TS]], where)
    keys, stamps = _values(pk, where, DELTA_PK), _values(ts, where, DELTA_TS)
    return [(_key(k, where), int(t)) for k, t in zip(keys, stamps, strict=True)]


def field_columns(schema: pa.Schema, where: str) -> dict[int, int]:
    """Field ID -> column index; a column without a field ID of its own is refused by name."""
    found: dict[int, int] = {}
    for index, field in enumerate(schema):
        raw = (field.metadata or {}).get(FIELD_ID_KEY, b"")
        if not raw.isdigit() or int(raw) in found:
            raise UnsupportedError(
                f"{where} has a column {field.name!r} without a field ID of its own "
                f"(PARQUET:field_id {raw.decode(errors='replace')!r}): a column layout this "
                "version does not read"
            )
        found[int(raw)] = index
    return found


def _open(data: bytes, where: str) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(io.BytesIO(data))
    except (pa.ArrowException, OSError) as exc:
        raise DamagedBackupError(f"{where} is not a readable Parquet file: {exc}") from None


def _read(parquet: pq.ParquetFile, indices: list[int], where: str) -> list[pa.ChunkedArray]:
    """The columns at ``indices``; by name when the names are unique (only those are read)."""
    if not indices:
        return []
    names = parquet.schema_arrow.names
    try:
        if len(set(names)) == len(names):
            table = parquet.read(columns=[names[i] for i in indices])
            return [table.column(names[i]) for i in indices]
        table = parquet.read()
        return [table.column(i) for i in indices]
    except (pa.ArrowException, OSError) as exc:
        raise DamagedBackupError(f"{where} has columns that cannot be read: {exc}") from None


def _values(column: pa.ChunkedArray, where: str, field_id: int) -> list[Any]:
    if column.null_count:
        raise DamagedBackupError(
            f"{where} has {column.null_count} empty values in the column of field {field_id}"
        )
    return list(column.to_pylist())


def _key(value: Any, where: str) -> int | str:
    if isinstance(value, int | str) and not isinstance(value, bool):
        return value
    raise DamagedBackupError(f"{where} holds a primary key this version does not read: {value!r}")
