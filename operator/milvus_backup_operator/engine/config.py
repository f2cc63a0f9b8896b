"""Typed configuration: what the engine needs to reach Milvus and both buckets.

``config_file`` reads it from milvus-backup's configuration file. Only credentials may come
from the environment (milvus-backup #197: Kubernetes injects ``MILVUS_PORT=tcp://...`` into
every Pod, so addresses and ports are never read from it).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import InvalidRequestError
from .locations import Location, require_separate

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
    rest_endpoint: str = ""  # its REST API (Milvus >= 2.4); default: http(s)://address:port

    @property
    def endpoint(self) -> str:
        return f"{self.address}:{self.port}"

    @property
    def rest_url(self) -> str:
        scheme = "https" if self.tls_mode else "http"
        return (self.rest_endpoint or f"{scheme}://{self.address}:{self.port}").rstrip("/")


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
    segments_per_import_job: int = 256  # with the v2 restore (milvus-backup's default)


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


#: the longest each timeout may be, in seconds: a longer one is a typo, not a plan (and the
#: sockets and clocks under it overflow); a writer silent for longer than the longest
#: ``writer_silence`` is taken for stopped by every reader (:class:`.reservation.Marker`)
TIMEOUT_LIMITS = {
    "connect": 600,
    "rpc": 3600,
    "flush": 86400,
    "import_job": 86400,
    "index": 86400,
    "load": 86400,
    "writer_silence": 3600,
}
MAX_GC_PAUSE = 30 * 24 * 3600  # seconds: a longer pause is a typo, not a plan


def http_url_problem(url: str) -> str | None:
    """Why ``url`` is not an http(s) URL a request can be sent to; None when it is one."""
    if any(c.isspace() or not c.isprintable() for c in url):
        return "it holds spaces or control characters"
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 (raises for a port that is not a number in range)
    except ValueError:
        return "its host or port does not parse"
    if parts.scheme not in ("http", "https"):
        return "it does not start with http:// or https://"
    if not parts.hostname:
        return "it names no host"
    if parts.username is not None or parts.password is not None:
        return "it holds a user or password (user:password@): give no credentials in it"
    return None


@dataclass(frozen=True)
class GcPause:
    """Pause Milvus's garbage collector while a backup copies (milvus-backup's gcPause)."""

    enabled: bool = True  # where the Milvus serves it (2.4 and later)
    seconds: int = 7200  # each pause; renewed at half of it while the backup runs
    address: str = ""  # its management endpoint; default http://<milvus.address>:9091
    #: whether Milvus's credentials may go to ``address``: the configuration's, not one a
    #: request names (:meth:`asked`)
    trusted: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.seconds <= MAX_GC_PAUSE:
            raise InvalidRequestError(
                f"gc pause seconds must be from 1 to {MAX_GC_PAUSE} (30 days), not {self.seconds}"
            )
        problem = http_url_problem(self.address) if self.address else None
        if problem:
            raise InvalidRequestError(
                "the GC pause address must be an http:// or https:// URL (Milvus's management "
                f"endpoint, e.g. http://milvus:9091): {problem}"
            )

    def endpoint(self, milvus: MilvusConfig) -> str:
        return (self.address or f"http://{milvus.address}:9091").rstrip("/")

    def asked(self, enable: bool, seconds: int, address: str) -> GcPause:
        """These settings with a request's (milvus-backup's ``gc_pause_*``): a request can
        turn the pause on, not off (``enable || config``, as v0.5.16's create handler)."""
        return GcPause(
            enabled=self.enabled or enable,
            seconds=seconds or self.seconds,
            address=address or self.address,
            trusted=self.trusted and address in ("", self.address),
        )


@dataclass(frozen=True)
class BackupConfig:
    """Everything the engine needs to talk to Milvus and both buckets."""

    milvus: MilvusConfig = field(default_factory=MilvusConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    backup_storage: StorageConfig = field(default_factory=lambda: StorageConfig(root_path="backup"))
    parallelism: Parallelism = field(default_factory=Parallelism)
    timeouts: Timeouts = field(default_factory=Timeouts)
    keep_temp_files: bool = False
    gc_pause: GcPause = field(default_factory=GcPause)
    #: seconds between two progress reports (a new phase and the end are reported at once):
    #: the one throttle of progress, set by whoever stores it (a status, a task, a terminal)
    progress_interval: float = 0.5

    def __post_init__(self) -> None:
        """No configuration whose backups could overlap Milvus's data can exist."""
        require_separate(
            Location(self.storage.bucket, self.storage.root_path, MILVUS_LOCATION_KEYS),
            Location(
                self.backup_storage.bucket, self.backup_storage.root_path, BACKUP_LOCATION_KEYS
            ),
        )


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
