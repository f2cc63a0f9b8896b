"""milvus-backup's configuration file, in either of its formats, as a :class:`BackupConfig`.

- v1 (milvus-backup 0.5, ``internal/cfg/cfg.go`` at v0.5.16): ``milvus.address``,
  ``minio.bucketName``, ``minio.backupRootPath``, ``backup.parallelism.*``...
- v2 (``configVersion: v2``, ``internal/cfg/v2/cfg.go``): ``milvus.grpc``, ``milvus.storage``
  with ``auth``, ``backup.storage``, ``backup.concurrency``, ``restore.concurrency``,
  ``transfer``.

Every key of the file is read, or known to change nothing here (``INERT``: logging, etcd,
Zilliz Cloud... settings of features this tool does not have, accepted so that the stock files
load), or refused by name with its line: never a silent default. A setting we understand but
cannot honour (Azure storage, IAM credentials...) is refused by name too. Only credentials may
come from the environment (milvus-backup #197).

Each key is read with its type in milvus-backup, as its loader reads it
(``internal/cfg/param/value.go`` ``parseAny``, on the YAML typed as ``config_yaml`` types
it), except what that loader would silently rewrite (a number for text: ``0755`` as 493; a
float for an integer: ``37395.0``), which is refused with the fix both tools take.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from .config import (
    MAX_GC_PAUSE,
    TIMEOUT_LIMITS,
    BackupConfig,
    GcPause,
    MilvusConfig,
    Parallelism,
    StorageConfig,
    Timeouts,
    apply_credential_env,
    http_url_problem,
)
from .config_yaml import read_yaml
from .errors import InvalidRequestError

#: S3-compatible providers (``minio.storageType`` in v1, ``provider`` in v2)
S3_PROVIDERS = ("minio", "s3", "aws")
#: keys accepted and without effect here, by format, with their type in milvus-backup
#: (``v0.5.16:internal/cfg/cfg.go``, ``internal/cfg/v2/cfg.go``): checked all the same
INERT: dict[str, dict[str, str]] = {
    "v1": {
        "log.level": "text", "log.console": "flag", "log.file.filename": "text",
        "log.file.maxSize": "integer", "log.file.maxDays": "integer",
        "log.file.maxBackups": "integer", "http.enabled": "flag", "http.debugMode": "flag",
        "http.swaggerBasePath": "text", "cloud.address": "text", "cloud.apikey": "text",
        "milvus.rpcChannelName": "text", "milvus.etcd.endpoints": "text",
        "milvus.etcd.rootPath": "text", "minio.gcpCredentialJSON": "text",
        "minio.backupGcpCredentialJSON": "text", "minio.crossStorage": "flag",
        "minio.multipartCopyThresholdMiB": "integer",
        "backup.parallelism.backupSegment": "integer",
    },
    "v2": {
        "configVersion": "text", "log.level": "text", "log.console": "flag",
        "log.file.path": "text", "log.file.maxSizeMiB": "integer",
        "log.file.maxDays": "integer", "log.file.maxBackups": "integer",
        "server.debugMode": "flag", "server.swaggerBasePath": "text",
        "milvus.replicate.rpcChannelName": "text", "milvus.etcd.endpoints": "texts",
        "milvus.etcd.rootPath": "text", "backup.concurrency.segments": "integer",
        "transfer.multipartCopyThresholdMiB": "integer", "zillizCloud.endpoint": "text",
        "zillizCloud.apiKey": "text",
    },
}  # fmt: skip
_TLS_MODES = {"disabled": 0, "server": 1, "mutual": 2}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HOST = re.compile(r"[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f:]+")
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{1,61}[A-Za-z0-9]")  # minio-py's own rule
#: a quoted whole number, as Go's strconv.ParseInt(s, 10, 64) takes it
_QUOTED_INT = re.compile(r"[-+]?[0-9]{1,18}")
#: what Go's strconv.ParseBool takes, which milvus-backup's loader uses for text
_GO_BOOLS = {
    **dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
    **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False),
}
_TEXT = "a string: put it in quotes (YAML reads it as a number or true/false)"
_NOT_TEXT = "a string, not a list or a mapping"
_INTEGER = "an integer in decimal digits (not 1.0, 1e3, 0x1F, 0755, true or text)"
_FLAG = (
    'true or false (milvus-backup also takes True, TRUE, t, "1" and False, FALSE, f, '
    '"0"; yes, no, on and off are text to it)'
)


def load_config(
    path: Path | None, env: Mapping[str, str] | None = None, *, required: bool = False
) -> BackupConfig:
    """Read ``path`` (either format) and credential variables from ``env``.

    A missing file gives the defaults unless ``required`` is set (an explicit ``--config``).
    """
    raw: dict[str, Any] = {}
    lines: dict[str, int] = {}
    if path is not None and path.exists():
        document = read_yaml(path)
        raw, lines = document.tree, document.lines
    elif required:
        raise InvalidRequestError(f"config file {path} does not exist: check --config")
    return parse_config(raw, env or {}, source=str(path or "<defaults>"), lines=lines)


def parse_config(
    raw: Mapping[str, Any],
    env: Mapping[str, str],
    source: str,
    lines: Mapping[str, int] | None = None,
) -> BackupConfig:
    """Build a :class:`BackupConfig` from the parsed YAML mapping and credential variables.

    ``lines`` maps dotted keys to their line in ``source``, for messages; no message ever
    quotes a value (a value may be a secret).
    """
    reader = ConfigReader(raw, source, lines or {})
    version = reader.choice("configVersion", "v1", ("v1", "v2"))
    config = _v2(reader) if version == "v2" else _v1(reader, has_file=bool(raw))
    reader.check(INERT[version])
    reader.refuse_unread(tuple(INERT[version]))
    return apply_credential_env(config, env)


def _v1(reader: ConfigReader, has_file: bool) -> BackupConfig:
    """milvus-backup 0.5's keys."""
    milvus = MilvusConfig(
        address=reader.host("milvus.address", "localhost"),
        port=reader.port("milvus.port", 19530),
        user=reader.text("milvus.user", ""),
        password=reader.text("milvus.password", ""),
        tls_mode=reader.integer("milvus.tlsMode", 0, choices=(0, 1, 2)),
        ca_cert_path=reader.text("milvus.caCertPath", ""),
        server_name=reader.text("milvus.serverName", ""),
        mtls_cert_path=reader.text("milvus.mtlsCertPath", ""),
        mtls_key_path=reader.text("milvus.mtlsKeyPath", ""),
    )
    for prefix in ("", "backup"):
        reader.choice(_v1_key("minio.storageType", prefix), "minio", S3_PROVIDERS)
        reader.unsupported(_v1_key("minio.token", prefix), "session tokens")
        reader.unsupported(_v1_key("minio.useIAM", prefix), "IAM credentials")
        reader.unsupported(_v1_key("minio.iamEndpoint", prefix), "IAM credentials")
    reader.choice("storage.storageType", "minio", S3_PROVIDERS)
    reader.choice("storage.backupStorageType", "minio", S3_PROVIDERS)
    reader.choice("minio.cloudProvider", "minio", S3_PROVIDERS)
    storage = StorageConfig(
        address=reader.host("minio.address", "localhost"),
        port=reader.port("minio.port", 9000),
        access_key=reader.text("minio.accessKeyID", "minioadmin"),
        secret_key=reader.text("minio.secretAccessKey", "minioadmin"),
        use_ssl=reader.flag("minio.useSSL", False),
        bucket=reader.bucket("minio.bucketName", "milvus-bucket"),
        root_path=reader.text("minio.rootPath", "file").strip("/"),
        region=reader.text("minio.region", ""),
    )
    # v0.5.16: cmp.Or(backupRootPath, rootPath, "backup") -- with no file at all, "backup"
    root_default = storage.root_path if has_file else "backup"
    backup_storage = StorageConfig(
        address=reader.host("minio.backupAddress", storage.address),
        port=reader.port("minio.backupPort", storage.port),
        access_key=reader.text("minio.backupAccessKeyID", storage.access_key),
        secret_key=reader.text("minio.backupSecretAccessKey", storage.secret_key),
        use_ssl=reader.flag("minio.backupUseSSL", storage.use_ssl),
        bucket=reader.bucket("minio.backupBucketName", storage.bucket),
        root_path=reader.text("minio.backupRootPath", root_default).strip("/"),
        region=reader.text("minio.backupRegion", storage.region),
    )
    gc_pause = GcPause(
        enabled=reader.flag("backup.gcPause.enable", True),
        seconds=reader.bounded("backup.gcPause.seconds", GcPause.seconds, MAX_GC_PAUSE),
        address=reader.url("backup.gcPause.address"),
    )
    keys = ("copydata", "backupCollection", "restoreCollection", "importJob")
    parallelism = tuple(f"backup.parallelism.{key}" for key in keys)
    config = _assemble(
        reader, milvus, (storage, backup_storage), parallelism, "backup.keepTempFiles"
    )
    return replace(config, gc_pause=gc_pause)


def _v1_key(key: str, prefix: str) -> str:
    """``minio.token`` and its backup twin ``minio.backupToken``."""
    if not prefix:
        return key
    section, _, name = key.partition(".")
    return f"{section}.{prefix}{name[0].upper()}{name[1:]}"


def _v2(reader: ConfigReader) -> BackupConfig:
    """milvus-backup's current keys (``configVersion: v2``)."""
    milvus = MilvusConfig(
        address=reader.host("milvus.grpc.address", "localhost"),
        port=reader.port("milvus.grpc.port", 19530),
        user=reader.text("milvus.user", ""),
        password=reader.text("milvus.password", ""),
        tls_mode=_TLS_MODES[reader.choice("milvus.grpc.tlsMode", "disabled", tuple(_TLS_MODES))],
        ca_cert_path=reader.text("milvus.grpc.caCertPath", ""),
        server_name=reader.text("milvus.grpc.serverName", ""),
        mtls_cert_path=reader.text("milvus.grpc.mtlsCertPath", ""),
        mtls_key_path=reader.text("milvus.grpc.mtlsKeyPath", ""),
        rest_endpoint=reader.url("milvus.rest.endpoint"),
    )
    storage = _v2_storage(reader, "milvus.storage", None)
    backup_storage = _v2_storage(reader, "backup.storage", storage)
    gc_pause = GcPause(
        enabled=reader.flag("backup.pauseGC", True),
        address=reader.url("milvus.management.endpoint"),
    )
    reader.choice("transfer.mode", "auto", ("auto",))
    parallelism = ("transfer.concurrency", "backup.concurrency.collections",
                   "restore.concurrency.collections", "restore.concurrency.importJobs")  # fmt: skip
    config = _assemble(
        reader, milvus, (storage, backup_storage), parallelism, "restore.keepTempFiles"
    )
    per_job = reader.positive("restore.maxSegmentsPerImportJob", 256)
    parallelism_v2 = replace(config.parallelism, segments_per_import_job=per_job)
    return replace(config, gc_pause=gc_pause, parallelism=parallelism_v2)


def _assemble(
    reader: ConfigReader,
    milvus: MilvusConfig,
    storages: tuple[StorageConfig, StorageConfig],
    parallelism: tuple[str, ...],
    keep_temp_files: str,
) -> BackupConfig:
    """The settings every format has, under the format's own key names: ``parallelism``
    names copy, backup-collection, restore-collection and import-job concurrency."""
    defaults = Parallelism()
    copy, backup, restore, imports = parallelism
    return BackupConfig(
        milvus=milvus,
        storage=storages[0],
        backup_storage=storages[1],
        parallelism=Parallelism(
            copy_data=reader.positive(copy, defaults.copy_data),
            backup_collection=reader.positive(backup, defaults.backup_collection),
            restore_collection=reader.positive(restore, defaults.restore_collection),
            import_job=reader.positive(imports, defaults.import_job),
        ),
        timeouts=_timeouts(reader),
        keep_temp_files=reader.flag(keep_temp_files, False),
    )


def _v2_storage(reader: ConfigReader, at: str, inherit: StorageConfig | None) -> StorageConfig:
    """``milvus.storage`` or ``backup.storage`` (which inherits all but rootPath)."""
    base = inherit or StorageConfig()
    reader.choice(f"{at}.provider", "minio", S3_PROVIDERS)
    reader.choice(f"{at}.auth.type", "static", ("static",))
    for key in ("sessionToken", "accountKey", "credentialsFile", "endpoint"):
        reader.unsupported(f"{at}.auth.{key}", f"auth.{key}")
    reader.unsupported(f"{at}.accountName", "Azure storage")
    if inherit is not None:
        reader.unsupported(f"{at}.milvusAddress", "snapshot backups")
        reader.unsupported(f"{at}.milvusPort", "snapshot backups")
    return StorageConfig(
        address=reader.host(f"{at}.address", base.address),
        port=reader.port(f"{at}.port", base.port),
        access_key=reader.text(f"{at}.auth.accessKeyID", base.access_key),
        secret_key=reader.text(f"{at}.auth.secretAccessKey", base.secret_key),
        use_ssl=reader.flag(f"{at}.useSSL", base.use_ssl),
        bucket=reader.bucket(f"{at}.bucketName", base.bucket),
        root_path=reader.text(f"{at}.rootPath", "backup" if inherit else base.root_path).strip("/"),
        region=reader.text(f"{at}.region", base.region),
    )


def _timeouts(reader: ConfigReader) -> Timeouts:
    """Our ``timeouts:`` section (seconds), in either format."""
    defaults = Timeouts()
    return Timeouts(
        **{
            name: reader.seconds(
                f"timeouts.{_camel(name)}",
                getattr(defaults, name),
                TIMEOUT_LIMITS[name],
                least=1.0 if name == "writer_silence" else 0.01,  # renewed 12 times as often
            )
            for name in Timeouts.__dataclass_fields__
        }
    )


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


class ConfigReader:
    """Looks up dotted keys in the YAML tree, checks their types and remembers what it read."""

    def __init__(self, raw: Mapping[str, Any], source: str, lines: Mapping[str, int]) -> None:
        self._raw = raw
        self.source = source
        self._lines = lines
        self._read: set[str] = set()

    def _get(self, key: str) -> Any:
        self._read.add(key)
        node: Any = self._raw
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return None
            node = node[part]
        return node

    def _at(self, key: str) -> str:
        line = f", line {self._lines[key]}" if key in self._lines else ""
        return f"{self.source}{line}"

    def bounded(self, key: str, default: int, most: int) -> int:
        number = self.positive(key, default)
        if number > most:
            raise self._fail(key, f"at most {most}")
        return number

    def url(self, key: str) -> str:
        """An http(s) URL, or "" when the key is absent."""
        value = self.text(key, "")
        problem = http_url_problem(value) if value else None
        if problem:
            raise self._fail(key, f"an http:// or https:// URL ({problem})")
        return value

    def _fail(self, key: str, expected: str, value: Any = None) -> InvalidRequestError:
        """Name the file, line and key, never the value (it may be a secret)."""
        return InvalidRequestError(
            f"{self._at(key)}: {key} must be {expected} (the value is not shown)"
        )

    def check(self, types: Mapping[str, str]) -> None:
        """Read each of these keys with its type (``text``, ``flag``...), for nothing else."""
        defaults: dict[str, Any] = {"text": "", "texts": [], "flag": False, "integer": 0}
        for key, kind in types.items():
            getattr(self, kind)(key, defaults[kind])

    def refuse_unread(self, inert: tuple[str, ...]) -> None:
        """Refuse the first key of the file that was neither read nor known to be inert.

        A key left empty (null, or ``{}``) whose keys are known, ``zillizCloud:`` with all
        under it commented out, is no key at all, as in milvus-backup (``flattenAny`` drops
        it)."""
        known = self._read | set(inert)
        for key, value in _leaf_keys(self._raw):
            if key in known:
                continue
            if value in (None, {}) and any(name.startswith(key + ".") for name in known):
                continue
            raise InvalidRequestError(
                f"{self._at(key)}: unknown key {key}: milvus-backup-operator does not know "
                "it; remove it or fix its spelling (see the README's configuration section)"
            )

    def unsupported(self, key: str, what: str) -> None:
        """Refuse ``key`` unless it is absent or at its zero value (``"false"`` too, which
        milvus-backup reads as false)."""
        value = self._get(key)
        if isinstance(value, str) and _GO_BOOLS.get(value) is False:
            return
        if value not in (None, "", False, 0, [], {}):
            raise InvalidRequestError(
                f"{self._at(key)}: {key}: {what} not supported by milvus-backup-operator; "
                "remove it (only S3-compatible storage with an access key pair is)"
            )

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(key, default)
        if value not in choices:
            raise self._fail(key, f"one of {', '.join(choices)} here")
        return value

    def text(self, key: str, default: str) -> str:
        """Text. milvus-backup would also take a number or true/false and print it again
        (``fmt.Sprint``: ``0755`` as 493, ``1.10`` as 1.1, ``True`` as true): refused, as
        surely not meant, with the fix both tools take."""
        value = self._get(key)
        if value is None or value == "":
            return default
        if not isinstance(value, str):
            raise self._fail(key, _NOT_TEXT if isinstance(value, list | dict) else _TEXT)
        if _CONTROL.search(value):
            raise self._fail(key, "free of control characters (newlines, tabs, NUL)")
        return value

    def texts(self, key: str, default: list[str]) -> list[str]:
        """A YAML list of text (``param.List``: a list, no empty item)."""
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self._fail(key, "a YAML list (- item) of strings (put them in quotes)")
        if any(_CONTROL.search(item) for item in value):
            raise self._fail(key, "free of control characters (newlines, tabs, NUL)")
        return value

    def host(self, key: str, default: str) -> str:
        """A host name or IP address: no scheme, path, port or spaces."""
        value = self.text(key, default)
        if not _HOST.fullmatch(value):
            raise self._fail(key, "a host name or IP address (no http://, path or port)")
        return value

    def bucket(self, key: str, default: str) -> str:
        """A bucket name as S3 servers take it."""
        value = self.text(key, default)
        if not _BUCKET.fullmatch(value):
            raise self._fail(key, "a bucket name (3-63 letters, digits, '.', '-' or '_')")
        return value

    def integer(self, key: str, default: int, choices: tuple[int, ...] = ()) -> int:
        """A whole number in decimal digits, or such digits quoted (``strconv.ParseInt``,
        as milvus-backup takes them). Refused where milvus-backup would take it too: an
        integral float (37395.0), and forms Go and YAML 1.1 read otherwise (0755, 0x1F)."""
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, str) and _QUOTED_INT.fullmatch(value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._fail(key, _INTEGER)
        if choices and value not in choices:
            raise self._fail(key, f"one of {list(choices)}")
        return value

    def port(self, key: str, default: int) -> int:
        number = self.integer(key, default)
        if not 0 < number < 65536:
            raise self._fail(key, "a port between 1 and 65535")
        return number

    def positive(self, key: str, default: int) -> int:
        number = self.integer(key, default)
        if number < 1:
            raise self._fail(key, "at least 1")
        return number

    def seconds(self, key: str, default: float, limit: float, least: float = 0.01) -> float:
        """Our own ``timeouts:``: a number of seconds, whole or not, from ``least`` to
        ``limit``."""
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= least:
            raise self._fail(key, f"a number of seconds, at least {least:g}")
        if not value <= limit:  # NaN too
            raise self._fail(key, f"at most {limit:g} seconds")
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        """A YAML boolean, or text Go's ``strconv.ParseBool`` takes, as milvus-backup reads
        a flag (``param/value.go`` ``parseAny``): not ``yes``/``on`` (YAML 1.1), not ``1``."""
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value in _GO_BOOLS:
            return _GO_BOOLS[value]
        raise self._fail(key, _FLAG)


def _leaf_keys(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every dotted key of the tree whose value is not a mapping (a value, a list, empty)."""
    for key, value in node.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from _leaf_keys(value, dotted + ".")
        else:
            yield dotted, value
