"""Backups kept on another S3 service, restored into another Milvus with its own bucket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from milvus_backup_operator.engine.config_file import load_config
from milvus_backup_operator.engine.storage import ObjectStore
from testbed import sample_data
from testbed.sample_data import BOOKS, DOCS
from testbed.stack import Stack
from testbed.stack.milvus import MilvusProcess, start_milvus
from testbed.stack.rgw import RadosGateway, start_rgw
from tests.conftest import run_cli

pytestmark = pytest.mark.integration
OTHER_BUCKET = "other-milvus-bucket"


@pytest.fixture(scope="module")
def second_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadosGateway]:
    """A second, independent S3 service (own cluster, own keys): no server-side copy to it."""
    gateway = start_rgw(tmp_path_factory.mktemp("rgw2"), bucket="offsite", die_with_parent=True)
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture(scope="module")
def other_milvus(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A second Milvus on the first gateway, keeping its binlogs in another bucket and root."""
    stack.s3.ensure_bucket(OTHER_BUCKET)
    process: MilvusProcess = start_milvus(
        tmp_path_factory.mktemp("milvus2"), stack.s3, OTHER_BUCKET, "files", die_with_parent=True
    )
    try:
        yield process
    finally:
        process.stop()


def offsite_config(stack: Stack, gateway: RadosGateway, path: Path, milvus: Any = None) -> Path:
    """Milvus (the stack's, or ``milvus``) with backups on the second gateway."""
    config = yaml.safe_load(stack.config_path.read_text())
    config["minio"].update(
        backupAddress=gateway.s3.host,
        backupPort=gateway.s3.port,
        backupAccessKeyID=gateway.s3.access_key,
        backupSecretAccessKey=gateway.s3.secret_key,
        backupBucketName="offsite",
        backupRootPath="milvus/backups",
    )
    if milvus is not None:
        config["milvus"].update(address=milvus.endpoint.host, port=milvus.endpoint.port)
        config["minio"].update(bucketName=milvus.bucket, rootPath=milvus.root_path)
    path.write_text(yaml.safe_dump(config))
    return path


def test_offsite_backup_restored_into_another_milvus(
    stack: Stack,
    samples: dict[str, Any],
    second_gateway: RadosGateway,
    other_milvus: MilvusProcess,
    tmp_path: Path,
) -> None:
    source = offsite_config(stack, second_gateway, tmp_path / "source.yaml")
    live = {s.ref: sample_data.rows(stack.milvus.uri, s) for s in (BOOKS, DOCS)}
    made = run_cli(source, "create", "-n", "offsite", "-c", "books,db1.docs")
    assert made.code == 0, made.output
    offsite = ObjectStore(load_config(source, {}).backup_storage, load_config(source, {}).timeouts)
    assert offsite.has_any("milvus/backups/offsite/meta/full_meta.json")

    target = offsite_config(stack, second_gateway, tmp_path / "target.yaml", other_milvus)
    restored = run_cli(target, "restore", "-n", "offsite", "--rebuild_index", "--load")
    assert restored.code == 0, restored.output
    uri = other_milvus.endpoint.uri
    assert sample_data.rows(uri, BOOKS) == live["books"]
    assert sample_data.rows(uri, DOCS) == live["db1.docs"]

    # the binlogs were staged into the other Milvus's bucket for the import, then removed
    other = ObjectStore(load_config(target, {}).storage, load_config(target, {}).timeouts)
    assert not [o.key for o in other.list("restore-temp-")]
    assert other.has_any("files/insert_log/")  # Milvus's own data is still there


def test_a_backup_written_by_milvus_backup_is_listed_and_read(stack: Stack) -> None:
    """milvus-backup v0.5.x's meta (the committed fixture) in our backup location."""
    fixture = Path(__file__).parent.parent / "fixtures" / "milvus_backup_v05" / "mb_v05_two_colls"
    config = load_config(stack.config_path, {})
    store = ObjectStore(config.backup_storage, config.timeouts)
    for meta in (fixture / "meta").iterdir():
        store.put(f"backup/mb_v05_two_colls/meta/{meta.name}", meta.read_bytes())
    got = run_cli(stack.config_path, "get", "-n", "mb_v05_two_colls")
    assert got.code == 0, got.output
    backup = yaml.safe_load(got.stdout)
    assert [(c["name"], c["rows"]) for c in backup["collections"]] == [
        ("books", 6500),
        ("tiny", 10),
    ]
    listing = run_cli(stack.config_path, "list").stdout
    assert any(r.split()[:2] == ["mb_v05_two_colls", "Completed"] for r in listing.splitlines())
    assert run_cli(stack.config_path, "delete", "-n", "mb_v05_two_colls").code == 0
