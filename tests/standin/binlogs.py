"""Binlog files as Milvus writes them (``internal/storage``: magic number, descriptor event,
data events of a 17-byte header, start and end timestamps and a Parquet payload), for the
stand-in's segments and the reader's tests."""

from __future__ import annotations

import io
import json
import struct

import pyarrow as pa
import pyarrow.parquet as pq

from milvus_backup_operator.engine import binlog


def event(code: int, body: bytes) -> bytes:
    return struct.pack("<QbiI", 0, code, 17 + len(body), 0) + body


def payload(table: pa.Table) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out)
    return struct.pack("<QQ", 1, 2) + out.getvalue()


def make_binlog(code: int, *columns: list[object]) -> bytes:
    """Magic, a descriptor event, then one data event of type ``code`` per column."""
    events = [event(code, payload(pa.table({"val": values}))) for values in columns]
    return struct.pack("<i", binlog.MAGIC) + event(0, b"descriptor") + b"".join(events)


def insert_log(values: list[object]) -> bytes:
    return make_binlog(binlog.INSERT_EVENT, values)


def delta_log(deletes: list[tuple[int, int]]) -> bytes:
    """``{"pk":..,"ts":..,"pkType":5}`` records, as Milvus >= 2.2 writes them."""
    records = [json.dumps({"pk": pk, "ts": ts, "pkType": 5}) for pk, ts in deletes]
    return make_binlog(binlog.DELETE_EVENT, records)
