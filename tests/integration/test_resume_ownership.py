"""A restore drops only collections it made: a resumed one never drops what its record names
but it does not restore there (a status edited by hand), and a failed one never drops what
replaced its collection meanwhile (another restore with dropExistingCollection)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from milvus_backup_operator.engine.backup import BackupRequest, create_backup
from milvus_backup_operator.engine.catalog import Catalog
from milvus_backup_operator.engine.progress import Progress
from milvus_backup_operator.engine.restore import RUNNING, CollectionRestoreResult
from milvus_backup_operator.engine.restore_plan import RestoreRequest
from milvus_backup_operator.engine.runs import run_restore
from milvus_backup_operator.engine.selection import parse_list
from testbed import sample_data
from testbed.sample_data import BOOKS, TINY
from testbed.stack import Stack, stack_config

pytestmark = pytest.mark.integration


def test_a_forged_running_record_of_another_collection_is_not_dropped(
    stack: Stack, samples: Any
) -> None:
    config = stack_config(stack)
    create_backup(config, BackupRequest("resume_owner", tuple(parse_list("tiny"))))
    c = sample_data.client(stack.milvus.uri)
    c.create_collection("users_precious", dimension=4)
    c.insert("users_precious", [{"id": 1, "vector": [0.0] * 4}])
    forged = [  # a collection this restore restores, recorded as started elsewhere
        CollectionRestoreResult("tiny", "users_precious", RUNNING),
        CollectionRestoreResult("books", "users_precious", RUNNING),  # one it does not restore
    ]
    request = RestoreRequest("resume_owner", tuple(parse_list("tiny")), suffix="_owner",
                             task_id="resume-owner")  # fmt: skip
    try:
        result = run_restore(config, request, previous=forged)
        assert c.has_collection("users_precious"), "the resume dropped a user's collection"
        assert [(r.target, r.state) for r in result.collections] == [("tiny_owner", "Completed")]
        sample_data.prepare_for_query(stack.milvus.uri, TINY, "tiny_owner")
        assert len(sample_data.rows(stack.milvus.uri, TINY, "tiny_owner")) == len(samples["tiny"])
    finally:
        for name in ("users_precious", "tiny_owner"):
            if c.has_collection(name):
                c.drop_collection(name)
        Catalog.of(config).delete("resume_owner")


def test_a_failed_restore_does_not_drop_the_collection_that_replaced_its_own(
    stack: Stack, samples: Any
) -> None:
    """Two restores into one name: the second, with dropExistingCollection, drops the first's
    collection mid-way and creates its own. The first then fails (its index is for fields
    the new collection lacks) and must not drop what now holds the name: not its own."""
    config = replace(stack_config(stack), progress_interval=0.0)
    create_backup(config, BackupRequest("replaced_mid_way", tuple(parse_list("tiny"))))
    c = sample_data.client(stack.milvus.uri)
    replaced: list[bool] = []

    def other_restore_replaces_it(progress: Progress) -> None:
        if progress.imports_done >= 1 and not replaced:
            replaced.append(True)
            c.drop_collection("tiny_replaced")
            c.create_collection("tiny_replaced", dimension=4)  # the other restore's
            c.insert("tiny_replaced", [{"id": 1, "vector": [0.0] * 4}])

    request = RestoreRequest("replaced_mid_way", tuple(parse_list("tiny")), suffix="_replaced",
                             rebuild_index=True, task_id="replaced-mid-way")  # fmt: skip
    try:
        result = run_restore(config, request, other_restore_replaces_it)
        assert replaced, "the restore never reported an import"
        (collection,) = result.collections
        assert collection.state == "Failed", collection
        assert c.has_collection("tiny_replaced"), "it dropped the other restore's collection"
        assert "it was kept" in collection.error, collection.error
    finally:
        if c.has_collection("tiny_replaced"):
            c.drop_collection("tiny_replaced")
        Catalog.of(config).delete("replaced_mid_way")


@pytest.mark.parametrize(
    ("recorded_id", "drop_existing", "says"),
    [
        (0, False, "it stopped before recording the ID of the collection it created"),
        (4242, False, "it created ID 4242, the collection there is ID "),
        (0, True, None),  # asked to replace targets: the redo replaces it, as asked
    ],
)
def test_a_resumed_restore_drops_only_a_target_that_holds_the_id_it_recorded(
    stack: Stack, samples: Any, recorded_id: int, drop_existing: bool, says: str | None
) -> None:
    """tiny_proof holds the ID the dead run recorded: dropped and redone. books_proof was made
    by someone else (the dead run recorded no ID, or another one): left alone, and that
    collection fails saying what to check, unless the restore drops existing targets."""
    config = stack_config(stack)
    backup = f"resume_proof_{recorded_id}_{drop_existing}".lower()
    uri = stack.milvus.uri
    live = {sample.name: sample_data.rows(uri, sample) for sample in (TINY, BOOKS)}
    create_backup(config, BackupRequest(backup, tuple(parse_list("tiny,books"))))
    c = sample_data.client(stack.milvus.uri)
    c.create_collection("tiny_proof", dimension=4)  # what the dead run had created
    dead_runs = c.describe_collection("tiny_proof")["collection_id"]
    c.create_collection("books_proof", dimension=4)  # a user's, made since
    users = c.describe_collection("books_proof")["collection_id"]
    previous = [
        CollectionRestoreResult("tiny", "tiny_proof", RUNNING, collection_id=dead_runs),
        CollectionRestoreResult("books", "books_proof", RUNNING, collection_id=recorded_id),
    ]
    request = RestoreRequest(
        backup, tuple(parse_list("tiny,books")), suffix="_proof", drop_existing=drop_existing,
        task_id=backup.replace("_", "-"),
    )  # fmt: skip
    heard: list[tuple[str, str]] = []
    try:
        result = run_restore(config, request, previous=previous,
                             on_collection=lambda r: heard.append((r.target, r.state)))  # fmt: skip
        by_target = {r.target: r for r in result.collections}
        assert by_target["tiny_proof"].state == "Completed", by_target["tiny_proof"]
        assert c.describe_collection("tiny_proof")["collection_id"] != dead_runs
        sample_data.prepare_for_query(stack.milvus.uri, TINY, "tiny_proof")
        assert sample_data.rows(uri, TINY, "tiny_proof") == live["tiny"]
        books = by_target["books_proof"]
        if says is None:
            assert books.state == "Completed", books
            sample_data.prepare_for_query(stack.milvus.uri, BOOKS, "books_proof")
            assert sample_data.rows(uri, BOOKS, "books_proof") == live["books"]
            return
        assert c.describe_collection("books_proof")["collection_id"] == users, "dropped"
        assert books.state == "Failed" and says in books.error, books
        assert "so nothing was dropped. Check books_proof" in books.error
        assert heard[0] == ("books_proof", "Failed"), heard  # said before the redo started
    finally:
        for name in ("tiny_proof", "books_proof"):
            if c.has_collection(name):
                c.drop_collection(name)
        Catalog.of(config).delete(backup)
