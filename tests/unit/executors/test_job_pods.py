"""The Jobs' Pod settings (spec.jobTemplate over the operator's defaults), spec.timeouts, and the
Jobs' logging: parsed, merged, checked at the edge, and carried into the Job manifest."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import click
import kopf
import pytest
from kubernetes.client.exceptions import ApiException

from milvus_backup_operator.api import Kind, crds
from milvus_backup_operator.api.engine_config import Credentials, engine_config
from milvus_backup_operator.api.job_template import JobTemplate, JobTemplateError
from milvus_backup_operator.api.job_template import parse_job_template as parse
from milvus_backup_operator.api.specs import SpecError, parse_backup, parse_restore
from milvus_backup_operator.cli import read_job_defaults
from milvus_backup_operator.controllers import admission
from milvus_backup_operator.engine.config import Timeouts
from milvus_backup_operator.executors import StartRefusedError, WorkItem
from milvus_backup_operator.executors import job as job_module
from milvus_backup_operator.executors.job import BUILT_IN, JobExecutor
from milvus_backup_operator.manager import RunOptions, _executor

SPEC = {
    "milvus": {"address": "my-release-milvus.milvus.svc"},
    "storage": {"endpoint": "my-release-minio.milvus.svc:9000"},
}
OURS = {
    "app.kubernetes.io/managed-by": "milvus-backup-operator",
    "backup.milvus.io/kind": "backup",
    "backup.milvus.io/name": "nightly",
}
#: what a platform team sets for every Job (the chart's jobTemplate values)
DEFAULTS = {
    "nodeSelector": {"pool": "batch", "disk": "ssd"},
    "tolerations": [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}],
    "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}},
    "imagePullSecrets": [{"name": "registry"}],
    "resources": {"requests": {"cpu": "200m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}},
    "podAnnotations": {"sidecar.istio.io/inject": "false"},
    "podLabels": {"team": "platform", "cost-center": "db"},
    "priorityClassName": "batch-low",
}


def job(template: dict[str, Any] | None = None, defaults: JobTemplate = BUILT_IN,
        **executor: Any) -> dict[str, Any]:  # fmt: skip
    spec = {**SPEC, **({"jobTemplate": template} if template is not None else {})}
    owner = {"metadata": {"name": "nightly", "uid": "u-1"}, "spec": spec}
    item = WorkItem(Kind.BACKUP, "team-a", "nightly", owner, ())
    return JobExecutor(image="registry/mbo:1", defaults=defaults, **executor).manifest(item)


def pod_of(manifest: dict[str, Any]) -> dict[str, Any]:
    return dict(manifest["spec"]["template"]["spec"])


# ---- the manifest --------------------------------------------------------------------------


def test_without_settings_a_job_is_as_before() -> None:
    manifest = job()
    pod = pod_of(manifest)
    for key in ("nodeSelector", "tolerations", "affinity", "imagePullSecrets", "priorityClassName"):
        assert key not in pod, key
    assert manifest["spec"]["template"]["metadata"] == {"labels": OURS}
    assert pod["containers"][0]["resources"] == {"requests": {"cpu": "100m", "memory": "256Mi"}}


def test_the_operators_defaults_reach_every_job() -> None:
    pod_template = job(defaults=parse(DEFAULTS).over(BUILT_IN))["spec"]["template"]
    pod = pod_template["spec"]
    assert pod["nodeSelector"] == DEFAULTS["nodeSelector"]
    assert pod["tolerations"] == DEFAULTS["tolerations"]
    assert pod["affinity"] == DEFAULTS["affinity"]
    assert pod["imagePullSecrets"] == [{"name": "registry"}]
    assert pod["priorityClassName"] == "batch-low"
    assert pod["containers"][0]["resources"] == DEFAULTS["resources"]
    assert pod_template["metadata"]["annotations"] == {"sidecar.istio.io/inject": "false"}
    assert pod_template["metadata"]["labels"] == {**DEFAULTS["podLabels"], **OURS}


def test_a_resources_job_template_overrides_the_defaults_field_by_field() -> None:
    own = {
        "nodeSelector": {"disk": "nvme"},  # maps: merged, ours winning
        "tolerations": [
            {
                "key": "gpu",
                "operator": "Equal",
                "value": "no",
                "effect": "NoExecute",
                "tolerationSeconds": 60,
            }
        ],
        "resources": {"limits": {"memory": "8Gi", "cpu": 2}},
        "podAnnotations": {"backup.example.com/owner": "alice"},
        "podLabels": {"team": "search"},
        "priorityClassName": "backup-critical",
    }
    template = job(own, defaults=parse(DEFAULTS).over(BUILT_IN))["spec"]["template"]
    pod = template["spec"]
    assert pod["nodeSelector"] == {"pool": "batch", "disk": "nvme"}
    assert pod["tolerations"] == own["tolerations"]  # lists: replaced
    assert pod["affinity"] == DEFAULTS["affinity"]  # not given: the default
    assert pod["imagePullSecrets"] == [{"name": "registry"}]
    assert pod["priorityClassName"] == "backup-critical"
    assert pod["containers"][0]["resources"] == {
        "requests": {"cpu": "200m", "memory": "512Mi"}, "limits": {"memory": "8Gi", "cpu": "2"},
    }  # fmt: skip
    assert template["metadata"]["annotations"] == {
        "sidecar.istio.io/inject": "false", "backup.example.com/owner": "alice",
    }  # fmt: skip
    assert template["metadata"]["labels"] == {"team": "search", "cost-center": "db", **OURS}


def test_an_empty_list_clears_a_default_and_affinity_is_replaced_whole() -> None:
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": []}}
    own = {"tolerations": [], "imagePullSecrets": [], "affinity": anti}
    pod = pod_of(job(own, defaults=parse(DEFAULTS).over(BUILT_IN)))
    assert "tolerations" not in pod and "imagePullSecrets" not in pod
    assert pod["affinity"] == own["affinity"]


def test_a_default_never_contradicts_the_resources_own_resources() -> None:
    defaults = parse(DEFAULTS).over(BUILT_IN)  # requests memory 512Mi, limits memory 2Gi
    lower = pod_of(job({"resources": {"limits": {"memory": "256Mi"}}}, defaults))
    assert lower["containers"][0]["resources"]["requests"]["memory"] == "256Mi"  # capped
    higher = pod_of(job({"resources": {"requests": {"memory": "3Gi"}}}, defaults))
    assert higher["containers"][0]["resources"]["limits"]["memory"] == "3Gi"  # raised


def test_our_labels_win_over_any_pod_label() -> None:
    """The parser refuses them; should a template carry them anyway, ours still win."""
    sneaky = JobTemplate(
        pod_labels={"backup.milvus.io/name": "other", "app.kubernetes.io/managed-by": "me"}
    )
    manifest = job(defaults=sneaky)
    assert manifest["spec"]["template"]["metadata"]["labels"] == OURS
    assert manifest["metadata"]["labels"] == OURS


def test_jobs_log_at_the_operators_level_and_format() -> None:
    command = pod_of(job(log_level="debug", json_logs=True))["containers"][0]["command"]
    assert command == ["milvus-backup-operator", "--log-level", "debug", "job", "backup",
                       "team-a/nightly", "--json-logs"]  # fmt: skip
    plain = pod_of(job())["containers"][0]["command"]
    assert plain == ["milvus-backup-operator", "--log-level", "warning", "job", "backup",
                     "team-a/nightly"]  # fmt: skip


def test_the_operator_passes_its_level_format_and_defaults_to_the_executor() -> None:
    defaults = parse(DEFAULTS).over(BUILT_IN)
    options = RunOptions(namespaces=("a",), all_namespaces=False, executor="job", image="i",
                         job_service_account="sa", health_port=1, json_logs=True,
                         job_defaults=defaults)  # fmt: skip
    root = logging.getLogger()
    level = root.level
    try:
        root.setLevel(logging.INFO)
        executor = _executor(options)
    finally:
        root.setLevel(level)
    assert isinstance(executor, JobExecutor)
    assert (executor.log_level, executor.json_logs, executor.defaults) == ("info", True, defaults)


# ---- checks at the edge --------------------------------------------------------------------


WRONG = [
    ({"nodeSelectr": {}},
     r"spec\.jobTemplate\.nodeSelectr: unknown field \(the fields are: nodeSelector, "),
    ({"tolerations": [{"key": "a", "opertor": "Exists"}]},
     r"spec\.jobTemplate\.tolerations\[0\]\.opertor: unknown field"),
    ({"tolerations": [{"key": "a", "operator": "Exists", "value": "x"}]},
     r"tolerations\[0\]\.value: must be empty with operator Exists"),
    ({"tolerations": [{"key": "a", "effect": "NoSchedule", "tolerationSeconds": 5}]},
     r"tolerationSeconds: an integer, with effect NoExecute only"),
    ({"tolerations": [{"key": "a", "effect": "Never"}]},
     r"tolerations\[0\]\.effect: must be one of"),
    ({"affinity": {"nodeAfinity": {}}},
     r"spec\.jobTemplate\.affinity\.nodeAfinity: unknown field"),
    ({"resources": {"request": {"cpu": "1"}}},
     r"spec\.jobTemplate\.resources\.request: unknown field"),
    ({"resources": {"limits": {"memory": "lots"}}},
     r"resources\.limits\.memory: 'lots' is not a quantity"),
    ({"resources": {"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}},
     r"requests\.memory: must not exceed limits\.memory"),
    ({"podLabels": {"backup.milvus.io/name": "x"}},
     r"podLabels\.backup\.milvus\.io/name: the operator or the Job controller sets this label"),
    ({"podLabels": {"app.kubernetes.io/managed-by": "helm"}},
     r"podLabels\.app\.kubernetes\.io/managed-by: the operator"),
    ({"podLabels": {"team": "a b"}},
     r"podLabels\.team: 'a b' is not a valid label value"),
    ({"podAnnotations": {"sidecar.istio.io/inject": False}},
     r"podAnnotations\.sidecar\.istio\.io/inject: must be a string"),
    ({"nodeSelector": {"-bad": "x"}},
     r"nodeSelector\.-bad: a name of at most 63"),
    ({"imagePullSecrets": ["registry"]},
     r"imagePullSecrets\[0\]: must be an object"),
    ({"imagePullSecrets": [{"name": "Registry_1"}]},
     r"imagePullSecrets\[0\]\.name: 'Registry_1' is not a valid name"),
    ({"priorityClassName": "High"},
     r"priorityClassName: 'High' is not a valid name"),
]  # fmt: skip


@pytest.mark.parametrize(("template", "message"), WRONG)
def test_a_wrong_job_template_is_refused_naming_the_field(template: Any, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_backup("b", {**SPEC, "jobTemplate": template})
    with pytest.raises(SpecError, match=message):
        parse_restore({"backupRef": "b", "jobTemplate": template})
    with pytest.raises(kopf.AdmissionError, match=message):  # at kubectl apply
        body = {"metadata": {"name": "b"}, "spec": {**SPEC, "jobTemplate": template}}
        admission.backup_spec_valid(body=kopf.Body(body))


def test_quantities_are_compared_by_value() -> None:
    assert parse({"resources": {"requests": {"cpu": "500m"}, "limits": {"cpu": 1}}})
    assert parse({"resources": {"requests": {"memory": "1G"}, "limits": {"memory": "1Gi"}}})
    with pytest.raises(JobTemplateError, match="must not exceed"):
        parse({"resources": {"requests": {"memory": "1.1Gi"}, "limits": {"memory": "1e9"}}})


def test_timeouts_reach_the_engine_and_are_bounded() -> None:
    spec = parse_backup("b", {**SPEC, "timeouts": {"flush": 3600, "writerSilence": 300}})
    assert spec.timeouts == Timeouts(flush=3600.0, writer_silence=300.0)
    config = engine_config(spec.milvus, spec.storage, spec.backup_storage, Credentials(),
                           spec.timeouts)  # fmt: skip
    assert config.timeouts.flush == 3600 and config.timeouts.import_job == 3600  # the default
    assert parse_backup("b", SPEC).timeouts is None
    restore = parse_restore({"backupRef": "b", "timeouts": {"importJob": 7200, "load": 60}})
    assert restore.timeouts == Timeouts(import_job=7200.0, load=60.0)
    for bad, message in (
        ({"flush": 0}, r"spec\.timeouts\.flush: seconds from 1 to 86400, not 0"),
        ({"flush": "1h"}, r"spec\.timeouts\.flush: seconds from 1"),
        ({"writerSilence": 5}, r"writerSilence: seconds from 12 to 3600"),
        ({"import": 60}, r"spec\.timeouts\.import: unknown field \(the fields are: connect, rpc"),
    ):
        with pytest.raises(SpecError, match=message):
            parse_backup("b", {**SPEC, "timeouts": bad})


def test_the_crd_describes_and_bounds_every_job_setting() -> None:
    backup = crds.all_crds()["backup.milvus.io_milvusbackups.yaml"]
    restore = crds.all_crds()["backup.milvus.io_milvusrestores.yaml"]
    for doc in (backup, restore):
        spec = doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        template, timeouts = spec["properties"]["jobTemplate"], spec["properties"]["timeouts"]
        # unknown keys reach the webhook, which refuses them by name (not silently pruned)
        assert template["x-kubernetes-preserve-unknown-fields"] is True
        assert set(template["properties"]) == {
            "nodeSelector", "tolerations", "affinity", "imagePullSecrets", "resources",
            "podAnnotations", "podLabels", "priorityClassName",
        }  # fmt: skip
        for path, node in _nodes(template) + _nodes(timeouts):
            assert node.get("description"), path
        assert timeouts["properties"]["flush"]["maximum"] == 86400
        assert timeouts["properties"]["writerSilence"]["minimum"] == 12


def _nodes(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = [(path, schema)]
    for key, child in schema.get("properties", {}).items():
        found += _nodes(child, f"{path}.{key}")
    if "items" in schema:
        found += _nodes(schema["items"], f"{path}[]")
    return found


def test_the_operators_defaults_file_is_checked_at_start(tmp_path: Path) -> None:
    path = tmp_path / "job-defaults.yaml"
    path.write_text("nodeSelector: {pool: batch}\nresources: {limits: {memory: 4Gi}}\n")
    defaults = read_job_defaults(path)
    assert defaults.node_selector == {"pool": "batch"}
    assert defaults.resources == {"requests": {"cpu": "100m", "memory": "256Mi"},
                                  "limits": {"memory": "4Gi"}}  # fmt: skip
    assert read_job_defaults(None) == BUILT_IN
    path.write_text("tolerations: {key: a}\n")
    with pytest.raises(
        click.UsageError,
        match=r"--job-defaults .*job-defaults\.yaml: jobTemplate\.tolerations: must be a list",
    ):
        read_job_defaults(path)


# ---- what only the API server can check ----------------------------------------------------


def test_a_job_the_api_server_refuses_is_a_refusal_naming_its_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Inside an affinity the schema checks nothing: the API server refuses the Job (422), and
    the executor says so (the controllers then fail the resource: test_controllers)."""
    message = 'Job.batch "mbk-nightly" is invalid: spec.template.spec.affinity...: Required value'

    class Refusing:
        def create_namespaced_job(self, namespace: str, body: Any) -> None:
            refusal = ApiException(status=422, reason="Unprocessable Entity")
            refusal.body = json.dumps({"message": message})
            raise refusal

    monkeypatch.setattr(job_module, "batch", Refusing)
    item = WorkItem(
        Kind.BACKUP, "team-a", "nightly", {"metadata": {"name": "nightly", "uid": "u"}}, ()
    )
    with pytest.raises(
        StartRefusedError, match=r"the API server refused Job mbk-nightly: Job\.batch"
    ) as refused:
        JobExecutor(image="i").start(item)
    assert "fix spec.jobTemplate" in str(refused.value)
