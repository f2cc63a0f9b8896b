"""The custom resources' rules, status transitions, CRDs and Job manifests (no cluster)."""

from pathlib import Path

import pytest
import yaml

from milvus_backup_operator.api import Kind, crds
from milvus_backup_operator.api.specs import (
    SpecError,
    backup_name_for,
    complete_restore,
    parse_backup,
    parse_restore,
)
from milvus_backup_operator.executors import WorkItem
from milvus_backup_operator.executors.job import JobExecutor, job_name

ROOT = Path(__file__).parents[3]
SPEC = {
    "milvus": {"address": "my-release-milvus.milvus.svc"},
    "storage": {"endpoint": "my-release-minio.milvus.svc:9000",
                "credentialsSecret": {"name": "minio"}},
}  # fmt: skip


def test_crds_in_the_repository_are_the_generated_ones() -> None:
    for filename, document in crds.all_crds().items():
        assert (ROOT / "crds" / filename).read_text() == crds.render(document), filename


def test_crd_schema_holds_the_name_rule_and_defaults() -> None:
    backup = yaml.safe_load((ROOT / "crds" / "backup.milvus.io_milvusbackups.yaml").read_text())
    version = backup["spec"]["versions"][0]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert spec["backupName"]["pattern"] == "^[A-Za-z_][A-Za-z0-9_]*$"
    assert spec["deletionPolicy"]["default"] == "Retain"
    assert spec["storage"]["properties"]["bucket"]["default"] == "milvus-bucket"
    assert spec["storage"]["properties"]["rootPath"]["default"] == "file"
    assert backup["spec"]["names"]["shortNames"] == ["mbk"]
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns[:4] == ["Phase", "Progress", "Size", "Age"]


@pytest.mark.parametrize(
    ("resource", "expected"),
    [("nightly-2026-11-25", "nightly_2026_11_25"), ("9am", "_9am"), ("a.b", "a_b")],
)
def test_backup_name_derived_from_a_kubernetes_name(resource: str, expected: str) -> None:
    assert backup_name_for(resource) == expected


def test_backup_defaults_suit_a_helm_installed_milvus() -> None:
    spec = parse_backup("nightly-1", SPEC)
    assert spec.backup_name == "nightly_1" and spec.deletion_policy == "Retain"
    assert (spec.storage.bucket, spec.storage.root_path) == ("milvus-bucket", "file")
    assert spec.storage.host == "my-release-minio.milvus.svc" and spec.storage.port == 9000
    # backups go to the same endpoint and bucket, under backup/, with the same credentials
    assert spec.backup_storage.endpoint == spec.storage.endpoint
    assert (spec.backup_storage.bucket, spec.backup_storage.root_path) == (
        "milvus-bucket",
        "backup",
    )
    assert spec.backup_storage.credentials_secret == "minio"
    assert spec.milvus.port == 19530


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"backupName": "has-dash"}, "spec.backupName"),
        ({"collections": ["ok", "db."]}, "spec.collections"),
        ({"deletionPolicy": "Purge"}, "spec.deletionPolicy must be one of Retain, Delete"),
        ({"milvus": {}}, "spec.milvus.address is required"),
    ],
)
def test_backup_spec_errors_name_the_field(change: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_backup("x", {**SPEC, **change})


def test_restore_rules() -> None:
    with pytest.raises(SpecError, match=r"exactly one of spec\.backupRef"):
        parse_restore({})
    with pytest.raises(SpecError, match="not both"):
        parse_restore({"backupRef": "b", "collectionSuffix": "_x", "collectionRenames": {"a": "b"}})
    with pytest.raises(SpecError, match=r"needs spec\.backupStorage"):
        parse_restore({"backupName": "b"})
    restore = complete_restore(
        parse_restore({"backupRef": "b", "load": True}), parse_backup("b", SPEC)
    )
    assert restore.backup_name == "b" and restore.load and not restore.rbac
    assert parse_restore({"backupRef": "b", "rbac": True}).rbac
    assert parse_restore({"backupRef": "b", "useV2Restore": True}).use_v2_restore
    assert parse_backup("b", {**SPEC, "rbac": True}).rbac and not parse_backup("b", SPEC).rbac
    assert restore.milvus is not None and restore.milvus.address == "my-release-milvus.milvus.svc"


def test_job_manifest_mounts_secrets_and_is_owned() -> None:
    owner = {"metadata": {"name": "nightly", "uid": "u-1"}}
    item = WorkItem(Kind.BACKUP, "team-a", "nightly", owner, ("milvus-s3",))
    job = JobExecutor(image="registry/mbo:1").manifest(item)
    assert job["metadata"]["name"] == "mbk-nightly"
    assert job["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == [
        "milvus-backup-operator", "--log-level", "warning", "job", "backup", "team-a/nightly",
    ]  # fmt: skip
    assert pod["volumes"] == [
        {"name": "secret-0", "secret": {"secretName": "milvus-s3", "defaultMode": 0o400}}
    ]
    assert container["volumeMounts"][0]["mountPath"] == "/var/run/secrets/milvus-backup/milvus-s3"
    assert job["spec"]["backoffLimit"] == 0 and pod["restartPolicy"] == "Never"
    # the "restricted" Pod Security Standard
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["runAsNonRoot"] and container["securityContext"] == {
        "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
        "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]},
    }  # fmt: skip


def test_job_names_are_deterministic_and_short() -> None:
    long = WorkItem(Kind.BACKUP, "ns", "x" * 80, {}, ())
    assert job_name(long) == job_name(long) and len(job_name(long)) <= 63
    other = WorkItem(Kind.BACKUP, "ns", "x" * 79 + "y", {}, ())
    assert job_name(other) != job_name(long)


#: Categories other projects' kinds already answer to: ``kubectl get milvus`` is Milvus
#: Operator's Milvus, ``kubectl get backup`` Velero's or CloudNativePG's Backup.
TAKEN_CATEGORIES = {"milvus", "backup", "backups", "all"}


def test_crds_have_a_category_of_their_own() -> None:
    for filename, document in crds.all_crds().items():
        names = document["spec"]["names"]
        assert names["categories"] == [crds.CATEGORY], filename
        assert not TAKEN_CATEGORIES & set(names["categories"]), filename
    # a category is expanded before names are looked up: it must not shadow one of ours
    ours = {n for kind in Kind for n in (kind.plural, kind.kind.lower(), kind.short_name)}
    assert crds.CATEGORY not in ours


def _undescribed(schema: dict, path: str) -> list[str]:
    """Every property under ``schema`` (objects, array items, maps) without a description."""
    missing = [] if schema.get("description") else [path]
    for key, child in schema.get("properties", {}).items():
        missing += _undescribed(child, f"{path}.{key}")
    items = schema.get("items")
    if isinstance(items, dict) and items.get("type") == "object":
        missing += _undescribed(items, f"{path}[]")
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict) and extra.get("type") == "object":
        missing += _undescribed(extra, f"{path}{{}}")
    return missing


def test_every_crd_field_has_a_description_for_kubectl_explain() -> None:
    for filename, document in crds.all_crds().items():
        root = document["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        assert set(root["properties"]) == {"spec", "status"}
        assert _undescribed(root, root["description"]) == [], filename


def test_the_description_walk_finds_what_is_missing() -> None:
    schema = {"description": "x", "type": "object", "properties": {
        "a": {"type": "integer"},
        "b": {"description": "b", "type": "array", "items": {"type": "object", "properties": {
            "c": {"type": "string"}}}},
    }}  # fmt: skip
    assert _undescribed(schema, "X") == ["X.a", "X.b[]", "X.b[].c"]


@pytest.mark.parametrize(
    ("spec", "rebuilt"),
    [({"load": True}, True), ({"load": True, "rebuildIndex": False}, False),
     ({}, False), ({"rebuildIndex": True}, True), ({"load": False}, False)],
)  # fmt: skip
def test_load_means_the_recorded_indexes_too_unless_rebuild_index_is_false(
    spec: dict, rebuilt: bool
) -> None:
    assert parse_restore({"backupRef": "b", **spec}).rebuild_index is rebuilt


def test_rebuild_index_has_no_schema_default_so_left_out_stays_left_out() -> None:
    """A default would reach the operator as an explicit false and turn load's rebuild off."""
    restore = crds.all_crds()["backup.milvus.io_milvusrestores.yaml"]
    schema = restore["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    rebuild = schema["properties"]["spec"]["properties"]["rebuildIndex"]
    assert "default" not in rebuild and "load" in rebuild["description"]
