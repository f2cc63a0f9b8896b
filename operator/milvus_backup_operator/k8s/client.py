"""API clients: in-cluster when running in a Pod, else the kubeconfig (``$KUBECONFIG``)."""

from __future__ import annotations

import os
from functools import cache

from kubernetes import client, config


@cache
def api_client() -> client.ApiClient:
    """One shared client, configured once per process."""
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    else:
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))  # type: ignore[no-untyped-call]
    return client.ApiClient()


def custom() -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client())


def core() -> client.CoreV1Api:
    return client.CoreV1Api(api_client())


def batch() -> client.BatchV1Api:
    return client.BatchV1Api(api_client())
