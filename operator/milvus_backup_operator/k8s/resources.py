"""Read, create, patch and delete MilvusBackup / MilvusRestore objects."""

from __future__ import annotations

from typing import Any, cast

from kubernetes.client.exceptions import ApiException

from ..api import GROUP, VERSION, Kind
from ..api.status import without_empty_strings
from .client import custom


class Resources:
    """Our custom objects through the Kubernetes API (the controllers' and workers' view;
    unit tests hand the handlers an in-memory one with the same methods)."""

    def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            body = custom().get_namespaced_custom_object(
                GROUP, VERSION, namespace, kind.plural, name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return cast(dict[str, Any], body)

    def list_all(self, kind: Kind, namespace: str) -> list[dict[str, Any]]:
        found = custom().list_namespaced_custom_object(GROUP, VERSION, namespace, kind.plural)
        return list(cast(dict[str, Any], found)["items"])

    def find(self, kind: Kind, namespace: str, label: str, value: str) -> list[dict[str, Any]]:
        """Objects labelled ``label=value``."""
        found = custom().list_namespaced_custom_object(
            GROUP, VERSION, namespace, kind.plural, label_selector=f"{label}={value}"
        )
        return list(cast(dict[str, Any], found)["items"])

    def patch_status(self, kind: Kind, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Merge ``status`` into the object's status subresource."""
        body = {"status": without_empty_strings(status)}
        custom().patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, kind.plural, name, body
        )

    def patch_metadata(self, kind: Kind, namespace: str, name: str, meta: dict[str, Any]) -> None:
        """Merge ``meta`` into the object's metadata (with its ``resourceVersion``: refused
        with a 409 if the object changed since it was read)."""
        custom().patch_namespaced_custom_object(
            GROUP, VERSION, namespace, kind.plural, name, {"metadata": meta}
        )

    def create(self, kind: Kind, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        created = custom().create_namespaced_custom_object(
            GROUP, VERSION, namespace, kind.plural, body
        )
        return cast(dict[str, Any], created)

    def delete(self, kind: Kind, namespace: str, name: str) -> None:
        try:
            custom().delete_namespaced_custom_object(GROUP, VERSION, namespace, kind.plural, name)
        except ApiException as exc:
            if exc.status != 404:
                raise
