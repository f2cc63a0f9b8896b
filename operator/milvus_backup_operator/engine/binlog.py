"""Read Milvus's binlog files: the values of an insert log, the deletes of a delta log.

The layout follows Milvus's ``internal/storage`` (``binlog_writer.go``, ``event_writer.go``,
``event_header.go``, ``event_data.go``): a little-endian int32 magic number ``0xfffabc``, a
descriptor event, then data events. Every event starts with a 17-byte header (timestamp
uint64, type code int8, event length int32, next position int32). The descriptor's data is
its fixed part (collection, partition, segment and field IDs, start and end timestamps, the
payload's data type), one post-header length per event type, then its extras: an int32
length and a JSON object (``original_size``, ``nullable``, and ``version: MULTI_FIELD`` on a
delta log of two columns). A data event follows its header with its start and end
timestamps (two uint64) and a Parquet payload up to the event's end.

A delta log's payload is read as Milvus reads it (``serde_delta.go``,
``supportMultiFieldFormat``): where the descriptor's extras say ``version: MULTI_FIELD``
(``dataNode.storage.deltalog: parquet``, ``MultiFieldDeltalogStreamWriter``), its first
column is the primary key and its second the timestamp; otherwise it is one string column,
each value ``{"pk":..,"ts":..,"pkType":..}`` (Milvus >= 2.2) or ``pk,ts`` (older:
``storage.DeleteLog.Parse`` in ``data_codec.go``). A storage v2 delta log may also be a
plain Parquet file (:mod:`.column_groups`).

Only what counting a backup's live rows needs is read: the primary key and timestamp
columns and the delta logs. Anything else in the file is refused by name.
"""

from __future__ import annotations

import io
import json
import struct
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from . import column_groups
from .errors import DamagedBackupError

MAGIC = 0xFFFABC
_HEADER = struct.Struct("<QbiI")  # timestamp, type code, event length, next position
_TIMESTAMPS = struct.Struct("<QQ")
#: a descriptor's fixed part: collection, partition, segment, field IDs, start and end
#: timestamps, payload data type (``event_data.go``, ``DescriptorEventDataFixPart``)
DESCRIPTOR_FIX = struct.Struct("<qqqqQQi")
#: one post-header length per event type Milvus knows, descriptor to index file
#: (``event_data.go`` ``newDescriptorEventData``: up to ``EventTypeEnd``)
EVENT_TYPES = 8
_EXTRA_LENGTH = struct.Struct("<i")
#: event type codes (``internal/storage/event_header.go``): the two this module reads
INSERT_EVENT, DELETE_EVENT = 1, 2
DESCRIPTOR_EVENT = 0
#: the descriptor extra marking a delta log of pk and ts columns (``event_data.go``)
VERSION, MULTI_FIELD = "version", "MULTI_FIELD"


def insert_values(data: bytes, where: str) -> list[Any]:
    """Every value of an insert log, in row order."""
    _, payloads = _payloads(data, INSERT_EVENT, where)
    return [v for payload in payloads for v in _single(_table(payload, where), where)]


def deletes(data: bytes, where: str) -> list[tuple[int | str, int]]:
    """Every ``(primary key, timestamp)`` a delta log deletes, whichever its format."""
    if data.startswith(column_groups.PARQUET_MAGIC):
        return column_groups.deletes(data, where)
    extras, payloads = _payloads(data, DELETE_EVENT, where)
    multi_field = extras.get(VERSION) == MULTI_FIELD
    found = []
    for payload in payloads:
        table = _table(payload, where)
        if multi_field:
            found += _pairs(table, where)
        elif table.num_columns != 1:
            raise DamagedBackupError(
                f"{where} holds deletes in {table.num_columns} columns "
                f"({', '.join(table.column_names)}) but its descriptor does not mark it "
                f"{VERSION}: {MULTI_FIELD}, so Milvus reads it as one column of delete records "
                "and cannot import it"
            )
        else:
            found += [_delete(value, where) for value in _single(table, where)]
    return found


def _payloads(data: bytes, kind: int, where: str) -> tuple[dict[str, Any], list[bytes]]:
    """The descriptor's extras, then the payload of every event of type ``kind``."""
    if len(data) < 4 or struct.unpack_from("<i", data)[0] != MAGIC:
        raise DamagedBackupError(f"{where} is not a Milvus binlog (no magic number)")
    offset, extras, payloads = 4, None, []
    while offset < len(data):
        if offset + _HEADER.size > len(data):
            raise DamagedBackupError(f"{where} is cut short (an event header at byte {offset})")
        _, code, length, _ = _HEADER.unpack_from(data, offset)
        end = offset + length
        if length < _HEADER.size or end > len(data):
            raise DamagedBackupError(f"{where} is cut short (an event at byte {offset})")
        if extras is None:
            extras = _descriptor_extras(data[offset:end], code, where)
        elif code == kind:
            payloads.append(data[offset + _HEADER.size + _TIMESTAMPS.size : end])
        else:
            raise DamagedBackupError(
                f"{where} holds an event of type {code}, where only type {kind} was expected"
            )
        offset = end
    if extras is None:
        raise DamagedBackupError(f"{where} has no descriptor event: it is cut short")
    return extras, payloads


def _descriptor_extras(event: bytes, code: int, where: str) -> dict[str, Any]:
    """The extras of the descriptor event every binlog opens with (``binlog_reader.go``)."""
    if code != DESCRIPTOR_EVENT:
        raise DamagedBackupError(
            f"{where} opens with an event of type {code}, not the descriptor event Milvus "
            "writes first"
        )
    start = _HEADER.size + DESCRIPTOR_FIX.size + EVENT_TYPES
    if start + _EXTRA_LENGTH.size > len(event):
        raise DamagedBackupError(f"{where} has a descriptor event cut short")
    (size,) = _EXTRA_LENGTH.unpack_from(event, start)
    raw = event[start + _EXTRA_LENGTH.size :]
    try:
        extras = json.loads(raw) if 0 <= size == len(raw) else None
    except (ValueError, RecursionError):
        extras = None
    if not isinstance(extras, dict):
        raise DamagedBackupError(
            f"{where} has descriptor extras that cannot be read ({size} bytes announced, "
            f"{len(raw)} there): not a binlog as Milvus writes it"
        )
    return extras


def _table(payload: bytes, where: str) -> pa.Table:
    try:
        return pq.read_table(io.BytesIO(payload))
    except (pa.ArrowException, OSError) as exc:
        raise DamagedBackupError(f"{where} has a payload that cannot be read: {exc}") from None


def _single(table: pa.Table, where: str) -> list[Any]:
    if table.num_columns != 1:
        raise DamagedBackupError(
            f"{where} has {table.num_columns} columns ({', '.join(table.column_names)}) in "
            "one payload: a binlog layout this version does not read"
        )
    return list(table.column(0).to_pylist())


def _pairs(table: pa.Table, where: str) -> list[tuple[int | str, int]]:
    """The deletes of a multi-field payload, row by row: Milvus takes its first column as
    the primary keys and its second as the timestamps, whatever their names
    (``serde_delta.go``, ``newDeltalogMultiFieldReader``)."""
    if table.num_columns != 2:
        raise DamagedBackupError(
            f"{where} is marked {MULTI_FIELD} but holds {table.num_columns} columns "
            f"({', '.join(table.column_names)}) where Milvus reads two: primary key, timestamp"
        )
    pk, ts = table.column(0), table.column(1)
    key_type = pa.types.is_integer(pk.type) or pa.types.is_string(pk.type)
    if not (key_type and pa.types.is_integer(ts.type)) or pk.null_count or ts.null_count:
        raise DamagedBackupError(
            f"{where} holds deletes of {pk.type} keys and {ts.type} timestamps (with "
            f"{pk.null_count + ts.null_count} empty): a delete layout this version does not read"
        )
    return list(zip(pk.to_pylist(), ts.to_pylist(), strict=True))


def _delete(value: Any, where: str) -> tuple[int | str, int]:
    if isinstance(value, str) and value.startswith("{"):
        try:
            record = json.loads(value)
            pk, ts = record["pk"], int(record["ts"])
        except (ValueError, KeyError, TypeError, RecursionError):
            pk, ts = None, 0
        if isinstance(pk, int | str) and not isinstance(pk, bool):
            return pk, ts
    elif isinstance(value, str) and value.count(",") == 1:
        pk_text, ts_text = value.split(",")
        if pk_text.lstrip("-").isdigit() and ts_text.isdigit():
            return int(pk_text), int(ts_text)
    raise DamagedBackupError(f"{where} holds a delete record this version does not read: {value!r}")
