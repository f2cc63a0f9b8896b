"""The real Milvus 2.3.5 standalone (PyPI ``milvus``), keeping its binlogs in the S3 gateway.

The ``milvus`` package writes the config and unpacks the binary; we run the binary ourselves in
its own process group, on free ports only: the proxy, the coordinators and nodes, the metrics /
health port, and the embedded etcd (moved off 2379/2380 through ``etcd.config.path``). So
several Milvus can run at once, and a leftover one never blocks the next.
"""

from __future__ import annotations

import fcntl
import os
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .rgw import (
    DEFAULT_BUCKET,
    HOST,
    Daemon,
    S3Endpoint,
    StackError,
    free_ports,
    port_is_free,
    spawn,
    stop_daemon,
    wait_for,
)

#: Template keys of ``MilvusServerConfig`` that are listen ports (``etcd_port`` is separate).
PORT_KEYS = (
    "proxy_port",
    "proxy_internal_port",
    "root_coord_port",
    "query_coord_port",
    "query_node_port",
    "index_coord_port",
    "index_node_port",
    "data_coord_port",
    "data_node_port",
)
STOP_GRACE = 2.0


ROOT_USER, ROOT_PASSWORD = "root", "Milvus"  # Milvus's default account


@dataclass(frozen=True)
class MilvusEndpoint:
    """Where Milvus' proxy answers gRPC."""

    host: str
    port: int

    @property
    def uri(self) -> str:
        """``http://host:port``, as pymilvus' ``MilvusClient`` wants it."""
        return f"http://{self.host}:{self.port}"


@dataclass
class MilvusProcess:
    """A running Milvus standalone and what it was started with."""

    dir: Path
    endpoint: MilvusEndpoint
    daemon: Daemon
    bucket: str
    root_path: str
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def log(self) -> Path:
        """Milvus' stdout/stderr (its own log files are in ``dir/logs``)."""
        return self.daemon.log

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL it after a short wait, wait for its ports to free."""
        stop_daemon(self.daemon, grace=STOP_GRACE)
        wait_for(
            lambda: all(port_is_free(p) for p in self.ports.values()),
            what="Milvus ports to be released",
            timeout=15,
        )


def binaries_dir() -> Path:
    """Unpack the ``milvus`` wheel's binary and libraries once into a shared cache; return it.

    ``MBO_MILVUS_CACHE`` overrides the cache folder (default ``~/.cache/mbo-stack/milvus-X``).
    """
    import milvus

    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mbo-stack"
    cache = Path(os.environ.get("MBO_MILVUS_CACHE") or default / f"milvus-{milvus.__version__}")
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        milvus._initialize_data_files(str(cache))  # no-op when the md5 files match
    return cache / "bin"


def _pick_ports() -> dict[str, int]:
    """Free ports for every listener of one Milvus."""
    names = [*PORT_KEYS, "etcd_port", "etcd_peer_port", "metrics_port"]
    return dict(zip(names, free_ports(len(names)), strict=True))


def _write_config(
    dir: Path,
    s3: S3Endpoint,
    bucket: str,
    root_path: str,
    ports: dict[str, int],
    *,
    authorization: bool = False,
) -> None:
    """Write ``dir/configs/milvus.yaml`` (through MilvusServerConfig) and the embedded etcd's."""
    from milvus import MilvusServerConfig

    cfg = MilvusServerConfig(data_dir=str(dir), **{k: ports[k] for k in (*PORT_KEYS, "etcd_port")})
    settings: dict[str, object] = {
        "common.storageType": "minio",
        "minio.address": s3.host,
        "minio.port": s3.port,
        "minio.accessKeyID": s3.access_key,
        "minio.secretAccessKey": s3.secret_key,
        "minio.useSSL": "true" if s3.secure else "false",
        "minio.bucketName": bucket,
        "minio.rootPath": root_path,
    }
    for key, value in settings.items():
        cfg.set(key, value)
    cfg.set("authorization_enabled", authorization)
    cfg.resolve()
    etcd_yaml = dir / "configs" / "embedEtcd.yaml"
    etcd_yaml.write_text(_etcd_yaml(ports))
    _patch_etcd_section(dir / "configs" / "milvus.yaml", etcd_yaml, ports["etcd_port"])


def _etcd_yaml(ports: dict[str, int]) -> str:
    """Config of the embedded etcd: client and peer URLs on our free ports."""
    client = f"http://{HOST}:{ports['etcd_port']}"
    peer = f"http://{HOST}:{ports['etcd_peer_port']}"
    return (
        "name: milvus\n"
        f"listen-client-urls: {client}\n"
        f"advertise-client-urls: {client}\n"
        f"listen-peer-urls: {peer}\n"
        f"initial-advertise-peer-urls: {peer}\n"
        f"initial-cluster: milvus={peer}\n"
    )


def _patch_etcd_section(milvus_yaml: Path, etcd_yaml: Path, etcd_port: int) -> None:
    """Point ``etcd.endpoints`` at 127.0.0.1 and add ``etcd.config.path`` (not in the template)."""
    text = milvus_yaml.read_text()
    old = f"  endpoints: localhost:{etcd_port}\n"
    if old not in text:
        raise StackError(f"unexpected etcd section in {milvus_yaml}")
    new = f"  endpoints: {HOST}:{etcd_port}\n  config:\n    path: {etcd_yaml}\n"
    milvus_yaml.write_text(text.replace(old, new, 1))


def _environment(dir: Path, bin_dir: Path, metrics_port: int) -> dict[str, str]:
    """The environment ``MilvusServer.start`` gives the binary, plus an explicit config dir."""
    env = dict(os.environ)
    env.update(
        DEPLOY_MODE="STANDALONE",
        METRICS_PORT=str(metrics_port),
        MILVUS_RUN_DIR=str(dir / "run"),
        MILVUSCONF=f"{dir / 'configs'}/",
        LD_LIBRARY_PATH=":".join(filter(None, [str(bin_dir), env.get("LD_LIBRARY_PATH")])),
    )
    return env


def _healthy(metrics_port: int) -> bool:
    """True once Milvus' /healthz says OK."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{metrics_port}/healthz", timeout=2) as resp:
            return b"OK" in resp.read()
    except (OSError, urllib.error.URLError):
        return False


def _answers(endpoint: MilvusEndpoint) -> bool:
    """True once pymilvus can connect and read the server version."""
    from pymilvus import MilvusException, connections, utility

    alias = f"stack-probe-{uuid.uuid4().hex[:8]}"
    try:
        connections.connect(  # Milvus's default root account; ignored without authorization
            alias, host=endpoint.host, port=str(endpoint.port), timeout=5,
            user=ROOT_USER, password=ROOT_PASSWORD,
        )  # fmt: skip
        return bool(utility.get_server_version(using=alias))
    except (MilvusException, OSError):
        return False
    finally:
        connections.disconnect(alias)


def start_milvus(
    dir: Path,
    s3: S3Endpoint,
    bucket: str = DEFAULT_BUCKET,
    root_path: str = "file",
    *,
    timeout: float = 180.0,
    die_with_parent: bool = False,
    authorization: bool = False,
) -> MilvusProcess:
    """Start a fresh Milvus in ``dir`` (created; must not hold an earlier Milvus' data).

    Its binlogs go to ``s3``'s ``bucket`` (created if missing) under ``root_path``. Returns once
    ``/healthz`` is OK and pymilvus reads the server version (as ``root`` with
    ``authorization``: users, roles and grants enforced); on failure or timeout the process
    group is killed and StackError carries the log tail.
    """
    dir = dir.resolve()
    if (dir / "data").exists():
        raise StackError(f"{dir} already holds a Milvus: give start_milvus a fresh folder")
    dir.mkdir(parents=True, exist_ok=True)
    s3.ensure_bucket(bucket)
    ports = _pick_ports()
    _write_config(dir, s3, bucket, root_path, ports, authorization=authorization)
    bin_dir = binaries_dir()
    daemon = spawn(
        "milvus",
        [str(bin_dir / "milvus"), "run", "standalone"],
        out=dir / "logs" / "milvus.out",
        expect="milvus run standalone",
        env=_environment(dir, bin_dir, ports["metrics_port"]),
        cwd=dir,
        die_with_parent=die_with_parent,
    )
    endpoint = MilvusEndpoint(HOST, ports["proxy_port"])
    proc = MilvusProcess(dir, endpoint, daemon, bucket, root_path, ports)
    try:
        check_metrics = lambda: _healthy(ports["metrics_port"])  # noqa: E731
        wait_for(check_metrics, what="Milvus /healthz", timeout=timeout, watch=[daemon])
        wait_for(lambda: _answers(endpoint), what="Milvus gRPC", timeout=30, watch=[daemon])
    except BaseException:
        proc.stop()
        raise
    return proc
