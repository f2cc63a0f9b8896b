"""From a resource's spec and its Secrets' values to the engine's configuration."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..engine.config import BackupConfig, MilvusConfig, Parallelism, StorageConfig, Timeouts
from .specs import MilvusSpec, StorageSpec


@dataclass(frozen=True)
class Credentials:
    """Values read from Secrets; never printed (``repr`` hides them)."""

    milvus_user: str = ""
    milvus_password: str = field(default="", repr=False)
    storage: tuple[str, str] = field(default=("", ""), repr=False)
    backup_storage: tuple[str, str] = field(default=("", ""), repr=False)


def engine_config(
    milvus: MilvusSpec,
    storage: StorageSpec,
    backup_storage: StorageSpec,
    credentials: Credentials,
    timeouts: Timeouts | None = None,
) -> BackupConfig:
    """The engine's config for one backup or restore."""
    return BackupConfig(
        milvus=MilvusConfig(
            address=milvus.address,
            port=milvus.port,
            user=credentials.milvus_user,
            password=credentials.milvus_password,
            tls_mode=1 if milvus.tls else 0,
        ),
        storage=_storage(storage, credentials.storage),
        backup_storage=_storage(backup_storage, credentials.backup_storage),
        parallelism=Parallelism(),
        timeouts=timeouts or Timeouts(),
    )


def _storage(spec: StorageSpec, keys: tuple[str, str]) -> StorageConfig:
    return StorageConfig(
        address=spec.host,
        port=spec.port,
        access_key=keys[0],
        secret_key=keys[1],
        use_ssl=spec.use_ssl,
        bucket=spec.bucket,
        root_path=spec.root_path,
        region=spec.region,
    )
