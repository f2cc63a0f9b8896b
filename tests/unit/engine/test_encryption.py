"""Encrypted databases: which properties mark one, how its key is kept in the meta (as
milvus-backup's ``DatabaseBackupInfo.ezk``) and kept out of everything shown."""

import json

import pytest

from milvus_backup_operator.engine.capabilities import Capabilities
from milvus_backup_operator.engine.encryption import is_encrypted, redact
from milvus_backup_operator.engine.meta import (
    FULL_META,
    BackupInfo,
    DatabaseBackupInfo,
    KeyValuePair,
    parse_full_meta,
    render_meta_files,
)
from milvus_backup_operator.engine.milvus import import_options
from milvus_backup_operator.server import views
from tests.unit.engine.test_format import validate

KEY = "eyJlel9pZCI6IDd9"  # base64 of {"ez_id": 7}


@pytest.mark.parametrize(
    ("properties", "encrypted"),
    [
        ([], False),
        ([("database.replica.number", "1")], False),
        ([("cipher.enabled", "false")], False),
        ([("cipher.enabled", "TRUE")], True),  # Milvus compares it lowercased
        ([("cipher.ezID", "7"), ("cipher.key", "arn:kms")], True),  # milvus-backup's test
        ([("cipher.ezID", "7")], True),  # half-described: refused rather than keyless
        ([("cipher.ezID", ""), ("cipher.key", "")], False),
    ],
)
def test_the_cipher_properties_mark_an_encrypted_database(
    properties: list[tuple[str, str]], encrypted: bool
) -> None:
    assert is_encrypted(properties) is encrypted


def encrypted_backup() -> BackupInfo:
    zone = [KeyValuePair("cipher.enabled", "true"), KeyValuePair("cipher.ezID", "7")]
    return BackupInfo(
        id="t1",
        name="b1",
        database_backups=[
            DatabaseBackupInfo(db_name="default", db_id=1),
            DatabaseBackupInfo(db_name="secure", db_id=42, properties=zone, ezk=KEY),
        ],
    )


def test_the_key_is_written_where_milvus_backup_writes_it_and_read_back() -> None:
    files = render_meta_files(encrypted_backup())
    validate(FULL_META, files[FULL_META])  # milvus-backup's field list: ezk is field 4
    document = json.loads(files[FULL_META])
    assert document["database_backups"][1] == {
        "db_name": "secure", "db_id": 42, "ezk": KEY,
        "properties": [{"key": "cipher.enabled", "value": "true"},
                       {"key": "cipher.ezID", "value": "7"}],
    }  # fmt: skip
    assert list(document["database_backups"][1])[-1] == "ezk"  # proto order
    read = parse_full_meta(files[FULL_META], "test")
    assert (read.ezk_of("secure"), read.ezk_of("default"), read.ezk_of("other")) == (KEY, "", "")


def test_the_key_is_never_shown() -> None:
    info = encrypted_backup()
    assert KEY not in repr(info)
    shown = info.public()
    assert KEY not in json.dumps(shown)
    assert shown["database_backups"][1]["db_id"] == 42  # the rest is shown
    assert KEY not in json.dumps(views.backup(info))  # get_backup's answer
    assert info.database_backups[1].ezk == KEY  # showing took nothing from the meta
    assert redact(f"import failed: option ezk={KEY} unreadable", KEY) == (
        "import failed: option ezk=<ezk> unreadable"
    )


def test_an_import_carries_the_key_only_when_its_database_has_one() -> None:
    assert "ezk" not in import_options(l0=False, storage_version=2)
    assert import_options(l0=True, storage_version=0, ezk=KEY) == {
        "skip_disk_quota_check": "true", "l0_import": "true", "ezk": KEY,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("version", "describes", "decrypts"),
    [("v2.3.5-lite", False, False), ("v2.4.2", False, False), ("v2.4.3", True, False),
     ("v2.5.20", True, False), ("v2.6.0", True, True), ("master-20260801-abcdef", True, True)],
)  # fmt: skip
def test_databases_are_described_from_2_4_3_and_keys_imported_from_2_6(
    version: str, describes: bool, decrypts: bool
) -> None:
    can = Capabilities.of(version)
    assert (can.describe_database, can.import_ezk) == (describes, decrypts)
