"""dropExistingCollection replaces a collection only once its replacement is proven: built
beside it under a temporary name, checked, then swapped in with its aliases (engine/swap.py).
A failure before the swap leaves the original untouched; a run stopped at any step of the
swap is finished by its resumed run. On the real Milvus 2.3.5."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from pymilvus import MilvusClient, MilvusException

from milvus_backup_operator.engine.backup import BackupRequest, create_backup
from milvus_backup_operator.engine.catalog import Catalog
from milvus_backup_operator.engine.config import BackupConfig
from milvus_backup_operator.engine.manifest import MANIFEST
from milvus_backup_operator.engine.milvus import connect
from milvus_backup_operator.engine.restore import SWAPPING, CollectionRestoreResult
from milvus_backup_operator.engine.restore_plan import RestoreRequest
from milvus_backup_operator.engine.runs import run_restore
from milvus_backup_operator.engine.selection import CollectionRef, parse_list
from milvus_backup_operator.engine.swap import Swap, building_name
from testbed import sample_data
from testbed.sample_data import TINY
from testbed.stack import Stack, stack_config

pytestmark = pytest.mark.integration

BACKUP = "replace_tiny"
TARGET = "tiny_replace"
ALIAS = "tiny_replace_alias"


@pytest.fixture(scope="module")
def backed_up(stack: Stack, samples: Any) -> Iterator[BackupConfig]:
    config = stack_config(stack)
    create_backup(config, BackupRequest(BACKUP, tuple(parse_list("tiny"))))
    yield config
    Catalog.of(config).delete(BACKUP)


@pytest.fixture
def original(stack: Stack, backed_up: BackupConfig) -> Iterator[int]:
    """The user's collection the restore replaces: one row, one alias; yields its ID."""
    c = sample_data.client(stack.milvus.uri)
    c.create_collection(TARGET, dimension=4)
    c.insert(TARGET, [{"id": 7, "vector": [0.5] * 4}])
    c.create_alias(TARGET, ALIAS)
    yield int(c.describe_collection(TARGET)["collection_id"])
    with contextlib.suppress(MilvusException):
        c.drop_alias(ALIAS)
    for name in c.list_collections():
        if name == TARGET or "__mbo_" in name:
            c.drop_collection(name)


def _request(task: str) -> RestoreRequest:
    return RestoreRequest(BACKUP, tuple(parse_list("tiny")), suffix="_replace",
                          drop_existing=True, task_id=task)  # fmt: skip


def _leftovers(c: MilvusClient) -> list[str]:
    return [name for name in c.list_collections() if "__mbo_" in name]


def _holds_the_backup(stack: Stack, samples: Any, name: str) -> bool:
    sample_data.prepare_for_query(stack.milvus.uri, TINY, name)
    return sample_data.rows(stack.milvus.uri, TINY, name) == samples["tiny"]


def test_the_replacement_is_built_beside_then_swapped_in_with_the_aliases(
    stack: Stack, samples: Any, backed_up: BackupConfig, original: int
) -> None:
    c = sample_data.client(stack.milvus.uri)
    heard: list[tuple[str, str, int]] = []
    seen_beside: list[bool] = []

    def on_collection(r: CollectionRestoreResult) -> None:
        heard.append((r.state, r.building, r.replaces))
        if r.state == SWAPPING:  # checked and about to swap: the original is still there
            seen_beside.append(c.describe_collection(TARGET)["collection_id"] == original)

    result = run_restore(backed_up, _request("replace-ok"), on_collection=on_collection)
    (done,) = result.collections
    assert done.state == "Completed", done.error
    assert seen_beside == [True], heard
    building = building_name(CollectionRef("default", TARGET), "replace-ok").name
    assert (SWAPPING, building, original) in heard
    assert int(c.describe_collection(TARGET)["collection_id"]) == done.collection_id != original
    assert c.describe_alias(ALIAS)["collection_name"] == TARGET
    assert f"aliases {ALIAS} moved to it" in done.checked, done.checked
    assert _holds_the_backup(stack, samples, TARGET)
    assert _holds_the_backup(stack, samples, ALIAS)  # readers through the alias too
    assert _leftovers(c) == []


def test_a_replacement_that_fails_its_check_leaves_the_original_untouched(
    stack: Stack, samples: Any, backed_up: BackupConfig, original: int
) -> None:
    """The backup's record of live rows says one more than its binlogs hold: the import is
    refused after it ran, so the replacement is dropped and the original was never touched."""
    catalog = Catalog.of(backed_up)
    key = catalog.layout(BACKUP).meta_key(MANIFEST)
    honest = catalog.store.get(key)
    record = json.loads(honest)
    collection, partitions = next(iter(record["live_rows"].items()))
    first = next(iter(partitions))
    record["live_rows"][collection][first] += 1
    catalog.store.put(key, json.dumps(record).encode())
    c = sample_data.client(stack.milvus.uri)
    try:
        result = run_restore(backed_up, _request("replace-fails"))
    finally:
        catalog.store.put(key, honest)
    (failed,) = result.collections
    assert failed.state == "Failed" and "the backup holds" in failed.error, failed
    assert "partly restored collection was dropped" in failed.error, failed.error
    assert int(c.describe_collection(TARGET)["collection_id"]) == original
    assert c.describe_alias(ALIAS)["collection_name"] == TARGET
    rows = c.query(TARGET, filter="id >= 0", output_fields=["id"], consistency_level="Strong")
    assert [r["id"] for r in rows] == [7]
    assert _leftovers(c) == []


def _stop_at(step: int, milvus: Any, swap: Swap) -> None:
    """Leave Milvus as a run stopped after ``step`` of the swap would (0: before step 1)."""
    db, target, aside = swap.target.db, swap.target.name, swap.aside.name
    if step >= 1:
        milvus.rename_collection(db, target, aside)
    if step >= 2:
        milvus.rename_collection(db, swap.build.name, target)
    if step >= 3:
        milvus.alter_alias(db, target, ALIAS)


@pytest.mark.parametrize("step", [0, 1, 2, 3])
def test_a_swap_stopped_after_each_step_is_finished_by_the_resumed_run(
    stack: Stack, backed_up: BackupConfig, original: int, step: int
) -> None:
    """The dead run had built and checked the replacement (here, a collection of two rows
    under the building name) and recorded Swapping; Milvus is left as it stopped after
    ``step``. The resumed run finishes the swap, drops the original only then, and imports
    nothing again."""
    task = f"replace-stopped-{step}"
    build = building_name(CollectionRef("default", TARGET), task)
    c = sample_data.client(stack.milvus.uri)
    c.create_collection(build.name, dimension=4)
    c.insert(build.name, [{"id": i, "vector": [0.25] * 4} for i in (1, 2)])
    build_id = int(c.describe_collection(build.name)["collection_id"])
    record = CollectionRestoreResult("tiny", TARGET, SWAPPING, rows=2, checked="checked",
                                     collection_id=build_id, building=build.name,
                                     replaces=original)  # fmt: skip
    with connect(backed_up.milvus, backed_up.timeouts) as milvus:
        _stop_at(step, milvus, record.swap())
    result = run_restore(backed_up, _request(task), previous=[record])
    (done,) = result.collections
    assert done.state == "Completed", done.error
    assert int(c.describe_collection(TARGET)["collection_id"]) == build_id
    assert c.describe_alias(ALIAS)["collection_name"] == TARGET
    rows = c.query(TARGET, filter="id >= 0", output_fields=["id"], consistency_level="Strong")
    assert sorted(r["id"] for r in rows) == [1, 2]
    assert _leftovers(c) == [], "the original was not dropped, or the build is left"


def test_a_collection_already_under_the_building_name_is_never_taken_for_the_restores(
    stack: Stack, samples: Any, backed_up: BackupConfig, original: int
) -> None:
    """A user's collection of the same schema under the name the restore would build under:
    Milvus 2.3 answers that create with success, and the restore must not import into it,
    swap it in, nor drop it; the original stays too."""
    build = building_name(CollectionRef("default", TARGET), "replace-taken")
    rename = ((CollectionRef("default", "tiny"), build),)
    (users,) = run_restore(backed_up, RestoreRequest(BACKUP, renames=rename)).collections
    assert users.state == "Completed", users.error
    c = sample_data.client(stack.milvus.uri)
    users_id = int(c.describe_collection(build.name)["collection_id"])
    (failed,) = run_restore(backed_up, _request("replace-taken")).collections
    assert failed.state == "Failed" and "exists already" in failed.error, failed
    assert int(c.describe_collection(build.name)["collection_id"]) == users_id
    assert int(c.describe_collection(TARGET)["collection_id"]) == original
    assert _holds_the_backup(stack, samples, build.name)  # no second import into it
