"""The end-to-end bed's parts, shared by the tests' fixtures and the README's demo.

A real kube-apiserver with the CRDs and the RBAC the chart ships, the operator as a process
under its ServiceAccount, and the admission webhook's certificates.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import milvus_backup_operator
from testbed.kube import Cluster
from testbed.node_loss import lose
from testbed.stack import Stack
from testbed.stack.rgw import free_port

ROOT = Path(__file__).parents[1]
RULES = ROOT / "helm" / "milvus-backup-operator" / "files"
NAMESPACE = "team-a"
SYSTEM = "mbo-system"
GROUP, VERSION = "backup.milvus.io", "v1alpha1"


def operator_command() -> list[str]:
    """``milvus-backup-operator`` as this test process would import it: run with its Python
    (``-m``), so a worktree on PYTHONPATH is tested rather than the venv's editable install."""
    return [sys.executable, "-m", "milvus_backup_operator"]


def operator_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this environment) with PYTHONPATH leading to the operator package
    this process imported (see :func:`operator_command`)."""
    env = dict(os.environ if base is None else base)
    source = str(Path(milvus_backup_operator.__file__).parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH", "")) if p)
    return env


def prepare_cluster(cluster: Cluster) -> None:
    """CRDs (from crds/), namespaces and RBAC, as the chart would install them."""
    cluster.kubectl("apply", "-f", str(ROOT / "crds"))
    wait(lambda: cluster.api_get(f"/apis/{GROUP}/{VERSION}")[0] == 200, 30, "the CRDs")
    shutil.rmtree(cluster.dir / "kubectl-cache", ignore_errors=True)  # discovery without them
    install_rbac(cluster)


def install_rbac(cluster: Cluster) -> None:
    """The operator's and the Jobs' ClusterRoles, from the rules the chart renders."""
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        for name in (SYSTEM, NAMESPACE)
    ]
    for role, rules in (("milvus-backup-operator", "operator-rules.yaml"),
                        ("milvus-backup-job", "job-rules.yaml")):  # fmt: skip
        docs.append({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": role}, "rules": yaml.safe_load((RULES / rules).read_text()),
        })  # fmt: skip
    docs += [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": "milvus-backup-operator", "namespace": SYSTEM}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "milvus-backup-operator"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": "milvus-backup-operator"},
         "subjects": [{"kind": "ServiceAccount", "name": "milvus-backup-operator",
                       "namespace": SYSTEM}]},
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": "milvus-backup-job", "namespace": NAMESPACE}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "milvus-backup-job", "namespace": NAMESPACE},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": "milvus-backup-job"},
         "subjects": [{"kind": "ServiceAccount", "name": "milvus-backup-job",
                       "namespace": NAMESPACE}]},
    ]  # fmt: skip
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))


def create_secrets(cluster: Cluster, stack: Stack, namespace: str = NAMESPACE) -> dict[str, str]:
    """The credentials Secrets for the stack's S3 and Milvus; returns their names."""
    data = {
        "milvus-s3": {"accesskey": stack.s3.access_key, "secretkey": stack.s3.secret_key},
        "milvus-auth": {"username": "root", "password": "Milvus"},
    }
    docs = [
        {"apiVersion": "v1", "kind": "Secret", "stringData": values,
         "metadata": {"name": name, "namespace": namespace}}
        for name, values in data.items()
    ]  # fmt: skip
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    return {"s3": "milvus-s3", "milvus": "milvus-auth"}


def service_account_token(cluster: Cluster, namespace: str, name: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        _, sa = cluster.api_get(f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}")
        if sa.get("secrets"):
            secret_name = sa["secrets"][0]["name"]
            _, secret = cluster.api_get(f"/api/v1/namespaces/{namespace}/secrets/{secret_name}")
            return base64.b64decode(secret["data"]["token"]).decode()
        time.sleep(0.2)
    raise RuntimeError(f"no token for ServiceAccount {namespace}/{name}")


@dataclass(frozen=True)
class WebhookTLS:
    ca: Path
    cert: Path
    key: Path
    port: int


def make_webhook_tls(folder: Path) -> WebhookTLS:
    """A CA and a server certificate for 127.0.0.1, made with the openssl CLI."""
    ca, ca_key, cert, key = (folder / n for n in ("ca.crt", "ca.key", "tls.crt", "tls.key"))
    ext = folder / "san.ext"
    ext.write_text("subjectAltName = IP:127.0.0.1\n")
    openssl = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    subprocess.run([*openssl, "-keyout", str(ca_key), "-out", str(ca), "-subj", "/CN=test-ca"],
                   check=True, capture_output=True)  # fmt: skip
    csr = folder / "tls.csr"
    request = ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1"]
    subprocess.run([*request, "-keyout", str(key), "-out", str(csr)], check=True,
                   capture_output=True)  # fmt: skip
    subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey",
                    str(ca_key), "-CAcreateserial", "-out", str(cert), "-days", "1",
                    "-extfile", str(ext)], check=True, capture_output=True)  # fmt: skip
    return WebhookTLS(ca, cert, key, free_port())


def install_webhook(cluster: Cluster, tls: WebhookTLS) -> None:
    """The ValidatingWebhookConfiguration the chart ships, pointed at the local operator."""
    bundle = base64.b64encode(tls.ca.read_bytes()).decode()
    webhooks = [
        {
            "name": f"{hook}.backup.milvus.io",
            "clientConfig": {"url": f"https://127.0.0.1:{tls.port}/{hook}", "caBundle": bundle},
            "rules": [{"apiGroups": [GROUP], "apiVersions": [VERSION], "operations": operations,
                       "resources": resources}],
            "sideEffects": "None", "failurePolicy": "Fail", "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 10,
        }
        for hook, operations, resources in (
            ("spec-valid", ["CREATE"], ["milvusbackups", "milvusrestores"]),
            ("spec-immutable", ["UPDATE"], ["milvusbackups", "milvusrestores"]),
            ("schedule-valid", ["CREATE", "UPDATE"], ["milvusbackupschedules"]),
        )
    ]  # fmt: skip
    config_doc = {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "milvus-backup-operator"}, "webhooks": webhooks,
    }  # fmt: skip
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(config_doc))


@dataclass
class OperatorProcess:
    """``milvus-backup-operator run`` as a process, under the operator ServiceAccount."""

    kubeconfig: Path
    log: Path
    executor: str = "job"
    webhook: WebhookTLS | None = None
    process: subprocess.Popen[bytes] | None = None
    extra: tuple[str, ...] = ()  # more arguments of ``run``
    health_port: int = 0  # /healthz and /metrics (a free port, chosen at start)
    options: tuple[str, ...] = ()  # options before ``run``, e.g. ``--log-level info``

    def start(self) -> OperatorProcess:
        port = self.health_port = free_port()
        command = [
            *operator_command(), *self.options, "run",
            "--namespace", NAMESPACE, "--executor", self.executor, "--health-port", str(port),
            *self.extra,
        ]  # fmt: skip
        if self.webhook:
            command += ["--webhook-port", str(self.webhook.port), "--webhook-cert",
                        str(self.webhook.cert), "--webhook-key", str(self.webhook.key)]  # fmt: skip
        env = operator_env({**os.environ, "KUBECONFIG": str(self.kubeconfig)})
        env.pop("KUBERNETES_SERVICE_HOST", None)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        wait(lambda: healthz_ok(port), 60, f"operator /healthz (log: {self.log})")
        return self

    def kill(self) -> None:
        """Lost with its node: no chance to clean anything up (frozen, then killed)."""
        if self.process:
            lose(self.process)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def healthz_ok(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.2)
