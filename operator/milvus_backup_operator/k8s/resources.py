"""Read and patch MilvusBackup / MilvusRestore objects."""

from __future__ import annotations

from typing import Any, cast

from kubernetes.client.exceptions import ApiException

from ..api import GROUP, VERSION
from ..api.status import without_empty_strings
from .client import custom


def get(plural: str, namespace: str, name: str) -> dict[str, Any] | None:
    """The object, or None when it does not exist."""
    try:
        body = custom().get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return cast(dict[str, Any], body)


def list_all(plural: str, namespace: str) -> list[dict[str, Any]]:
    found = custom().list_namespaced_custom_object(GROUP, VERSION, namespace, plural)
    return list(cast(dict[str, Any], found)["items"])


def patch_status(plural: str, namespace: str, name: str, status: dict[str, Any]) -> None:
    """Merge ``status`` into the object's status subresource."""
    body = {"status": without_empty_strings(status)}
    custom().patch_namespaced_custom_object_status(GROUP, VERSION, namespace, plural, name, body)


def create(plural: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    created = custom().create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)
    return cast(dict[str, Any], created)


def delete(plural: str, namespace: str, name: str) -> None:
    try:
        custom().delete_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
    except ApiException as exc:
        if exc.status != 404:
            raise


def find(plural: str, namespace: str, label: str, value: str) -> list[dict[str, Any]]:
    """Objects labelled ``label=value``."""
    found = custom().list_namespaced_custom_object(
        GROUP, VERSION, namespace, plural, label_selector=f"{label}={value}"
    )
    return list(cast(dict[str, Any], found)["items"])
