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


def multi_field_delta_log(deletes: list[tuple[int | str, int]]) -> bytes:
    """A delta log in the ``parquet`` format of ``dataNode.storage.deltalog``: one delete event
    whose payload has an Int64/String ``pk`` and an Int64 ``ts`` column
    (milvus-io/milvus ``internal/storage/serde_delta.go``, ``MultiFieldDeltalogStreamWriter``)."""
    table = pa.table({"pk": [pk for pk, _ in deletes], "ts": [ts for _, ts in deletes]})
    body = event(binlog.DELETE_EVENT, payload(table))
    return struct.pack("<i", binlog.MAGIC) + event(0, b"descriptor") + body


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
    table = pa.table([pa.array(v, f.type) for f, v in columns], schema=schema)
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


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
