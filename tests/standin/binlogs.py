"""Binlog files as Milvus writes them (``internal/storage``), for the stand-in's segments
and the reader's tests.

``binlog_writer.go`` ``Finish``: the int32 magic number, the descriptor event, then the data
events. Every event opens with a 17-byte header (timestamp uint64, type code int8, event
length int32, next position int32: the offset of the next event from the file's start,
``event_writer.go``). The descriptor's data (``event_data.go``): its fixed part (collection,
partition, segment and field IDs, start and end timestamps, the payload's data type), one
post-header length per event type (52 for the descriptor, 16 for each data event), then
its extras as an int32 length and JSON: ``original_size`` always, as a string
(``FinishExtra`` refuses a file without it), ``nullable`` for a nullable field, and
``version: MULTI_FIELD`` on a delta log of pk and ts columns (``serde_delta.go``,
``MultiFieldDeltalogStreamWriter``). A data event follows its header with its start and end
timestamps and a Parquet payload.
"""

from __future__ import annotations

import io
import json
import struct
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from milvus_backup_operator.engine import binlog

HEADER = struct.Struct("<QbiI")  # timestamp, type code, event length, next position
DESCRIPTOR_FIX = struct.Struct("<qqqqQQi")
POST_HEADER_LENGTHS = bytes([DESCRIPTOR_FIX.size] + [16] * 7)  # EventTypeEnd = 8 types
INT64, STRING = 5, 20  # schemapb.DataType of a payload: insert values, JSON delete records
MULTI_FIELD = {"version": "MULTI_FIELD"}


def event(code: int, body: bytes, position: int = 0) -> bytes:
    """An event of ``body`` starting ``position`` bytes into its file."""
    length = HEADER.size + len(body)
    return HEADER.pack(0, code, length, position + length) + body


def descriptor(payload_type: int, extras: dict[str, Any], ids: tuple[int, ...] = ()) -> bytes:
    """The descriptor event (after the magic number) of a file of ``ids`` (collection,
    partition, segment, field: -1 where unknown, as ``newDescriptorEventData``)."""
    collection, partition, segment, field_id = (*ids, -1, -1, -1, -1)[:4]
    fix = DESCRIPTOR_FIX.pack(collection, partition, segment, field_id, 1, 1, payload_type)
    raw = json.dumps(extras, separators=(",", ":")).encode()
    return event(
        binlog.DESCRIPTOR_EVENT, fix + POST_HEADER_LENGTHS + struct.pack("<i", len(raw)) + raw, 4
    )


def payload(table: pa.Table) -> bytes:
    return struct.pack("<QQ", 1, 2) + parquet(table)


def parquet(table: pa.Table) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def binlog_file(code: int, payload_type: int, tables: list[pa.Table],
                extras: dict[str, Any] | None = None) -> bytes:  # fmt: skip
    """Magic, the descriptor (``original_size`` and ``extras``), one event per table."""
    bodies = [payload(t) for t in tables]
    size = {"original_size": str(sum(t.nbytes for t in tables))}
    out = struct.pack("<i", binlog.MAGIC) + descriptor(payload_type, {**size, **(extras or {})})
    for body in bodies:
        out += event(code, body, len(out))
    return out


def make_binlog(code: int, *columns: list[object]) -> bytes:
    """One data event of type ``code`` per column of values."""
    kind = STRING if columns and columns[0] and isinstance(columns[0][0], str) else INT64
    return binlog_file(code, kind, [pa.table({"val": values}) for values in columns])


def insert_log(values: list[object]) -> bytes:
    return make_binlog(binlog.INSERT_EVENT, values)


def delta_log(deletes: list[tuple[int, int]]) -> bytes:
    """``{"pk":..,"ts":..,"pkType":5}`` records, as Milvus >= 2.2 writes them."""
    records = [json.dumps({"pk": pk, "ts": ts, "pkType": 5}) for pk, ts in deletes]
    return make_binlog(binlog.DELETE_EVENT, records)


def multi_field_delta_log(deletes: list[tuple[int | str, int]], marked: bool = True) -> bytes:
    """A delta log in the ``parquet`` format of ``dataNode.storage.deltalog``: one delete event
    whose payload has an Int64/String ``pk`` and an Int64 ``ts`` column, its descriptor marked
    ``version: MULTI_FIELD`` (milvus-io/milvus ``internal/storage/serde_delta.go``,
    ``MultiFieldDeltalogStreamWriter.writeDeltalogHeaders``); unmarked, as Milvus never
    writes it."""
    table = pa.table({"pk": [pk for pk, _ in deletes], "ts": [ts for _, ts in deletes]})
    return binlog_file(binlog.DELETE_EVENT, INT64, [table], MULTI_FIELD if marked else None)


# Storage v2 (Milvus 2.6), as milvus-io/milvus writes it: each column group is one plain
# Parquet file (``internal/storage/binlog_record_writer.go``, ``syncmgr/pack_writer_v2.go``),
# its columns named after their fields with the field ID in ``PARQUET:field_id``
# (``ConvertToArrowField``; ``internal/storagev2/packed/constant.go``); the default split
# (``internal/storagecommon/split_policy.go``) puts RowID, Timestamp and the primary key in
# group 0 and each vector field alone in a group named by its field ID.

ROW_ID, TIMESTAMP = 0, 1  # common.RowIDField, common.TimeStampField


def v2_field(field_id: int, name: str, kind: pa.DataType) -> pa.Field:
    return pa.field(name, kind, nullable=False, metadata={"PARQUET:field_id": str(field_id)})


def column_group(columns: list[tuple[pa.Field, list[object]]]) -> bytes:
    """One column group file: plain Parquet, no binlog magic or events."""
    schema = pa.schema([f for f, _ in columns])
    return parquet(pa.table([pa.array(v, f.type) for f, v in columns], schema=schema))


def v2_insert_groups(
    pk: tuple[int, str], pks: list[int], stamps: list[int], vector: tuple[int, str], dim: int = 2
) -> dict[int, bytes]:
    """Group ID -> file of a segment's rows: group 0 the system fields and the Int64 primary
    key, group ``vector`` ID a FloatVector (FixedSizeBinary of ``dim`` float32s, as
    ``serdeMap`` types it)."""
    system = [
        (v2_field(ROW_ID, "RowID", pa.int64()), list(range(len(pks)))),
        (v2_field(TIMESTAMP, "Timestamp", pa.int64()), stamps),
        (v2_field(pk[0], pk[1], pa.int64()), pks),
    ]
    width = pa.binary(4 * dim)
    vectors = [struct.pack(f"<{dim}f", *([float(k)] * dim)) for k in pks]
    return {0: column_group(system), vector[0]: column_group([(v2_field(*vector, width), vectors)])}


def v2_delta_log(deletes: list[tuple[int, int]]) -> bytes:
    """A plain Parquet delta log of storage v2: field ID 0 the primary key, 1 the timestamp,
    unnamed (milvus-io/milvus ``internal/storage/rw.go``, ``NewDeltalogWriter``)."""
    keys = (v2_field(0, "", pa.int64()), [pk for pk, _ in deletes])
    return column_group([keys, (v2_field(1, "", pa.int64()), [ts for _, ts in deletes])])


# ---- reading them as Milvus does (for the stand-in's imports) ------------------------------


def read_binlog(data: bytes) -> tuple[dict[str, Any], list[tuple[int, pa.Table]]]:
    """The descriptor's extras and each data event's (type, table), as ``binlog_reader.go``
    reads a file: the magic number, the descriptor event first, then events to the end;
    a file Milvus could not read raises ``ValueError`` with the reason."""
    if len(data) < 4 or struct.unpack_from("<i", data)[0] != binlog.MAGIC:
        raise ValueError("parse magic number failed")
    offset, extras, events = 4, None, []
    while offset < len(data):
        _, code, length, _ = HEADER.unpack_from(data, offset)
        body = data[offset + HEADER.size : offset + length]
        if length < HEADER.size or offset + length > len(data):
            raise ValueError(f"event at byte {offset} is cut short")
        if extras is None:
            extras = _extras(code, body)
        else:
            events.append((code, pq.read_table(io.BytesIO(body[16:]))))
        offset += length
    if extras is None:
        raise ValueError("no descriptor event")
    return extras, events


def _extras(code: int, body: bytes) -> dict[str, Any]:
    if code != binlog.DESCRIPTOR_EVENT:
        raise ValueError(f"the first event is of type {code}, not a descriptor")
    start = DESCRIPTOR_FIX.size + len(POST_HEADER_LENGTHS)
    (size,) = struct.unpack_from("<i", body, start)
    extras = json.loads(body[start + 4 : start + 4 + size])
    if not isinstance(extras, dict):
        raise ValueError("descriptor extras are not a JSON object")
    return extras


def read_values(data: bytes, code: int) -> list[Any]:
    """Every value of a one-column binlog's events of type ``code`` (``readData``)."""
    values: list[Any] = []
    for kind, table in read_binlog(data)[1]:
        if kind != code:
            raise ValueError(f"wrong binlog type, expect:{code}, actual:{kind}")
        values += table.column(0).to_pylist()
    return values


def read_deletes(data: bytes) -> list[tuple[Any, int]]:
    """(pk, ts) of a delta log, as ``importutilv2/binlog/reader.go`` ``readDelete`` reads it:
    as a binlog (``serde_delta.go``: two columns by position where the descriptor says
    ``MULTI_FIELD``, else one column of ``DeleteLog`` records), and failing that as a plain
    Parquet file of storage v2 (``rw.go`` ``NewDeltalogReader``)."""
    try:
        extras, events = read_binlog(data)
    except (ValueError, pa.ArrowException, struct.error) as v1_error:
        try:
            table = pq.ParquetFile(io.BytesIO(data)).read()
        except pa.ArrowException:
            raise ValueError(str(v1_error)) from None
        return list(zip(table.column(0).to_pylist(), table.column(1).to_pylist(), strict=True))
    if extras.get("version") == "MULTI_FIELD":
        return [(pk, ts) for _, t in events for pk, ts in zip(*_two(t), strict=True)]
    return [_record(value) for _, t in events for value in t.column(0).to_pylist()]


def _two(table: pa.Table) -> tuple[list[Any], list[int]]:
    if table.num_columns < 2:
        raise ValueError(f"a multi-field delete payload of {table.num_columns} columns")
    return table.column(0).to_pylist(), table.column(1).to_pylist()


def _record(value: Any) -> tuple[Any, int]:
    """``storage.DeleteLog.Parse``: JSON ``{"pk", "ts", "pkType"}``, or ``pk,ts``."""
    if not isinstance(value, str):
        raise ValueError(f"a delete record of {type(value).__name__}, not a string")
    if value.startswith("{"):
        record = json.loads(value)
        return record["pk"], int(record["ts"])
    pk, ts = value.split(",")
    return int(pk), int(ts)
