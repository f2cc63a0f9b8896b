"""Run each backup or restore in a Kubernetes Job of its own.

The Job runs the operator's own image with ``milvus-backup-operator job KIND NS/NAME``, mounts
the Secrets it needs (never copies their values), reports progress into the resource's
status itself, and is owned by the resource, so deleting the resource deletes the Job.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, cast

from kubernetes.client.exceptions import ApiException

from ..api import API_VERSION
from ..api.job_template import JobTemplate, parse_job_template
from ..k8s.client import batch
from . import StartRefusedError, WorkItem

MANAGED_BY = "app.kubernetes.io/managed-by"
OPERATOR = "milvus-backup-operator"
KIND_LABEL = "backup.milvus.io/kind"
NAME_LABEL = "backup.milvus.io/name"
SECRETS_DIR = "/var/run/secrets/milvus-backup"
SECRETS_ENV = "MBO_SECRETS_DIR"
#: what a Job gets when neither the operator's defaults nor the resource say otherwise
BUILT_IN = JobTemplate(resources={"requests": {"cpu": "100m", "memory": "256Mi"}})


def job_name(item: WorkItem) -> str:
    """Deterministic, at most 63 characters: ``mbk-<name>`` or ``mrs-<name>``, and
    ``-r<n>`` for the n-th worker started after one died."""
    name = f"{item.kind.short_name}-{item.name}"
    retry = f"-r{item.attempt}" if item.attempt else ""
    if len(name) + len(retry) <= 63:
        return name + retry
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{name[: 54 - len(retry)]}-{digest}{retry}"


@dataclass(frozen=True)
class JobExecutor:
    image: str
    service_account: str = "milvus-backup-job"
    image_pull_policy: str = "IfNotPresent"
    active_deadline_seconds: int = 24 * 3600
    #: the operator's defaults (``--job-defaults``), under each resource's spec.jobTemplate
    defaults: JobTemplate = BUILT_IN
    log_level: str = "warning"  # the operator's, passed on to the Job's command
    json_logs: bool = False

    def runner_name(self, item: WorkItem) -> str:
        return job_name(item)

    def start(self, item: WorkItem) -> None:
        """Create the Job; an existing one (same name) is the same work, left as it is."""
        manifest = self.manifest(item)
        try:
            batch().create_namespaced_job(item.namespace, cast(Any, manifest))
        except ApiException as exc:
            if exc.status == 422:  # what the schema let through, e.g. inside an affinity
                raise StartRefusedError(_refusal(manifest["metadata"]["name"], exc)) from None
            if exc.status != 409:
                raise

    def stop(self, namespace: str, runner: str) -> bool:
        """Delete the Job: its Pod is told to stop (SIGTERM, then its grace period)."""
        try:
            batch().delete_namespaced_job(runner, namespace, propagation_policy="Background")
        except ApiException as exc:
            if exc.status != 404:
                raise
        return True

    def settings(self, item: WorkItem) -> JobTemplate:
        """The resource's spec.jobTemplate over the operator's defaults (checked at admission
        and by the controller before any Job is made)."""
        raw = (item.owner.get("spec") or {}).get("jobTemplate")
        return parse_job_template(raw).over(self.defaults)

    def command(self, item: WorkItem) -> list[str]:
        """``milvus-backup-operator job``, logging at the operator's level and format."""
        command = [OPERATOR, "--log-level", self.log_level, "job", item.kind.value]
        return [*command, f"{item.namespace}/{item.name}", *(["--json-logs"] * self.json_logs)]

    def manifest(self, item: WorkItem) -> dict[str, Any]:
        settings = self.settings(item)
        ours = {MANAGED_BY: OPERATOR, KIND_LABEL: item.kind.value, NAME_LABEL: item.name}
        pod_meta: dict[str, Any] = {"labels": {**settings.pod_labels, **ours}}  # ours win
        if settings.pod_annotations:
            pod_meta["annotations"] = dict(settings.pod_annotations)
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": job_name(item),
                "namespace": item.namespace,
                "labels": ours,
                "ownerReferences": [self._owner(item)],
            },
            "spec": {
                "backoffLimit": 0,  # a retry is a new Job, once this one failed: never two workers
                "activeDeadlineSeconds": self.active_deadline_seconds,
                "template": {"metadata": pod_meta, "spec": self._pod(item, settings)},
            },
        }

    def _pod(self, item: WorkItem, settings: JobTemplate) -> dict[str, Any]:
        volumes = [
            {"name": f"secret-{i}", "secret": {"secretName": s, "defaultMode": 0o400}}
            for i, s in enumerate(item.secrets)
        ]
        pod: dict[str, Any] = {
            "restartPolicy": "Never",
            "serviceAccountName": self.service_account,
            "securityContext": {  # passes the "restricted" Pod Security Standard
                "runAsNonRoot": True,
                "runAsUser": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [self._container(item, settings)],
            "volumes": volumes,
        }
        return {**pod, **_placement(settings)}

    def _container(self, item: WorkItem, settings: JobTemplate) -> dict[str, Any]:
        mounts = [
            {"name": f"secret-{i}", "mountPath": f"{SECRETS_DIR}/{s}", "readOnly": True}
            for i, s in enumerate(item.secrets)
        ]
        return {
            "name": "worker",
            "image": self.image,
            "imagePullPolicy": self.image_pull_policy,
            "command": self.command(item),
            "env": [{"name": SECRETS_ENV, "value": SECRETS_DIR}],
            "volumeMounts": mounts,
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "runAsNonRoot": True,
                "capabilities": {"drop": ["ALL"]},
            },
            "resources": settings.resources,
        }

    @staticmethod
    def _owner(item: WorkItem) -> dict[str, Any]:
        meta = item.owner["metadata"]
        return {
            "apiVersion": API_VERSION,
            "kind": item.kind.kind,
            "name": meta["name"],
            "uid": meta["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }


def _refusal(name: str, exc: ApiException) -> str:
    """The API server's reason for refusing the Job, and where to fix it."""
    try:
        reason = json.loads(exc.body or "{}").get("message") or exc.reason
    except ValueError:
        reason = exc.reason
    return (
        f"the API server refused Job {name}: {reason}; fix spec.jobTemplate (or the "
        "operator's Job defaults, the chart's jobTemplate values) and create the resource again"
    )


def _placement(settings: JobTemplate) -> dict[str, Any]:
    """The Pod spec fields a platform team sets; only those that are set."""
    pod: dict[str, Any] = {
        "nodeSelector": dict(settings.node_selector),
        "tolerations": list(settings.tolerations or ()),
        "affinity": dict(settings.affinity or {}),
        "imagePullSecrets": [{"name": name} for name in settings.image_pull_secrets or ()],
        "priorityClassName": settings.priority_class_name,
    }
    return {key: value for key, value in pod.items() if value}
