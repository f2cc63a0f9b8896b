"""Users, roles and grants: backed up with ``--rbac``, added back to a fresh Milvus, both with
authorization on. Milvus 2.3 never gives out passwords, so a user missing in the target is
refused by name until it is created there; roles, bindings and grants are then restored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pymilvus import MilvusClient

from milvus_backup_operator.engine.config_file import load_config
from milvus_backup_operator.engine.storage import ObjectStore
from testbed import sample_data
from testbed.stack import Stack
from testbed.stack.milvus import ROOT_PASSWORD, ROOT_USER, MilvusProcess, start_milvus
from tests.conftest import run_cli

pytestmark = pytest.mark.integration

BACKUPS = "rbac-backups"
USERS = {"alice": ["reader"], "bob": ["reader", "writer"]}
GRANTS = [  # (role, object type, privilege, object name)
    ("reader", "Collection", "Query", "*"),
    ("reader", "Collection", "Search", "books"),
    ("writer", "Global", "CreateCollection", "*"),
    ("writer", "Collection", "Insert", "books"),
]


def secured_milvus(stack: Stack, tmp: Path, bucket: str) -> MilvusProcess:
    stack.s3.ensure_bucket(bucket)
    return start_milvus(tmp, stack.s3, bucket, "file", die_with_parent=True, authorization=True)


def config_for(stack: Stack, milvus: MilvusProcess, path: Path) -> Path:
    config = yaml.safe_load(stack.config_path.read_text())
    endpoint = milvus.endpoint
    config["milvus"].update(
        address=endpoint.host, port=endpoint.port, user=ROOT_USER, password=ROOT_PASSWORD
    )
    config["minio"].update(
        bucketName=milvus.bucket, rootPath=milvus.root_path,
        backupBucketName=BACKUPS, backupRootPath="backup",
    )  # fmt: skip
    path.write_text(yaml.safe_dump(config))
    return path


def client(milvus: MilvusProcess) -> MilvusClient:
    return MilvusClient(uri=milvus.endpoint.uri, token=f"{ROOT_USER}:{ROOT_PASSWORD}")


def rbac_of(c: MilvusClient) -> dict[str, Any]:
    """What a user compares: roles, each user's roles, each role's privileges."""
    roles = sorted(c.list_roles())
    privileges = {
        role: sorted(
            (p["object_type"], p["object_name"], p["privilege"], p["db_name"])
            for p in c.describe_role(role)["privileges"]
        )
        for role in roles
    }
    users = {u: sorted(c.describe_user(u).get("roles", ())) for u in c.list_users()}
    return {"roles": roles, "users": users, "privileges": privileges}


@pytest.fixture(scope="module")
def secured(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, Path, MilvusClient, MilvusClient]]:
    """A source Milvus with users, roles and grants, a fresh target, and their configs."""
    tmp = tmp_path_factory.mktemp("rbac")
    stack.s3.ensure_bucket(BACKUPS)
    source = secured_milvus(stack, tmp / "source", "rbac-source")
    target = secured_milvus(stack, tmp / "target", "rbac-target")
    try:
        src = client(source)
        for role in ("reader", "writer"):
            src.create_role(role)
        for role, kind, privilege, name in GRANTS:
            src.grant_privilege(role, kind, privilege, name)
        for user, roles in USERS.items():
            src.create_user(user, f"{user}-secret-1")
            for role in roles:
                src.grant_role(user, role)
        yield (
            config_for(stack, source, tmp / "source.yaml"),
            config_for(stack, target, tmp / "target.yaml"),
            src,
            client(target),
        )
    finally:
        source.stop()
        target.stop()


def test_rbac_round_trip_into_a_fresh_milvus(
    stack: Stack, secured: tuple[Path, Path, MilvusClient, MilvusClient]
) -> None:
    source_config, target_config, src, dst = secured
    made = run_cli(source_config, "create", "-n", "rbac_all", "--rbac")
    assert made.code == 0, made.output
    fresh = rbac_of(dst)

    refused = run_cli(target_config, "restore", "-n", "rbac_all", "--rbac")
    assert refused.code != 0
    assert "users alice, bob are missing" in refused.stderr, refused.output
    assert "create them there first" in refused.stderr
    assert rbac_of(dst) == fresh  # nothing written

    for user in USERS:  # what the refusal asks for; Milvus 2.3 never gave out the passwords
        dst.create_user(user, "another-password")
    planned = run_cli(target_config, "restore", "-n", "rbac_all", "--rbac", "--dry-run")
    assert planned.code == 0, planned.output
    assert f"RBAC: add 0 users, 2 roles, 3 role bindings, {len(GRANTS)} grants" in planned.stdout
    assert rbac_of(dst)["roles"] == fresh["roles"]  # a dry run writes nothing

    restored = run_cli(target_config, "restore", "-n", "rbac_all", "--rbac")
    assert restored.code == 0, restored.output
    assert rbac_of(dst) == rbac_of(src)
    again = run_cli(target_config, "restore", "-n", "rbac_all", "--rbac")
    assert again.code == 0 and "RBAC: nothing to add" in again.stdout, again.output


def test_the_backup_records_rbac_as_milvus_backup_does(
    secured: tuple[Path, Path, MilvusClient, MilvusClient],
) -> None:
    source_config, _, _, _ = secured
    assert run_cli(source_config, "create", "-n", "rbac_meta", "--rbac").code == 0
    settings = load_config(source_config, {}, required=True)
    store = ObjectStore(settings.backup_storage, settings.timeouts)
    full = json.loads(store.get("backup/rbac_meta/meta/full_meta.json"))
    users = {
        u["user"]: sorted(r["name"] for r in u.get("roles", [])) for u in full["rbac_meta"]["users"]
    }
    assert {k: users[k] for k in USERS} == USERS
    assert all("password" not in u for u in full["rbac_meta"]["users"])  # 2.3 gives none out
    grants = {
        (role["name"], kind["name"], grantor["privilege"]["name"], name)
        for role, kind, grantor, name in (
            (g["role"], g["object"], g["grantor"], g["object_name"])
            for g in full["rbac_meta"]["grants"]
        )
    }
    assert set(GRANTS) <= grants
    head = json.loads(store.get("backup/rbac_meta/meta/backup_meta.json"))
    assert "rbac_meta" not in head  # as milvus-backup writes backup_meta.json


def test_rbac_restore_of_a_backup_without_it_is_refused(
    secured: tuple[Path, Path, MilvusClient, MilvusClient],
) -> None:
    source_config, target_config, _, _ = secured
    assert run_cli(source_config, "create", "-n", "rbac_none").code == 0
    refused = run_cli(target_config, "restore", "-n", "rbac_none", "--rbac")
    assert refused.code != 0 and "taken without rbac" in refused.stderr, refused.output


def test_wrong_milvus_credentials_fail_closed(
    stack: Stack, secured: tuple[Path, Path, MilvusClient, MilvusClient], tmp_path: Path
) -> None:
    source_config, _, _, _ = secured
    config = yaml.safe_load(source_config.read_text())
    config["milvus"]["password"] = "not-the-password"
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(yaml.safe_dump(config))
    result = run_cli(wrong, "create", "-n", "rbac_wrong", "--rbac")
    assert result.code != 0 and "user and password" in result.stderr, result.output
    assert "not-the-password" not in result.output
    assert run_cli(source_config, "get", "-n", "rbac_wrong").code != 0  # nothing was written


def test_an_rbac_restore_without_credentials_is_refused_before_writing(
    stack: Stack, samples: object
) -> None:
    """Milvus grants only to an authenticated caller: found out by a hostile run, where the
    roles were created and the grants then failed."""
    plain = sample_data.client(stack.milvus.uri)
    plain.create_role("rbac_lonely")
    try:
        assert (
            run_cli(stack.config_path, "create", "-n", "rbac_plain", "-c", "tiny", "--rbac").code
            == 0
        )
        plain.drop_role("rbac_lonely")
        roles = sorted(plain.list_roles())
        refused = run_cli(stack.config_path, "restore", "-n", "rbac_plain", "-s", "_rb", "--rbac")
        assert (
            refused.code == 1
            and "needs the credentials of a user allowed to grant" in refused.stderr
        )
        assert sorted(plain.list_roles()) == roles and not plain.has_collection("tiny_rb")
    finally:
        if "rbac_lonely" in plain.list_roles():
            plain.drop_role("rbac_lonely")
