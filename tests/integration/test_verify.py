"""A damaged backup is found out by key before anything is restored (never a false success)."""

from __future__ import annotations

from typing import Any

import pytest

from milvus_backup_operator.engine.storage import ObjectStore
from testbed import sample_data
from testbed.stack import Stack, stack_config
from tests.conftest import run_cli
from tests.integration.api_server import call, running

pytestmark = pytest.mark.integration


def store(stack: Stack) -> ObjectStore:
    config = stack_config(stack)
    return ObjectStore(config.backup_storage, config.timeouts)


def fresh_backup(stack: Stack, name: str) -> dict[str, int]:
    """A new backup of books and tiny; its binlogs by key."""
    made = run_cli(stack.config_path, "create", "-n", name, "-c", "books,tiny")
    assert made.code == 0, made.output
    return {o.key: o.size for o in store(stack).list(f"backup/{name}/binlogs/")}


def restore_is_refused(stack: Stack, name: str, *fragments: str) -> None:
    """The restore fails naming the damage, and no collection is created."""
    before = sorted(sample_data.client(stack.milvus.uri).list_collections())
    result = run_cli(stack.config_path, "restore", "-n", name, "-s", "_damaged")
    assert result.code == 1 and "is damaged" in result.stderr, result.output
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)
    assert sorted(sample_data.client(stack.milvus.uri).list_collections()) == before


def test_an_intact_backup_verifies_with_its_manifest(stack: Stack, samples: Any) -> None:
    objects = fresh_backup(stack, "ver_intact")
    result = run_cli(stack.config_path, "verify", "-n", "ver_intact")
    assert result.code == 0, result.output
    assert f"is intact: {len(objects)} objects checked (size and ETag" in result.stdout


def test_missing_delta_logs_are_named_and_the_restore_refused(stack: Stack, samples: Any) -> None:
    """Without its delta logs a restore would bring deleted rows back."""
    objects = fresh_backup(stack, "ver_nodelta")
    deltas = sorted(key for key in objects if "/delta_log/" in key)
    assert deltas, "books has deleted rows: its backup has delta logs"
    for key in deltas:
        store(stack).delete(key)
    result = run_cli(stack.config_path, "verify", "-n", "ver_nodelta")
    assert result.code == 1 and f"{len(deltas)} of {len(objects)} objects" in result.stdout
    for key in deltas:
        assert f"{key.removeprefix('backup/ver_nodelta/')}: missing" in result.stdout
    restore_is_refused(stack, "ver_nodelta", "missing", "delta_log")


def test_a_binlog_cut_in_half_is_named_and_the_restore_refused(stack: Stack, samples: Any) -> None:
    objects = fresh_backup(stack, "ver_cut")
    key = max((k for k in objects if "/insert_log/" in k), key=objects.__getitem__)
    data = store(stack).get(key)
    store(stack).put(key, data[: len(data) // 2])
    result = run_cli(stack.config_path, "verify", "-n", "ver_cut")
    relative = key.removeprefix("backup/ver_cut/")
    assert result.code == 1
    assert f"{relative}: {len(data) // 2} bytes, {len(data)} expected" in result.stdout
    restore_is_refused(stack, "ver_cut", relative)


def test_a_binlog_rewritten_with_the_same_size_is_caught_by_its_etag(
    stack: Stack, samples: Any
) -> None:
    objects = fresh_backup(stack, "ver_swapped")
    key = next(k for k in objects if "/insert_log/" in k)
    data = store(stack).get(key)
    store(stack).put(key, bytes(reversed(data)))
    result = run_cli(stack.config_path, "verify", "-n", "ver_swapped")
    assert result.code == 1 and "its content changed (another ETag)" in result.stdout
    restore_is_refused(stack, "ver_swapped", "another ETag")


def test_a_backup_without_manifest_is_checked_against_its_meta(stack: Stack, samples: Any) -> None:
    """milvus-backup's backups have no manifest: sizes from the meta are what can be checked."""
    objects = fresh_backup(stack, "ver_nomanifest")
    store(stack).delete("backup/ver_nomanifest/meta/operator_manifest.json")
    result = run_cli(stack.config_path, "verify", "-n", "ver_nomanifest")
    assert result.code == 0 and "no manifest: milvus-backup's format" in result.stdout
    lost = next(k for k in objects if "/insert_log/" in k)
    store(stack).delete(lost)
    result = run_cli(stack.config_path, "verify", "-n", "ver_nomanifest")
    assert result.code == 1 and f"{lost.removeprefix('backup/ver_nomanifest/')}: missing" in (
        result.stdout
    )


def test_only_the_collections_restored_must_be_intact(stack: Stack, samples: Any) -> None:
    objects = fresh_backup(stack, "ver_partial")
    books_id = sample_data.client(stack.milvus.uri).describe_collection("books")["collection_id"]
    for key in objects:
        if f"/insert_log/{books_id}/" in key:
            store(stack).delete(key)
            break
    result = run_cli(stack.config_path, "restore", "-n", "ver_partial", "-c", "tiny",
                     "-s", "_partial")  # fmt: skip
    assert result.code == 0, result.output
    sample_data.client(stack.milvus.uri).drop_collection("tiny_partial")


def test_verify_over_rest(stack: Stack, samples: Any, tmp_path: Any) -> None:
    fresh_backup(stack, "ver_rest")
    with running(stack.config_path, tmp_path) as server:
        status, body = call(server, "GET", "/verify?backup_name=ver_rest")
        assert status == 200 and body["msg"] == "success", body
        assert body["data"]["intact"] is True and body["data"]["problems"] == []
        key = next(o.key for o in store(stack).list("backup/ver_rest/binlogs/"))
        store(stack).delete(key)
        body = call(server, "GET", "/verify?backup_name=ver_rest")[1]
        relative = key.removeprefix("backup/ver_rest/")
        assert body["data"]["intact"] is False
        assert body["data"]["problems"] == [{"key": relative, "problem": "missing"}]
        status, body = call(server, "POST", "/restore",
                            {"backup_name": "ver_rest", "collection_suffix": "_rest"})  # fmt: skip
        assert status == 422 and "is damaged" in body["msg"], body
