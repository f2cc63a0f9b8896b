"""A real Kubernetes API (etcd + kube-apiserver + kube-controller-manager 1.20.2) for e2e tests.

    ensure_built()                                   # build.sh: cached, about 4-5 min cold
    cluster = start_cluster(tmp_path, die_with_parent=True)   # about 5 s
    cluster.kubeconfig, cluster.server, cluster.admin_token, cluster.ca_path
    cluster.stop()

``python -m testbed.kube build|up|down`` drives the same from a shell.
"""

from __future__ import annotations

from .cluster import (
    BINARIES,
    CLUSTER_JSON,
    KUBE_VERSION,
    Cluster,
    ClusterError,
    Tokens,
    bin_dir,
    cache_dir,
    ensure_built,
    is_built,
    kubeconfig_text,
    kubectl_path,
    start_cluster,
    stop_recorded,
)

__all__ = [
    "BINARIES",
    "CLUSTER_JSON",
    "KUBE_VERSION",
    "Cluster",
    "ClusterError",
    "Tokens",
    "bin_dir",
    "cache_dir",
    "ensure_built",
    "is_built",
    "kubeconfig_text",
    "kubectl_path",
    "start_cluster",
    "stop_recorded",
]
