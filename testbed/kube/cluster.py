"""A real Kubernetes API for e2e tests: etcd 3.4, kube-apiserver, kube-controller-manager 1.20.2.

The binaries come from ``build.sh`` (built once from Debian's sources, then cached). Everything of
one cluster lives under one folder: certificates made with the ``openssl`` CLI, a static token
file (an admin in ``system:masters`` plus any users the tests register up front), kubeconfigs,
etcd's data and the logs. Only the control plane runs: no kubelet, scheduler or container
runtime, so Pods and Jobs are stored but never run.

    cluster = start_cluster(tmp_path, die_with_parent=True,
                            extra_tokens={"alice": ("alice-token", ["team-a"])})
    cluster.kubeconfig, cluster.server, cluster.admin_token, cluster.ca_path
    cluster.kubeconfig_for_token("alice-token", tmp_path / "alice.kubeconfig")
    cluster.kubectl("get", "namespaces")
    cluster.stop()
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import yaml

from testbed.stack.rgw import (
    HOST,
    Daemon,
    StackError,
    free_ports,
    run,
    spawn,
    stop_daemons,
    wait_for,
)

KUBE_VERSION = "1.20.2"
BUILD_SCRIPT = Path(__file__).with_name("build.sh")
BINARIES = ("kube-apiserver", "kube-controller-manager", "etcd", "kubectl")
CLUSTER_JSON = "cluster.json"
SERVICE_CIDR = "10.96.0.0/24"
SERVICE_IP = "10.96.0.1"
ISSUER = "https://kubernetes.default.svc.cluster.local"
CONTROLLERS = "garbagecollector,namespace,serviceaccount,serviceaccount-token"
ADMIN_USER = "admin"
KCM_USER = "system:kube-controller-manager"
MASTERS = "system:masters"
#: What one cluster leaves in its folder; removed before the folder is reused.
STATE = ("etcd", "pki", "logs", "kubectl-cache", "kcm-certs", "tokens.csv", CLUSTER_JSON)
STATE_GLOBS = ("*.kubeconfig", "kubeconfig")

#: ``extra_tokens``: user name -> (bearer token, groups).
Tokens = Mapping[str, tuple[str, Sequence[str]]]


class ClusterError(StackError):
    """The cluster could not be built, started or stopped."""


# --------------------------------------------------------------------------- binaries


def cache_dir() -> Path:
    """Where ``build.sh`` keeps the binaries: ``${MBO_CACHE:-~/.cache/mbo}/kube-1.20.2``."""
    root = os.environ.get("MBO_CACHE") or str(Path.home() / ".cache" / "mbo")
    return Path(root) / f"kube-{KUBE_VERSION}"


def bin_dir() -> Path:
    """The folder holding kube-apiserver, kube-controller-manager, etcd and kubectl."""
    return cache_dir() / "bin"


def kubectl_path() -> Path:
    """The cached kubectl (Debian's kubernetes-client 1.20.2, the server's own version)."""
    return bin_dir() / "kubectl"


def is_built(bins: Path | None = None) -> bool:
    """True when every binary is in the cache."""
    bins = bins or bin_dir()
    return all(os.access(bins / name, os.X_OK) for name in BINARIES)


def ensure_built() -> Path:
    """Run ``build.sh`` (instant when cached, about 4-5 min cold); return the binaries' folder."""
    if not is_built():
        done = subprocess.run(["bash", str(BUILD_SCRIPT)], check=False)
        if done.returncode != 0 or not is_built():
            raise ClusterError(f"{BUILD_SCRIPT} failed with exit code {done.returncode}")
    return bin_dir()


# --------------------------------------------------------------------------- files


def _check_csv_safe(*values: str) -> None:
    """Refuse values that would break the static token file's CSV."""
    for value in values:
        if not value or any(c in value for c in ',"\n\r'):
            raise ClusterError(f"not usable in a token file: {value!r}")


def _token_file(path: Path, users: Tokens) -> None:
    """Write a static token file: ``token,user,uid,"group1,group2"`` per user."""
    lines = []
    for user, (token, groups) in users.items():
        _check_csv_safe(user, token, *groups)
        lines.append(f'{token},{user},{user},"{",".join(groups)}"')
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)


def kubeconfig_text(server: str, ca_path: Path, user: str, token: str) -> str:
    """A kubeconfig (YAML) for one token user on this server."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "mbo-kube",
                "cluster": {"server": server, "certificate-authority": str(ca_path)},
            }
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {
                "name": "mbo-kube",
                "context": {"cluster": "mbo-kube", "user": user, "namespace": "default"},
            }
        ],
        "current-context": "mbo-kube",
    }
    return yaml.safe_dump(config, sort_keys=False)


_OPENSSL_CNF = """[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = IP:127.0.0.1, IP:{service_ip}, DNS:localhost, DNS:kubernetes, \
DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local
"""


def _openssl(*args: str | Path) -> None:
    """Run the ``openssl`` CLI."""
    run(["openssl", *map(str, args)])


def make_pki(pki: Path) -> None:
    """A CA, the apiserver's serving certificate (127.0.0.1 and the service names), the SA key."""
    pki.mkdir(parents=True, exist_ok=True)
    cnf = pki / "openssl.cnf"
    cnf.write_text(_OPENSSL_CNF.replace("{service_ip}", SERVICE_IP))
    ca_key, ca_crt, key, csr = (
        pki / n for n in ("ca.key", "ca.crt", "apiserver.key", "apiserver.csr")
    )
    _openssl("genrsa", "-out", ca_key, "2048")
    _openssl("req", "-x509", "-new", "-key", ca_key, "-out", ca_crt, "-days", "3650",
             "-config", cnf, "-extensions", "ca", "-subj", "/CN=mbo-kube-ca")  # fmt: skip
    _openssl("genrsa", "-out", key, "2048")
    _openssl("req", "-new", "-key", key, "-out", csr, "-config", cnf, "-subj", "/CN=kube-apiserver")
    _openssl("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-days", "3650",
             "-set_serial", f"0x{secrets.token_hex(8)}", "-out", pki / "apiserver.crt",
             "-extfile", cnf, "-extensions", "server")  # fmt: skip
    _openssl("genrsa", "-out", pki / "sa.key", "2048")
    _openssl("rsa", "-in", pki / "sa.key", "-pubout", "-out", pki / "sa.pub")
    for private in pki.glob("*.key"):
        private.chmod(0o600)


# --------------------------------------------------------------------------- the cluster


@dataclass
class Cluster:
    """A running etcd + kube-apiserver + kube-controller-manager, and its files under ``dir``."""

    dir: Path
    server: str
    admin_token: str
    ca_path: Path
    kubeconfig: Path
    tokens: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    daemons: list[Daemon] = field(default_factory=list, repr=False)
    bins: Path = field(default_factory=bin_dir, repr=False)

    def kubeconfig_for_token(self, token: str, path: Path, user: str | None = None) -> Path:
        """Write a kubeconfig that authenticates with ``token``; return ``path``.

        ``user`` only names the kubeconfig's user entry (default: the token's registered name).
        """
        known = {t: u for u, (t, _) in self.tokens.items()} | {self.admin_token: ADMIN_USER}
        user = user or known.get(token, "token-user")
        path.write_text(kubeconfig_text(self.server, self.ca_path, user, token))
        path.chmod(0o600)
        return path

    def kubectl(
        self,
        *args: str,
        kubeconfig: Path | None = None,
        input: str | None = None,
        check: bool = True,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run the cached kubectl against this cluster (admin unless ``kubeconfig`` is given)."""
        cmd = [str(self.bins / "kubectl"), "--kubeconfig", str(kubeconfig or self.kubeconfig)]
        cmd += ["--cache-dir", str(self.dir / "kubectl-cache"), *args]
        done = subprocess.run(
            cmd, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and done.returncode != 0:
            raise ClusterError(
                f"kubectl {' '.join(args)} failed ({done.returncode}):\n{done.stderr}"
            )
        return done

    def api(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        """Call the apiserver (admin token by default): ``(status, JSON body or text)``.

        HTTP errors are returned, not raised; ``body`` is sent as JSON (for a status
        subresource, which kubectl 1.20 cannot patch: ``content_type`` merge-patch+json).
        """
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.server + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {token or self.admin_token}")
        if data is not None:
            request.add_header("Content-Type", content_type)
        context = ssl.create_default_context(cafile=str(self.ca_path))
        try:
            with urllib.request.urlopen(request, timeout=10, context=context) as response:
                return response.status, _decode(response.headers, response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, _decode(exc.headers, exc.read())

    def api_get(self, path: str, token: str | None = None) -> tuple[int, Any]:
        """GET ``path`` (see :meth:`api`)."""
        return self.api("GET", path, token=token)

    def to_json(self) -> dict[str, Any]:
        """What ``cluster.json`` holds: endpoints, credentials, ports, pids."""
        return {
            "dir": str(self.dir),
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "ca_path": str(self.ca_path),
            "admin_token": self.admin_token,
            "tokens": {user: {"token": t, "groups": g} for user, (t, g) in self.tokens.items()},
            "ports": self.ports,
            "bin_dir": str(self.bins),
            "daemons": [d.to_json() for d in self.daemons],
        }

    def write_json(self) -> Path:
        """Write ``dir/cluster.json``; return its path."""
        path = self.dir / CLUSTER_JSON
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        path.chmod(0o600)
        return path

    def stop(self) -> None:
        """Kill exactly the pids this cluster started: controller-manager, apiserver, then etcd.

        Our own children are reaped too, so that no zombie is left behind.
        """
        stop_daemons(list(reversed(self.daemons)))
        for daemon in self.daemons:
            if daemon.popen is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    daemon.popen.wait(timeout=5)


def _decode(headers: Message, raw: bytes) -> Any:
    """A response body: parsed JSON when the server says it is JSON, else text."""
    if "json" in (headers.get("Content-Type") or ""):
        return json.loads(raw or b"null")
    return raw.decode(errors="replace")


def _ok(cluster: Cluster, path: str) -> bool:
    """True when ``path`` answers 200 (any error counts as not yet)."""
    try:
        return cluster.api_get(path)[0] == 200
    except (OSError, ValueError):
        return False


def _etcd_healthy(port: int) -> bool:
    """True when etcd's ``/health`` says so."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/health", timeout=2) as response:
            return bool(json.loads(response.read()).get("health") == "true")
    except (OSError, ValueError):
        return False


def _default_sa_token(cluster: Cluster) -> bool:
    """True once the token controller gave ``default/default`` its token secret."""
    try:
        status, body = cluster.api_get("/api/v1/namespaces/default/serviceaccounts/default")
    except (OSError, ValueError):
        return False
    return status == 200 and bool(body.get("secrets"))


def _has_default_route() -> bool:
    """True when the kernel has an IPv4 or IPv6 default route (apiserver advertise default)."""
    for table, zero in (("/proc/net/route", "00000000"), ("/proc/net/ipv6_route", "0" * 32)):
        try:
            rows = Path(table).read_text().splitlines()
        except OSError:
            continue
        if any(row.split()[1:2] == [zero] for row in rows if row.split()):
            return True
    return False


def _spawn(cluster: Cluster, name: str, args: list[str], die_with_parent: bool) -> Daemon:
    """Start one control-plane binary from the cache, logging to ``logs/NAME.log``."""
    daemon = spawn(
        name,
        [str(cluster.bins / name), *args],
        out=cluster.dir / "logs" / f"{name}.log",
        expect=f"{cluster.dir}{os.sep}",  # every daemon's flags name files under dir
        die_with_parent=die_with_parent,
    )
    cluster.daemons.append(daemon)
    cluster.write_json()
    return daemon


def _start_etcd(cluster: Cluster, timeout: float, die_with_parent: bool) -> None:
    """etcd on two free ports, fresh data dir, no fsync."""
    client, peer = (
        f"http://{HOST}:{cluster.ports['etcd']}",
        f"http://{HOST}:{cluster.ports['etcd_peer']}",
    )
    args = [
        "--name=default",
        f"--data-dir={cluster.dir / 'etcd'}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=default={peer}",
        "--unsafe-no-fsync",
        "--logger=zap",
        "--log-outputs=stderr",
    ]
    etcd = _spawn(cluster, "etcd", args, die_with_parent)
    healthy = lambda: _etcd_healthy(cluster.ports["etcd"])  # noqa: E731
    wait_for(healthy, what="etcd", timeout=timeout, watch=[etcd])


def _start_apiserver(cluster: Cluster, timeout: float, die_with_parent: bool) -> None:
    """kube-apiserver on 127.0.0.1, token auth + RBAC; wait until ``/readyz`` is OK."""
    pki = cluster.dir / "pki"
    args = [
        f"--etcd-servers=http://{HOST}:{cluster.ports['etcd']}",
        f"--bind-address={HOST}",
        f"--secure-port={cluster.ports['apiserver']}",
        f"--tls-cert-file={pki / 'apiserver.crt'}",
        f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--token-auth-file={cluster.dir / 'tokens.csv'}",
        "--authorization-mode=RBAC",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        f"--service-account-issuer={ISSUER}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--enable-priority-and-fairness=false",
        "--profiling=false",
    ]
    if not _has_default_route():  # else the apiserver cannot pick an address to advertise
        args.append("--advertise-address=192.0.2.1")
    _spawn(cluster, "kube-apiserver", args, die_with_parent)
    ready = lambda: _ok(cluster, "/readyz")  # noqa: E731
    wait_for(ready, what="kube-apiserver /readyz", timeout=timeout, watch=cluster.daemons)


def _start_controller_manager(cluster: Cluster, timeout: float, die_with_parent: bool) -> None:
    """kube-controller-manager (GC, namespace, service-account and token controllers)."""
    pki = cluster.dir / "pki"
    args = [
        f"--kubeconfig={cluster.dir / 'kube-controller-manager.kubeconfig'}",
        f"--controllers={CONTROLLERS}",
        f"--service-account-private-key-file={pki / 'sa.key'}",
        f"--root-ca-file={cluster.ca_path}",
        "--leader-elect=false",
        "--port=0",  # 1.20 still serves an insecure port, 0.0.0.0:10252, by default
        f"--bind-address={HOST}",
        f"--secure-port={cluster.ports['controller_manager']}",
        f"--cert-dir={cluster.dir / 'kcm-certs'}",
        "--profiling=false",
    ]
    _spawn(cluster, "kube-controller-manager", args, die_with_parent)
    token = lambda: _default_sa_token(cluster)  # noqa: E731
    what = "kube-controller-manager: token of ServiceAccount default/default"
    wait_for(token, what=what, timeout=timeout, watch=cluster.daemons)


def _recorded(dir: Path) -> list[Daemon]:
    """The daemons listed in ``dir/cluster.json`` (none if there is no such file)."""
    path = dir / CLUSTER_JSON
    if not path.exists():
        return []
    return [Daemon.from_json(d) for d in json.loads(path.read_text())["daemons"]]


def stop_recorded(dir: Path) -> list[str]:
    """Stop the daemons recorded in ``dir/cluster.json``; return the names that were running."""
    daemons = _recorded(dir)
    running = [d.name for d in daemons if d.running()]
    stop_daemons(list(reversed(daemons)))
    return running


def _state_paths(dir: Path) -> list[Path]:
    """What an earlier cluster left in ``dir`` (see ``STATE`` and ``STATE_GLOBS``)."""
    found = [dir / name for name in STATE if (dir / name).exists()]
    return found + [path for pattern in STATE_GLOBS for path in dir.glob(pattern)]


def _clear_previous(dir: Path) -> None:
    """Refuse a folder whose cluster still runs, or that another tool owns; else drop old state."""
    leftovers = _state_paths(dir)
    if not (dir / CLUSTER_JSON).exists():
        if leftovers:
            names = sorted(p.name for p in leftovers)
            raise ClusterError(f"{dir} holds {names} but no {CLUSTER_JSON}: not a cluster's folder")
        return
    alive = [d.name for d in _recorded(dir) if d.running()]
    if alive:
        raise ClusterError(f"a cluster still runs in {dir} ({alive}): stop it first")
    for path in leftovers:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def _prepare(dir: Path, bins: Path, extra_tokens: Tokens) -> Cluster:
    """Pick ports, make certificates, token file and kubeconfigs; return the (unstarted) cluster.

    ``cluster.json`` is written first and again after each start, so that ``down`` (or the
    next start) finds whatever a crashed start left running.
    """
    names = ("etcd", "etcd_peer", "apiserver", "controller_manager")
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    server = f"https://{HOST}:{ports['apiserver']}"
    admin, kcm = secrets.token_hex(16), secrets.token_hex(16)
    users: dict[str, tuple[str, list[str]]] = {
        ADMIN_USER: (admin, [MASTERS]),
        KCM_USER: (kcm, [MASTERS]),
    }
    tokens = {user: (token, list(groups)) for user, (token, groups) in extra_tokens.items()}
    if clash := set(users) & set(tokens):
        raise ClusterError(f"extra_tokens may not redefine {sorted(clash)}")
    ca_path = dir / "pki" / "ca.crt"
    cluster = Cluster(dir, server, admin, ca_path, dir / "kubeconfig", tokens, ports, [], bins)
    cluster.write_json()
    (dir / "logs").mkdir(parents=True, exist_ok=True)
    make_pki(dir / "pki")
    _token_file(dir / "tokens.csv", {**users, **tokens})
    cluster.kubeconfig_for_token(admin, cluster.kubeconfig)
    kcm_config = dir / "kube-controller-manager.kubeconfig"
    kcm_config.write_text(kubeconfig_text(server, ca_path, KCM_USER, kcm))
    return cluster


def start_cluster(
    dir: Path,
    *,
    die_with_parent: bool = False,
    extra_tokens: Tokens | None = None,
    timeout: float = 60.0,
    bins: Path | None = None,
) -> Cluster:
    """Start etcd, kube-apiserver and kube-controller-manager under ``dir``; wait until usable.

    Usable means ``/readyz`` is OK and ServiceAccount ``default/default`` has its token (so
    Pods, Jobs and Deployments are accepted). ``extra_tokens`` maps user names to ``(token,
    groups)`` for the static token file, which cannot change after the start: register every
    user a test needs here (no RBAC is granted to them). ``dir`` may hold an earlier, stopped
    cluster; its state is replaced. ``timeout`` bounds each wait; a failure kills whatever was
    started and raises :class:`ClusterError` (or ``StackError``) with the log tail. With
    ``die_with_parent`` the kernel SIGKILLs the daemons when the starting *thread* exits.
    """
    bins = bins or bin_dir()
    if not is_built(bins):
        raise ClusterError(f"no kube binaries in {bins}: run `python -m testbed.kube build` first")
    dir = dir.resolve()
    dir.mkdir(parents=True, exist_ok=True)
    _clear_previous(dir)
    cluster = _prepare(dir, bins, extra_tokens or {})
    try:
        _start_etcd(cluster, timeout, die_with_parent)
        _start_apiserver(cluster, timeout, die_with_parent)
        _start_controller_manager(cluster, timeout, die_with_parent)
    except BaseException:
        cluster.stop()
        raise
    return cluster
