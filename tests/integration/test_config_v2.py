"""milvus-backup's current configuration format drives the real stack."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed import sample_data
from testbed.sample_data import TINY
from testbed.stack import Stack, stack_config
from tests.conftest import run_cli

pytestmark = pytest.mark.integration


def v2_config(stack: Stack, folder: Path) -> Path:
    """The stack's settings written in milvus-backup's v2 format (configVersion: v2)."""
    config = stack_config(stack)
    storage, backup = config.storage, config.backup_storage
    document: dict[str, Any] = {
        "configVersion": "v2",
        "log": {"level": "info"},
        "milvus": {
            "grpc": {"address": config.milvus.address, "port": config.milvus.port},
            "storage": {
                "provider": "minio", "address": storage.address, "port": storage.port,
                "useSSL": False, "bucketName": storage.bucket, "rootPath": storage.root_path,
                "auth": {"type": "static", "accessKeyID": storage.access_key,
                         "secretAccessKey": storage.secret_key},
            },
        },
        "backup": {"storage": {"rootPath": backup.root_path}, "pauseGC": False},
        "restore": {"concurrency": {"collections": 2, "importJobs": 4}},
        "transfer": {"mode": "auto", "concurrency": 16},
    }  # fmt: skip
    path = folder / "backup-v2.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_a_v2_config_drives_create_list_and_restore(
    stack: Stack, samples: Any, tmp_path: Path
) -> None:
    path = v2_config(stack, tmp_path)
    made = run_cli(path, "create", "-n", "v2_made", "-c", "tiny")
    assert made.code == 0, made.output
    assert "v2_made" in run_cli(path, "list").stdout
    restored = run_cli(path, "restore", "-n", "v2_made", "-s", "_v2")
    assert restored.code == 0, restored.output
    sample_data.prepare_for_query(stack.milvus.uri, TINY, "tiny_v2")
    assert sample_data.rows(stack.milvus.uri, TINY, "tiny_v2") == sample_data.rows(
        stack.milvus.uri, TINY
    )
    sample_data.client(stack.milvus.uri).drop_collection("tiny_v2")


def test_a_v2_key_we_do_not_know_is_refused_on_every_command(stack: Stack, tmp_path: Path) -> None:
    path = v2_config(stack, tmp_path)
    path.write_text(path.read_text().replace("pauseGC: false", "pauseGC: false\n  rbac: true"))
    for command in (["list"], ["check"], ["create", "-n", "v2_never", "-c", "tiny"]):
        result = run_cli(path, *command)
        assert result.code == 1 and "unknown key backup.rbac" in result.stderr, result.output
    assert "v2_never" not in run_cli(stack.config_path, "list").stdout
