"""Encrypted databases (Milvus 2.6 encryption zones): record each database as milvus-backup
does, with the key its data is encrypted under, and refuse one whose key cannot be had.

milvus-backup (``core/backup/database_task.go``) describes each database it backs up
(``DescribeDatabase``, Milvus >= 2.4.3: its ``db_id`` and ``properties``) and, when the
properties mark it encrypted, asks Milvus's management endpoint for the key of its encryption
zone: ``GET /management/rootcoord/ez/backup?db_name=<db>`` (Milvus's ``internal/http/router.go``
``RouteBackupEZ``; milvus-backup's ``internal/client/milvus/manage.go`` ``GetEZK``), which
answers ``{"msg": "OK", "ezk": "<key>"}``. The key is stored as the database's ``ezk`` and
passed as the import option ``ezk`` to every import of that database's data
(``core/restore/coll_task.go`` ``ezk()``). Milvus decodes it as base64
(``hookutil.GetEzIDByImportEzk``) and, where it cannot, imports without it
(``hookutil.GetReadStoragePluginContext`` only logs the error), reading ciphertext.

Where milvus-backup stores whatever it is answered, a backup here is refused, naming the
database, before anything is copied when the key cannot be had: no endpoint answering, an
error, an answer without a key, or one Milvus could not decode. The key is a secret: it goes
into the meta file and the import requests, never into a log line, an error or a status.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from .errors import BackupError, OperationError, UnreachableError, UnsupportedError
from .management import Management
from .meta import DatabaseBackupInfo, KeyValuePair
from .milvus import Milvus

EZ_BACKUP = "/management/rootcoord/ez/backup"
#: the database properties of an encryption zone (``pkg/util/hookutil/cipher.go``:
#: ``EncryptionEnabledKey``, ``EncryptionEzIDKey``, ``EncryptionRootKeyKey``)
CIPHER_ENABLED, CIPHER_EZ_ID, CIPHER_KEY = "cipher.enabled", "cipher.ezID", "cipher.key"
CIPHER_PROPERTIES = (CIPHER_ENABLED, CIPHER_EZ_ID, CIPHER_KEY)


def is_encrypted(properties: list[tuple[str, str]]) -> bool:
    """Whether a database's properties mark an encryption zone. milvus-backup asks for the
    key when ``cipher.ezID`` and ``cipher.key`` are both set (``cipherEnabled``); any one of
    the three cipher properties set counts here, so that a database Milvus half-describes is
    refused rather than backed up without its key (``hookutil.ContainsCipherProperties``)."""
    values = dict(properties)
    enabled = values.get(CIPHER_ENABLED, "").lower() == "true"
    return enabled or bool(values.get(CIPHER_EZ_ID)) or bool(values.get(CIPHER_KEY))


def describe_databases(
    milvus: Milvus, names: list[str], management: Management
) -> list[DatabaseBackupInfo]:
    """Each database as milvus-backup records it; the key of each encrypted one, or a refusal
    naming it. Without ``DescribeDatabase`` (Milvus < 2.4.3) only the names, as there."""
    if not milvus.capabilities.describe_database:
        return [DatabaseBackupInfo(db_name=name) for name in names]
    client = EzkClient(management)
    databases = []
    for name in names:
        described = milvus.describe_database(name)
        info = DatabaseBackupInfo(
            db_name=name,
            db_id=described.db_id,
            properties=[KeyValuePair(k, v) for k, v in described.properties],
        )
        if is_encrypted(described.properties):
            info.ezk = client.ezk(name)
        databases.append(info)
    return databases


class EzkClient:
    """Reads encryption zone keys from Milvus's management endpoint."""

    def __init__(self, http: Management) -> None:
        self.http = http
        self.endpoint = http.endpoint

    def ezk(self, db: str) -> str:
        """The key of database ``db``'s encryption zone; a refusal naming ``db`` otherwise."""
        try:
            status, answer = self.http.get(EZ_BACKUP, {"db_name": db})
        except BackupError as exc:
            raise type(exc)(self._refused(db, str(exc))) from None
        if status == 404:
            why = f"it does not serve {EZ_BACKUP} (HTTP 404: no encryption zones there)"
            raise UnsupportedError(self._refused(db, why))
        if status in (401, 403):
            why = f"it refused the credentials (HTTP {status}; it takes Milvus's root user)"
            raise UnreachableError(self._refused(db, why))
        message = str(answer.get("msg", ""))[:300]
        if status != 200 or message != "OK":
            raise OperationError(self._refused(db, f"it answered HTTP {status}: {message!r}"))
        return self._checked(db, answer.get("ezk"))

    def _checked(self, db: str, key: Any) -> str:
        """A key Milvus can read back: a non-empty base64 string (``GetEzIDByImportEzk``)."""
        if not isinstance(key, str) or not key:
            raise OperationError(self._refused(db, "it answered OK without a key"))
        try:
            base64.b64decode(key, validate=True)
        except (binascii.Error, ValueError):
            why = "it answered a key that is not base64, which Milvus could not read back"
            raise OperationError(self._refused(db, why)) from None
        return key

    def _refused(self, db: str, why: str) -> str:
        return (
            f"database {db} is encrypted (cipher properties), and the key of its encryption "
            f"zone could not be read from Milvus's management endpoint {self.endpoint}: {why}. "
            "Without it its backup could not be restored; nothing was copied. Set "
            "milvus.management.endpoint (backup.gcPause.address in a v1 configuration) to "
            "Milvus's management port (9091), or leave that database out of the backup"
        )


def redact(text: str, ezk: str) -> str:
    """``text`` with the key cut out (a Milvus error that echoes an import's options)."""
    return text.replace(ezk, "<ezk>") if ezk else text
