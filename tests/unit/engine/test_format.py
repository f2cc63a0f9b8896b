"""milvus-backup's meta format: fixtures written by hand from v0.5.16's proto, read and written."""

import decimal
import json
from pathlib import Path

import jsonschema
import pytest

from milvus_backup_operator.engine import codec
from milvus_backup_operator.engine.errors import MalformedMetaError
from milvus_backup_operator.engine.layout import BackupLayout
from milvus_backup_operator.engine.meta import (
    BACKUP_META,
    FULL_META,
    META_FILES,
    BackupInfo,
    assemble_from_level_files,
    parse_full_meta,
    render_meta_files,
)

FIXTURES = Path(__file__).parents[2] / "fixtures"
TWO_COLLS = FIXTURES / "milvus_backup_v05" / "mb_v05_two_colls"
LEGACY = FIXTURES / "milvus_backup_v05" / "mb_v05_legacy"
SCHEMA = json.loads((FIXTURES / "milvus_backup_v05.schema.json").read_text())
LEVEL_DEFS = {
    BACKUP_META: "BackupLevel",
    "collection_meta.json": "CollectionLevel",
    "partition_meta.json": "PartitionLevel",
    "segment_meta.json": "SegmentLevel",
    FULL_META: "BackupInfo",
}


def meta_files(backup_dir: Path) -> dict[str, bytes]:
    return {name: (backup_dir / "meta" / name).read_bytes() for name in META_FILES}


def validate(filename: str, raw: bytes) -> None:
    """Check a meta file against the field lists (integers parsed exactly, never as floats)."""
    document = json.loads(raw, parse_float=decimal.Decimal)
    schema = {**SCHEMA, "$ref": f"#/$defs/{LEVEL_DEFS[filename]}"}
    jsonschema.Draft202012Validator(schema).validate(document)


def test_reading_a_milvus_backup_backup_keeps_64_bit_ids_exact() -> None:
    info = parse_full_meta((TWO_COLLS / "meta" / FULL_META).read_bytes(), "fixture")
    books = info.collection_backups[0]
    segment_ids = [s.segment_id for s in books.segments()]
    assert 449577123456789013 in segment_ids  # float64 would read 449577123456788992
    assert books.collection_id == 449577000000000001
    assert [c.qualified_name for c in info.collection_backups] == ["books", "tiny"]
    assert books.consistency_level == 2 and info.collection_backups[1].consistency_level == 0
    assert books.row_count() == 6500
    assert info.size == sum(c.size for c in info.collection_backups)


def test_our_writer_reproduces_milvus_backups_bytes() -> None:
    """Decode then encode gives back every meta file byte for byte (key order, omitempty)."""
    original = meta_files(TWO_COLLS)
    info = parse_full_meta(original[FULL_META], "fixture")
    assert render_meta_files(info) == original


def test_what_we_write_matches_the_field_lists() -> None:
    info = parse_full_meta((TWO_COLLS / "meta" / FULL_META).read_bytes(), "fixture")
    for filename, raw in render_meta_files(info).items():
        validate(filename, raw)


def test_the_schema_check_catches_a_wrong_key() -> None:
    info = parse_full_meta((TWO_COLLS / "meta" / FULL_META).read_bytes(), "fixture")
    document = codec.encode(info)
    field = document["collection_backups"][0]["schema"]["fields"][0]
    field["fieldId"] = field.pop("fieldID")
    with pytest.raises(jsonschema.ValidationError, match="fieldId"):
        validate(FULL_META, json.dumps(document).encode())


def test_level_files_alone_rebuild_the_same_tree() -> None:
    files = meta_files(TWO_COLLS)
    rebuilt = assemble_from_level_files(files, "fixture")
    full = parse_full_meta(files[FULL_META], "fixture")
    full.database_backups = []  # only full_meta.json has them, as with milvus-backup
    assert rebuilt == full


def test_object_keys_follow_milvus_backups_layout() -> None:
    info = parse_full_meta((TWO_COLLS / "meta" / FULL_META).read_bytes(), "fixture")
    layout = BackupLayout("backup", "mb_v05_two_colls")
    keys = {
        layout.relative(copy.dst_key)
        for coll in info.collection_backups
        for segment in coll.segments()
        for copy in layout.segment_copies(segment)
    }
    assert keys == set((TWO_COLLS / "objects.txt").read_text().split())


def test_legacy_backup_without_groups_or_log_ids() -> None:
    info = parse_full_meta((LEGACY / "meta" / FULL_META).read_bytes(), "fixture")
    (coll,) = info.collection_backups
    (segment,) = coll.segments()
    assert segment.group_id == 0 and coll.schema is not None
    assert coll.schema.fields[1].default_value_proto == "\x10*"
    layout = BackupLayout("backup", "mb_v05_legacy")
    keys = {layout.relative(c.dst_key) for c in layout.segment_copies(segment)}
    assert keys == set((LEGACY / "objects.txt").read_text().split())


def test_truncated_meta_is_refused_with_a_reason() -> None:
    raw = (TWO_COLLS / "meta" / FULL_META).read_bytes()
    with pytest.raises(MalformedMetaError, match=r"not valid JSON.*delete it and take a new one"):
        parse_full_meta(raw[: len(raw) // 2], "backup 'x'/meta/full_meta.json")


def test_wrong_types_name_the_path() -> None:
    document = json.loads((TWO_COLLS / "meta" / FULL_META).read_bytes())
    document["collection_backups"][0]["partition_backups"][0]["size"] = "12"
    with pytest.raises(
        MalformedMetaError, match=r"partition_backups\[0\]\.size: expected an integer"
    ):
        codec.decode(BackupInfo, document, "full_meta.json")


def test_keys_match_case_insensitively_like_go() -> None:
    info = codec.decode(BackupInfo, {"NAME": "b", "Size": 3, "unknown_key": 1}, "x")
    assert (info.name, info.size) == ("b", 3)


def test_zero_values_are_omitted_but_sizes_always_written() -> None:
    assert codec.encode(BackupInfo(name="b")) == {"state_code": 0, "name": "b", "size": 0}
