"""Every example in examples/ applies to a real kube-apiserver with its CRDs, through kubectl's
kustomize: as documented (``kubectl apply -k examples/``, into namespace milvus) and moved into
a namespace of the test's own by an overlay, a dry run first, then for real."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from milvus_backup_operator.api.schedule import parse_schedule
from milvus_backup_operator.api.specs import complete_restore, parse_backup, parse_restore
from testbed.kube import Cluster
from tests.deploy.chart import namespaces

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).parents[2] / "examples"
KUSTOMIZATIONS = sorted(p.parent for p in EXAMPLES.rglob("kustomization.yaml"))
IDS = [p.relative_to(EXAMPLES.parent).as_posix() for p in KUSTOMIZATIONS]


def listed(folder: Path) -> list[Path]:
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    return [folder / name for name in kustomization["resources"]]


def documents(folder: Path) -> list[dict[str, Any]]:
    return [d for path in listed(folder) for d in yaml.safe_load_all(path.read_text()) if d]


def test_every_example_manifest_is_in_a_kustomization() -> None:
    assert [p.relative_to(EXAMPLES).as_posix() for p in KUSTOMIZATIONS] == [
        ".", "milvus-operator"
    ]  # fmt: skip
    manifests = {p for p in EXAMPLES.rglob("*.yaml") if p.name != "kustomization.yaml"}
    in_kustomizations = {p for folder in KUSTOMIZATIONS for p in listed(folder)}
    assert manifests == in_kustomizations


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=IDS)
def test_the_examples_are_what_the_operator_accepts(folder: Path) -> None:
    """Beyond the schema: the operator's own spec rules, and the defaults of a Milvus installed
    by its Helm chart or by Milvus Operator (bucket milvus-bucket, rootPath file)."""
    docs = documents(folder)
    backups = {d["metadata"]["name"]: d for d in docs if d["kind"] == "MilvusBackup"}
    restores = [d for d in docs if d["kind"] == "MilvusRestore"]
    assert backups and restores
    for name, doc in backups.items():
        spec = parse_backup(name, doc["spec"])
        assert spec.storage.bucket == "milvus-bucket" and spec.storage.root_path == "file"
        assert spec.backup_storage.root_path == "backup"
        assert spec.milvus.address == "my-release-milvus.milvus.svc"
        assert spec.storage.endpoint == "my-release-minio.milvus.svc:9000"
    for doc in (d for d in docs if d["kind"] == "MilvusBackupSchedule"):
        schedule = parse_schedule(doc["metadata"]["name"], doc["spec"])
        assert schedule.retention.prunes and schedule.schedule.zone.key == "Europe/Berlin"
    for doc in restores:
        restore = parse_restore(doc["spec"])
        assert restore.backup_ref in backups, "a restore of a backup in the same example"
        ref = restore.backup_ref
        complete_restore(restore, parse_backup(ref, backups[ref]["spec"]))
    secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}
    specs = [d["spec"] for d in backups.values()]
    referenced = {s["storage"]["credentialsSecret"]["name"] for s in specs}
    referenced |= {
        s["milvus"]["credentialsSecret"] for s in specs if "credentialsSecret" in s["milvus"]
    }
    if folder == EXAMPLES:  # it brings its Secrets; Milvus Operator's made its MinIO's one
        assert set(secrets) == referenced
        assert set(secrets["milvus-minio"]["stringData"]) == {"accesskey", "secretkey"}
        assert set(secrets["milvus-auth"]["stringData"]) == {"username", "password"}
    else:
        assert not secrets and referenced == {"my-release-minio"}


def kustomize_dir(cluster: Cluster, folder: Path, namespace: str) -> Path:
    """An overlay moving ``folder`` into ``namespace``.

    (kubectl 1.20 embeds kustomize 2.0.3: a relative ``bases`` entry, not ``resources``.)
    """
    overlay = Path(tempfile.mkdtemp(dir=cluster.dir))
    base = os.path.relpath(folder, overlay)
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump({"namespace": namespace, "bases": [base]})
    )
    return overlay


def applied(cluster: Cluster, target: Path, namespace: str) -> dict[str, dict[str, Any]]:
    dry = cluster.kubectl("apply", "-k", str(target), "--dry-run=server").stdout
    assert dry.count("(server dry run)") == len(dry.splitlines()), dry
    out = cluster.kubectl("apply", "-k", str(target)).stdout
    assert len(out.splitlines()) == len(dry.splitlines()), out
    found = cluster.kubectl(
        "get",
        "milvusbackups,milvusrestores,milvusbackupschedules,secrets",
        "-n",
        namespace,
        "-o",
        "json",
    ).stdout
    return {
        f"{i['kind']}/{i['metadata']['name']}": i
        for i in json.loads(found)["items"]
        if i["kind"] != "Secret" or i["type"] == "Opaque"
    }


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=IDS)
def test_kubectl_apply_k_into_a_namespace_of_the_tests_own(cluster: Cluster, folder: Path) -> None:
    namespace = "examples-" + ("helm" if folder == EXAMPLES else folder.name)
    namespaces(cluster, namespace)
    objects = applied(cluster, kustomize_dir(cluster, folder, namespace), namespace)
    expected = {f"{d['kind']}/{d['metadata']['name']}" for d in documents(folder)}
    assert set(objects) == expected
    for key, obj in objects.items():
        assert obj["metadata"]["namespace"] == namespace, key
        if obj["kind"] == "MilvusBackup":  # stored with the CRD's defaults
            assert obj["spec"]["milvus"]["port"] == 19530
            assert obj["spec"]["deletionPolicy"] == "Retain"
            assert obj["spec"]["storage"]["credentialsSecret"]["accessKeyKey"] == "accesskey"


def test_kubectl_apply_k_examples_as_documented(cluster: Cluster) -> None:
    """The README's and the docs' own command, into namespace milvus."""
    namespaces(cluster, "milvus")
    objects: dict[str, dict[str, Any]] = {}
    for folder in KUSTOMIZATIONS:
        objects |= applied(cluster, folder, "milvus")
    expected = {
        f"{d['kind']}/{d['metadata']['name']}" for f in KUSTOMIZATIONS for d in documents(f)
    }
    assert set(objects) == expected
    printed = cluster.kubectl("get", "mbk", "-n", "milvus").stdout.splitlines()
    assert printed[0].split() == ["NAME", "PHASE", "PROGRESS", "SIZE", "AGE"]
    assert {line.split()[0] for line in printed[1:]} == {
        d["metadata"]["name"]
        for f in KUSTOMIZATIONS
        for d in documents(f)
        if d["kind"] == "MilvusBackup"
    }
