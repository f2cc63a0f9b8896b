"""Encrypted databases (Milvus 2.6 encryption zones), against a stand-in Milvus 2.6.

What is asserted follows milvus-backup master: ``core/backup/database_task.go`` (each
database's ``db_id`` and ``properties`` from ``DescribeDatabase``; for one with cipher
properties its key from ``GET /management/rootcoord/ez/backup?db_name=``, kept as ``ezk``),
``core/restore/coll_task.go`` ``ezk()`` (the import option ``ezk`` on every import of that
database's data) and ``internal/client/milvus/grpc.go`` (``GrpcBulkInsertInput.opts``). Where
milvus-backup backs up whatever it is answered, here a database whose key cannot be had is
refused by name before anything is written. The stand-in Milvus (``tests/standin/milvus.py``)
and its management endpoint (``tests/standin/management.py``) answer as Milvus does; the
objects live in the real S3 server.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from milvus_backup_operator.engine.backup import BackupRequest, create_backup
from milvus_backup_operator.engine.catalog import Catalog
from milvus_backup_operator.engine.config import BackupConfig, GcPause, MilvusConfig
from milvus_backup_operator.engine.encryption import EZ_BACKUP
from milvus_backup_operator.engine.errors import BackupError, UnsupportedError
from milvus_backup_operator.engine.progress import Progress
from milvus_backup_operator.engine.restore import restore_backup
from milvus_backup_operator.engine.restore_plan import RestoreRequest, check_restore_request
from milvus_backup_operator.engine.selection import CollectionRef
from milvus_backup_operator.engine.storage import ObjectStore
from testbed.stack import Stack, stack_config
from tests.integration.test_milvus_2x_standin import (
    ROOT,
    schema,
    upload_master_backup,
    write_segment,
)
from tests.standin.management import StandInManagement
from tests.standin.milvus import Collection, Database, Segment, StandInMilvus

pytestmark = pytest.mark.integration

BUCKET = "standin-ez-bucket"
#: a key as Milvus's cipher plugin hands it out: base64 of JSON naming the zone
#: (``hookutil.GetEzIDByImportEzk`` reads ``ez_id`` back from it)
EZK = base64.b64encode(json.dumps({"ez_id": 7, "key": "c2VjcmV0LWJ5dGVz"}).encode()).decode()
ZONE = [("cipher.enabled", "true"), ("cipher.ezID", "7"),
        ("cipher.key", "arn:aws:kms:eu-west-1:111122223333:key/zone-7")]  # fmt: skip
VAULT, PLAIN = CollectionRef("secure", "vault"), CollectionRef("default", "plain")


@pytest.fixture
def standins(
    stack: Stack,
) -> Iterator[tuple[StandInMilvus, StandInManagement, BackupConfig]]:
    """Milvus 2.6 with ``plain`` in ``default`` and ``vault`` in the encrypted ``secure``."""
    stack.s3.ensure_bucket(BUCKET)
    real = stack_config(stack)
    storage = replace(real.storage, bucket=BUCKET, root_path=ROOT)
    store = ObjectStore(storage, real.timeouts)
    write_segment(store, 8101, 8102, 8103, [1, 2, 3], ts=100)
    write_segment(store, 8201, 8202, 8203, [4, 5], ts=100)
    vault = Collection(8101, "vault", schema("vault"), {"_default": 8102},
                       [Segment(8103, 8102, 3)], db="secure",
                       properties=[("cipher.ezID", "7")])  # fmt: skip
    plain = Collection(8201, "plain", schema("plain"), {"_default": 8202}, [Segment(8203, 8202, 2)])
    milvus = StandInMilvus("v2.6.3", [vault, plain], store)
    milvus.databases["secure"] = Database(42, ZONE)
    milvus.start()
    management = StandInManagement().start()
    management.ezks["secure"] = EZK
    config = replace(
        real,
        milvus=MilvusConfig(address="127.0.0.1", port=milvus.port),
        storage=storage,
        backup_storage=replace(storage, root_path="backup"),
        gc_pause=GcPause(address=management.url),
    )
    try:
        yield milvus, management, config
    finally:
        management.stop()
        milvus.stop()


def imports_of(milvus: StandInMilvus, collection: str) -> list[dict[str, str]]:
    return [
        {kv.key: kv.value for kv in r.options}
        for r in milvus.requests("Import")
        if r.collection_name == collection
    ]


def test_an_encrypted_database_is_backed_up_with_its_key_and_restored_with_it(
    standins: tuple[StandInMilvus, StandInManagement, BackupConfig],
    caplog: pytest.LogCaptureFixture,
) -> None:
    milvus, management, config = standins
    caplog.set_level(logging.DEBUG)
    seen: list[Progress] = []
    info = create_backup(config, BackupRequest("ez_both", (VAULT, PLAIN)), seen.append)
    databases = {d.db_name: d for d in info.database_backups}
    assert (databases["secure"].db_id, databases["default"].db_id) == (42, 1)
    assert [(kv.key, kv.value) for kv in databases["secure"].properties] == ZONE
    assert (databases["secure"].ezk, databases["default"].ezk) == (EZK, "")
    asked = [(path, query) for path, query, _ in management.calls if path == EZ_BACKUP]
    assert asked == [(EZ_BACKUP, {"db_name": "secure"})]  # the encrypted database only
    full = json.loads(Catalog.of(config).store.get("backup/ez_both/meta/full_meta.json"))
    secure = full["database_backups"][1]
    assert (secure["db_name"], secure["db_id"], secure["ezk"]) == ("secure", 42, EZK)
    assert Catalog.of(config).read("ez_both").ezk_of("secure") == EZK  # read back

    milvus.calls.clear()
    result = restore_backup(config, RestoreRequest("ez_both", suffix="_r"), seen.append)
    assert result.succeeded, result.failure_summary()
    assert [o.get("ezk") for o in imports_of(milvus, "vault_r")] == [EZK]
    assert [o.get("ezk") for o in imports_of(milvus, "plain_r")] == [None]
    (created,) = [r for r in milvus.requests("CreateCollection") if r.collection_name == "vault_r"]
    assert not [kv.key for kv in created.properties if kv.key.startswith("cipher.")]
    for said in (caplog.text, repr(seen), repr(info), repr(result)):
        assert EZK not in said  # the key is in the meta and the imports only


def test_a_milvus_that_cannot_take_the_key_is_refused_before_anything_is_created(
    standins: tuple[StandInMilvus, StandInManagement, BackupConfig],
) -> None:
    milvus, _, config = standins
    create_backup(config, BackupRequest("ez_old_target", (VAULT,)))
    milvus.version, milvus.calls = "v2.5.20", []
    expected = r"secure\.vault of the backup is in the encrypted database secure.*v2\.5\.20"
    with pytest.raises(UnsupportedError, match=expected):
        check_restore_request(config, RestoreRequest("ez_old_target", suffix="_r"))
    with pytest.raises(UnsupportedError, match=expected):
        restore_backup(config, RestoreRequest("ez_old_target", suffix="_r"))
    assert milvus.requests("CreateCollection") == milvus.requests("Import") == []


def _no_route(management: StandInManagement, config: BackupConfig) -> BackupConfig:
    management.ez_route = False
    return config


def _not_a_zone(management: StandInManagement, config: BackupConfig) -> BackupConfig:
    management.ezks.clear()
    return config


def _no_key(management: StandInManagement, config: BackupConfig) -> BackupConfig:
    management.ezks["secure"] = ""
    return config


def _garbled_key(management: StandInManagement, config: BackupConfig) -> BackupConfig:
    management.ezks["secure"] = "not base64!"
    return config


def _nowhere(management: StandInManagement, config: BackupConfig) -> BackupConfig:
    return replace(config, gc_pause=GcPause(address="http://127.0.0.1:1"))  # nothing listens


Breaker = Callable[[StandInManagement, BackupConfig], BackupConfig]


@pytest.mark.parametrize(
    ("breaks", "why"),
    [
        (_no_route, r"does not serve /management/rootcoord/ez/backup \(HTTP 404"),
        (_not_a_zone, r"answered HTTP 500: 'failed to backup ez, not an encryption zone'"),
        (_no_key, "answered OK without a key"),
        (_garbled_key, "not base64"),
        (_nowhere, "could not be reached"),
    ],
)
def test_a_database_whose_key_cannot_be_had_is_refused_by_name_and_nothing_is_written(
    standins: tuple[StandInMilvus, StandInManagement, BackupConfig], breaks: Breaker, why: str
) -> None:
    milvus, management, config = standins
    config = breaks(management, config)
    with pytest.raises(BackupError, match=f"database secure is encrypted.*{why}") as refused:
        create_backup(config, BackupRequest("ez_refused", (VAULT, PLAIN)))
    assert "milvus.management.endpoint" in str(refused.value)
    assert "not base64!" not in str(refused.value)
    assert list(Catalog.of(config).store.list("backup/ez_refused")) == []
    assert milvus.requests("Flush") == []  # refused before anything was flushed or copied
    plain_only = create_backup(config, BackupRequest(f"ez_plain{breaks.__name__}", (PLAIN,)))
    assert [d.db_name for d in plain_only.database_backups] == ["default"]


def _upload_encrypted_master_backup(config: BackupConfig, name: str, ezk: str) -> None:
    """mb_l0_v2 as milvus-backup master writes it for a collection of an encrypted database:
    the collection in ``secure``, the database with its properties and key."""

    def encrypted(full: dict[str, Any]) -> None:
        (events,) = full["collection_backups"]
        events["db_name"] = "secure"
        events["properties"].append({"key": "cipher.ezID", "value": "7"})
        properties = [{"key": k, "value": v} for k, v in ZONE]
        database = {"db_name": "secure", "db_id": 42, "properties": properties, "ezk": ezk}
        full["database_backups"] = [{k: v for k, v in database.items() if v}]

    upload_master_backup(ObjectStore(config.backup_storage, config.timeouts), name, encrypted)


def test_a_milvus_backup_backup_of_an_encrypted_database_restores_with_its_key(
    standins: tuple[StandInMilvus, StandInManagement, BackupConfig],
) -> None:
    milvus, _, config = standins
    _upload_encrypted_master_backup(config, "mb_ez", EZK)
    read = Catalog.of(config).read("mb_ez")
    assert (read.database_backups[0].db_id, read.ezk_of("secure")) == (42, EZK)
    assert EZK not in repr(read)
    result = restore_backup(config, RestoreRequest("mb_ez", suffix="_mb"))
    assert result.succeeded, result.failure_summary()
    options = imports_of(milvus, "events_mb")
    assert len(options) == 3 and {o.get("ezk") for o in options} == {EZK}  # data and L0 alike


def test_encrypted_data_without_its_key_is_refused_before_anything_is_created(
    standins: tuple[StandInMilvus, StandInManagement, BackupConfig],
) -> None:
    """A backup whose collection Milvus marked encrypted but which holds no key for its
    database (a milvus-backup without ezk support, or a key lost) would import ciphertext."""
    milvus, _, config = standins
    _upload_encrypted_master_backup(config, "mb_ez_nokey", "")
    with pytest.raises(UnsupportedError, match=r"secure\.events of the backup is encrypted"):
        restore_backup(config, RestoreRequest("mb_ez_nokey", suffix="_nk"))
    assert milvus.requests("CreateCollection") == []
