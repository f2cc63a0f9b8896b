"""The Helm chart: lint, templates in every mode, the values schema, the manifests applied to a
real kube-apiserver (dry run, then for real), and the operator started as the chart deploys it,
under the chart's ServiceAccount and RBAC, completing a backup end to end."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import urllib3
import yaml

from milvus_backup_operator import __version__
from milvus_backup_operator.api import Kind
from milvus_backup_operator.api.crds import all_crds, job_template
from milvus_backup_operator.api.crds import render as render_crd
from milvus_backup_operator.api.specs import parse_backup
from milvus_backup_operator.cli import DEFAULT_IMAGE, read_job_defaults
from milvus_backup_operator.executors import WorkItem
from milvus_backup_operator.executors.job import JobExecutor
from testbed import bed
from testbed.bed import service_account_token
from testbed.jobrunner import LocalJobRunner
from testbed.kube import Cluster
from testbed.stack import Stack
from testbed.stack.rgw import free_port
from tests.deploy.chart import (
    CHART,
    NO_NAMESPACE,
    ChartInstall,
    admission_review,
    apply,
    call_webhook,
    can_i,
    container,
    get_resource,
    helm,
    namespaces,
    of_kind,
    one,
    render,
    template,
    values_schema_of,
    wait_for_phase,
    write_job_defaults,
)
from tests.deploy.conftest import CHART_JOB_TEMPLATE, RELEASE, WATCHED
from tests.e2e.resources import apply as apply_resources
from tests.e2e.resources import milvus_backup
from tests.e2e.test_operator import catalog
from tests.integration.api_server import call

pytestmark = pytest.mark.e2e

ROOT = CHART.parents[1]
FILES = CHART / "files"
OPERATOR_RULES = yaml.safe_load((FILES / "operator-rules.yaml").read_text())
JOB_RULES = yaml.safe_load((FILES / "job-rules.yaml").read_text())
SERVER_RULES = yaml.safe_load((FILES / "server-rules.yaml").read_text())
CLUSTER_SCOPED = {"customresourcedefinitions", "namespaces"}
IMAGE = f"ghcr.io/milvus-backup-operator/milvus-backup-operator:{__version__}"
TOKEN_PATH = "/var/run/secrets/mbo-api/token"
TEMPLATE_PATH = "/etc/milvus-backup-api/template.yaml"
JOB_DEFAULTS = "/etc/milvus-backup-operator/job-defaults.yaml"

NAMESPACED = {"watchNamespaces": ["ns-a", "ns-b"]}
CLUSTER_WIDE = {"jobNamespaces": ["team-x"]}
MODES = {"cluster-wide": CLUSTER_WIDE, "namespaced": NAMESPACED}
MONITORED = {"metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}}}
ALERTS = yaml.safe_load((FILES / "alerts.yaml").read_text())


def merged(*parts: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merged(out[key], value)
            else:
                out[key] = copy.deepcopy(value)
    return out


# ------------------------------------------------------------------ the chart's files


def test_the_charts_crds_are_the_repositorys_crds() -> None:
    chart_crds = {p.name: p.read_bytes() for p in (CHART / "crds").glob("*.yaml")}
    repo_crds = {p.name: p.read_bytes() for p in (ROOT / "crds").glob("*.yaml")}
    assert chart_crds == repo_crds, "copy crds/*.yaml into helm/milvus-backup-operator/crds/"
    generated = {name: render_crd(doc).encode() for name, doc in all_crds().items()}
    assert chart_crds == generated, "run python -m milvus_backup_operator.api.crds crds/"


def test_chart_version_image_and_package_agree() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"] == __version__
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert f"{values['image']['repository']}:{chart['appVersion']}" == DEFAULT_IMAGE == IMAGE


def _leaves(value: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if isinstance(value, dict) and value:
        return [p for k, v in value.items() for p in _leaves(v, (*path, k))]
    return [path]


def test_the_schema_describes_and_accepts_every_value() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft7Validator(schema).validate(values)
    for path in _leaves(values):
        node = schema
        for key in path:
            if key not in node.get("properties", {}):  # an open map, e.g. resources.limits
                assert isinstance(node.get("additionalProperties"), dict), ".".join(path)
                break
            node = node["properties"][key]
            assert node.get("description"), f"{'.'.join(path)}: {key} has no description"
            assert "type" in node, f"{'.'.join(path)}: {key} has no type"


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"executor": "cronjob"}, "/executor"),
        ({"watchNamespaces": "team-a"}, "/watchNamespaces"),
        ({"watchNamespaces": ["Team_A"]}, "/watchNamespaces/0"),
        ({"logFormat": "xml"}, "/logFormat"),
        ({"webhook": {"failurePolicy": "Maybe"}}, "/webhook/failurePolicy"),
        ({"image": {"digest": "latest"}}, "/image/digest"),
        ({"restServer": {"enabled": "yes"}}, "/restServer/enabled"),
        ({"replicas": 2}, "'replicas' not allowed"),
        ({"metrics": {"serviceMonitor": {"enabled": "yes"}}}, "/metrics/serviceMonitor/enabled"),
        ({"jobTemplate": {"nodeSelectr": {}}}, "'nodeSelectr' not allowed"),
        (
            {"jobTemplate": {"resources": {"limits": {"memory": "lots"}}}},
            "/jobTemplate/resources/limits/memory",
        ),
        (
            {"jobTemplate": {"tolerations": [{"key": "a", "efect": "NoSchedule"}]}},
            "'efect' not allowed",
        ),
    ],
)
def test_the_schema_refuses_bad_values(values: dict[str, Any], complaint: str) -> None:
    done = template("r", "mbo", values, check=False)
    assert done.returncode != 0 and complaint in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({**NAMESPACED, "restServer": {"enabled": True, "namespace": "elsewhere"}},
         'restServer.namespace "elsewhere" must be one of watchNamespaces'),
        ({**NAMESPACED, "jobNamespaces": ["x"]}, "jobNamespaces is for cluster-wide mode"),
        ({"webhook": {"tls": {"existingSecret": "mine"}}}, "needs webhook.tls.caBundle"),
        ({"metrics": {"enabled": False, "serviceMonitor": {"enabled": True}}},
         "metrics.serviceMonitor.enabled needs metrics.enabled"),
    ],
)  # fmt: skip
def test_impossible_combinations_fail_with_a_reason(values: dict[str, Any], reason: str) -> None:
    done = template("r", "mbo", values, check=False)
    assert done.returncode != 0 and reason in done.stderr, done.stderr


@pytest.mark.parametrize(
    "values",
    [{}, NAMESPACED, {"restServer": {"enabled": True}}, {"webhook": {"enabled": False}},
     merged(NAMESPACED, {"restServer": {"enabled": True, "namespace": "ns-b"}}), MONITORED],
    ids=["defaults", "namespaced", "rest-server", "no-webhook", "namespaced-rest-server",
         "monitored"],
)  # fmt: skip
def test_helm_lint_strict(values: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    done = helm("lint", "--strict", str(CHART), "-f", str(path), check=False)
    assert done.returncode == 0 and "1 chart(s) linted, 0 chart(s) failed" in done.stdout, (
        done.stdout + done.stderr
    )


# ------------------------------------------------------------------ templates


def operator_deployment(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return one(docs, "Deployment", "r-milvus-backup-operator")


def flag_values(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == flag]


def check_security(deployment: dict[str, Any]) -> None:
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for c in pod["containers"]:
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 65532
        assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
        assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]  # the only writable path
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in pod["volumes"]


def rules_of(docs: list[dict[str, Any]], kind: str, name: str, namespace: str | None = None) -> Any:
    found = [
        d for d in of_kind(docs, kind)
        if d["metadata"]["name"] == name and d["metadata"].get("namespace") == namespace
    ]  # fmt: skip
    assert len(found) == 1, (kind, name, namespace)
    return found[0]["rules"]


def bindings(docs: list[dict[str, Any]], kind: str) -> list[tuple[Any, ...]]:
    """(binding namespace, role kind, role name, subject namespace/name) of each binding."""
    return [
        (b["metadata"].get("namespace"), b["roleRef"]["kind"], b["roleRef"]["name"],
         *[f"{s['namespace']}/{s['name']}" for s in b["subjects"]])
        for b in of_kind(docs, kind)
    ]  # fmt: skip


def bed_webhook_shape(tmp_path: Path) -> list[dict[str, Any]]:
    """The webhooks the e2e bed installs (testbed/bed.py), captured instead of applied."""
    ca = tmp_path / "ca.crt"
    ca.write_text("test")
    captured: list[str] = []

    class Capture:
        def kubectl(self, *args: str, input: str) -> None:
            captured.append(input)

    tls = bed.WebhookTLS(ca, ca, ca, 1)
    bed.install_webhook(Capture(), tls)  # type: ignore[arg-type]
    return list(yaml.safe_load(captured[0])["webhooks"])


def openssl(*args: str) -> str:
    done = subprocess.run(["openssl", *args], capture_output=True, check=True)
    return done.stdout.decode()


def check_webhook_tls(docs: list[dict[str, Any]], tmp_path: Path) -> None:
    """The generated CA is the caBundle, it signed the certificate, whose names are the
    Service's, and the key is the certificate's."""
    secret = one(docs, "Secret", "r-milvus-backup-operator-webhook-tls")
    config = one(docs, "ValidatingWebhookConfiguration", "r-milvus-backup-operator")
    assert secret["type"] == "kubernetes.io/tls"
    files = {}
    for key in ("ca.crt", "tls.crt", "tls.key"):
        files[key] = tmp_path / key
        files[key].write_bytes(base64.b64decode(secret["data"][key]))
    assert config["webhooks"][0]["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
    verified = openssl("verify", "-CAfile", str(files["ca.crt"]), str(files["tls.crt"]))
    assert verified.strip().endswith(": OK"), verified
    names = openssl("x509", "-in", str(files["tls.crt"]), "-noout", "-ext", "subjectAltName")
    for name in ("r-milvus-backup-operator-webhook.mbo.svc",
                 "r-milvus-backup-operator-webhook.mbo.svc.cluster.local"):  # fmt: skip
        assert f"DNS:{name}" in names, names
    cert_key = openssl("x509", "-in", str(files["tls.crt"]), "-noout", "-pubkey")
    assert openssl("pkey", "-in", str(files["tls.key"]), "-pubout") == cert_key
    checksum = operator_deployment(docs)["spec"]["template"]["metadata"]["annotations"]
    assert re.fullmatch(r"[0-9a-f]{64}", checksum["checksum/webhook-tls"])


MATRIX = [(m, w, r) for m in MODES for w in (True, False) for r in (False, True)]


@pytest.mark.parametrize(("mode", "webhook", "rest"), MATRIX)
def test_templates(mode: str, webhook: bool, rest: bool, tmp_path: Path) -> None:
    values = merged(MODES[mode], {"webhook": {"enabled": webhook}, "restServer": {"enabled": rest}})
    if rest and mode == "namespaced":
        values["restServer"]["namespace"] = "ns-a"
    docs = render("r", "mbo", values)
    check_operator(docs, mode)
    check_rbac(docs, mode)
    if webhook:
        check_webhook(docs, mode, tmp_path)
    else:
        assert "--webhook-port" not in container(operator_deployment(docs))["args"]
        assert not of_kind(docs, "ValidatingWebhookConfiguration")
        assert not [d for d in of_kind(docs, "Service") if "webhook" in d["metadata"]["name"]]
        assert not [d for d in of_kind(docs, "Secret") if "webhook" in d["metadata"]["name"]]
    if rest:
        check_rest_server(docs, "ns-a" if mode == "namespaced" else "mbo")
    else:
        assert not [d for d in docs if d["metadata"]["name"].endswith(("-rest", "-rest-token"))]


def check_operator(docs: list[dict[str, Any]], mode: str) -> None:
    deployment = operator_deployment(docs)
    check_security(deployment)
    operator = container(deployment)
    args = operator["args"]
    assert operator["image"] == IMAGE and "command" not in operator  # the image's entrypoint
    assert args[:3] == ["--log-level", "info", "run"]
    assert flag_values(args, "--executor") == ["job"]
    assert flag_values(args, "--image") == [IMAGE]
    assert flag_values(args, "--job-service-account") == ["milvus-backup-job"]
    assert flag_values(args, "--health-port") == ["8080"] and "--json-logs" not in args
    assert flag_values(args, "--job-defaults") == [JOB_DEFAULTS]
    if mode == "cluster-wide":
        assert "--all-namespaces" in args and "--namespace" not in args
    else:
        assert flag_values(args, "--namespace") == ["ns-a", "ns-b"]
        assert "--all-namespaces" not in args
    for probe in ("livenessProbe", "readinessProbe"):
        assert operator[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert {"name": "health", "containerPort": 8080} in operator["ports"]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}  # never two operators
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    assert account == "r-milvus-backup-operator"
    assert one(docs, "ServiceAccount", account)["metadata"]["namespace"] == "mbo"


def check_rbac(docs: list[dict[str, Any]], mode: str) -> None:
    """The rules are the files' rules, bound to the operator's and the Jobs' accounts."""
    operator_subject = "mbo/r-milvus-backup-operator"
    job_role = "r-milvus-backup-operator-job"
    if mode == "cluster-wide":
        assert rules_of(docs, "ClusterRole", "r-milvus-backup-operator") == OPERATOR_RULES
        assert rules_of(docs, "ClusterRole", job_role) == JOB_RULES
        assert bindings(docs, "ClusterRoleBinding") == [
            (None, "ClusterRole", "r-milvus-backup-operator", operator_subject)
        ]
        job_namespaces, job_role_kind = ["mbo", "team-x"], "ClusterRole"
    else:
        cluster_rules = [r for r in OPERATOR_RULES if CLUSTER_SCOPED & set(r["resources"])]
        namespaced_rules = [r for r in OPERATOR_RULES if r not in cluster_rules]
        assert cluster_rules and namespaced_rules
        for ns in ("ns-a", "ns-b"):
            assert rules_of(docs, "Role", "r-milvus-backup-operator", ns) == namespaced_rules
            assert rules_of(docs, "Role", job_role, ns) == JOB_RULES
            binding = (ns, "Role", "r-milvus-backup-operator", operator_subject)
            assert binding in bindings(docs, "RoleBinding")
        assert rules_of(docs, "ClusterRole", "r-milvus-backup-operator-scan") == cluster_rules
        assert bindings(docs, "ClusterRoleBinding") == [
            (None, "ClusterRole", "r-milvus-backup-operator-scan", operator_subject)
        ]
        job_namespaces, job_role_kind = ["ns-a", "ns-b"], "Role"
    job_accounts = [
        d["metadata"]["namespace"]
        for d in of_kind(docs, "ServiceAccount")
        if d["metadata"]["name"] == "milvus-backup-job"
    ]
    assert job_accounts == job_namespaces
    for ns in job_namespaces:
        binding = (ns, job_role_kind, job_role, f"{ns}/milvus-backup-job")
        assert binding in bindings(docs, "RoleBinding")


def check_webhook(docs: list[dict[str, Any]], mode: str, tmp_path: Path) -> None:
    deployment = operator_deployment(docs)
    operator = container(deployment)
    args = operator["args"]
    assert flag_values(args, "--webhook-port") == ["9443"]
    assert flag_values(args, "--webhook-cert") == ["/certs/tls.crt"]
    assert flag_values(args, "--webhook-key") == ["/certs/tls.key"]
    mount = {"name": "webhook-tls", "mountPath": "/certs", "readOnly": True}
    assert mount in operator["volumeMounts"]
    assert {"name": "webhook", "containerPort": 9443} in operator["ports"]
    service = one(docs, "Service", "r-milvus-backup-operator-webhook")
    assert service["spec"]["ports"] == [
        {"name": "webhook", "port": 443, "targetPort": "webhook", "protocol": "TCP"}
    ]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    hook = one(docs, "ValidatingWebhookConfiguration", "r-milvus-backup-operator")
    bed_hooks = bed_webhook_shape(tmp_path)
    assert [h["name"] for h in hook["webhooks"]] == [h["name"] for h in bed_hooks]
    for rendered, expected in zip(hook["webhooks"], bed_hooks, strict=True):
        for key in ("name", "sideEffects", "failurePolicy", "admissionReviewVersions",
                    "timeoutSeconds"):  # fmt: skip
            assert rendered[key] == expected[key], key
        rules = [{k: v for k, v in r.items() if k != "scope"} for r in rendered["rules"]]
        assert rules == expected["rules"]
        assert rendered["clientConfig"]["service"] == {
            "name": "r-milvus-backup-operator-webhook", "namespace": "mbo",
            "path": "/" + rendered["name"].split(".")[0], "port": 443,
        }  # fmt: skip
        if mode == "namespaced":
            assert rendered["namespaceSelector"]["matchExpressions"] == [
                {"key": "kubernetes.io/metadata.name", "operator": "In",
                 "values": ["ns-a", "ns-b"]}
            ]  # fmt: skip
        else:
            assert "namespaceSelector" not in rendered
    check_webhook_tls(docs, tmp_path)


def check_rest_server(docs: list[dict[str, Any]], namespace: str) -> None:
    name = "r-milvus-backup-operator-rest"
    server = one(docs, "Deployment", name)
    check_security(server)
    assert server["metadata"]["namespace"] == namespace
    served = container(server)
    assert served["image"] == IMAGE
    assert served["args"] == [
        "server", "-p", "8080", "--kubernetes-namespace", namespace,
        "--template", TEMPLATE_PATH, "--token-file", TOKEN_PATH,
    ]  # fmt: skip
    for probe in ("livenessProbe", "readinessProbe"):  # /hello answers without the token
        assert served[probe]["httpGet"] == {"path": "/api/v1/hello", "port": "http"}
    pod = server["spec"]["template"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in served["volumeMounts"]}
    assert mounts["api-token"] == str(Path(TOKEN_PATH).parent)
    assert mounts["template"] == str(Path(TEMPLATE_PATH).parent)
    assert volumes["api-token"]["secret"]["items"] == [{"key": "token", "path": "token"}]
    secret = one(docs, "Secret", volumes["api-token"]["secret"]["secretName"])
    assert secret["metadata"]["namespace"] == namespace
    token = base64.b64decode(secret["data"]["token"]).decode()
    assert re.fullmatch(r"[A-Za-z0-9]{32}", token)
    checksum = hashlib.sha256(secret["data"]["token"].encode()).hexdigest()
    assert pod["metadata"]["annotations"]["checksum/token"] == checksum
    # the template: the values' Milvus and storage, a spec the operator accepts
    config = one(docs, "ConfigMap", volumes["template"]["configMap"]["name"])
    assert config["metadata"]["namespace"] == namespace
    template = yaml.safe_load(config["data"][Path(TEMPLATE_PATH).name])
    spec = parse_backup("template", template)
    assert spec.milvus.address == "my-release-milvus.milvus.svc" and spec.milvus.port == 19530
    assert spec.storage.endpoint == "my-release-minio.milvus.svc:9000"
    assert (spec.storage.bucket, spec.storage.root_path) == ("milvus-bucket", "file")
    assert spec.storage.credentials_secret == "milvus-minio"
    assert spec.backup_storage.root_path == "backup"
    service = one(docs, "Service", name)
    assert service["metadata"]["namespace"] == namespace
    assert service["spec"]["ports"][0]["port"] == 8080
    assert service["spec"]["selector"] == server["spec"]["selector"]["matchLabels"]
    assert one(docs, "ServiceAccount", name)["metadata"]["namespace"] == namespace
    assert pod["spec"]["serviceAccountName"] == name
    assert rules_of(docs, "Role", name, namespace) == SERVER_RULES
    assert (namespace, "Role", name, f"{namespace}/{name}") in bindings(docs, "RoleBinding")


def test_values_reach_the_operators_flags() -> None:
    docs = render("r", "mbo", {
        "logLevel": "debug", "logFormat": "json", "executor": "inline", "healthPort": 9000,
        "jobImage": "registry.local/mbo:dev", "webhook": {"port": 10443},
        "image": {"digest": "sha256:" + "a" * 64},
        "jobServiceAccount": {"name": "backup-worker"},
    })  # fmt: skip
    operator = container(operator_deployment(docs))
    args = operator["args"]
    assert args[:3] == ["--log-level", "debug", "run"] and "--json-logs" in args
    assert flag_values(args, "--executor") == ["inline"]
    assert flag_values(args, "--image") == ["registry.local/mbo:dev"]
    assert flag_values(args, "--job-service-account") == ["backup-worker"]
    assert flag_values(args, "--health-port") == ["9000"]
    assert flag_values(args, "--webhook-port") == ["10443"]
    assert operator["image"] == "ghcr.io/milvus-backup-operator/milvus-backup-operator@sha256:" + (
        "a" * 64
    )
    assert {"name": "health", "containerPort": 9000} in operator["ports"]
    assert one(docs, "ServiceAccount", "backup-worker")["metadata"]["namespace"] == "mbo"


def test_existing_webhook_certificate_and_token_secrets_are_used_not_made() -> None:
    bundle = base64.b64encode(b"-----BEGIN CERTIFICATE-----\n").decode()
    docs = render("r", "mbo", {
        "webhook": {"tls": {"existingSecret": "webhook-cert", "caBundle": bundle}},
        "restServer": {"enabled": True, "existingTokenSecret": "api-token",
                       "existingTokenSecretKey": "bearer"},
    })  # fmt: skip
    assert not of_kind(docs, "Secret")
    volumes = operator_deployment(docs)["spec"]["template"]["spec"]["volumes"]
    assert next(v for v in volumes if v["name"] == "webhook-tls")["secret"]["secretName"] == (
        "webhook-cert"
    )
    hook = one(docs, "ValidatingWebhookConfiguration")
    assert hook["webhooks"][0]["clientConfig"]["caBundle"] == bundle
    server = one(docs, "Deployment", "r-milvus-backup-operator-rest")
    volume = next(
        v for v in server["spec"]["template"]["spec"]["volumes"] if v["name"] == "api-token"
    )
    assert volume["secret"]["secretName"] == "api-token"
    assert volume["secret"]["items"] == [{"key": "bearer", "path": "token"}]


def test_each_render_makes_new_secrets_of_the_right_shape() -> None:
    """Without a cluster to look them up in (helm template, GitOps), each render makes new
    ones; helm install/upgrade reuses the installed ones (see docs/upgrade.md)."""
    values = {"restServer": {"enabled": True}}
    first, second = render("r", "mbo", values), render("r", "mbo", values)
    for name in ("r-milvus-backup-operator-webhook-tls", "r-milvus-backup-operator-rest-token"):
        assert one(first, "Secret", name)["data"] != one(second, "Secret", name)["data"]


def test_a_rest_template_given_in_the_values_is_used_as_is() -> None:
    spec = {
        "milvus": {"address": "milvus.prod.svc"},
        "storage": {"endpoint": "s3.example.com:443", "useSSL": True, "bucket": "prod"},
    }
    docs = render("r", "mbo", {"restServer": {"enabled": True, "template": spec}})
    config = one(docs, "ConfigMap", "r-milvus-backup-operator-rest-template")
    assert yaml.safe_load(config["data"]["template.yaml"]) == spec


def test_the_metrics_service_fronts_the_health_port_and_monitoring_is_off_by_default() -> None:
    docs = render("r", "mbo", {})
    deployment = operator_deployment(docs)
    operator = container(deployment)
    service = one(docs, "Service", "r-milvus-backup-operator-metrics")
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 8080, "targetPort": "health", "protocol": "TCP"}
    ]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert {"name": "health", "containerPort": 8080} in operator["ports"]
    for probe in ("livenessProbe", "readinessProbe"):  # served beside /metrics, unchanged
        assert operator[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert not of_kind(docs, "ServiceMonitor") and not of_kind(docs, "PrometheusRule")
    off = render("r", "mbo", {"metrics": {"enabled": False}})
    assert not [d for d in of_kind(off, "Service") if d["metadata"]["name"].endswith("-metrics")]


def test_a_service_monitor_and_the_alerts_when_enabled() -> None:
    values = merged(MONITORED, {"healthPort": 9000, "metrics": {
        "service": {"port": 9090, "annotations": {"prometheus.io/scrape": "true"}},
        "serviceMonitor": {"interval": "15s", "scrapeTimeout": "10s",
                           "labels": {"release": "kube-prometheus-stack"}},
        "prometheusRule": {"labels": {"release": "kube-prometheus-stack"}},
    }})  # fmt: skip
    docs = render("r", "mbo", values)
    service = one(docs, "Service", "r-milvus-backup-operator-metrics")
    assert service["metadata"]["annotations"] == {"prometheus.io/scrape": "true"}
    assert service["spec"]["ports"][0]["port"] == 9090
    assert service["spec"]["ports"][0]["targetPort"] == "health"
    monitor = one(docs, "ServiceMonitor", "r-milvus-backup-operator")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["namespace"] == "mbo"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}
    ]
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["mbo"]}
    selected = [
        d["metadata"]["name"] for d in of_kind(docs, "Service")
        if monitor["spec"]["selector"]["matchLabels"].items() <= d["metadata"]["labels"].items()
    ]  # fmt: skip
    assert selected == ["r-milvus-backup-operator-metrics"]  # not the webhook's Service
    rule = one(docs, "PrometheusRule", "r-milvus-backup-operator")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["spec"] == ALERTS  # files/alerts.yaml as it is (promtool-tested)
    assert {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]} >= {
        "MilvusBackupScheduleNoRecentSuccess", "MilvusBackupFailed", "MilvusRestoreFailed",
        "MilvusBackupScheduleSuspended",
    }  # fmt: skip


def test_include_crds_renders_the_crds() -> None:
    docs = render("r", "mbo", {}, include_crds=True)
    names = {d["metadata"]["name"] for d in of_kind(docs, "CustomResourceDefinition")}
    assert names == {
        f"{plural}.backup.milvus.io"
        for plural in ("milvusbackups", "milvusrestores", "milvusbackupschedules")
    }


def test_the_values_schema_of_job_template_is_the_crds() -> None:
    """One definition: what the chart accepts for every Job is what a resource accepts."""
    schema = json.loads((CHART / "values.schema.json").read_text())["properties"]["jobTemplate"]
    expected = values_schema_of(job_template())
    assert {**schema, "description": ""} == {**expected, "description": ""}


def test_job_template_values_reach_the_operator_and_its_jobs(tmp_path: Path) -> None:
    """The chart's jobTemplate values: a ConfigMap mounted where --job-defaults reads it, a
    checksum that restarts the operator when they change, and every Job manifest carrying them
    (imagePullSecrets defaulting to the chart's own)."""
    values = {"imagePullSecrets": [{"name": "regcred"}], "jobTemplate": CHART_DEFAULTS}
    docs = render("r", "mbo", values)
    deployment = operator_deployment(docs)
    operator = container(deployment)
    assert flag_values(operator["args"], "--job-defaults") == [JOB_DEFAULTS]
    mount = next(m for m in operator["volumeMounts"] if m["name"] == "job-defaults")
    assert (mount["mountPath"], mount["readOnly"]) == (str(Path(JOB_DEFAULTS).parent), True)
    pod = deployment["spec"]["template"]
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "job-defaults")
    config = one(docs, "ConfigMap", volume["configMap"]["name"])
    assert config["metadata"]["namespace"] == "mbo"
    assert list(config["data"]) == [Path(JOB_DEFAULTS).name]
    defaults = read_job_defaults(write_job_defaults(docs, tmp_path / "job-defaults.yaml"))
    owner = {"metadata": {"name": "n", "uid": "u"}, "spec": {}}
    job = JobExecutor(image="i", defaults=defaults).manifest(
        WorkItem(Kind.BACKUP, "team-a", "n", owner, ())
    )
    check_job_carries(job, CHART_DEFAULTS)
    assert job["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    # the operator restarts on a change (it reads the file at start), and only then
    checksum = pod["metadata"]["annotations"]["checksum/job-defaults"]
    again = operator_deployment(render("r", "mbo", values))["spec"]["template"]["metadata"]
    assert again["annotations"]["checksum/job-defaults"] == checksum
    changed = merged(values, {"jobTemplate": {"priorityClassName": "other"}})
    other = operator_deployment(render("r", "mbo", changed))["spec"]["template"]["metadata"]
    assert other["annotations"]["checksum/job-defaults"] != checksum


#: Job settings a platform team sets in the chart (and the e2e release's subset)
CHART_DEFAULTS: dict[str, Any] = {
    **CHART_JOB_TEMPLATE,
    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]}]}}},
    "priorityClassName": "backup-low",
}  # fmt: skip


def check_job_carries(job: dict[str, Any], settings: dict[str, Any]) -> None:
    """The Job's Pod has ``settings`` (a jobTemplate), and our labels besides its labels."""
    template = job["spec"]["template"]
    pod = template["spec"]
    for key in ("nodeSelector", "tolerations", "affinity", "priorityClassName"):
        if key in settings:
            assert pod[key] == settings[key], key
    if "resources" in settings:
        resources = pod["containers"][0]["resources"]
        for section, values in settings["resources"].items():
            assert resources[section] == {**resources[section], **values}, section
    assert template["metadata"].get("annotations", {}) == settings.get("podAnnotations", {})
    labels = dict(template["metadata"]["labels"])
    for added in ("controller-uid", "job-name"):  # the API server's, on a created Job
        labels.pop(added, None)
    assert labels == {**settings.get("podLabels", {}), **job["metadata"]["labels"]}
    assert labels["app.kubernetes.io/managed-by"] == "milvus-backup-operator"


# ------------------------------------------------------------------ on the API server

MBK = "milvusbackups.backup.milvus.io"
CW_OPERATOR, CW_REST = "mbo-cw/cw-milvus-backup-operator", "mbo-cw/cw-milvus-backup-operator-rest"
NS_OPERATOR, NS_REST = "mbo-ns/ns-milvus-backup-operator", "ns-b/ns-milvus-backup-operator-rest"
#: (ServiceAccount, verb, resource, namespace ("": all), allowed) after both releases.
PERMISSIONS = [
    # cluster-wide: the operator everywhere, within its rules
    (CW_OPERATOR, "watch", MBK, "", True),
    (CW_OPERATOR, "watch", MBK, "ns-other", True),
    (CW_OPERATOR, "patch", f"{MBK}/status", "ns-other", True),
    (CW_OPERATOR, "create", "jobs.batch", "team-x", True),
    (CW_OPERATOR, "get", "secrets", "team-x", True),
    (CW_OPERATOR, "list", "secrets", "team-x", False),
    (CW_OPERATOR, "delete", MBK, "team-x", True),  # a schedule's retention, a backup's ttl
    (CW_OPERATOR, "create", MBK, "team-x", True),  # a schedule's runs
    (CW_OPERATOR, "watch", "milvusbackupschedules.backup.milvus.io", "team-x", True),
    (CW_OPERATOR, "patch", "milvusbackupschedules.backup.milvus.io/status", "team-x", True),
    (CW_OPERATOR, "delete", "milvusbackupschedules.backup.milvus.io", "team-x", False),
    # backupOwnerReference: schedule (blockOwnerDeletion, where owner references are enforced)
    (CW_OPERATOR, "update", "milvusbackupschedules.backup.milvus.io/finalizers", "team-x", True),
    (CW_OPERATOR, "create", "pods", "team-x", False),
    # the Jobs' account, in the release namespace and jobNamespaces: its resource and status
    *[(f"{ns}/milvus-backup-job", verb, resource, ns, allowed)
      for ns in ("mbo-cw", "team-x")
      for verb, resource, allowed in (("get", MBK, True), ("patch", f"{MBK}/status", True),
                                      ("patch", MBK, False), ("get", "secrets", False))],
    # the REST server: create and delete resources in its namespace, read their status
    (CW_REST, "create", MBK, "mbo-cw", True),
    (CW_REST, "delete", MBK, "mbo-cw", True),
    (CW_REST, "get", f"{MBK}/status", "mbo-cw", True),
    (CW_REST, "patch", MBK, "mbo-cw", False),
    (CW_REST, "create", MBK, "team-x", False),
    (CW_REST, "get", "secrets", "mbo-cw", True),  # those its template names, to read storage
    (CW_REST, "list", "secrets", "mbo-cw", False),
    (CW_REST, "get", "secrets", "team-x", False),
    # namespaced: the watched namespaces only, plus reading CRDs and namespaces
    *[(NS_OPERATOR, verb, resource, ns, ns in ("ns-a", "ns-b"))
      for ns in ("ns-a", "ns-b", "ns-other", "mbo-ns")
      for verb, resource in (("watch", MBK), ("create", "jobs.batch"), ("get", "secrets"))],
    (NS_OPERATOR, "watch", MBK, "", False),
    (NS_OPERATOR, "watch", "namespaces", "", True),
    (NS_OPERATOR, "list", "customresourcedefinitions", "", True),
    ("ns-a/milvus-backup-job", "patch", f"{MBK}/status", "ns-a", True),
    ("ns-b/milvus-backup-job", "patch", f"{MBK}/status", "ns-b", True),
    (NS_REST, "create", MBK, "ns-b", True),
    (NS_REST, "create", MBK, "ns-a", False),
]  # fmt: skip


def test_manifests_apply_to_the_api_server_in_both_modes(cluster: Cluster) -> None:
    """Dry run (the server validates every object, the webhook configuration as rendered), then
    for real; then what each account may do is asked of the server's RBAC."""
    namespaces(cluster, "mbo-cw", "team-x", "mbo-ns", "ns-a", "ns-b", "ns-other")
    wide = render("cw", "mbo-cw", merged(CLUSTER_WIDE, {"restServer": {"enabled": True}}))
    narrow = render("ns", "mbo-ns", merged(
        NAMESPACED, {"restServer": {"enabled": True, "namespace": "ns-b"}}
    ))  # fmt: skip
    for docs in (wide, narrow):
        dry = apply(cluster, docs, dry_run=True)
        assert dry.count("(server dry run)") == len(docs), dry
        assert "validatingwebhookconfiguration.admissionregistration.k8s.io/" in dry
        assert apply(cluster, docs).count("\n") == len(docs)
    hook = cluster.kubectl("get", "validatingwebhookconfiguration", "cw-milvus-backup-operator",
                           "-o", "json").stdout  # fmt: skip
    names = [h["name"] for h in json.loads(hook)["webhooks"]]
    assert names == ["spec-valid.backup.milvus.io", "spec-immutable.backup.milvus.io",
                     "schedule-valid.backup.milvus.io"]  # fmt: skip

    for account, verb, what, namespace, allowed in PERMISSIONS:
        resource, _, subresource = what.partition("/")
        got = can_i(cluster, account, verb, resource, namespace, subresource)
        assert got is allowed, (account, verb, what, namespace or "all namespaces")
    ours = ("mbo-cw", "team-x", "mbo-ns", "ns-a", "ns-b", "ns-other")
    accounts = cluster.kubectl("get", "serviceaccounts", "-A", "-o", "json").stdout
    job_accounts = sorted(
        i["metadata"]["namespace"] for i in json.loads(accounts)["items"]
        if i["metadata"]["name"] == "milvus-backup-job" and i["metadata"]["namespace"] in ours
    )  # fmt: skip
    assert job_accounts == ["mbo-cw", "ns-a", "ns-b", "team-x"]  # and none in ns-other


# ------------------------------------------------------------------ the operator, end to end


@pytest.fixture(scope="module")
def chart_backup(chart_install: ChartInstall, cluster: Cluster, stack: Stack) -> dict[str, Any]:
    body = milvus_backup("chart-nightly", stack, collections=["books", "db1.docs"])
    body["metadata"]["namespace"] = WATCHED
    apply_resources(cluster, body)
    wait_for_phase(cluster, "milvusbackups", WATCHED, "chart-nightly")
    found = get_resource(cluster, "milvusbackups", WATCHED, "chart-nightly")
    assert found
    return found


def test_the_operator_under_the_charts_rbac_completes_a_backup(
    chart_install: ChartInstall, chart_backup: dict[str, Any], cluster: Cluster, stack: Stack,
    jobrunner: LocalJobRunner,
) -> None:  # fmt: skip
    status = chart_backup["status"]
    log = chart_install.operator.log.read_text()
    assert status["phase"] == "Completed", (status, jobrunner.log_of("mbk-chart-nightly"), log)
    assert {c["name"] for c in status["collections"]} == {"books", "db1.docs"}
    assert catalog(stack).read("chart_nightly").size == status["backupSize"]
    # the Job the operator made: the chart's image and the chart's Job ServiceAccount
    code, job = cluster.api_get(f"/apis/batch/v1/namespaces/{WATCHED}/jobs/mbk-chart-nightly")
    assert code == 200, job
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "milvus-backup-job"
    assert pod["containers"][0]["image"] == IMAGE
    command = pod["containers"][0]["command"]  # Jobs log at the chart's logLevel, as the operator
    assert command[:4] == ["milvus-backup-operator", "--log-level", "info", "job"]
    check_job_carries(job, CHART_JOB_TEMPLATE)  # the chart's jobTemplate values
    # the operator's rights were enough: no refusal, no fallback for lack of permissions
    for complaint in ("Forbidden", "403", "Not enough permissions"):
        assert complaint not in log, log
    assert chart_install.operator.process and chart_install.operator.process.poll() is None


def test_the_webhook_serves_the_charts_certificate_and_refuses_a_spec_change(
    chart_install: ChartInstall, chart_backup: dict[str, Any], cluster: Cluster
) -> None:
    ca = chart_install.certs / "ca.crt"
    name = chart_install.webhook_service_host()
    assert name == f"{RELEASE}-milvus-backup-operator-webhook.mbo-chart.svc"
    changed = copy.deepcopy(chart_backup)
    changed["spec"]["collections"] = ["tiny"]
    review = admission_review("milvusbackups", chart_backup, changed)
    answer = call_webhook(chart_install.webhook_port, ca, name, review)["response"]
    assert answer["allowed"] is False and answer["uid"] == review["request"]["uid"]
    message = answer["status"]["message"]
    assert "cannot change once its work has started (phase Completed)" in message
    relabelled = copy.deepcopy(chart_backup)
    relabelled["metadata"].setdefault("labels", {})["team"] = "a"
    review = admission_review("milvusbackups", chart_backup, relabelled)
    assert call_webhook(chart_install.webhook_port, ca, name, review)["response"]["allowed"]
    # a client that expects another name, or trusts another CA, does not get through
    with pytest.raises(urllib3.exceptions.SSLError, match="doesn't match"):
        call_webhook(chart_install.webhook_port, ca, "elsewhere.mbo-chart.svc", review)
    with pytest.raises(urllib3.exceptions.SSLError, match="certificate verify failed"):
        call_webhook(chart_install.webhook_port, cluster.ca_path, name, review)


def test_helm_install_then_upgrade_keeps_the_certificate_and_the_token(
    cluster: Cluster, tmp_path: Path
) -> None:
    """A real ``helm install`` and ``helm upgrade`` against the API server: the webhook's
    certificate and the REST token are looked up and kept, so the operator is not restarted
    and clients keep working; changed values do reach the Deployment."""
    namespaces(cluster, "mbo-helm")
    env = {"KUBECONFIG": str(cluster.kubeconfig)}
    values = {"restServer": {"enabled": True}, "webhook": {"namespaceSelector": NO_NAMESPACE}}

    def release_state() -> tuple[dict[str, Any], ...]:
        def get(kind: str, name: str, namespace: str = "mbo-helm") -> dict[str, Any]:
            args = ["get", kind, name, "-o", "json"] + (["-n", namespace] if namespace else [])
            return dict(json.loads(cluster.kubectl(*args).stdout))

        tls = get("secret", "h-milvus-backup-operator-webhook-tls")["data"]
        token = get("secret", "h-milvus-backup-operator-rest-token")["data"]
        hook = get("validatingwebhookconfiguration", "h-milvus-backup-operator", "")
        pod = get("deployment", "h-milvus-backup-operator")["spec"]["template"]
        return tls, token, hook["webhooks"][0]["clientConfig"]["caBundle"], pod

    for step, extra in (("install", {}), ("upgrade", {"logLevel": "debug"})):
        path = tmp_path / f"{step}.yaml"
        path.write_text(yaml.safe_dump(merged(values, extra)))
        done = helm(step, "h", str(CHART), "-n", "mbo-helm", "-f", str(path), env=env)
        assert "STATUS: deployed" in done.stdout, done.stdout
        if step == "install":
            tls, token, bundle, pod = release_state()
            assert bundle == tls["ca.crt"]
    tls2, token2, bundle2, pod2 = release_state()
    assert (tls2, token2, bundle2) == (tls, token, bundle)
    assert pod2["metadata"]["annotations"] == pod["metadata"]["annotations"]
    assert container({"spec": {"template": pod2}})["args"][:2] == ["--log-level", "debug"]
    helm("uninstall", "h", "-n", "mbo-helm", env=env)
    gone = cluster.kubectl(
        "get", "validatingwebhookconfiguration", "h-milvus-backup-operator", check=False
    )
    assert gone.returncode != 0 and "NotFound" in gone.stderr


class RestServer:
    """The REST server started with the chart's args, under the chart's ServiceAccount."""

    def __init__(self, port: int, token: str, process: subprocess.Popen[bytes]) -> None:
        self.url = f"http://127.0.0.1:{port}/api/v1"
        self.token, self.process = token, process

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def chart_rest_server(
    chart_install: ChartInstall, cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RestServer]:
    """The Deployment's args, with the port free here and the mounted files (the ConfigMap's
    template, the Secret's token) written where this process can read them."""
    name = f"{RELEASE}-milvus-backup-operator-rest"
    docs, folder = chart_install.docs, tmp_path_factory.mktemp("rest")
    spec_file = folder / "template.yaml"
    spec_file.write_text(one(docs, "ConfigMap", f"{name}-template")["data"]["template.yaml"])
    token = base64.b64decode(one(docs, "Secret", f"{name}-token")["data"]["token"]).decode()
    (folder / "token").write_text(token)
    args = container(one(docs, "Deployment", name))["args"]
    port = free_port()
    for flag, value in (("-p", str(port)), ("--template", str(spec_file)),
                        ("--token-file", str(folder / "token"))):  # fmt: skip
        args[args.index(flag) + 1] = value
    kubeconfig = cluster.kubeconfig_for_token(
        service_account_token(cluster, WATCHED, name), folder / "kubeconfig"
    )
    command = [str(Path(sys.executable).parent / "milvus-backup-operator"), *args]
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    with (folder / "server.log").open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = RestServer(port, token, process)
    try:
        hello = lambda: call(server, "GET", "/hello", raw=True)[0] == 200  # noqa: E731
        bed.wait(hello, 30, f"the REST server (log: {folder / 'server.log'})")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_rest_server_under_the_charts_rbac_makes_backups_the_operator_runs(
    chart_rest_server: RestServer, chart_backup: dict[str, Any], cluster: Cluster
) -> None:
    server = chart_rest_server
    assert call(server, "GET", "/list")[0] == 401  # the chart's token is required
    status, reply = call(server, "GET", "/list", headers=server.auth())
    assert status == 200 and "chart_nightly" in json.dumps(reply["data"]), reply  # read storage
    body = {"backup_name": "chart_api", "collection_names": ["tiny"]}
    status, reply = call(server, "POST", "/create", body, headers=server.auth())
    assert status == 200 and reply["data"]["state_code"] == 2, reply
    made = get_resource(cluster, "milvusbackups", WATCHED, "chart-api")
    assert made and made["status"]["phase"] == "Completed", made
