"""``check``: can we reach Milvus and both buckets with this configuration?"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from .config import BackupConfig
from .errors import BackupError
from .layout import join
from .milvus import connect
from .storage import ObjectStore, copy_object


@dataclass(frozen=True)
class CheckItem:
    name: str
    ok: bool
    detail: str


@dataclass
class CheckReport:
    items: list[CheckItem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(item.ok for item in self.items)

    def render(self) -> str:
        """A report a human reads top to bottom: one line per check, then the verdict."""
        lines = [f"[{'OK' if i.ok else 'FAIL'}] {i.name}: {i.detail}" for i in self.items]
        verdict = "all checks passed" if self.ok else "some checks failed: fix them first"
        return "\n".join([*lines, verdict])


def run_check(config: BackupConfig) -> CheckReport:
    """Probe Milvus, its bucket, and the backup bucket (write, server-side copy, delete)."""
    report = CheckReport()
    milvus_store = ObjectStore(config.storage, config.timeouts)
    backup_store = ObjectStore(config.backup_storage, config.timeouts)

    def probe(name: str, action: Callable[[], str]) -> None:
        try:
            report.items.append(CheckItem(name, True, action()))
        except BackupError as exc:
            report.items.append(CheckItem(name, False, str(exc)))

    probe("milvus", lambda: _milvus(config))
    probe("milvus storage", lambda: _milvus_bucket(milvus_store, config.storage.root_path))
    probe("backup storage", lambda: _backup_bucket(milvus_store, backup_store, config))
    return report


def _milvus(config: BackupConfig) -> str:
    with connect(config.milvus, config.timeouts) as milvus:
        version = milvus.version()
        databases = milvus.list_databases()
    return f"Milvus {version} at {config.milvus.endpoint}, databases: {', '.join(databases)}"


def _milvus_bucket(store: ObjectStore, root_path: str) -> str:
    store.require_bucket()
    if not root_path:
        return f"{store.describe()} reachable, but minio.rootPath is empty: Milvus never uses ''"
    found = store.has_any(join(root_path) + "/")
    note = "holds Milvus data" if found else "has no Milvus data yet (check minio.rootPath)"
    return f"{store.describe()}, rootPath {root_path!r} {note}"


def _backup_bucket(
    milvus_store: ObjectStore, backup_store: ObjectStore, config: BackupConfig
) -> str:
    backup_store.ensure_bucket()
    probe_key = join(config.backup_storage.root_path, f".check-{uuid.uuid4().hex}")
    payload = b"milvus-backup-operator check"
    backup_store.put(probe_key, payload)
    try:
        copy_object(backup_store, probe_key, backup_store, probe_key + ".copy", len(payload))
    finally:
        backup_store.delete(probe_key)
        backup_store.delete(probe_key + ".copy")
    same = backup_store.config.same_service(milvus_store.config)
    mode = "server-side copy" if same else "streaming copy"
    return (
        f"{backup_store.describe()}, rootPath {config.backup_storage.root_path!r}: write, copy "
        f"and delete work ({mode} from Milvus's bucket)"
    )
