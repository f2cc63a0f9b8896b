"""Read Milvus's binlog files: the values of an insert log, the deletes of a delta log.

The layout follows Milvus's ``internal/storage`` (``binlog_writer.go``, ``event_writer.go``,
``event_header.go``): a little-endian int32 magic number ``0xfffabc``, a descriptor event,
then data events. Every event starts with a 17-byte header (timestamp uint64, type code
int8, event length int32, next position int32); a data event follows it with its start and
end timestamps (two uint64) and a Parquet payload up to the event's end. A delta log's
payload is one string column, each value ``{"pk":..,"ts":..,"pkType":..}`` (Milvus >= 2.2)
or ``pk,ts`` (older: ``storage.DeleteLog.Parse`` in ``data_codec.go``), or, where Milvus's
``dataNode.storage.deltalog`` is ``parquet`` (``internal/storage/serde_delta.go``,
``MultiFieldDeltalogStreamWriter``: descriptor extra ``version: MULTI_FIELD``), two columns
named ``pk`` and ``ts``. A storage v2 delta log may also be a plain Parquet file
(:mod:`.column_groups`).

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
#: event type codes (``internal/storage/event_header.go``): the two this module reads
INSERT_EVENT, DELETE_EVENT = 1, 2
DESCRIPTOR_EVENT = 0
#: the columns of a delete payload in the ``parquet`` (multi-field) format (``serde_delta.go``)
MULTI_FIELD_COLUMNS = ["pk", "ts"]


def insert_values(data: bytes, where: str) -> list[Any]:
    """Every value of an insert log, in row order."""
    payloads = _payloads(data, INSERT_EVENT, where)
    return [v for payload in payloads for v in _single(_table(payload, where), where)]


def deletes(data: bytes, where: str) -> list[tuple[int | str, int]]:
    """Every ``(primary key, timestamp)`` a delta log deletes, whichever its format."""
    if data.startswith(column_groups.PARQUET_MAGIC):
        return column_groups.deletes(data, where)
    found = []
    for payload in _payloads(data, DELETE_EVENT, where):
        table = _table(payload, where)
        if table.column_names == MULTI_FIELD_COLUMNS:
            found += _pairs(table, where)
        else:
            found += [_delete(value, where) for value in _single(table, where)]
    return found


def _payloads(data: bytes, kind: int, where: str) -> list[bytes]:
    if len(data) < 4 or struct.unpack_from("<i", data)[0] != MAGIC:
        raise DamagedBackupError(f"{where} is not a Milvus binlog (no magic number)")
    offset, payloads = 4, []
    while offset < len(data):
        if offset + _HEADER.size > len(data):
            raise DamagedBackupError(f"{where} is cut short (an event header at byte {offset})")
        _, code, length, _ = _HEADER.unpack_from(data, offset)
        end = offset + length
        if length < _HEADER.size or end > len(data):
            raise DamagedBackupError(f"{where} is cut short (an event at byte {offset})")
        if code == kind:
            payloads.append(data[offset + _HEADER.size + _TIMESTAMPS.size : end])
        elif code != DESCRIPTOR_EVENT:
            raise DamagedBackupError(
                f"{where} holds an event of type {code}, where only type {kind} was expected"
            )
        offset = end
    return payloads


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
    """The deletes of a multi-field payload: its ``pk`` and ``ts`` columns, row by row."""
    pk, ts = table.column("pk"), table.column("ts")
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
        except (ValueError, KeyError, TypeError):
            pk, ts = None, 0
        if isinstance(pk, int | str) and not isinstance(pk, bool):
            return pk, ts
    elif isinstance(value, str) and value.count(",") == 1:
        pk_text, ts_text = value.split(",")
        if pk_text.lstrip("-").isdigit() and ts_text.isdigit():
            return int(pk_text), int(ts_text)
    raise DamagedBackupError(f"{where} holds a delete record this version does not read: {value!r}")
