"""The typed status: kstatus conditions, transitions, and what a resumed run keeps."""

from __future__ import annotations

import time

import pytest

from milvus_backup_operator.api import Phase
from milvus_backup_operator.api.status import BackupStatus, RestoredCollection, RestoreStatus
from milvus_backup_operator.engine.errors import (
    DamagedBackupError,
    InvalidRequestError,
    NotFoundError,
    OperationError,
    UnsupportedError,
    error_for,
    kind_of,
)
from milvus_backup_operator.engine.progress import Progress


def conditions(status: BackupStatus) -> dict[str, bool]:
    return {c.type: c.status for c in status.conditions}


def test_each_phase_sets_the_kstatus_conditions() -> None:
    status = BackupStatus()
    status.set_pending(1, "x")
    assert conditions(status) == {"Ready": False, "Reconciling": True, "Stalled": False}
    status.set_running(1, "x")
    assert conditions(status) == {"Ready": False, "Reconciling": True, "Stalled": False}
    status.set_completed(2, "x")
    assert conditions(status) == {"Ready": True, "Reconciling": False, "Stalled": False}
    status.set_failed(2, "bucket missing", reason="NotFound")
    assert conditions(status) == {"Ready": False, "Reconciling": False, "Stalled": True}
    patch = status.patch()
    assert patch["phase"] == "Failed" and patch["observedGeneration"] == 2
    assert all(c["reason"] == "NotFound" for c in patch["conditions"])
    assert "completionTime" in patch and "startTime" in patch
    assert status.reason == "NotFound" and status.is_done()


def test_a_condition_moves_its_transition_time_only_when_it_flips(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = iter(f"2026-12-01T10:00:0{n}Z" for n in range(10))
    monkeypatch.setattr("milvus_backup_operator.api.status.now", lambda: next(clock))
    status = BackupStatus()
    status.set_pending(1, "scheduled")  # 00: every condition appears
    status.set_running(1, "copying")  # 01: Reconciling stays True, Ready stays False
    times = {c.type: c.last_transition_time for c in status.conditions}
    assert times == dict.fromkeys(("Ready", "Reconciling", "Stalled"), "2026-12-01T10:00:00Z")
    status.set_completed(1, "done")
    times = {c.type: c.last_transition_time for c in status.conditions}
    assert times["Stalled"] == "2026-12-01T10:00:00Z"  # still False
    assert times["Ready"] == times["Reconciling"] != "2026-12-01T10:00:00Z"


def test_a_resumed_run_keeps_its_start_time_and_what_it_recorded() -> None:
    first = RestoreStatus()
    first.set_running(1, "restoring b")
    first.record(RestoredCollection("a", "a_r", "Completed", rows=10))
    first.record(RestoredCollection("c", "c_r", "Running"))
    read_back = RestoreStatus.of(first.patch())  # as the next worker reads the resource
    time.sleep(1.1)  # a second later: a new start time would differ
    read_back.set_running(1, "resuming the restore of b")
    assert read_back.start_time == first.start_time
    assert read_back.phase == Phase.RUNNING
    assert [(c.name, c.state, c.rows) for c in read_back.collections] == [
        ("a", "Completed", 10),
        ("c", "Running", 0),
    ]
    read_back.record(RestoredCollection("c", "c_r", "Completed", rows=3))
    assert [c.state for c in read_back.collections] == ["Completed", "Completed"]


def test_progress_is_written_alone_and_readable() -> None:
    status = BackupStatus()
    patch = status.set_progress(Progress("backup", "copying", 1, 0, 10, 4, 2048, 1024))
    assert list(patch) == ["progress"]
    assert patch["progress"]["text"] == "50%"
    assert patch["progress"]["summary"] == "0/1 collections, 4/10 segments, 1.0 KiB/2.0 KiB"


def test_unknown_phases_and_empty_status_read_as_not_started() -> None:
    assert BackupStatus.of(None).phase is None and not BackupStatus.of({}).is_started()
    assert BackupStatus.of({"phase": "Exploded"}).phase is None


def test_a_restore_status_with_partial_collection_entries_reads() -> None:
    """An older operator's or a hand-edited status: the schema requires no field of an
    entry, and a crash here failed every handler of the resource (and the metrics)."""
    status = RestoreStatus.of({"phase": "Running", "collections": [{"name": "a"}, {}]})
    assert [(c.name, c.target, c.state) for c in status.collections] == [
        ("a", "", ""),
        ("", "", ""),
    ]


@pytest.mark.parametrize(
    ("error", "reason", "http"),
    [
        (InvalidRequestError("x"), "InvalidRequest", 400),
        (UnsupportedError("x"), "Unsupported", 400),
        (NotFoundError("x"), "NotFound", 404),
        (DamagedBackupError("x"), "DamagedBackup", 422),
        (OperationError("x"), "OperationFailed", 500),
        (RuntimeError("x"), "OperationFailed", 500),
    ],
)
def test_one_table_tells_each_error_as_a_reason_and_an_http_status(
    error: Exception, reason: str, http: int
) -> None:
    kind = kind_of(error)
    assert (kind.reason, kind.http_status) == (reason, http)
    back = error_for(reason, "the message")
    assert str(back) == "the message" and kind_of(back) == kind


def test_a_spec_error_from_a_job_reads_back_as_a_bad_request() -> None:
    from milvus_backup_operator.api.specs import SpecError

    assert kind_of(SpecError("x")).http_status == 400
    assert isinstance(error_for("InvalidSpec", "spec.x is wrong"), InvalidRequestError)


def test_the_id_of_a_created_target_is_kept_in_the_status_as_collection_id() -> None:
    entry = RestoredCollection("c", "c_r", "Running", collection_id=470848122695590381)
    written = entry.to_dict()
    assert written["collectionID"] == 470848122695590381 and "collection_id" not in written
    assert RestoredCollection.of(written) == entry
    assert "collectionID" not in RestoredCollection("c", "c_r", "Running").to_dict()
    assert RestoredCollection.of({"name": "c", "target": "c_r"}).collection_id == 0
