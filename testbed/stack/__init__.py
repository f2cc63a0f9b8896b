"""The integration-test stack: a real S3 server (Ceph RADOS Gateway) and the real Milvus 2.3.5.

    stack = start_stack(tmp_path, die_with_parent=True)   # about 5 s
    stack.milvus.uri, stack.s3.endpoint, stack.config_path  # backup.yaml for milvus-backup
    stack_config(stack)                                      # that file, read by the engine
    stack.restart_milvus(bucket="other", root_path="files")  # a fresh Milvus, same gateway
    stack.stop()

``python -m testbed.stack up|down|run --dir DIR`` drives the same from a shell.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .milvus import MilvusEndpoint, MilvusProcess, start_milvus
from .rgw import (
    DEFAULT_BUCKET,
    Daemon,
    RadosGateway,
    S3Endpoint,
    StackError,
    start_rgw,
    stop_daemons,
)

if TYPE_CHECKING:
    from milvus_backup_operator.engine.config import BackupConfig

__all__ = [
    "BACKUP_ROOT_PATH",
    "DEFAULT_BUCKET",
    "MilvusEndpoint",
    "MilvusProcess",
    "RadosGateway",
    "S3Endpoint",
    "Stack",
    "StackError",
    "stack_config",
    "start_milvus",
    "start_rgw",
    "start_stack",
    "stop_recorded",
]

BACKUP_ROOT_PATH = "backup"
STACK_JSON = "stack.json"
CONFIG_NAME = "backup.yaml"


@dataclass
class Stack:
    """A running gateway + Milvus, and the files describing them under ``dir``."""

    dir: Path
    s3: S3Endpoint
    milvus: MilvusEndpoint
    config_path: Path
    rgw: RadosGateway = field(repr=False)
    milvus_process: MilvusProcess = field(repr=False)
    die_with_parent: bool = field(default=False, repr=False)
    _generation: int = field(default=1, repr=False)

    @property
    def bucket(self) -> str:
        """The bucket the current Milvus keeps its binlogs in."""
        return self.milvus_process.bucket

    @property
    def root_path(self) -> str:
        """The root path of the current Milvus' binlogs in its bucket."""
        return self.milvus_process.root_path

    def daemons(self) -> list[Daemon]:
        """Every daemon of the stack, in stopping order (Milvus first, monitor last)."""
        return [self.milvus_process.daemon, *reversed(self.rgw.daemons)]

    def restart_milvus(
        self, bucket: str = DEFAULT_BUCKET, root_path: str = "file"
    ) -> MilvusEndpoint:
        """Replace Milvus by a fresh one (new data dir, empty etcd) on the same gateway.

        The bucket is created if missing. ``backup.yaml`` and ``stack.json`` are rewritten to
        point at the new Milvus and its bucket/root path; the backup location does not change.
        """
        self.milvus_process.stop()
        self._generation += 1
        self.milvus_process = start_milvus(
            self.dir / f"milvus-{self._generation}",
            self.s3,
            bucket,
            root_path,
            die_with_parent=self.die_with_parent,
        )
        self.milvus = self.milvus_process.endpoint
        self.write_files()
        return self.milvus

    def backup_config(self) -> dict[str, Any]:
        """A milvus-backup v1 config for this stack."""
        return {
            "milvus": {"address": self.milvus.host, "port": self.milvus.port},
            "minio": {
                "address": self.s3.host,
                "port": self.s3.port,
                "accessKeyID": self.s3.access_key,
                "secretAccessKey": self.s3.secret_key,
                "useSSL": self.s3.secure,
                "bucketName": self.bucket,
                "rootPath": self.root_path,
                "backupBucketName": DEFAULT_BUCKET,
                "backupRootPath": BACKUP_ROOT_PATH,
            },
        }

    def to_json(self) -> dict[str, Any]:
        """What ``stack.json`` holds: endpoints, keys, pids."""
        mp = self.milvus_process
        return {
            "dir": str(self.dir),
            "config_path": str(self.config_path),
            "s3": {
                "host": self.s3.host,
                "port": self.s3.port,
                "endpoint": self.s3.endpoint,
                "access_key": self.s3.access_key,
                "secret_key": self.s3.secret_key,
            },
            "milvus": {
                "host": self.milvus.host,
                "port": self.milvus.port,
                "uri": self.milvus.uri,
                "bucket": mp.bucket,
                "root_path": mp.root_path,
                "dir": str(mp.dir),
                "ports": mp.ports,
            },
            "daemons": [d.to_json() for d in self.daemons()],
        }

    def write_files(self) -> None:
        """Write ``stack.json`` and the milvus-backup config ``backup.yaml``."""
        self.config_path.write_text(yaml.safe_dump(self.backup_config(), sort_keys=False))
        (self.dir / STACK_JSON).write_text(json.dumps(self.to_json(), indent=2) + "\n")

    def stop(self) -> None:
        """Stop Milvus, then the gateway; kills exactly the pids the stack started."""
        try:
            self.milvus_process.stop()
        finally:
            self.rgw.stop()


def stack_config(stack: Stack) -> BackupConfig:
    """The engine's configuration for ``stack``: its ``backup.yaml``, read as the CLI reads it."""
    from milvus_backup_operator.engine.config_file import load_config  # the stack needs none

    return load_config(stack.config_path, {}, required=True)


def _recorded_daemons(base_dir: Path) -> list[Daemon]:
    """The daemons listed in ``base_dir/stack.json`` (none if there is no such file)."""
    path = base_dir / STACK_JSON
    if not path.exists():
        return []
    return [Daemon.from_json(d) for d in json.loads(path.read_text())["daemons"]]


def stop_recorded(base_dir: Path) -> list[str]:
    """Stop the daemons recorded in ``base_dir/stack.json``; return the names that were running."""
    daemons = _recorded_daemons(base_dir)
    running = [d.name for d in daemons if d.running()]
    stop_daemons(daemons)
    return running


def _clear_previous(base_dir: Path) -> None:
    """Refuse a folder whose stack still runs; otherwise drop an earlier run's state."""
    alive = [d.name for d in _recorded_daemons(base_dir) if d.running()]
    if alive:
        raise StackError(f"a stack is still running in {base_dir} ({alive}): stop it first")
    for sub in [base_dir / "rgw", *base_dir.glob("milvus-*")]:
        shutil.rmtree(sub, ignore_errors=True)
    for name in (STACK_JSON, CONFIG_NAME):
        (base_dir / name).unlink(missing_ok=True)


def start_stack(
    base_dir: Path,
    *,
    bucket: str = DEFAULT_BUCKET,
    root_path: str = "file",
    die_with_parent: bool = False,
) -> Stack:
    """Start the gateway (``base_dir/rgw``) and Milvus (``base_dir/milvus-1``); write the files.

    Reuses ``base_dir`` if the stack recorded there is no longer running. With
    ``die_with_parent`` the kernel SIGKILLs every daemon when the *thread* that started it
    exits (call it from the main thread, as pytest fixtures are); ``up`` leaves it off.
    """
    base_dir = base_dir.resolve()
    base_dir.mkdir(parents=True, exist_ok=True)
    _clear_previous(base_dir)
    rgw = start_rgw(base_dir / "rgw", bucket=bucket, die_with_parent=die_with_parent)
    try:
        proc = start_milvus(
            base_dir / "milvus-1", rgw.s3, bucket, root_path, die_with_parent=die_with_parent
        )
    except BaseException:
        rgw.stop()
        raise
    stack = Stack(
        base_dir, rgw.s3, proc.endpoint, base_dir / CONFIG_NAME, rgw, proc, die_with_parent
    )
    try:
        stack.write_files()
    except BaseException:
        stack.stop()
        raise
    return stack
