"""The REST server in the cluster: API calls become resources the operator runs."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from testbed import sample_data
from testbed.bed import NAMESPACE, ROOT, RULES, OperatorProcess, service_account_token, wait
from testbed.jobrunner import LocalJobRunner
from testbed.kube import Cluster
from testbed.sample_data import TINY
from testbed.stack import Stack
from testbed.stack.rgw import free_port
from tests.conftest import run_cli
from tests.e2e.resources import apply, get, milvus_backup, wait_for_phase
from tests.e2e.test_operator import catalog
from tests.integration.api_server import call, wait_task

pytestmark = pytest.mark.e2e


class ClusterServer:
    """``milvus-backup-operator server --kubernetes-namespace`` under its own ServiceAccount."""

    def __init__(self, port: int, token: str, process: subprocess.Popen[bytes]) -> None:
        self.port, self.token, self.process = port, token, process
        self.url = f"http://127.0.0.1:{port}/api/v1"

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def api_server(
    cluster: Cluster, stack: Stack, operator: OperatorProcess, jobrunner: LocalJobRunner,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ClusterServer]:  # fmt: skip
    folder = tmp_path_factory.mktemp("api")
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "milvus-backup-api", "namespace": NAMESPACE},
        "rules": yaml.safe_load((RULES / "server-rules.yaml").read_text()),
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "milvus-backup-api", "namespace": NAMESPACE},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "milvus-backup-api",
        },
        "subjects": [
            {"kind": "ServiceAccount", "name": "milvus-backup-api", "namespace": NAMESPACE}
        ],
    }
    account = {"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": "milvus-backup-api", "namespace": NAMESPACE}}  # fmt: skip
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([account, role, binding]))
    kubeconfig = cluster.kubeconfig_for_token(
        service_account_token(cluster, NAMESPACE, "milvus-backup-api"), folder / "kubeconfig"
    )
    template = folder / "template.yaml"
    template.write_text(yaml.safe_dump(milvus_backup("template", stack)["spec"]))
    token = secrets.token_urlsafe(24)
    (folder / "token").write_text(token)
    port = free_port()
    command = [str(Path(sys.executable).parent / "milvus-backup-operator"), "server",
               "-p", str(port), "--kubernetes-namespace", NAMESPACE,
               "--template", str(template), "--token-file", str(folder / "token")]  # fmt: skip
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    with (folder / "server.log").open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = ClusterServer(port, token, process)
    try:
        wait(lambda: call(server, "GET", "/hello", raw=True)[0] == 200, 30, "the API server")
        yield server
    finally:
        process.kill()
        process.wait()


def test_api_calls_become_resources_kubectl_sees(
    cluster: Cluster, kube: client.ApiClient, stack: Stack, api_server: ClusterServer, samples: Any
) -> None:
    assert call(api_server, "GET", "/list")[0] == 401
    body = {"backup_name": "via_api", "collection_names": ["tiny"]}
    status, reply = call(api_server, "POST", "/create", body, headers=api_server.auth())
    assert status == 200, reply
    assert reply["data"]["name"] == "via_api" and reply["data"]["state_code"] == 2
    resource = get(kube, "milvusbackups", "via-api")
    assert resource is not None and resource["status"]["phase"] == "Completed"
    uid = resource["metadata"]["uid"]  # the backup's one id: create's answer, list, the meta
    assert reply["data"]["id"] == uid and reply["data"]["meta_size"] > 0, reply["data"]
    status, got = call(api_server, "GET", f"/get_backup?backup_id={uid}", headers=api_server.auth())
    assert status == 200 and (got["data"]["name"], got["data"]["state_code"]) == ("via_api", 2)
    status, listing = call(api_server, "GET", "/list", headers=api_server.auth())
    assert {e["name"]: e.get("id") for e in listing["data"]}["via_api"] == uid, listing
    printed = cluster.kubectl("get", "mbk", "via-api", "-n", NAMESPACE).stdout
    assert "Completed" in printed

    restore = {
        "async": True,
        "backup_name": "via_api",
        "collection_suffix": "_via_api",
        "id": "api-restore-1",
    }
    status, reply = call(api_server, "POST", "/restore", restore, headers=api_server.auth())
    assert status == 200, reply
    task = wait_task(api_server, "/get_restore?id=api-restore-1", headers=api_server.auth())
    assert task["state_code"] == 2, task
    assert get(kube, "milvusrestores", "api-restore-1") is not None
    sample_data.prepare_for_query(stack.milvus.uri, TINY, "tiny_via_api")
    assert sample_data.rows(stack.milvus.uri, TINY, "tiny_via_api") == sample_data.rows(
        stack.milvus.uri, TINY
    )


def test_errors_come_back_as_errors(api_server: ClusterServer, samples: Any) -> None:
    body = {"backup_name": "bad", "collection_names": ["nope"]}
    status, reply = call(api_server, "POST", "/create", body, headers=api_server.auth())
    assert status == 400 and "collection nope does not exist" in reply["msg"]
    status, reply = call(api_server, "GET", "/get_restore?id=ghost", headers=api_server.auth())
    assert status == 404


def test_plain_manifests_apply_and_match_the_rules(cluster: Cluster) -> None:
    documents = list(yaml.safe_load_all((ROOT / "deploy" / "rest-server.yaml").read_text()))
    role = next(d for d in documents if d["kind"] == "Role")
    assert role["rules"] == yaml.safe_load((RULES / "server-rules.yaml").read_text())
    for dry_run in ("--dry-run=server", None):
        args = ["apply", "-n", NAMESPACE, "-f", str(ROOT / "deploy" / "rest-server.yaml")]
        cluster.kubectl(*args, *([dry_run] if dry_run else []))
    deployment = cluster.kubectl(
        "get", "deployment", "milvus-backup-api", "-n", NAMESPACE, "-o", "yaml"
    )
    assert "--kubernetes-namespace" in deployment.stdout


def test_delete_by_backup_name_never_touches_another_resources_backup(
    cluster: Cluster, kube: client.ApiClient, stack: Stack, api_server: ClusterServer,
    samples: Any,
) -> None:  # fmt: skip
    """Resource ``hourly`` writes backup ``hourly_keep``; deleting backup ``hourly`` by the
    API must leave both the resource and its backup alone."""
    keep = milvus_backup("hourly", stack, backupName="hourly_keep", collections=["tiny"],
                         deletionPolicy="Delete")  # fmt: skip
    apply(cluster, keep)
    assert wait_for_phase(kube, "milvusbackups", "hourly")["phase"] == "Completed"
    assert run_cli(stack.config_path, "create", "-n", "hourly", "-c", "tiny").code == 0

    status, reply = call(api_server, "DELETE", "/delete?backup_name=hourly",
                         headers=api_server.auth())  # fmt: skip
    assert status == 200, reply
    time.sleep(2)  # a wrongly deleted resource's finalizer would run by now
    assert get(kube, "milvusbackups", "hourly") is not None
    assert catalog(stack).read("hourly_keep").name == "hourly_keep"
    assert not catalog(stack).exists("hourly")

    # the name is free again, though a resource called "hourly" exists (for another backup)
    body = {"backup_name": "hourly", "collection_names": ["tiny"]}
    status, reply = call(api_server, "POST", "/create", body, headers=api_server.auth())
    assert status == 200 and reply["data"]["name"] == "hourly", reply
    status, reply = call(api_server, "GET", "/get_backup?backup_name=hourly_keep",
                         headers=api_server.auth())  # fmt: skip
    assert status == 200 and reply["data"]["name"] == "hourly_keep", reply
    # leave nothing behind for later tests
    for path in ("/delete?backup_name=hourly", "/delete?backup_name=hourly_keep"):
        assert call(api_server, "DELETE", path, headers=api_server.auth())[0] == 200
    wait(lambda: get(kube, "milvusbackups", "hourly") is None, 60, "the resource's finalizer")


def test_a_name_whose_first_attempt_failed_reads_as_its_retry(
    cluster: Cluster, kube: client.ApiClient, stack: Stack, api_server: ClusterServer,
    samples: Any,
) -> None:  # fmt: skip
    """A MilvusBackup of backup ``retried`` fails; the API's create of that name then
    completes. By name, the completed retry is answered; by the failed one's uid, its
    failure; an id beside another backup's name is a 404."""
    first = milvus_backup("retried-first", stack, backupName="retried", collections=["ghost"])
    apply(cluster, first)
    assert wait_for_phase(kube, "milvusbackups", "retried-first")["phase"] == "Failed"
    auth = api_server.auth()
    body = {"backup_name": "retried", "collection_names": ["tiny"]}
    status, reply = call(api_server, "POST", "/create", body, headers=auth)
    assert status == 200 and reply["data"]["state_code"] == 2, reply
    _, by_name = call(api_server, "GET", "/get_backup?backup_name=retried", headers=auth)
    assert (by_name["data"]["state_code"], by_name["data"]["id"]) == (2, reply["data"]["id"])
    failed = get(kube, "milvusbackups", "retried-first")
    assert failed is not None
    uid = failed["metadata"]["uid"]
    _, by_id = call(api_server, "GET", f"/get_backup?backup_id={uid}", headers=auth)
    assert by_id["data"]["state_code"] == 3 and by_id["data"]["name"] == "retried", by_id
    status, _ = call(api_server, "GET", f"/get_backup?backup_id={uid}&backup_name=via_api",
                     headers=auth)  # fmt: skip
    assert status == 404
    assert call(api_server, "DELETE", "/delete?backup_name=retried", headers=auth)[0] == 200
