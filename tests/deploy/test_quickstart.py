"""The README's quick start, as written, on a kube-apiserver of its own (a new user's cluster:
no CRDs, no RBAC, only the namespace where Milvus lives): the commands are read out of the
README, so it cannot drift from what is tested.

There is no kubelet here, so what a Pod would meet is checked where the API server checks it:
the Pod the Job controller would create for the backup's Job is created as a server-side dry
run, which runs the ServiceAccount admission plugin (the very check that kept the Job's Pod from
ever being created when the chart made no ServiceAccount in the backup's namespace), and the
Job's ServiceAccount is asked, by impersonation, whether it may do what the Job does.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from milvus_backup_operator.api import Kind
from milvus_backup_operator.api.crds import CATEGORY
from milvus_backup_operator.executors import WorkItem
from milvus_backup_operator.executors.job import JobExecutor
from testbed.kube import Cluster, ensure_built, start_cluster
from tests.deploy.chart import NO_NAMESPACE, can_i, container, dump, helm, namespaces

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]
README = ROOT / "README.md"
#: The namespace the quick start assumes Milvus was installed in.
MILVUS_NAMESPACE = "milvus"


def quick_start_commands(readme: str) -> list[list[str]]:
    """The first ``sh`` block under "## Quick start", one argv per command (comments dropped,
    continuation lines joined)."""
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "no sh block in the README's quick start"
    text = re.sub(r"\\\n\s*", " ", block.group(1))
    return [
        shlex.split(line, comments=True)
        for line in text.splitlines()
        if shlex.split(line, comments=True)
    ]


def test_the_quick_start_is_read_as_the_commands_a_user_types() -> None:
    commands = quick_start_commands(README.read_text())
    assert [c[:2] for c in commands] == [
        ["helm", "install"], ["kubectl", "apply"], ["kubectl", "apply"], ["kubectl", "get"],
        ["kubectl", "apply"], ["kubectl", "get"],
    ]  # fmt: skip
    assert commands[0][-2:] == ["--set", "jobNamespaces={milvus}"]  # quotes gone, as in a shell


def local(args: list[str]) -> list[str]:
    """Paths of the repository (the README's commands run at its root) made absolute."""
    return [str(ROOT / a) if not a.startswith("-") and (ROOT / a).exists() else a for a in args]


@pytest.fixture(scope="module")
def fresh_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    ensure_built()
    started = start_cluster(tmp_path_factory.mktemp("quickstart-kube"), die_with_parent=True)
    try:
        namespaces(started, MILVUS_NAMESPACE)  # where the user's Milvus already runs
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def quick_start(fresh_cluster: Cluster) -> dict[str, str]:
    """Every command of the quick start run in order; ``kubectl get -w`` without ``-w`` (it
    never ends). Output by command."""
    cluster, outputs = fresh_cluster, {}
    env = {"KUBECONFIG": str(cluster.kubeconfig)}
    for argv in quick_start_commands(README.read_text()):
        args = local(argv[1:])
        if argv[0] == "helm":
            # test-only: no Pod answers the webhook's Service here, and the API server would
            # call it at a ClusterIP no test may send to (see tests/deploy/chart.py)
            args += ["--set-json", "webhook.namespaceSelector=" + json.dumps(NO_NAMESPACE)]
            done = helm(*args, env=env)
        else:
            assert argv[0] == "kubectl", argv
            args = [a for a in args if a not in ("-w", "--watch")]
            done = cluster.kubectl(*args)
        outputs[" ".join(argv)] = done.stdout
    return outputs


def test_every_command_of_the_quick_start_succeeds(quick_start: dict[str, str]) -> None:
    (install, secrets, backup, get_backup, restore, get_restore) = quick_start.values()
    assert "STATUS: deployed" in install, install
    assert "secret/milvus-minio created" in secrets and "secret/milvus-auth created" in secrets
    assert "milvusbackup.backup.milvus.io/nightly-2026-11-25 created" in backup, backup
    assert get_backup.split()[:5] == ["NAME", "PHASE", "PROGRESS", "SIZE", "AGE"]
    assert get_backup.splitlines()[1].startswith("nightly-2026-11-25 ")
    assert "milvusrestore.backup.milvus.io/nightly-2026-11-25-rehearsal created" in restore
    assert get_restore.splitlines()[1].startswith("nightly-2026-11-25-rehearsal ")


def the_job(cluster: Cluster, plural: str, name: str) -> dict[str, Any]:
    """The Job the installed operator would create for a resource: the chart's Deployment's
    --image and --job-service-account, the operator's own manifest code."""
    deployment = json.loads(cluster.kubectl(
        "get", "deployment", "milvus-backup-operator", "-n", "milvus-backup", "-o", "json"
    ).stdout)  # fmt: skip
    args = container(deployment)["args"]
    flag = lambda f: args[args.index(f) + 1]  # noqa: E731
    executor = JobExecutor(image=flag("--image"), service_account=flag("--job-service-account"))
    body = json.loads(
        cluster.kubectl("get", plural, name, "-n", MILVUS_NAMESPACE, "-o", "json").stdout
    )
    kind = Kind.BACKUP if plural == "milvusbackups" else Kind.RESTORE
    return executor.manifest(WorkItem(kind, MILVUS_NAMESPACE, name, body, ("milvus-minio",)))


@pytest.mark.parametrize(
    ("plural", "name"),
    [("milvusbackups", "nightly-2026-11-25"), ("milvusrestores", "nightly-2026-11-25-rehearsal")],
)
def test_the_jobs_service_account_is_where_the_backup_is(
    quick_start: dict[str, str], fresh_cluster: Cluster, plural: str, name: str
) -> None:
    cluster = fresh_cluster
    job = the_job(cluster, plural, name)
    account = job["spec"]["template"]["spec"]["serviceAccountName"]
    found = cluster.kubectl("get", "serviceaccount", account, "-n", MILVUS_NAMESPACE, check=False)
    assert found.returncode == 0, (
        f"no ServiceAccount {account} in namespace {MILVUS_NAMESPACE}, where the quick start's "
        f"{plural} live: their Jobs' Pods would never be created\n{found.stderr}"
    )
    # the Job controller's Pod, as the API server admits it (ServiceAccount admission included)
    template = job["spec"]["template"]
    pod = {"apiVersion": "v1", "kind": "Pod", "spec": template["spec"],
           "metadata": {**template["metadata"], "name": job["metadata"]["name"] + "-pod",
                        "namespace": MILVUS_NAMESPACE}}  # fmt: skip
    admitted = cluster.kubectl(
        "create", "--dry-run=server", "-f", "-", input=dump([pod]), check=False
    )
    assert admitted.returncode == 0, admitted.stderr
    # and it may do what the Job does: read its resource, write its status
    subject = f"{MILVUS_NAMESPACE}/{account}"
    assert can_i(cluster, subject, "get", plural, MILVUS_NAMESPACE)
    assert can_i(cluster, subject, "patch", plural, MILVUS_NAMESPACE, subresource="status")


def test_our_category_lists_both_kinds_and_takes_no_one_elses(
    quick_start: dict[str, str], fresh_cluster: Cluster
) -> None:
    """``kubectl get milvus-backup``: both kinds; ``milvus`` and ``backup`` are left to Milvus
    Operator and Velero (not installed here, so kubectl knows no such resource)."""
    cluster = fresh_cluster
    listed = cluster.kubectl("get", CATEGORY, "-n", MILVUS_NAMESPACE, "-o", "name").stdout
    assert sorted(listed.split()) == [
        "milvusbackup.backup.milvus.io/nightly-2026-11-25",
        "milvusrestore.backup.milvus.io/nightly-2026-11-25-rehearsal",
    ]
    for taken in ("milvus", "backup"):
        done = cluster.kubectl("get", taken, "-n", MILVUS_NAMESPACE, check=False)
        assert done.returncode != 0 and "doesn't have a resource type" in done.stderr, (
            taken, done.stdout, done.stderr,
        )  # fmt: skip
    crds = yaml.safe_load_all(
        cluster.kubectl("get", "crd", "-o", "yaml").stdout
    )  # the chart's CRDs, as helm installed them
    (items,) = [d["items"] for d in crds]
    assert {c["metadata"]["name"]: c["spec"]["names"]["categories"] for c in items} == {
        "milvusbackups.backup.milvus.io": [CATEGORY],
        "milvusrestores.backup.milvus.io": [CATEGORY],
        "milvusbackupschedules.backup.milvus.io": [CATEGORY],
    }
