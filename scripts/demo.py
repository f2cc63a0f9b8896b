"""The README's main job, on the embedded default, end to end through the operator.

It starts a real Milvus 2.3.5, a real S3 server (Ceph RADOS Gateway) and a real
kube-apiserver, creates sample collections, runs the operator, ``kubectl apply``s a
MilvusBackup and then a MilvusRestore, shows ``kubectl get`` while they run, checks that the
restored rows equal the backed-up ones, and stops everything it started.

There is no kubelet here: the project's test Job runner runs each Job's command as a local
process (with the Job's Secrets and ServiceAccount), standing in for the Pod.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from testbed import sample_data
from testbed.bed import (
    NAMESPACE,
    SYSTEM,
    OperatorProcess,
    create_secrets,
    prepare_cluster,
    service_account_token,
)
from testbed.jobrunner import LocalJobRunner
from testbed.kube import Cluster, ensure_built, start_cluster
from testbed.stack import Stack, start_stack


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def main() -> int:
    say("building (once, then cached) the kube-apiserver from Debian's kubernetes sources")
    ensure_built()
    with tempfile.TemporaryDirectory(prefix="mbo-demo-") as tmp:
        say("starting Milvus 2.3.5, Ceph RADOS Gateway (S3) and a kube-apiserver")
        stack = start_stack(Path(tmp) / "stack", die_with_parent=True)
        cluster = None
        try:
            cluster = start_cluster(Path(tmp) / "kube", die_with_parent=True)
            return run(stack, cluster, Path(tmp))
        finally:
            if cluster is not None:
                cluster.stop()
            stack.stop()
            say("everything stopped")


def run(stack: Stack, cluster: Cluster, tmp: Path) -> int:
    say(f"Milvus at {stack.milvus.uri}, S3 at {stack.s3.url}: creating sample collections")
    sample_data.create_samples(stack.milvus.uri)
    before = {s.ref: sample_data.rows(stack.milvus.uri, s) for s in sample_data.SAMPLES}
    prepare_cluster(cluster)
    create_secrets(cluster, stack)
    token = service_account_token(cluster, SYSTEM, "milvus-backup-operator")
    kubeconfig = cluster.kubeconfig_for_token(token, tmp / "operator.kubeconfig")
    api = cluster_client(cluster)
    runner = LocalJobRunner(api, tmp / "jobs", cluster.kubeconfig_for_token).start()
    operator = OperatorProcess(kubeconfig, tmp / "operator.log").start()
    say(f"operator running (log: {tmp / 'operator.log'})")
    try:
        apply_and_watch(cluster, "mbk", backup_yaml(stack))
        apply_and_watch(cluster, "mrs", restore_yaml())
    finally:
        operator.stop()
        runner.stop()
    failures = 0
    for sample in sample_data.SAMPLES:
        restored = sample_data.rows(stack.milvus.uri, sample, sample.name + "_rehearsal")
        same = restored == before[sample.ref]
        failures += not same
        print(f"{sample.ref}: {len(before[sample.ref])} rows backed up, "
              f"{len(restored)} restored, {'equal' if same else 'DIFFERENT'}")  # fmt: skip
    say("demo " + ("succeeded" if not failures else "FAILED"))
    return 1 if failures else 0


def cluster_client(cluster: Cluster) -> Any:
    from kubernetes import config

    return config.new_client_from_config(str(cluster.kubeconfig))


def backup_yaml(stack: Stack) -> dict[str, Any]:
    return {
        "apiVersion": "backup.milvus.io/v1alpha1",
        "kind": "MilvusBackup",
        "metadata": {"name": "nightly", "namespace": NAMESPACE},
        "spec": {
            "milvus": {"address": stack.milvus.host, "port": stack.milvus.port},
            "storage": {
                "endpoint": stack.s3.endpoint,
                "bucket": "milvus-bucket",
                "rootPath": "file",
                "credentialsSecret": {"name": "milvus-s3"},
            },
            "backupStorage": {"rootPath": "backup"},
        },
    }


def restore_yaml() -> dict[str, Any]:
    return {
        "apiVersion": "backup.milvus.io/v1alpha1",
        "kind": "MilvusRestore",
        "metadata": {"name": "nightly-rehearsal", "namespace": NAMESPACE},
        "spec": {
            "backupRef": "nightly",
            "collectionSuffix": "_rehearsal",
            "rebuildIndex": True,
            "load": True,
        },
    }


def apply_and_watch(cluster: Cluster, short: str, document: dict[str, Any]) -> None:
    text = yaml.safe_dump(document, sort_keys=False)
    say(f"kubectl apply -f - <<EOF\n{text}EOF")
    cluster.kubectl("apply", "-f", "-", input=text)
    name = document["metadata"]["name"]
    say(f"kubectl get {short} {name} -n {NAMESPACE}   (every second, until it is done)")
    last = ""
    for _ in range(600):
        header, row = cluster.kubectl("get", short, name, "-n", NAMESPACE).stdout.splitlines()
        if not last:
            print(header)
        if row.rsplit(maxsplit=1)[0] != last:  # the AGE column alone changes every second
            print(row, flush=True)
            last = row.rsplit(maxsplit=1)[0]
        if " Completed " in row or " Failed " in row:
            break
        time.sleep(1)
    described = cluster.kubectl("get", short, name, "-n", NAMESPACE, "-o", "yaml").stdout
    status = yaml.safe_load(described).get("status", {})
    print(f"message: {status.get('message')}", flush=True)
    if status.get("phase") != "Completed":
        subprocess.run(["tail", "-30", str(Path(cluster.dir).parent / "operator.log")], check=False)
        raise SystemExit(f"{short}/{name} did not complete")


if __name__ == "__main__":
    sys.exit(main())
