"""Bad input is refused at the edge with a message that says what to fix; nothing is written."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client

from testbed import sample_data
from testbed.bed import NAMESPACE, OperatorProcess
from testbed.jobrunner import LocalJobRunner
from testbed.kube import Cluster
from testbed.stack import Stack
from tests.e2e.resources import (
    apply,
    condition,
    events_for,
    get,
    milvus_backup,
    milvus_restore,
    wait_for_phase,
)
from tests.e2e.test_operator import catalog

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _running(operator: OperatorProcess, jobrunner: LocalJobRunner, samples: Any) -> None:
    """Every test here needs the operator, the Job runner and the sample data."""


def failed_with(kube: client.ApiClient, plural: str, name: str, *fragments: str) -> dict[str, Any]:
    status = wait_for_phase(kube, plural, name, timeout=120)
    assert status["phase"] == "Failed", status
    for fragment in fragments:
        assert fragment in status["message"], (fragment, status["message"])
    assert condition(status, "Stalled")["status"] == "True"
    assert condition(status, "Ready")["status"] == "False"
    return status


def test_invalid_backup_name_is_refused_by_the_api(cluster: Cluster, stack: Stack) -> None:
    result = apply(cluster, milvus_backup("bad-name", stack, backupName="has-dash"), check=False)
    assert result.returncode != 0
    assert "spec.backupName" in result.stderr and "should match" in result.stderr


def test_unknown_collection_fails_listing_the_existing_ones(
    cluster: Cluster, kube: client.ApiClient, stack: Stack
) -> None:
    apply(cluster, milvus_backup("typo", stack, collections=["tiny", "bookz"]))
    failed_with(kube, "milvusbackups", "typo", "collection bookz does not exist", "books")
    assert not catalog(stack).exists("typo")


def test_missing_secret_is_named_and_no_job_is_created(
    cluster: Cluster, kube: client.ApiClient, stack: Stack
) -> None:
    body = milvus_backup("no-secret", stack)
    body["spec"]["storage"]["credentialsSecret"] = {"name": "nope"}
    apply(cluster, body)
    failed_with(kube, "milvusbackups", "no-secret", "Secret 'nope' not found in namespace 'team-a'")
    names = [j.metadata.name for j in client.BatchV1Api(kube).list_namespaced_job(NAMESPACE).items]
    assert "mbk-no-secret" not in names
    assert ("Warning", "InvalidSpec") in [(t, r) for t, r, _ in events_for(kube, "no-secret")]


def test_secret_without_the_key_says_which_key(
    cluster: Cluster, kube: client.ApiClient, stack: Stack
) -> None:
    apply(cluster, {"apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": "half", "namespace": NAMESPACE},
                    "stringData": {"username": "root"}})  # fmt: skip
    body = milvus_backup("half-secret", stack)
    body["spec"]["milvus"]["credentialsSecret"] = "half"
    apply(cluster, body)
    failed_with(kube, "milvusbackups", "half-secret", "Secret 'half' has no key 'password'")


def test_unreachable_milvus_fails_with_the_reason(
    cluster: Cluster, kube: client.ApiClient, stack: Stack
) -> None:
    body = milvus_backup("unreachable", stack)
    body["spec"]["milvus"]["port"] = 1
    apply(cluster, body)
    failed_with(kube, "milvusbackups", "unreachable", "cannot reach Milvus at", "milvus.port")


def test_two_resources_may_not_write_the_same_backup(
    cluster: Cluster, kube: client.ApiClient, stack: Stack
) -> None:
    apply(cluster, milvus_backup("first", stack, backupName="shared", collections=["tiny"]))
    assert wait_for_phase(kube, "milvusbackups", "first")["phase"] == "Completed"
    apply(cluster, milvus_backup("second", stack, backupName="shared", collections=["tiny"]))
    failed_with(kube, "milvusbackups", "second", "MilvusBackup 'first' already writes backup")
    assert catalog(stack).read("shared").collection_backups[0].collection_name == "tiny"


def test_restore_refusals(cluster: Cluster, kube: client.ApiClient, stack: Stack) -> None:
    storage = {"endpoint": stack.s3.endpoint, "credentialsSecret": {"name": "milvus-s3"}}
    milvus = {"address": stack.milvus.host, "port": stack.milvus.port}
    apply(cluster, milvus_restore("ghost", backupName="ghost", backupStorage=storage,
                                  storage=storage, milvus=milvus))  # fmt: skip
    failed_with(kube, "milvusrestores", "ghost", "backup 'ghost' does not exist")

    apply(cluster, milvus_restore("of-failed", backupRef="typo"))
    failed_with(kube, "milvusrestores", "of-failed", "MilvusBackup 'typo' failed")

    # what the schema cannot say, the admission webhook refuses at apply (nothing is created)
    both = milvus_restore("both", backupRef="first", collectionSuffix="_a",
                          collectionRenames={"tiny": "t2"})  # fmt: skip
    result = apply(cluster, both, check=False)
    assert result.returncode != 0 and "spec-valid.backup.milvus.io" in result.stderr
    assert "collectionSuffix or spec.collectionRenames" in result.stderr
    assert get(kube, "milvusrestores", "both") is None

    apply(cluster, milvus_restore("over", backupRef="first"))  # tiny exists in Milvus
    failed_with(kube, "milvusrestores", "over", "tiny already exists", "drop")


def test_secrets_never_reach_status_or_events(kube: client.ApiClient, stack: Stack) -> None:
    custom = client.CustomObjectsApi(kube)
    resources = [
        custom.list_namespaced_custom_object("backup.milvus.io", "v1alpha1", NAMESPACE, plural)
        for plural in ("milvusbackups", "milvusrestores")
    ]
    events = client.CoreV1Api(kube).list_namespaced_event(NAMESPACE).items
    dump = json.dumps(resources) + json.dumps([e.to_dict() for e in events], default=str)
    assert stack.s3.secret_key not in dump and stack.s3.access_key not in dump


def test_the_operator_account_cannot_step_outside_its_role(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    """Everything above ran under the operator's ClusterRole; what it does not grant is 403."""
    as_operator = {"kubeconfig": operator.kubeconfig, "check": False}
    outside = [
        ["get", "pods"], ["delete", "secret", "milvus-s3"], ["create", "configmap", "x"],
        ["get", "secrets"],  # reading one named Secret is allowed, listing them is not
    ]  # fmt: skip
    for verb in outside:
        result = cluster.kubectl(*verb, "-n", NAMESPACE, **as_operator)
        assert result.returncode != 0 and "Forbidden" in result.stderr, verb
    allowed = cluster.kubectl("get", "mbk", "-n", NAMESPACE, **as_operator)
    assert allowed.returncode == 0


def test_spec_is_immutable_once_the_work_started(
    cluster: Cluster, kube: client.ApiClient, stack: Stack
) -> None:
    apply(cluster, milvus_backup("frozen", stack, collections=["tiny"]))
    wait_for_phase(kube, "milvusbackups", "frozen")
    result = apply(cluster, milvus_backup("frozen", stack, collections=["books"]), check=False)
    assert result.returncode != 0
    assert "cannot change once its work has started" in result.stderr
    assert "create a new resource" in result.stderr
    # metadata is not spec: labels still change (and Kopf's own annotations keep working)
    cluster.kubectl("label", "mbk", "frozen", "team=search", "-n", NAMESPACE)


def test_a_backup_storage_overlapping_milvus_data_is_refused_at_apply(
    cluster: Cluster, kube: client.ApiClient, stack: Stack
) -> None:
    for name, root in (("overlap-same", "file"), ("overlap-inside", "file/backups"),
                       ("overlap-bucket", "/")):  # fmt: skip
        body = milvus_backup(name, stack, collections=["tiny"], backupStorage={"rootPath": root})
        result = apply(cluster, body, check=False)
        assert result.returncode != 0, (root, result.stdout)
        assert "overlaps Milvus's data" in result.stderr and "spec.backupStorage" in result.stderr
        assert get(kube, "milvusbackups", name) is None
    restore = milvus_restore("overlap-restore", backupName="anything",
                             milvus={"address": stack.milvus.host, "port": stack.milvus.port},
                             storage={"endpoint": stack.s3.endpoint},
                             backupStorage={"rootPath": "file"})  # fmt: skip
    result = apply(cluster, restore, check=False)
    assert result.returncode != 0 and "overlaps Milvus's data" in result.stderr
    assert get(kube, "milvusrestores", "overlap-restore") is None


def test_deleting_a_resource_whose_backup_name_holds_no_backup_deletes_nothing(
    cluster: Cluster, kube: client.ApiClient, stack: Stack
) -> None:
    """deletionPolicy Delete removes a backup, never a prefix that is not one."""
    apply(cluster, milvus_backup("hollow", stack, collections=["tiny"], deletionPolicy="Delete"))
    assert wait_for_phase(kube, "milvusbackups", "hollow")["phase"] == "Completed"
    store = catalog(stack).store
    store.delete_prefix("backup/hollow/")
    store.put("backup/hollow/notes.txt", b"someone else's file, written after")
    cluster.kubectl("delete", "mbk", "hollow", "-n", NAMESPACE, "--wait=true", "--timeout=60s")
    assert get(kube, "milvusbackups", "hollow") is None
    assert [o.key for o in store.list("backup/hollow/")] == ["backup/hollow/notes.txt"]
    assert any("is not a backup" in message for _, _, message in events_for(kube, "hollow"))
    store.delete("backup/hollow/notes.txt")


def test_a_dry_run_restore_records_the_plan_and_creates_nothing(
    cluster: Cluster, kube: client.ApiClient, stack: Stack
) -> None:
    apply(cluster, milvus_backup("rehearsed", stack, collections=["tiny"]))
    assert wait_for_phase(kube, "milvusbackups", "rehearsed")["phase"] == "Completed"
    before = sorted(sample_data.client(stack.milvus.uri).list_collections())
    apply(cluster, milvus_restore("rehearsal", backupRef="rehearsed", collectionSuffix="_dry",
                                  dryRun=True, verify=True))  # fmt: skip
    status = wait_for_phase(kube, "milvusrestores", "rehearsal")
    assert status["phase"] == "Completed", status
    assert status["message"].startswith("dry run: every check passed, nothing written")
    assert "is intact" in status["message"]
    assert status["plan"] == [status["plan"][0]] and status["plan"][0].startswith(
        "tiny -> tiny_dry: create, 1 partition, import"
    )
    assert sorted(sample_data.client(stack.milvus.uri).list_collections()) == before
