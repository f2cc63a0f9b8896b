"""The binlog reader: Milvus's event layout, and damage refused by name."""

from __future__ import annotations

import struct

import pyarrow as pa
import pytest

from milvus_backup_operator.engine import binlog
from milvus_backup_operator.engine.errors import DamagedBackupError
from tests.standin.binlogs import (
    INT64,
    MULTI_FIELD,
    binlog_file,
    descriptor,
    make_binlog,
    multi_field_delta_log,
    v2_delta_log,
)
from tests.standin.binlogs import event as _event
from tests.standin.binlogs import payload as _payload


def test_insert_values_of_every_event_in_order() -> None:
    data = make_binlog(binlog.INSERT_EVENT, [1, 2, 3], [4])
    assert binlog.insert_values(data, "k") == [1, 2, 3, 4]


def test_deletes_in_both_record_formats() -> None:
    records = ['{"pk":5,"ts":10,"pkType":5}', '{"pk":"a","ts":11,"pkType":21}', "7,12"]
    assert binlog.deletes(make_binlog(binlog.DELETE_EVENT, records), "k") == [
        (5, 10),
        ("a", 11),
        (7, 12),
    ]


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"PK\x03\x04garbage", "not a Milvus binlog"),
        (make_binlog(binlog.INSERT_EVENT, [1, 2, 3])[:-9], "cut short"),
        (make_binlog(binlog.INSERT_EVENT, [1])[:30], "cut short"),
        (
            make_binlog(binlog.INSERT_EVENT) + _event(binlog.INSERT_EVENT, bytes(16) + b"junk"),
            "payload that cannot be read",
        ),
        (
            struct.pack("<i", binlog.MAGIC)
            + _event(binlog.INSERT_EVENT, _payload(pa.table({"val": [1]})), 4),
            "opens with an event of type 1, not the descriptor",
        ),
        (struct.pack("<i", binlog.MAGIC), "no descriptor event"),
        (make_binlog(binlog.INSERT_EVENT, [1])[:100], "cut short"),
    ],
)
def test_damaged_insert_logs_are_refused_by_name(data: bytes, says: str) -> None:
    with pytest.raises(DamagedBackupError, match=f"binlogs/x.*{says}"):
        binlog.insert_values(data, "binlogs/x")


def test_an_unknown_delete_record_is_refused_not_skipped() -> None:
    data = make_binlog(binlog.DELETE_EVENT, ['{"primary":5}'])
    with pytest.raises(DamagedBackupError, match="delete record this version does not read"):
        binlog.deletes(data, "d")


def test_a_delete_event_where_inserts_are_expected_is_refused() -> None:
    with pytest.raises(DamagedBackupError, match="event of type 2"):
        binlog.insert_values(make_binlog(binlog.DELETE_EVENT, ["1,2"]), "k")


def test_a_payload_of_several_columns_is_refused_by_name() -> None:
    table = pa.table({"key": [1], "stamp": [2]})
    data = binlog_file(binlog.INSERT_EVENT, INT64, [table])
    with pytest.raises(DamagedBackupError, match=r"2 columns \(key, stamp\)"):
        binlog.insert_values(data, "k")


def test_pk_and_ts_columns_without_the_multi_field_mark_are_refused() -> None:
    """Milvus reads an unmarked delta log as one column of records (``serde_delta.go``
    ``supportMultiFieldFormat``): column names alone do not make it multi-field."""
    data = multi_field_delta_log([(5, 10)], marked=False)
    with pytest.raises(DamagedBackupError, match=r"k holds deletes in 2 columns \(pk, ts\).*"
                       r"does not mark it version: MULTI_FIELD"):  # fmt: skip
        binlog.deletes(data, "k")


def test_a_marked_delta_log_is_read_by_position_whatever_its_column_names() -> None:
    table = pa.table({"key": [5, 6], "stamp": [10, 11]})
    data = binlog_file(binlog.DELETE_EVENT, INT64, [table], MULTI_FIELD)
    assert binlog.deletes(data, "k") == [(5, 10), (6, 11)]


def test_a_marked_delta_log_of_one_column_is_refused_by_name() -> None:
    data = binlog_file(binlog.DELETE_EVENT, INT64, [pa.table({"pk": [5]})], MULTI_FIELD)
    with pytest.raises(DamagedBackupError, match="marked MULTI_FIELD but holds 1 columns"):
        binlog.deletes(data, "k")


def test_descriptor_extras_that_are_not_json_are_refused_by_name() -> None:
    bad = descriptor(INT64, {"original_size": "8"}).replace(b'"8"}', b'"8"]')
    data = struct.pack("<i", binlog.MAGIC) + bad
    with pytest.raises(DamagedBackupError, match="descriptor extras that cannot be read"):
        binlog.insert_values(data, "k")


@pytest.mark.parametrize("keys", [[5, 6], ["a", "b"]])
def test_deletes_in_the_multi_field_format(keys: list[int | str]) -> None:
    """``dataNode.storage.deltalog: parquet`` (milvus ``internal/storage/serde_delta.go``)."""
    deletes = list(zip(keys, [10, 11], strict=True))
    assert binlog.deletes(multi_field_delta_log(deletes), "k") == deletes


def test_a_multi_field_payload_of_other_types_is_refused_by_name() -> None:
    table = pa.table({"pk": [1.5], "ts": [2]})
    data = binlog_file(binlog.DELETE_EVENT, INT64, [table], MULTI_FIELD)
    with pytest.raises(DamagedBackupError, match="double keys and int64 timestamps"):
        binlog.deletes(data, "k")


def test_deletes_of_a_plain_parquet_delta_log() -> None:
    """Storage v2's ``NewDeltalogWriter`` (milvus ``internal/storage/rw.go``): field IDs 0, 1."""
    assert binlog.deletes(v2_delta_log([(5, 10), (6, 11)]), "k") == [(5, 10), (6, 11)]
