"""Bad input gets a clear error, exit status 1, and nothing is written or lost."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from milvus_backup_operator.engine.backup import BackupRequest, create_backup
from milvus_backup_operator.engine.catalog import Catalog
from milvus_backup_operator.engine.layout import BackupLayout
from milvus_backup_operator.engine.reservation import reserve
from milvus_backup_operator.engine.selection import parse_list
from milvus_backup_operator.engine.storage import ObjectStore
from testbed import sample_data
from testbed.stack import Stack, stack_config
from tests.conftest import run_cli
from tests.integration.world import world

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def base(stack: Stack, samples: Any) -> str:
    """One good backup to restore from."""
    result = run_cli(stack.config_path, "create", "-n", "base", "-c", "tiny,db1.docs")
    assert result.code == 0, result.output
    return "base"


def backup_objects(stack: Stack, name: str) -> list[str]:
    config = stack_config(stack)
    store = ObjectStore(config.backup_storage, config.timeouts)
    return [o.key for o in store.list(BackupLayout(config.backup_storage.root_path, name).prefix)]


def listed_state(stack: Stack, name: str, config: Path | None = None) -> str | None:
    """The STATE column of ``list`` for ``name`` (None when it is not listed)."""
    for row in run_cli(config or stack.config_path, "list").stdout.splitlines()[1:]:
        columns = row.split()
        if columns[0] == name:
            return columns[1]
    return None


def variant(stack: Stack, tmp_path: Path, **changes: dict[str, Any]) -> Path:
    """The stack's config file with some sections changed."""
    config = yaml.safe_load(stack.config_path.read_text())
    for section, values in changes.items():
        config.setdefault(section, {}).update(values)
    path = tmp_path / "backup.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    ("name", "message"),
    [("my-backup", "only letters, digits and '_'"), ("9lives", "start with a letter")],
)
def test_invalid_backup_name(stack: Stack, name: str, message: str) -> None:
    result = run_cli(stack.config_path, "create", "-n", name)
    assert result.code == 1 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert backup_objects(stack, name) == []


def test_name_already_used_is_refused_and_the_backup_is_kept(stack: Stack, base: str) -> None:
    before = backup_objects(stack, base)
    result = run_cli(stack.config_path, "create", "-n", base)
    assert result.code == 1 and "already exists" in result.stderr
    assert backup_objects(stack, base) == before


def test_unknown_collection_lists_the_existing_ones(stack: Stack, samples: Any) -> None:
    result = run_cli(stack.config_path, "create", "-n", "typo", "-c", "tiny,bookz")
    assert result.code == 1
    assert "collection bookz does not exist" in result.stderr
    assert "books" in result.stderr and "db1.docs" in result.stderr
    assert backup_objects(stack, "typo") == []


def test_unknown_backup(stack: Stack) -> None:
    for verb in (["get", "-n", "nope"], ["restore", "-n", "nope"], ["delete", "-n", "nope"]):
        result = run_cli(stack.config_path, *verb)
        assert result.code == 1 and "backup 'nope' does not exist" in result.stderr, verb


def test_unknown_collection_in_the_backup(stack: Stack, base: str) -> None:
    result = run_cli(stack.config_path, "restore", "-n", base, "-c", "books", "-s", "_x")
    assert result.code == 1
    assert "does not exist in backup 'base'" in result.stderr and "tiny" in result.stderr


def test_suffix_and_renames_together(stack: Stack, base: str) -> None:
    result = run_cli(stack.config_path, "restore", "-n", base, "-s", "_a", "-r", "tiny:t2")
    assert result.code == 1 and "either a collection suffix or renames" in result.stderr


@pytest.mark.parametrize(
    "renames", [(), ("-r", "tiny:tiny_fresh")], ids=["every-target-exists", "one-target-free"]
)
def test_restore_over_an_existing_collection_writes_nothing(
    stack: Stack, base: str, renames: tuple[str, ...]
) -> None:
    """Refused before anything is written: no collection, row, database or object, not
    even for the targets that are free (tiny_fresh)."""
    before = world(stack)
    result = run_cli(stack.config_path, "restore", "-n", base, *renames)  # db1.docs exists
    assert result.code == 1 and "db1.docs already exists" in result.stderr, result.output
    after = world(stack)
    assert "default.tiny_fresh" not in after.rows
    assert after == before


def test_unreachable_milvus_fails_within_the_timeout(stack: Stack, tmp_path: Path) -> None:
    path = variant(stack, tmp_path, milvus={"port": 1}, timeouts={"connect": 2, "rpc": 2})
    started = time.monotonic()
    result = run_cli(path, "create", "-n", "unreachable")
    assert result.code == 1
    assert "cannot reach Milvus at" in result.stderr and "milvus.port" in result.stderr
    assert time.monotonic() - started < 30
    assert backup_objects(stack, "unreachable") == []


def test_unreachable_s3_fails_within_the_timeout(stack: Stack, tmp_path: Path) -> None:
    path = variant(stack, tmp_path, minio={"port": 1}, timeouts={"connect": 2, "rpc": 2})
    started = time.monotonic()
    result = run_cli(path, "list")
    assert result.code == 1 and "cannot reach S3 at 127.0.0.1:1" in result.stderr
    assert time.monotonic() - started < 30


def test_wrong_s3_credentials_are_named_but_never_shown(stack: Stack, tmp_path: Path) -> None:
    secret = "wrong-secret-Zq81"
    path = variant(stack, tmp_path, minio={"secretAccessKey": secret})
    result = run_cli(path, "create", "-n", "badcreds")
    assert result.code == 1 and "refused the credentials" in result.stderr
    assert secret not in result.output and stack.s3.secret_key not in result.output


def test_truncated_meta_is_refused(stack: Stack, base: str) -> None:
    config = stack_config(stack)
    store = ObjectStore(config.backup_storage, config.timeouts)
    good = BackupLayout(config.backup_storage.root_path, base)
    broken = BackupLayout(config.backup_storage.root_path, "truncated")
    for name in ("backup_meta.json", "full_meta.json"):
        raw = store.get(good.meta_key(name))
        store.put(broken.meta_key(name), raw[: len(raw) // 2] if name == "full_meta.json" else raw)
    result = run_cli(stack.config_path, "restore", "-n", "truncated", "-s", "_t")
    assert result.code == 1 and "is not valid JSON" in result.stderr
    assert "delete it and take a new one" in result.stderr
    listing = run_cli(stack.config_path, "list")
    assert any(
        r.startswith("truncated ") and "Incomplete" in r for r in listing.stdout.splitlines()
    )


def test_interrupted_backup_is_cleaned_up(stack: Stack, samples: Any) -> None:
    """A backup that stops half way (interrupted once data is copied) leaves nothing behind."""

    def interrupt(progress: Any) -> None:
        if progress.bytes_done > 0 and progress.phase != "completed":
            raise KeyboardInterrupt

    request = BackupRequest("interrupted", tuple(parse_list("books")))
    with pytest.raises(KeyboardInterrupt):
        create_backup(stack_config(stack), request, interrupt)
    assert backup_objects(stack, "interrupted") == []
    assert listed_state(stack, "interrupted") is None


def test_leftovers_of_a_killed_backup_are_listed_incomplete_and_deletable(
    stack: Stack, tmp_path: Path
) -> None:
    """A process killed by SIGKILL cannot clean up: what it left (its in-progress marker, written
    before the first copy, and some binlogs) shows as Running while its writer may be alive
    (its marker is fresh), then as Incomplete, never hidden."""
    config = stack_config(stack)
    store = ObjectStore(config.backup_storage, config.timeouts)
    layout = BackupLayout(config.backup_storage.root_path, "killed")
    reserve(store, layout, "the-killed-writer")  # what a create does first
    reserved = time.monotonic()
    store.put(layout.binlogs_dir() + "/insert_log/1/2/3/3/100/4", b"partial")
    # its marker is fresh: the writer could be alive, so delete waits for writerSilence
    quick = variant(stack, tmp_path, timeouts={"writerSilence": 8})
    early = run_cli(quick, "delete", "-n", "killed")
    assert early.code == 1 and "is being written" in early.stderr, early.output
    assert listed_state(stack, "killed") == "Running"
    got = run_cli(stack.config_path, "get", "-n", "killed")
    assert got.code == 1 and "still being written" in got.stderr
    assert "the-killed-writer" in got.stderr  # which writer left it
    time.sleep(max(0.0, reserved + 10 - time.monotonic()))
    assert listed_state(stack, "killed", quick) == "Incomplete"
    got = run_cli(quick, "get", "-n", "killed")
    assert got.code == 1 and "its writer stopped" in got.stderr, got.output
    assert run_cli(quick, "delete", "-n", "killed").code == 0
    assert not Catalog(store, config.backup_storage.root_path).exists("killed")


def test_delete_removes_exactly_one_backup(stack: Stack, base: str) -> None:
    assert run_cli(stack.config_path, "create", "-n", "base_2", "-c", "tiny").code == 0
    assert run_cli(stack.config_path, "create", "-n", "base2", "-c", "tiny").code == 0
    before = backup_objects(stack, base)
    result = run_cli(stack.config_path, "delete", "-n", "base2")
    assert result.code == 0 and "deleted" in result.stdout
    assert backup_objects(stack, "base2") == []
    assert backup_objects(stack, base) == before and backup_objects(stack, "base_2") != []


def test_check_reports_each_part(stack: Stack, tmp_path: Path) -> None:
    good = run_cli(stack.config_path, "check")
    assert good.code == 0, good.output
    assert "[OK] milvus: Milvus v2.3.5" in good.stdout and "all checks passed" in good.stdout
    path = variant(stack, tmp_path, minio={"bucketName": "no-such-bucket"})
    bad = run_cli(path, "check")
    assert bad.code == 1
    assert "[FAIL] milvus storage: bucket 'no-such-bucket'" in bad.stdout
    assert "[OK] milvus:" in bad.stdout


def test_load_without_indexes_is_refused_before_writing(stack: Stack, base: str) -> None:
    args = ["restore", "-n", base, "-c", "tiny", "-s", "_noindex", "--load", "--no_rebuild_index"]
    result = run_cli(stack.config_path, *args)
    assert result.code == 1 and "rebuilding them was turned off" in result.stderr, result.output
    client = sample_data.client(stack.milvus.uri)
    assert not client.has_collection("tiny_noindex")
    # --load alone means the recorded indexes too
    planned = run_cli(stack.config_path, *args[:-1], "--dry-run")
    assert planned.code == 0, planned.output
    tiny = next(line for line in planned.stdout.splitlines() if "tiny -> tiny_noindex" in line)
    assert " then rebuild " in tiny and tiny.endswith(" and load"), tiny
    assert not client.has_collection("tiny_noindex")


def test_milvus_backup_s_database_flags_select_collections(stack: Stack, samples: Any) -> None:
    """-d (every collection of a database) and -a (JSON), as milvus-backup 0.5 takes them."""
    by_db = run_cli(stack.config_path, "create", "-n", "by_database", "-d", "db1")
    assert by_db.code == 0 and "db1.docs" in by_db.stdout and "tiny" not in by_db.stdout
    by_json = run_cli(stack.config_path, "create", "-n", "by_json", "-a", '{"default": ["tiny"]}')
    assert by_json.code == 0 and "tiny" in by_json.stdout and "docs" not in by_json.stdout
    restored = run_cli(stack.config_path, "restore", "-n", "by_database", "--collections",
                       "db1.docs", "-s", "_bydb", "--dry-run")  # fmt: skip
    assert restored.code == 0 and "db1.docs -> db1.docs_bydb" in restored.stdout


def test_a_segment_missing_a_fields_binlogs_is_refused_at_backup(stack: Stack) -> None:
    """Milvus cannot import a segment without one of its fields' binlogs: the backup says so
    by segment and field and keeps nothing, instead of a Completed backup that cannot be
    restored. (The collection is the test's own: only its objects are removed.)"""
    from pymilvus import DataType

    c = sample_data.client(stack.milvus.uri)
    schema = c.create_schema(auto_id=False)
    schema.add_field("pk", DataType.INT64, is_primary=True)
    schema.add_field("title", DataType.VARCHAR, max_length=32)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=4)
    c.create_collection("half_fields", schema=schema)
    try:
        c.insert("half_fields", [{"pk": i, "title": f"t{i}", "vec": [0.1] * 4} for i in range(50)])
        c.flush("half_fields")
        described = c.describe_collection("half_fields")
        title = next(f["field_id"] for f in described["fields"] if f["name"] == "title")
        config = stack_config(stack)
        milvus_bucket = ObjectStore(config.storage, config.timeouts)
        prefix = f"{config.storage.root_path}/insert_log/{described['collection_id']}/"
        lost = [o.key for o in milvus_bucket.list(prefix) if f"/{title}/" in o.key]
        assert lost, "the flushed segment has no binlogs of title to remove"
        for key in lost:
            milvus_bucket.delete(key)

        result = run_cli(stack.config_path, "create", "-n", "half", "-c", "half_fields")

        assert result.code == 1, result.output
        assert f"holds no binlogs of title (field {title}) in Milvus's bucket" in result.stderr
        assert "nothing was kept" in result.stderr
        assert backup_objects(stack, "half") == []
        assert listed_state(stack, "half") is None
    finally:
        c.drop_collection("half_fields")
