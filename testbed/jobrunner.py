"""A test-only stand-in for the kubelet: it runs each Job's container command as a local process.

There is no kubelet here (no Pods ever run), so this watches the operator's Jobs and, for each,
starts the container's command with the Pod's environment (and the tests' PYTHONPATH, so that
the code under test runs, not the venv's editable install), the Pod's Secret volumes written
to files (their mount paths placed under a scratch folder, and environment values that point
into them moved along), and a kubeconfig for the Job's ServiceAccount, so the Job's own RBAC is
what the process gets. When the process ends, it marks the Job succeeded or failed, as the Job
controller would. Everything else is the real path: the operator creates the Job, the process
reads the resource and writes its status.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from kubernetes import client, watch

from testbed.bed import operator_command, operator_env
from testbed.node_loss import lose

MANAGED = "app.kubernetes.io/managed-by=milvus-backup-operator"
TERMINATION_GRACE = 30.0  # s: a Pod's default terminationGracePeriodSeconds


class LocalJobRunner:
    def __init__(self, api: client.ApiClient, workdir: Path, kubeconfig_for_token: Any) -> None:
        self.batch = client.BatchV1Api(api)
        self.core = client.CoreV1Api(api)
        self.workdir = workdir
        self.kubeconfig_for_token = kubeconfig_for_token
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}
        self.runs: dict[str, list[str]] = {}  # Job name -> uid of each Job object run, in order
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="jobrunner", daemon=True)

    def start(self) -> LocalJobRunner:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for process in self.processes.values():
            lose(process)

    def kill(self, job: str) -> None:
        """Lose the process of ``job`` as a Pod is lost with its node (frozen, then killed)."""
        lose(self._process(job))

    def pause(self, job: str) -> None:
        """SIGSTOP the process of ``job``: it holds still until killed (a frozen node)."""
        self._process(job).send_signal(signal.SIGSTOP)

    def resume(self, job: str) -> None:
        """SIGCONT the process of ``job``, paused before."""
        self._process(job).send_signal(signal.SIGCONT)

    def _process(self, job: str) -> subprocess.Popen[bytes]:
        log = self.logs.get(job)
        process = self.processes.get(log.parent.name) if log else None
        if process is None or process.poll() is not None:
            raise RuntimeError(f"no process of Job {job} is running")
        return process

    def running(self, job: str) -> bool:
        log = self.logs.get(job)
        process = self.processes.get(log.parent.name) if log else None
        return process is not None and process.poll() is None

    def log_of(self, job: str) -> str:
        path = self.logs.get(job)
        return path.read_text() if path and path.exists() else ""

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                stream = watch.Watch().stream(
                    self.batch.list_job_for_all_namespaces, label_selector=MANAGED,
                    timeout_seconds=5,
                )  # fmt: skip
                for event in stream:
                    job = event["object"]
                    if event["type"] == "ADDED" and job.metadata.uid not in self.processes:
                        self._run(job)
                    elif event["type"] == "DELETED":
                        self._terminate(job.metadata.uid)
            except Exception as exc:  # the watch restarts; a test fails on the outcome
                if not self._stop.is_set():
                    print(f"jobrunner: watch error {exc!r}", file=sys.stderr)
                time.sleep(0.5)

    def _terminate(self, uid: str) -> None:
        """A deleted Job's Pod goes as the kubelet ends a container: SIGTERM (a frozen process
        is thawed to receive it), then SIGKILL after the grace period."""
        process = self.processes.get(uid)
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        process.send_signal(signal.SIGCONT)
        threading.Timer(
            TERMINATION_GRACE, lambda: process.poll() is None and process.kill()
        ).start()

    def _run(self, job: client.V1Job) -> None:
        if job.status and (job.status.succeeded or job.status.failed):
            return
        root = self.workdir / job.metadata.uid
        pod = job.spec.template.spec
        container = pod.containers[0]
        mounts = self._write_secret_volumes(job.metadata.namespace, pod, container, root)
        env = {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/root"),
            "KUBECONFIG": str(self._kubeconfig(job.metadata.namespace, pod, root)),
        }
        if os.environ.get("PYTHONPATH"):  # a worktree's code, not the venv's editable install
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        for var in container.env or []:
            env[var.name] = _moved(var.value or "", mounts, root)
        command = [*container.command, *(container.args or [])]
        if command[0] == "milvus-backup-operator":  # as the tests import it (bed.py)
            command[:1] = operator_command()
            env = operator_env(env)
        log = root / "output.log"
        with log.open("wb") as out:
            process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.processes[job.metadata.uid] = process
        self.logs[job.metadata.name] = log
        self.runs.setdefault(job.metadata.name, []).append(job.metadata.uid)
        threading.Thread(target=self._finish, args=(job, process), daemon=True).start()

    def _write_secret_volumes(
        self, namespace: str, pod: Any, container: Any, root: Path
    ) -> list[str]:
        secrets = {v.name: v.secret.secret_name for v in pod.volumes or [] if v.secret}
        mounts = []
        for mount in container.volume_mounts or []:
            if mount.name not in secrets:
                continue
            folder = root / mount.mount_path.lstrip("/")
            folder.mkdir(parents=True, exist_ok=True)
            data = self.core.read_namespaced_secret(secrets[mount.name], namespace).data or {}
            for key, value in data.items():
                (folder / key).write_bytes(base64.b64decode(value))
            mounts.append(mount.mount_path)
        return mounts

    def _kubeconfig(self, namespace: str, pod: Any, root: Path) -> Path:
        account = pod.service_account_name or "default"
        deadline = time.monotonic() + 30
        while True:
            sa = self.core.read_namespaced_service_account(account, namespace)
            if sa.secrets:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"ServiceAccount {namespace}/{account} has no token")
            time.sleep(0.2)
        secret = self.core.read_namespaced_secret(sa.secrets[0].name, namespace)
        token = base64.b64decode(secret.data["token"]).decode()
        root.mkdir(parents=True, exist_ok=True)
        return Path(self.kubeconfig_for_token(token, root / "kubeconfig"))

    def _finish(self, job: client.V1Job, process: subprocess.Popen[bytes]) -> None:
        code = process.wait()
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if code == 0:
            status = {
                "succeeded": 1,
                "completionTime": now,
                "conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": now}],
            }
        else:
            status = {"failed": 1, "conditions": [
                {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                 "message": f"Job has reached the specified backoff limit (exit code {code})",
                 "lastTransitionTime": now}]}  # fmt: skip
        status["startTime"] = now
        try:
            self.batch.patch_namespaced_job_status(
                job.metadata.name, job.metadata.namespace, {"status": status}
            )
        except client.exceptions.ApiException as exc:
            if exc.status != 404:  # the Job went away with its owner
                raise


def _moved(value: str, mounts: list[str], root: Path) -> str:
    """An environment value that points at (or above) a mount path, moved under ``root``."""
    if value.startswith("/") and any(m == value or m.startswith(value + "/") for m in mounts):
        return str(root / value.lstrip("/"))
    return value
