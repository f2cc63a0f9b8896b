"""Helpers to write MilvusBackup/MilvusRestore YAML as a user would, and watch their status."""

from __future__ import annotations

import time
from typing import Any

import yaml
from kubernetes import client

from testbed.bed import GROUP, NAMESPACE, VERSION
from testbed.kube import Cluster
from testbed.stack import Stack


def milvus_backup(name: str, stack: Stack, **spec: Any) -> dict[str, Any]:
    """A MilvusBackup for the stack's Milvus, credentials from the test Secrets."""
    body: dict[str, Any] = {
        "milvus": {"address": stack.milvus.host, "port": stack.milvus.port,
                   "credentialsSecret": "milvus-auth"},
        "storage": {"endpoint": stack.s3.endpoint, "credentialsSecret": {"name": "milvus-s3"}},
        **spec,
    }  # fmt: skip
    return _resource("MilvusBackup", name, body)


def milvus_restore(name: str, **spec: Any) -> dict[str, Any]:
    return _resource("MilvusRestore", name, spec)


def _resource(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": kind,
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }


def apply(cluster: Cluster, *docs: dict[str, Any], check: bool = True) -> Any:
    """``kubectl apply -f -`` of the documents (as YAML, like a user's file)."""
    return cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs), check=check)


def get(kube: client.ApiClient, plural: str, name: str) -> dict[str, Any] | None:
    try:
        return dict(
            client.CustomObjectsApi(kube).get_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, plural, name
            )
        )
    except client.exceptions.ApiException as exc:
        if exc.status == 404:
            return None
        raise


DONE = ("Completed", "Failed")


def wait_for_phase(
    kube: client.ApiClient, plural: str, name: str, *, phases: tuple[str, ...] = DONE,
    timeout: float = 180, seen: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Poll until the status reaches one of ``phases``; every status seen goes into ``seen``."""
    deadline = time.monotonic() + timeout
    while True:
        body = get(kube, plural, name) or {}
        status = body.get("status") or {}
        if seen is not None and status and (not seen or seen[-1] != status):
            seen.append(status)
        if status.get("phase") in phases:
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"{plural}/{name} stayed {status.get('phase')!r}: {status}")
        time.sleep(0.1)


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status.get("conditions", []) if c["type"] == kind)


def events_for(kube: client.ApiClient, name: str) -> list[tuple[str, str, str]]:
    """(type, reason, message) of the events about ``name``, oldest first."""
    found = client.CoreV1Api(kube).list_namespaced_event(
        NAMESPACE, field_selector=f"involvedObject.name={name}"
    )
    items = sorted(found.items, key=lambda e: e.metadata.creation_timestamp)
    return [(e.type, e.reason, e.message) for e in items]
