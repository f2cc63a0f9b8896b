"""The benchmark imports what the restore imports (and keeps importing: it is not run in CI)."""

from pathlib import Path

from bench.backup_restore import import_units

from milvus_backup_operator.engine.layout import BackupLayout
from milvus_backup_operator.engine.meta import parse_full_meta

FIXTURE = Path(__file__).parents[1] / "fixtures" / "milvus_backup_v05" / "mb_v05_two_colls"


def test_bench_imports_one_unit_per_segment_group_with_both_directories() -> None:
    info = parse_full_meta((FIXTURE / "meta" / "full_meta.json").read_bytes(), "fixture")
    books = info.collection_backups[0]
    units = import_units(books, BackupLayout("backup", "b"))
    assert len(units) == len(books.segments()) == 3
    partition, dirs = units[0]
    segment = books.partition_backups[0].segment_backups[0]
    assert partition == "_default"
    assert dirs == [
        f"backup/b/binlogs/{kind}/{books.collection_id}/{segment.partition_id}/{segment.group_id}/"
        for kind in ("insert_log", "delta_log")
    ]
