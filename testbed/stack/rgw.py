"""A real S3 server for tests: a one-host Ceph cluster (mon + memstore OSD) and its RADOS Gateway.

Everything lives under one folder and runs without systemd. The module also holds the small
process helpers the whole stack shares: free ports, daemons started in their own process group
and stopped by pid (SIGTERM, then SIGKILL), bounded waits that fail with the daemon's log tail.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import signal
import socket
import string
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minio import Minio

DEFAULT_BUCKET = "milvus-bucket"
MEMSTORE_BYTES = 4 << 30
HOST = "127.0.0.1"
_PR_SET_PDEATHSIG = 1


class StackError(RuntimeError):
    """A stack component failed to start or stop."""


# --------------------------------------------------------------------------- process helpers


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct TCP ports that were free on 127.0.0.1 a moment ago."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def free_port() -> int:
    """Return one TCP port that was free on 127.0.0.1 a moment ago."""
    return free_ports(1)[0]


def port_is_free(port: int) -> bool:
    """True when nothing listens on ``127.0.0.1:port`` (TIME_WAIT leftovers do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def port_answers(port: int, host: str = HOST) -> bool:
    """True when a TCP connect to ``host:port`` succeeds."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


def tail(path: Path, lines: int = 25) -> str:
    """The last ``lines`` lines of a text file, or a note that it is missing."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no {path})"
    return "\n".join(text.splitlines()[-lines:])


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """``(state, pgrp)`` of a process from /proc, or None when it does not exist."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[2])


def _cmdline(pid: int) -> str:
    """The command line of a process, space separated ('' when gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) pids whose process group is ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _proc_stat(int(entry.name))
            if stat and stat[1] == pgid and stat[0] not in "ZX":
                members.append(int(entry.name))
    return members


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """Ask the kernel to SIGKILL this (child) process when its parent thread exits."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Daemon:
    """A process started as the leader of its own process group, known by its pid.

    ``expect`` is a substring of its command line: nothing is signalled unless a member of the
    group still matches it, so a recycled pid is never killed.
    """

    name: str
    pid: int
    expect: str
    log: Path
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    def members(self) -> list[int]:
        """Live pids of this daemon's process group (reaping our own child first)."""
        if self.popen is not None:
            self.popen.poll()
        return group_members(self.pid)

    def owned(self) -> list[int]:
        """Live group members whose command line still matches ``expect``."""
        return [pid for pid in self.members() if self.expect in _cmdline(pid)]

    def running(self) -> bool:
        """True while the daemon (or anything of its group) is alive."""
        return bool(self.owned())

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the daemon's process group if it is still ours."""
        if self.owned():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able record (for stack.json)."""
        return {"name": self.name, "pid": self.pid, "expect": self.expect, "log": str(self.log)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Daemon:
        """Rebuild a record written by :meth:`to_json` (no Popen: stop works by pid)."""
        return cls(data["name"], int(data["pid"]), data["expect"], Path(data["log"]))


def spawn(
    name: str,
    cmd: Sequence[str],
    *,
    out: Path,
    log: Path | None = None,
    expect: str | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    die_with_parent: bool = False,
) -> Daemon:
    """Start ``cmd`` in a new session (its own process group), stdout+stderr appended to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("ab") as sink:
        popen = subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            # The stack is started from one thread, so preexec_fn is safe here.
            preexec_fn=_die_with_parent if die_with_parent else None,  # noqa: PLW1509
        )
    return Daemon(name, popen.pid, expect or cmd[0], log or out, popen)


def _wait_gone(daemons: Sequence[Daemon], timeout: float) -> bool:
    """Wait until none of ``daemons`` has a live group member; True on success."""
    deadline = time.monotonic() + timeout
    while any(d.members() for d in daemons):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def stop_daemons(daemons: Sequence[Daemon], grace: float = 3.0, timeout: float = 15.0) -> None:
    """Stop daemons one after the other, in the given order (see :func:`stop_daemon`)."""
    for daemon in daemons:
        stop_daemon(daemon, grace, timeout)


def stop_daemon(daemon: Daemon, grace: float = 3.0, timeout: float = 15.0) -> None:
    """SIGTERM the daemon's group, SIGKILL it if still alive after ``grace`` s, wait until gone."""
    if not daemon.owned():
        daemon.members()  # reaps our own zombie child, if any
        return
    daemon.signal(signal.SIGTERM)
    if _wait_gone([daemon], grace):
        return
    daemon.signal(signal.SIGKILL)
    if not _wait_gone([daemon], timeout):
        raise StackError(f"{daemon.name}: pids {daemon.members()} survived SIGKILL")


def wait_for(
    check: Callable[[], bool],
    *,
    what: str,
    timeout: float,
    watch: Sequence[Daemon] = (),
    interval: float = 0.25,
) -> None:
    """Poll ``check`` until true; fail fast if a watched daemon dies, or after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not check():
        dead = [d for d in watch if not d.running()]
        if dead or time.monotonic() > deadline:
            names = ", ".join(d.name for d in dead)
            why = f"{names} exited" if dead else f"not ready in {timeout}s"
            logs = "\n".join(f"--- {d.name}: {d.log}\n{tail(d.log)}" for d in (dead or watch))
            raise StackError(f"{what}: {why}\n{logs}")
        time.sleep(interval)


def run(cmd: Sequence[str], timeout: float = 60.0) -> str:
    """Run a short command; return its stdout or raise StackError with its stderr."""
    try:
        res = subprocess.run(
            list(cmd), capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise StackError(f"{' '.join(cmd)} timed out after {timeout}s") from exc
    if res.returncode != 0:
        raise StackError(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stderr[-2000:]}")
    return res.stdout


# --------------------------------------------------------------------------- S3 endpoint


@dataclass(frozen=True)
class S3Endpoint:
    """Where the S3 server answers, and the credentials of its test user."""

    host: str
    port: int
    access_key: str
    secret_key: str
    secure: bool = False

    @property
    def endpoint(self) -> str:
        """``host:port``, as the minio SDK and Milvus want it."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The HTTP URL of the server."""
        return f"{'https' if self.secure else 'http'}://{self.endpoint}"

    def client(self) -> Minio:
        """A minio SDK client for this endpoint."""
        return Minio(
            self.endpoint,
            access_key=self.access_key,
            secret_key=self.secret_key,
            secure=self.secure,
        )

    def ensure_bucket(self, bucket: str) -> None:
        """Create ``bucket`` unless it exists."""
        client = self.client()
        if not client.bucket_exists(bucket):
            client.make_bucket(bucket)


# --------------------------------------------------------------------------- the gateway


@dataclass
class RadosGateway:
    """A running one-host Ceph cluster and its RADOS Gateway."""

    dir: Path
    s3: S3Endpoint
    daemons: list[Daemon] = field(default_factory=list)
    timeout: float = field(default=60.0, repr=False)
    die_with_parent: bool = field(default=False, repr=False)

    @property
    def conf(self) -> Path:
        """The cluster's ceph.conf."""
        return self.dir / "ceph.conf"

    @property
    def keyring(self) -> str:
        """The keyring holding every key of the cluster."""
        return str(self.dir / "keyring")

    def stop(self) -> None:
        """Kill exactly the daemons this gateway started (gateway first, monitor last)."""
        stop_daemons(list(reversed(self.daemons)))


def _ceph_conf(dir: Path, fsid: str, mon_port: int, rgw_port: int) -> str:
    """The text of ceph.conf: one mon, one memstore OSD, pools of size one, one gateway."""
    return f"""[global]
fsid = {fsid}
mon host = v1:{HOST}:{mon_port}
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = {dir}/keyring
run dir = {dir}/run
admin socket = {dir}/run/$name.asok
pid file = {dir}/run/$name.pid
log file = {dir}/log/$name.log
log to stderr = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
paxos propose interval = 0.05
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = {MEMSTORE_BYTES}

[mon.a]
mon data = {dir}/mon.a

[osd.0]
osd data = {dir}/osd.0
public addr = {HOST}
cluster addr = {HOST}

[client.rgw]
rgw frontends = beast endpoint={HOST}:{rgw_port}
rgw data = {dir}/rgw
rgw dns name =
"""


_KEYS: dict[str, list[str]] = {
    "mon.": ["mon", "allow *"],
    "client.admin": ["mon", "allow *", "osd", "allow *", "mgr", "allow *", "mds", "allow *"],
    "osd.0": ["mon", "allow profile osd", "osd", "allow *", "mgr", "allow profile osd"],
    "client.rgw": ["mon", "allow rw", "osd", "allow rwx"],
}


def _make_keyring(keyring: Path) -> None:
    """One keyring with every key the cluster needs (cephx stays on)."""
    for i, (name, caps) in enumerate(_KEYS.items()):
        cmd = ["ceph-authtool", str(keyring), "--gen-key", "-n", name]
        if i == 0:
            cmd.insert(1, "--create-keyring")
        for kind, cap in zip(caps[::2], caps[1::2], strict=True):
            cmd += ["--cap", kind, cap]
        run(cmd)


def _ceph(conf: Path, *args: str, timeout: float = 30.0) -> str:
    """Run the ``ceph`` CLI against this cluster."""
    return run(["ceph", "-c", str(conf), "--connect-timeout", "10", *args], timeout=timeout)


def _osd_up(conf: Path) -> bool:
    """True once osd.0 is marked up in the OSD map."""
    try:
        dump = json.loads(_ceph(conf, "osd", "dump", "--format", "json"))
    except (StackError, ValueError):
        return False
    return any(o["osd"] == 0 and o["up"] == 1 for o in dump.get("osds", []))


def _http_answers(url: str) -> bool:
    """True when ``url`` gives any HTTP response."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, urllib.error.URLError):
        return False


def _random_key(length: int, alphabet: str) -> str:
    """A random credential."""
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _start_mon(gw: RadosGateway, fsid: str, mon_port: int) -> None:
    """Make the monitor's store and start it; wait until it answers."""
    monmap, conf = str(gw.dir / "monmap"), str(gw.conf)
    run(
        ["monmaptool", "--create", "--addv", "a", f"[v1:{HOST}:{mon_port}]", "--fsid", fsid, monmap]
    )
    run(["ceph-mon", "-c", conf, "--mkfs", "-i", "a", "--monmap", monmap, "--keyring", gw.keyring])
    mon = _spawn_ceph(gw, "mon.a", ["ceph-mon", "-c", conf, "-i", "a", "-f"])
    wait_for(lambda: port_answers(mon_port), what="ceph-mon", timeout=gw.timeout, watch=[mon])
    _ceph(gw.conf, "status", timeout=gw.timeout)


def _start_osd(gw: RadosGateway) -> None:
    """Register osd.0 under its own UUID, make its memstore and start it; wait until it is up."""
    osd_uuid = str(uuid.uuid4())
    osd_id = _ceph(gw.conf, "osd", "create", osd_uuid).strip()
    if osd_id != "0":
        raise StackError(f"expected osd id 0, got {osd_id!r}")
    conf = str(gw.conf)
    run(["ceph-osd", "-c", conf, "-i", "0", "--mkfs", "--osd-uuid", osd_uuid], gw.timeout)
    osd = _spawn_ceph(gw, "osd.0", ["ceph-osd", "-c", conf, "-i", "0", "-f"])
    up = lambda: _osd_up(gw.conf)  # noqa: E731
    wait_for(up, what="ceph-osd", timeout=gw.timeout, watch=[osd], interval=0.5)


def _start_radosgw(gw: RadosGateway) -> None:
    """Start the gateway, wait until its S3 port answers, then create the S3 user."""
    rgw = _spawn_ceph(gw, "client.rgw", ["radosgw", "-c", str(gw.conf), "-n", "client.rgw", "-f"])
    wait_for(lambda: _http_answers(gw.s3.url), what="radosgw", timeout=gw.timeout, watch=[rgw])
    user = ["user", "create", "--uid=milvus", "--display-name=milvus"]
    keys = [f"--access-key={gw.s3.access_key}", f"--secret-key={gw.s3.secret_key}"]
    run(["radosgw-admin", "-c", str(gw.conf), *user, *keys], gw.timeout)


def _spawn_ceph(gw: RadosGateway, name: str, cmd: list[str]) -> Daemon:
    """Start one Ceph daemon in the foreground and remember it."""
    daemon = spawn(
        name,
        cmd,
        out=gw.dir / "log" / f"{name}.out",
        log=gw.dir / "log" / f"{name}.log",
        expect=str(gw.conf),
        die_with_parent=gw.die_with_parent,
    )
    gw.daemons.append(daemon)
    return daemon


def start_rgw(
    dir: Path,
    *,
    bucket: str = DEFAULT_BUCKET,
    timeout: float = 60.0,
    die_with_parent: bool = False,
) -> RadosGateway:
    """Start mon, memstore OSD and radosgw under ``dir`` (empty or absent); create ``bucket``.

    ``timeout`` bounds each wait. With ``die_with_parent`` the kernel SIGKILLs the daemons when
    the thread that started them exits (for test fixtures; ``up`` leaves it off so the daemons
    outlive it).
    On any failure every daemon already started is killed before the error is raised.
    """
    dir = dir.resolve()
    if dir.exists() and any(dir.iterdir()):
        raise StackError(f"{dir} is not empty: give start_rgw a fresh folder")
    for sub in ("run", "log", "mon.a", "osd.0", "rgw"):
        (dir / sub).mkdir(parents=True, exist_ok=True)
    mon_port, rgw_port = free_ports(2)
    key = _random_key(20, string.ascii_uppercase + string.digits)
    secret = _random_key(40, string.ascii_letters + string.digits)
    gw = RadosGateway(dir, S3Endpoint(HOST, rgw_port, key, secret), [], timeout, die_with_parent)
    fsid = str(uuid.uuid4())
    gw.conf.write_text(_ceph_conf(dir, fsid, mon_port, rgw_port))
    _make_keyring(Path(gw.keyring))
    try:
        _start_mon(gw, fsid, mon_port)
        _start_osd(gw)
        _start_radosgw(gw)
        gw.s3.ensure_bucket(bucket)
    except BaseException:
        gw.stop()
        raise
    return gw
