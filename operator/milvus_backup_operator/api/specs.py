"""Specs of MilvusBackup and MilvusRestore, parsed from the resource into typed, checked data.

The CRD's schema already refuses most bad input at ``kubectl apply``; these checks repeat
what the schema cannot say (and what Kubernetes 1.20 cannot say with CEL rules).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from ..engine.config import TIMEOUT_LIMITS, Timeouts
from ..engine.errors import InvalidRequestError
from ..engine.locations import Location, require_separate
from ..engine.names import validate_backup_name, validate_collection_suffix
from ..engine.selection import CollectionRef, parse_list
from .job_template import JobTemplate, JobTemplateError, parse_job_template

RETAIN, DELETE = "Retain", "Delete"


class SpecError(InvalidRequestError):
    """The resource's spec cannot be acted on; the message says which field to fix."""


@dataclass(frozen=True)
class MilvusSpec:
    address: str
    port: int = 19530
    credentials_secret: str = ""  # keys: username, password
    tls: bool = False


@dataclass(frozen=True)
class StorageSpec:
    endpoint: str  # host:port
    bucket: str = "milvus-bucket"
    root_path: str = "file"
    use_ssl: bool = False
    region: str = ""
    credentials_secret: str = ""
    access_key_key: str = "accesskey"
    secret_key_key: str = "secretkey"

    @property
    def host(self) -> str:
        return self.endpoint.rpartition(":")[0] or self.endpoint

    @property
    def port(self) -> int:
        _, sep, port = self.endpoint.rpartition(":")
        return int(port) if sep else (443 if self.use_ssl else 80)


@dataclass(frozen=True)
class BackupSpec:
    milvus: MilvusSpec
    storage: StorageSpec
    backup_storage: StorageSpec
    backup_name: str
    collections: tuple[CollectionRef, ...] = ()
    deletion_policy: str = RETAIN
    rbac: bool = False
    ttl: timedelta | None = None  # delete the resource this long after it completed
    job_template: JobTemplate = field(default_factory=JobTemplate)
    timeouts: Timeouts | None = None  # None: the engine's defaults


@dataclass(frozen=True)
class RestoreSpec:
    backup_ref: str = ""
    backup_name: str = ""
    milvus: MilvusSpec | None = None
    storage: StorageSpec | None = None
    backup_storage: StorageSpec | None = None
    collections: tuple[CollectionRef, ...] = ()
    collection_suffix: str = ""
    collection_renames: tuple[tuple[CollectionRef, CollectionRef], ...] = ()
    drop_existing: bool = False
    rebuild_index: bool = False
    load: bool = False
    restore_aliases: bool = False
    rbac: bool = False
    use_v2_restore: bool = False
    dry_run: bool = False
    verify: bool = False
    job_template: JobTemplate = field(default_factory=JobTemplate)
    timeouts: Timeouts | None = None  # None: the engine's defaults

    @property
    def target(self) -> str:
        """The Milvus it restores into, as ``address:port``."""
        return f"{self.milvus.address}:{self.milvus.port}" if self.milvus else ""


def backup_name_for(resource_name: str) -> str:
    """A valid milvus-backup name from a Kubernetes name (``nightly-2026`` -> ``nightly_2026``)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", resource_name)
    return name if re.match(r"[A-Za-z_]", name) else f"_{name}"


def parse_backup(resource_name: str, spec: Mapping[str, Any]) -> BackupSpec:
    """A MilvusBackup's spec, with defaults applied and every rule checked."""
    storage = _storage(_section(spec, "storage"), "spec.storage")
    backup_storage = _storage(
        _section(spec, "backupStorage"), "spec.backupStorage", inherit=storage, root="backup"
    )
    _check_separate(storage, backup_storage)
    name = spec.get("backupName") or backup_name_for(resource_name)
    _checked("spec.backupName", validate_backup_name, name)
    return BackupSpec(
        milvus=_milvus(_section(spec, "milvus"), "spec.milvus"),
        storage=storage,
        backup_storage=backup_storage,
        backup_name=name,
        collections=tuple(_checked("spec.collections", parse_list, spec.get("collections"))),
        deletion_policy=_choice(spec, "deletionPolicy", (RETAIN, DELETE), RETAIN),
        rbac=bool(spec.get("rbac", False)),
        ttl=parse_duration(str(spec["ttl"]), "spec.ttl") if spec.get("ttl") else None,
        **job_settings(spec),
    )


def parse_restore(spec: Mapping[str, Any]) -> RestoreSpec:
    """A MilvusRestore's spec; the referenced backup's settings fill in the rest later."""
    ref, name = spec.get("backupRef", ""), spec.get("backupName", "")
    if bool(ref) == bool(name):
        raise SpecError("set exactly one of spec.backupRef (a MilvusBackup) or spec.backupName")
    if name:
        _checked("spec.backupName", validate_backup_name, name)
        if "backupStorage" not in spec:
            raise SpecError("spec.backupName needs spec.backupStorage: where the backup lives")
    suffix = spec.get("collectionSuffix", "")
    renames = spec.get("collectionRenames") or {}
    if suffix and renames:
        raise SpecError("set spec.collectionSuffix or spec.collectionRenames, not both")
    if suffix:
        _checked("spec.collectionSuffix", validate_collection_suffix, suffix)
    storage = _storage(spec["storage"], "spec.storage") if "storage" in spec else None
    backup_storage = spec.get("backupStorage")
    parsed = RestoreSpec(
        backup_ref=ref,
        backup_name=name,
        milvus=_milvus(spec["milvus"], "spec.milvus") if "milvus" in spec else None,
        storage=storage,
        backup_storage=(
            _storage(backup_storage, "spec.backupStorage", inherit=storage, root="backup")
            if backup_storage is not None
            else None
        ),
        collections=tuple(_checked("spec.collections", parse_list, spec.get("collections"))),
        collection_suffix=suffix,
        collection_renames=tuple(
            _checked("spec.collectionRenames", _rename, old, new) for old, new in renames.items()
        ),
        drop_existing=bool(spec.get("dropExistingCollection", False)),
        rebuild_index=bool(spec.get("rebuildIndex", spec.get("load", False))),  # load: indexed
        load=bool(spec.get("load", False)),
        restore_aliases=bool(spec.get("restoreAliases", False)),
        rbac=bool(spec.get("rbac", False)),
        use_v2_restore=bool(spec.get("useV2Restore", False)),
        dry_run=bool(spec.get("dryRun", False)),
        verify=bool(spec.get("verify", False)),
        **job_settings(spec),
    )
    if parsed.storage and parsed.backup_storage:
        _check_separate(parsed.storage, parsed.backup_storage)
    return parsed


def complete_restore(restore: RestoreSpec, backup: BackupSpec) -> RestoreSpec:
    """Fill what a restore leaves out from the MilvusBackup it refers to."""
    completed = replace(
        restore,
        backup_name=restore.backup_name or backup.backup_name,
        milvus=restore.milvus or backup.milvus,
        storage=restore.storage or backup.storage,
        backup_storage=restore.backup_storage or backup.backup_storage,
    )
    assert completed.storage and completed.backup_storage  # a MilvusBackup has both
    _check_separate(completed.storage, completed.backup_storage)
    return completed


def _check_separate(storage: StorageSpec, backup_storage: StorageSpec) -> None:
    """The backup location must not overlap Milvus's data (same rule as the engine's)."""
    _checked(
        "spec.backupStorage",
        require_separate,
        Location(storage.bucket, storage.root_path, "spec.storage.bucket/rootPath"),
        Location(
            backup_storage.bucket, backup_storage.root_path, "spec.backupStorage.rootPath/bucket"
        ),
    )


def _rename(old: str, new: str) -> tuple[CollectionRef, CollectionRef]:
    return CollectionRef.parse_one(old), CollectionRef.parse_one(new)


def _section(spec: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = spec.get(key) or {}
    if not isinstance(value, Mapping):
        raise SpecError(f"spec.{key} must be an object")
    return value


def _milvus(raw: Mapping[str, Any], where: str) -> MilvusSpec:
    if not raw.get("address"):
        raise SpecError(f"{where}.address is required: the Milvus proxy's host name")
    return MilvusSpec(
        address=str(raw["address"]),
        port=int(raw.get("port", 19530)),
        credentials_secret=str(raw.get("credentialsSecret", "")),
        tls=bool(raw.get("tls", False)),
    )


def _storage(
    raw: Mapping[str, Any], where: str, inherit: StorageSpec | None = None, root: str = "file"
) -> StorageSpec:
    base = inherit or StorageSpec(endpoint="", root_path=root)
    endpoint = str(raw.get("endpoint", base.endpoint))
    if not endpoint:
        raise SpecError(f"{where}.endpoint is required: the S3 endpoint as host:port")
    secret = raw.get("credentialsSecret", {})
    if isinstance(secret, str):
        secret = {"name": secret}
    return StorageSpec(
        endpoint=endpoint,
        bucket=str(raw.get("bucket", base.bucket)),
        root_path=str(raw.get("rootPath", root)).strip("/"),
        use_ssl=bool(raw.get("useSSL", base.use_ssl)),
        region=str(raw.get("region", base.region)),
        credentials_secret=str(secret.get("name", base.credentials_secret)),
        access_key_key=str(secret.get("accessKeyKey", base.access_key_key)),
        secret_key_key=str(secret.get("secretKeyKey", base.secret_key_key)),
    )


def _choice(spec: Mapping[str, Any], key: str, allowed: tuple[str, ...], default: str) -> str:
    value = spec.get(key, default)
    if value not in allowed:
        raise SpecError(f"spec.{key} must be one of {', '.join(allowed)}, not {value!r}")
    return str(value)


def _checked(where: str, check: Any, *args: Any) -> Any:
    try:
        return check(*args)
    except InvalidRequestError as exc:
        raise SpecError(f"{where}: {exc}") from None


def parse_duration(text: str, field: str) -> timedelta:
    """``30d``, ``12h``, ``1w2d``, ``90m``, ``45s``: a positive duration, or a refusal."""
    found = re.fullmatch(r"(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text.strip())
    if not text.strip() or found is None:
        raise SpecError(f"{field} {text!r} is not a duration: use e.g. 30d, 12h, 1w2d, 90m")
    weeks, days, hours, minutes, seconds = (int(g or 0) for g in found.groups())
    duration = timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    if duration <= timedelta(0):
        raise SpecError(f"{field} {text!r} must be longer than zero")
    return duration


DURATION_PATTERN = r"^(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?$"


# ---- the Job's settings: spec.jobTemplate and spec.timeouts --------------------------------

#: spec.timeouts keys (the engine's Timeouts, camelCased as in the configuration file's
#: ``timeouts:``) and their bounds in seconds; the CRD's schema says the same.
TIMEOUT_BOUNDS: dict[str, tuple[str, int, int]] = {
    "connect": ("connect", 1, TIMEOUT_LIMITS["connect"]),
    "rpc": ("rpc", 1, TIMEOUT_LIMITS["rpc"]),
    "flush": ("flush", 1, TIMEOUT_LIMITS["flush"]),
    "importJob": ("import_job", 1, TIMEOUT_LIMITS["import_job"]),
    "index": ("index", 1, TIMEOUT_LIMITS["index"]),
    "load": ("load", 1, TIMEOUT_LIMITS["load"]),
    "writerSilence": ("writer_silence", 12, TIMEOUT_LIMITS["writer_silence"]),
}


def job_settings(spec: Mapping[str, Any]) -> dict[str, Any]:
    """``job_template`` and ``timeouts`` of a BackupSpec or RestoreSpec."""
    try:
        template = parse_job_template(spec.get("jobTemplate"))
    except JobTemplateError as exc:
        raise SpecError(str(exc)) from None
    return {"job_template": template, "timeouts": parse_timeouts(spec.get("timeouts"))}


def parse_timeouts(raw: Any, where: str = "spec.timeouts") -> Timeouts | None:
    """The engine's Timeouts with the given ones changed; None when none is given."""
    if not raw:
        return None
    if not isinstance(raw, Mapping):
        raise SpecError(f"{where} must be an object")
    changes = {}
    for key, value in raw.items():
        if key not in TIMEOUT_BOUNDS:
            raise SpecError(
                f"{where}.{key}: unknown field (the fields are: {', '.join(TIMEOUT_BOUNDS)})"
            )
        name, low, high = TIMEOUT_BOUNDS[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise SpecError(f"{where}.{key}: seconds from {low} to {high}, not {value!r}")
        changes[name] = float(value)
    return replace(Timeouts(), **changes)
