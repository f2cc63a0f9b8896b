"""Typed configuration, read from milvus-backup's ``configs/backup.yaml`` (v1 schema).

Only credentials may come from the environment (milvus-backup #197: Kubernetes injects
``MILVUS_PORT=tcp://...`` into every Pod, so addresses and ports are never read from it).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from .errors import InvalidRequestError
from .locations import Location, require_separate

log = logging.getLogger(__name__)

#: Environment variables that may carry credentials, as milvus-backup names them.
CREDENTIAL_ENV = {
    "MILVUS_USER": ("milvus", "user"),
    "MILVUS_PASSWORD": ("milvus", "password"),
    "MINIO_ACCESS_KEY": ("storage", "access_key"),
    "MINIO_SECRET_KEY": ("storage", "secret_key"),
    "MINIO_BACKUP_ACCESS_KEY": ("backup_storage", "access_key"),
    "MINIO_BACKUP_SECRET_KEY": ("backup_storage", "secret_key"),
}

MILVUS_LOCATION_KEYS = "minio.bucketName/minio.rootPath"
BACKUP_LOCATION_KEYS = "minio.backupBucketName/minio.backupRootPath"


@dataclass(frozen=True)
class MilvusConfig:
    """How to reach Milvus's gRPC proxy."""

    address: str = "localhost"
    port: int = 19530
    user: str = ""
    password: str = field(default="", repr=False)
    tls_mode: int = 0  # 0 none, 1 server-side TLS, 2 mutual TLS
    ca_cert_path: str = ""
    server_name: str = ""
    mtls_cert_path: str = ""
    mtls_key_path: str = ""

    @property
    def endpoint(self) -> str:
        return f"{self.address}:{self.port}"


@dataclass(frozen=True)
class StorageConfig:
    """One S3-compatible bucket and the prefix inside it."""

    address: str = "localhost"
    port: int = 9000
    access_key: str = field(default="minioadmin", repr=False)
    secret_key: str = field(default="minioadmin", repr=False)
    use_ssl: bool = False
    bucket: str = "milvus-bucket"
    root_path: str = "file"
    region: str = ""

    @property
    def endpoint(self) -> str:
        return f"{self.address}:{self.port}"

    def same_service(self, other: StorageConfig) -> bool:
        """True when a server-side copy between the two is possible (same endpoint, same keys)."""
        return (
            self.address,
            self.port,
            self.use_ssl,
            self.region,
            self.access_key,
            self.secret_key,
        ) == (
            other.address,
            other.port,
            other.use_ssl,
            other.region,
            other.access_key,
            other.secret_key,
        )


@dataclass(frozen=True)
class Parallelism:
    """Concurrency limits (milvus-backup's ``backup.parallelism``)."""

    copy_data: int = 128
    backup_collection: int = 4
    restore_collection: int = 2
    import_job: int = 768


@dataclass(frozen=True)
class Timeouts:
    """Bounds, in seconds, on every wait (our addition: milvus-backup waits forever)."""

    connect: float = 10.0
    rpc: float = 60.0
    flush: float = 600.0
    import_job: float = 3600.0
    index: float = 1800.0
    load: float = 1800.0
    #: a backup being written whose marker has not been renewed for this long is taken for
    #: the leftovers of a stopped writer (deletable); the writer renews it 12 times as often
    writer_silence: float = 120.0


@dataclass(frozen=True)
class BackupConfig:
    """Everything the engine needs to talk to Milvus and both buckets."""

    milvus: MilvusConfig = field(default_factory=MilvusConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    backup_storage: StorageConfig = field(default_factory=lambda: StorageConfig(root_path="backup"))
    parallelism: Parallelism = field(default_factory=Parallelism)
    timeouts: Timeouts = field(default_factory=Timeouts)
    keep_temp_files: bool = False

    def __post_init__(self) -> None:
        """No configuration whose backups could overlap Milvus's data can exist."""
        require_separate(
            Location(self.storage.bucket, self.storage.root_path, MILVUS_LOCATION_KEYS),
            Location(
                self.backup_storage.bucket, self.backup_storage.root_path, BACKUP_LOCATION_KEYS
            ),
        )


def load_config(
    path: Path | None, env: Mapping[str, str] | None = None, *, required: bool = False
) -> BackupConfig:
    """Read ``path`` (milvus-backup's v1 YAML) and credential variables from ``env``.

    A missing file gives the defaults unless ``required`` is set (an explicit ``--config``).
    """
    raw: dict[str, Any] = {}
    lines: dict[str, int] = {}
    if path is not None and path.exists():
        raw, lines = _read_yaml(path)
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
    reader = _Reader(raw, source, lines or {})
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
    backup_storage = StorageConfig(
        address=reader.host("minio.backupAddress", storage.address),
        port=reader.port("minio.backupPort", storage.port),
        access_key=reader.text("minio.backupAccessKeyID", storage.access_key),
        secret_key=reader.text("minio.backupSecretAccessKey", storage.secret_key),
        use_ssl=reader.flag("minio.backupUseSSL", storage.use_ssl),
        bucket=reader.bucket("minio.backupBucketName", storage.bucket),
        root_path=reader.text("minio.backupRootPath", "backup").strip("/"),
        region=reader.text("minio.backupRegion", storage.region),
    )
    parallelism = Parallelism(
        copy_data=reader.positive("backup.parallelism.copydata", 128),
        backup_collection=reader.positive("backup.parallelism.backupCollection", 4),
        restore_collection=reader.positive("backup.parallelism.restoreCollection", 2),
        import_job=reader.positive("backup.parallelism.importJob", 768),
    )
    defaults = Timeouts()
    timeouts = Timeouts(
        **{
            name: reader.seconds(f"timeouts.{_camel(name)}", getattr(defaults, name))
            for name in Timeouts.__dataclass_fields__
        }
    )
    config = BackupConfig(
        milvus=milvus,
        storage=storage,
        backup_storage=backup_storage,
        parallelism=parallelism,
        timeouts=timeouts,
        keep_temp_files=reader.flag("backup.keepTempFiles", False),
    )
    return apply_credential_env(config, env)


def apply_credential_env(config: BackupConfig, env: Mapping[str, str]) -> BackupConfig:
    """Override credentials from milvus-backup's environment variables (and nothing else)."""
    sections: dict[str, Any] = {
        "milvus": config.milvus,
        "storage": config.storage,
        "backup_storage": config.backup_storage,
    }
    for variable, (section, attribute) in CREDENTIAL_ENV.items():
        value = env.get(variable)
        if value:
            sections[section] = replace(sections[section], **{attribute: value})
    return replace(config, **sections)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _read_yaml(path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    """The file's mapping, and the line of each dotted key (for messages)."""
    try:
        text = path.read_text()
        data = yaml.safe_load(text)
        lines = _key_lines(yaml.compose(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        raise InvalidRequestError(f"config file {path} is not valid YAML {_where(exc)}") from None
    except yaml.YAMLError:
        raise InvalidRequestError(f"config file {path} is not valid YAML") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise InvalidRequestError(f"cannot read config file {path}: {reason}") from None
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise InvalidRequestError(f"config file {path} must hold a mapping at the top level")
    return data, lines


def _where(exc: yaml.MarkedYAMLError) -> str:
    """``at line L, column C (problem)``, with anything quoted from the file left out."""
    mark = exc.problem_mark or exc.context_mark
    where = f"at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = re.sub(r"(['\"]).*?\1", "...", exc.problem or "")
    return f"{where} ({problem}): fix the syntax there" if problem else f"{where}: fix it"


def _key_lines(node: yaml.Node | None, prefix: str = "") -> dict[str, int]:
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            dotted = f"{prefix}{key.value}"
            lines[dotted] = key.start_mark.line + 1
            lines.update(_key_lines(value, dotted + "."))
    return lines


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HOST = re.compile(r"[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f:]+")
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{1,61}[A-Za-z0-9]")  # minio-py's own rule


class _Reader:
    """Looks up dotted keys in the YAML tree and checks their types."""

    def __init__(self, raw: Mapping[str, Any], source: str, lines: Mapping[str, int]) -> None:
        self._raw = raw
        self._source = source
        self._lines = lines

    def _get(self, key: str) -> Any:
        node: Any = self._raw
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return None
            node = node[part]
        return node

    def _fail(self, key: str, expected: str, value: Any) -> InvalidRequestError:
        """Name the file, line and key, never the value (it may be a secret)."""
        line = f", line {self._lines[key]}" if key in self._lines else ""
        return InvalidRequestError(
            f"{self._source}{line}: {key} must be {expected} (the value is not shown)"
        )

    def text(self, key: str, default: str) -> str:
        value = self._get(key)
        if value is None or value == "":
            return default
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self._fail(key, "a string", value)
        if _CONTROL.search(str(value)):
            raise self._fail(key, "free of control characters (newlines, tabs, NUL)", value)
        return str(value)

    def host(self, key: str, default: str) -> str:
        """A host name or IP address: no scheme, path, port or spaces."""
        value = self.text(key, default)
        if not _HOST.fullmatch(value):
            raise self._fail(key, "a host name or IP address (no http://, path or port)", value)
        return value

    def bucket(self, key: str, default: str) -> str:
        """A bucket name as S3 servers take it."""
        value = self.text(key, default)
        if not _BUCKET.fullmatch(value):
            raise self._fail(key, "a bucket name (3-63 letters, digits, '.', '-' or '_')", value)
        return value

    def integer(self, key: str, default: int, choices: tuple[int, ...] = ()) -> int:
        value = self._get(key)
        if value is None or value == "":
            return default
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise self._fail(key, "an integer", value) from None
        if isinstance(value, bool) or (choices and number not in choices):
            raise self._fail(key, f"one of {list(choices)}" if choices else "an integer", value)
        return number

    def port(self, key: str, default: int) -> int:
        number = self.integer(key, default)
        if not 0 < number < 65536:
            raise self._fail(key, "a port between 1 and 65535", number)
        return number

    def positive(self, key: str, default: int) -> int:
        number = self.integer(key, default)
        if number < 1:
            raise self._fail(key, "at least 1", number)
        return number

    def seconds(self, key: str, default: float) -> float:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise self._fail(key, "a positive number of seconds", value)
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self._get(key)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise self._fail(key, "true or false", value)
