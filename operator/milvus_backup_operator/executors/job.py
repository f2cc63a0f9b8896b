"""Run each backup or restore in a Kubernetes Job of its own.

The Job runs the operator's own image with ``milvus-backup-operator job KIND NS/NAME``, mounts
the Secrets it needs (never copies their values), reports progress into the resource's
status itself, and is owned by the resource, so deleting the resource deletes the Job.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, cast

from kubernetes.client.exceptions import ApiException

from ..api import API_VERSION
from ..k8s.client import batch
from . import WorkItem

MANAGED_BY = "app.kubernetes.io/managed-by"
OPERATOR = "milvus-backup-operator"
KIND_LABEL = "backup.milvus.io/kind"
NAME_LABEL = "backup.milvus.io/name"
SECRETS_DIR = "/var/run/secrets/milvus-backup"
SECRETS_ENV = "MBO_SECRETS_DIR"


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

    def runner_name(self, item: WorkItem) -> str:
        return job_name(item)

    def start(self, item: WorkItem) -> None:
        """Create the Job; an existing one (same name) is the same work, left as it is."""
        manifest = self.manifest(item)
        try:
            batch().create_namespaced_job(item.namespace, cast(Any, manifest))
        except ApiException as exc:
            if exc.status != 409:
                raise

    def manifest(self, item: WorkItem) -> dict[str, Any]:
        labels = {MANAGED_BY: OPERATOR, KIND_LABEL: item.kind.value, NAME_LABEL: item.name}
        mounts = [
            {"name": f"secret-{i}", "mountPath": f"{SECRETS_DIR}/{s}", "readOnly": True}
            for i, s in enumerate(item.secrets)
        ]
        volumes = [
            {"name": f"secret-{i}", "secret": {"secretName": s, "defaultMode": 0o400}}
            for i, s in enumerate(item.secrets)
        ]
        container = {
            "name": "worker",
            "image": self.image,
            "imagePullPolicy": self.image_pull_policy,
            "command": [OPERATOR, "job", item.kind.value, f"{item.namespace}/{item.name}"],
            "env": [{"name": SECRETS_ENV, "value": SECRETS_DIR}],
            "volumeMounts": mounts,
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "runAsNonRoot": True,
                "capabilities": {"drop": ["ALL"]},
            },
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
        }
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": job_name(item),
                "namespace": item.namespace,
                "labels": labels,
                "ownerReferences": [self._owner(item)],
            },
            "spec": {
                "backoffLimit": 0,  # a retry is a new Job, once this one failed: never two workers
                "activeDeadlineSeconds": self.active_deadline_seconds,
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "restartPolicy": "Never",
                        "serviceAccountName": self.service_account,
                        "securityContext": {  # passes the "restricted" Pod Security Standard
                            "runAsNonRoot": True,
                            "runAsUser": 65532,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [container],
                        "volumes": volumes,
                    },
                },
            },
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
