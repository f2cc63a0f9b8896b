"""Credentials from Kubernetes Secrets: read through the API, or from files a Pod mounts.

Secrets are never copied into a Job's spec: the Job mounts them, and the Job runner reads the
files. The values go into the engine's config only, never into status, events or logs.
"""

from __future__ import annotations

import base64
from pathlib import Path

from kubernetes.client.exceptions import ApiException

from ..api.engine_config import Credentials, engine_config
from ..api.specs import BackupSpec, MilvusSpec, RestoreSpec, SpecError, StorageSpec
from ..engine.config import BackupConfig
from .client import core

MILVUS_KEYS = ("username", "password")


class SecretSource:
    """Where Secret values come from: the API (operator) or mounted files (Job)."""

    def read(self, secret: str, keys: tuple[str, ...]) -> tuple[str, ...]:
        raise NotImplementedError


class ApiSecrets(SecretSource):
    def __init__(self, namespace: str) -> None:
        self.namespace = namespace

    def read(self, secret: str, keys: tuple[str, ...]) -> tuple[str, ...]:
        try:
            data = core().read_namespaced_secret(secret, self.namespace).data or {}
        except ApiException as exc:
            if exc.status == 404:
                raise SpecError(
                    f"Secret {secret!r} not found in namespace {self.namespace!r}: create it"
                ) from None
            raise
        decoded = {key: base64.b64decode(value).decode() for key, value in data.items()}
        return tuple(_pick(secret, decoded, keys))


class MountedSecrets(SecretSource):
    """Secrets mounted as directories ``<root>/<secret name>/<key>``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def read(self, secret: str, keys: tuple[str, ...]) -> tuple[str, ...]:
        folder = self.root / secret
        if not folder.is_dir():
            raise SpecError(f"Secret {secret!r} is not mounted at {folder}")
        data = {p.name: p.read_text() for p in folder.iterdir() if p.is_file()}
        return tuple(_pick(secret, data, keys))


def _pick(secret: str, data: dict[str, str], keys: tuple[str, ...]) -> list[str]:
    missing = [key for key in keys if key not in data]
    if missing:
        present = ", ".join(sorted(data)) or "none"
        raise SpecError(
            f"Secret {secret!r} has no key {', '.join(repr(k) for k in missing)} "
            f"(it has: {present}): add it"
        )
    return [data[key] for key in keys]


def gather(source: SecretSource, spec: BackupSpec | RestoreSpec) -> Credentials:
    """Every credential a backup or restore needs, checked key by key."""
    milvus, storage, backup_storage = _targets(spec)
    user, password = (
        source.read(milvus.credentials_secret, MILVUS_KEYS)
        if milvus.credentials_secret
        else ("", "")
    )
    return Credentials(
        milvus_user=user,
        milvus_password=password,
        storage=_storage_keys(source, storage),
        backup_storage=_storage_keys(source, backup_storage),
    )


def config_for(source: SecretSource, spec: BackupSpec | RestoreSpec) -> BackupConfig:
    """The engine's configuration for ``spec``, with the credentials its Secrets hold and the
    resource's own timeouts."""
    return engine_config(*_targets(spec), gather(source, spec), spec.timeouts)


def _targets(spec: BackupSpec | RestoreSpec) -> tuple[MilvusSpec, StorageSpec, StorageSpec]:
    if spec.milvus is None or spec.storage is None or spec.backup_storage is None:
        raise SpecError("the restore has no Milvus or storage: set them, or use backupRef")
    return spec.milvus, spec.storage, spec.backup_storage


def _storage_keys(source: SecretSource, storage: StorageSpec) -> tuple[str, str]:
    if not storage.credentials_secret:
        return ("", "")
    access, secret = source.read(
        storage.credentials_secret, (storage.access_key_key, storage.secret_key_key)
    )
    return access, secret


def secret_names(spec: BackupSpec | RestoreSpec) -> list[str]:
    """The Secrets a Job must mount."""
    milvus, *storages = _targets(spec)
    names = [milvus.credentials_secret, *(s.credentials_secret for s in storages)]
    return sorted({name for name in names if name})
