"""The Kopf handlers, called as Kopf calls them (they are plain functions), in milliseconds.

What only a cluster shows (watches, the status subresource, Jobs, webhooks) is tested on the
real kube-apiserver under ``tests/e2e``; here the handlers get an in-memory stand-in for our
custom objects (merge-patching status as the API server does), an executor that records what
it is asked to start, and Secrets mounted from a folder (the Job's own ``MountedSecrets``).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kopf
import pytest
from kopf._core.engines import posting
from kubernetes.client.exceptions import ApiException

from milvus_backup_operator.api import Kind
from milvus_backup_operator.api.schedule import RUN_NOW, SCHEDULE_LABEL, SCHEDULE_UID
from milvus_backup_operator.controllers import admission, backup, lifecycle, restore
from milvus_backup_operator.controllers import schedule as schedule_controller
from milvus_backup_operator.controllers.adoption import COMPLETED
from milvus_backup_operator.controllers.services import Services
from milvus_backup_operator.executors import StartRefusedError, WorkItem
from milvus_backup_operator.k8s.credentials import MountedSecrets
from milvus_backup_operator.k8s.resources import Resources

NS = "team-a"
SPEC = {
    "milvus": {"address": "milvus.milvus.svc"},
    "storage": {"endpoint": "minio.milvus.svc:9000", "credentialsSecret": {"name": "minio"}},
}


class InMemoryResources(Resources):
    """Our custom objects in a dict; ``patch_status`` merges as a JSON merge patch does."""

    def __init__(self) -> None:
        self.objects: dict[tuple[Kind, str, str], dict[str, Any]] = {}

    def add(self, kind: Kind, name: str, spec: dict[str, Any], **extra: Any) -> dict[str, Any]:
        meta = {"name": name, "namespace": NS, "uid": f"uid-{name}", "generation": 1}
        body = {"kind": kind.kind, "metadata": {**meta, **extra.pop("metadata", {})},
                "spec": spec, **extra}  # fmt: skip
        self.objects[(kind, NS, name)] = body
        return body

    def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((kind, namespace, name))

    def list_all(self, kind: Kind, namespace: str) -> list[dict[str, Any]]:
        return [b for (k, ns, _), b in self.objects.items() if (k, ns) == (kind, namespace)]

    def patch_status(self, kind: Kind, namespace: str, name: str, status: dict[str, Any]) -> None:
        body = self.objects[(kind, namespace, name)]
        body["status"] = _merge(body.get("status") or {}, status)

    def find(self, kind: Kind, namespace: str, label: str, value: str) -> list[dict[str, Any]]:
        return [b for b in self.list_all(kind, namespace)
                if (b["metadata"].get("labels") or {}).get(label) == value]  # fmt: skip

    def patch_metadata(self, kind: Kind, namespace: str, name: str, meta: dict[str, Any]) -> None:
        body = self.objects[(kind, namespace, name)]
        meta = {k: v for k, v in meta.items() if k != "resourceVersion"}
        body["metadata"] = _merge(body["metadata"], meta)

    def create(self, kind: Kind, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        key = (kind, namespace, body["metadata"]["name"])
        if key in self.objects:
            raise ApiException(status=409, reason="AlreadyExists")
        self.objects[key] = copy.deepcopy(body)
        return self.objects[key]

    def delete(self, kind: Kind, namespace: str, name: str) -> None:
        self.objects.pop((kind, namespace, name), None)


def _merge(into: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    merged = dict(into)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class RecordingExecutor:
    def __init__(self, can_stop: bool = True) -> None:
        self.started: list[WorkItem] = []
        self.stopped: list[tuple[str, str]] = []
        self.can_stop = can_stop

    def stop(self, namespace: str, runner: str) -> bool:
        self.stopped.append((namespace, runner))
        return self.can_stop

    def runner_name(self, item: WorkItem) -> str:
        return f"job-{item.name}-{item.attempt}"

    def start(self, item: WorkItem) -> None:
        self.started.append(item)


@pytest.fixture
def events() -> Iterator[asyncio.Queue[Any]]:
    """Kopf's event queue, read back by the tests (no event loop: events queue at once)."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    tokens = [posting.event_queue_var.set(queue), posting.event_queue_loop_var.set(None),  # type: ignore[arg-type]
              posting.settings_var.set(kopf.OperatorSettings())]  # fmt: skip
    yield queue
    for var, token in zip(
        (posting.event_queue_var, posting.event_queue_loop_var, posting.settings_var),
        tokens,
        strict=True,
    ):
        var.reset(token)  # type: ignore[attr-defined]


@pytest.fixture
def run(tmp_path: Path) -> Services:
    (tmp_path / "minio").mkdir()
    (tmp_path / "minio" / "accesskey").write_text("minioadmin")
    (tmp_path / "minio" / "secretkey").write_text("minioadmin")
    return Services(RecordingExecutor(), InMemoryResources(), lambda _: MountedSecrets(tmp_path))


def call(
    handler: Any, run: Services, body: dict[str, Any], patch: kopf.Patch | None = None
) -> kopf.Patch:
    patch, view = patch if patch is not None else kopf.Patch(), kopf.Body(body)
    handler(
        body=view, spec=view.spec, status=view.status,
        name=body["metadata"]["name"], namespace=NS, patch=patch,
        memo=kopf.Memo(services=run),
    )  # fmt: skip
    return patch


def reasons(events: asyncio.Queue[Any]) -> list[str]:
    found = []
    while not events.empty():
        found.append(events.get_nowait().reason)
    return found


def api(run: Services) -> InMemoryResources:
    assert isinstance(run.resources, InMemoryResources)
    return run.resources


def executor(run: Services) -> RecordingExecutor:
    assert isinstance(run.executor, RecordingExecutor)
    return run.executor


def test_a_new_backup_is_scheduled_once_with_its_job_and_name(
    run: Services, events: asyncio.Queue[Any]
) -> None:
    body = api(run).add(Kind.BACKUP, "nightly", SPEC)
    call(backup.reconcile, run, body)
    status = body["status"]
    assert (status["phase"], status["jobName"], status["backupName"]) == (
        "Pending", "job-nightly-0", "nightly",
    )  # fmt: skip
    assert status["message"] == "backup nightly scheduled (job-nightly-0)"
    assert [i.name for i in executor(run).started] == ["nightly"]
    assert reasons(events) == ["Started"]
    call(backup.reconcile, run, body)  # Kopf resumes it after a restart: no second Pending
    assert body["status"]["conditions"] == status["conditions"]
    assert len(executor(run).started) == 2  # the executor itself ignores a running work


def test_a_done_backup_is_left_alone(run: Services, events: asyncio.Queue[Any]) -> None:
    body = api(run).add(Kind.BACKUP, "old", SPEC, status={"phase": "Completed"})
    call(backup.reconcile, run, body)
    assert executor(run).started == [] and reasons(events) == []


def test_a_spec_that_cannot_work_fails_with_the_field_to_fix(
    run: Services, events: asyncio.Queue[Any]
) -> None:
    bad = {**SPEC, "storage": {**SPEC["storage"], "credentialsSecret": {"name": "missing"}}}
    body = api(run).add(Kind.BACKUP, "nightly", bad)
    patch = call(backup.reconcile, run, body)
    assert patch.status["phase"] == "Failed"
    assert "missing" in patch.status["message"]
    reason = {c["type"]: c["reason"] for c in patch.status["conditions"]}["Stalled"]
    assert reason == "InvalidSpec" and executor(run).started == []
    assert reasons(events) == ["InvalidSpec"]


def test_two_backups_writing_one_name_to_one_place_are_refused(
    run: Services, events: asyncio.Queue[Any]
) -> None:
    api(run).add(Kind.BACKUP, "first", {**SPEC, "backupName": "shared"})
    body = api(run).add(Kind.BACKUP, "second", {**SPEC, "backupName": "shared"})
    patch = call(backup.reconcile, run, body)
    assert patch.status["phase"] == "Failed"
    assert "MilvusBackup 'first' already writes backup 'shared'" in patch.status["message"]


def test_a_restore_waits_for_its_backup_without_failing(
    run: Services, events: asyncio.Queue[Any]
) -> None:
    api(run).add(Kind.BACKUP, "nightly", SPEC, status={"phase": "Running"})
    body = api(run).add(Kind.RESTORE, "drill", {"backupRef": "nightly"})
    patch = kopf.Patch()
    with pytest.raises(kopf.TemporaryError, match="waiting for MilvusBackup 'nightly'"):
        call(restore.reconcile, run, body, patch)
    assert patch.status["phase"] == "Pending" and executor(run).started == []


def test_a_copy_of_a_completed_restore_is_adopted_not_run(
    run: Services, events: asyncio.Queue[Any]
) -> None:
    api(run).add(Kind.BACKUP, "nightly", SPEC, status={"phase": "Completed"})
    mark = {"annotations": {COMPLETED: "uid-old 2026-11-30T02:00:00Z"}}
    body = api(run).add(Kind.RESTORE, "drill", {"backupRef": "nightly"}, metadata=mark)
    patch = call(restore.reconcile, run, body)
    assert patch.status["phase"] == "Completed" and executor(run).started == []
    assert "2026-11-30T02:00:00Z" in patch.status["message"]
    assert "new name" in patch.status["message"]


def test_a_restore_without_the_mark_runs(run: Services, events: asyncio.Queue[Any]) -> None:
    api(run).add(Kind.BACKUP, "nightly", SPEC, status={"phase": "Completed"})
    body = api(run).add(Kind.RESTORE, "drill", {"backupRef": "nightly"})
    call(restore.reconcile, run, body)
    assert body["status"]["phase"] == "Pending"
    assert [i.kind for i in executor(run).started] == [Kind.RESTORE]


def failed_job(name: str, kind: Kind, resource: str) -> dict[str, Any]:
    labels = {"app.kubernetes.io/managed-by": "milvus-backup-operator",
              "backup.milvus.io/kind": kind.value, "backup.milvus.io/name": resource}  # fmt: skip
    return {
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "status": {"failed": 1, "conditions": [
            {"type": "Failed", "reason": "BackoffLimitExceeded", "message": "pod killed"}]},
    }  # fmt: skip


def job_event(run: Services, job: dict[str, Any]) -> None:
    lifecycle.job_finished(body=kopf.Body(job), namespace=NS, memo=kopf.Memo(services=run))


def test_a_failed_job_is_retried_by_a_new_one_a_bounded_number_of_times(
    run: Services, events: asyncio.Queue[Any]
) -> None:
    api(run).add(Kind.BACKUP, "nightly", SPEC, status={"phase": "Completed"})
    body = api(run).add(Kind.RESTORE, "drill", {"backupRef": "nightly"},
                        status={"phase": "Running", "jobName": "job-drill-0"})  # fmt: skip
    run.job_retries = 2
    job_event(run, failed_job("job-drill-0", Kind.RESTORE, "drill"))
    assert (body["status"]["attempts"], body["status"]["jobName"]) == (1, "job-drill-1")
    assert "resuming in Job job-drill-1" in body["status"]["message"]
    job_event(run, failed_job("job-drill-0", Kind.RESTORE, "drill"))  # the same Job, again
    assert [i.attempt for i in executor(run).started] == [1]
    job_event(run, failed_job("job-drill-1", Kind.RESTORE, "drill"))
    assert body["status"]["phase"] == "Running" and body["status"]["attempts"] == 2
    job_event(run, failed_job("job-drill-2", Kind.RESTORE, "drill"))
    assert body["status"]["phase"] == "Failed"
    message = body["status"]["message"]
    assert "Job job-drill-2 failed" in message and "no retry is left (2 new Jobs" in message
    assert [i.attempt for i in executor(run).started] == [1, 2]


def test_a_failed_job_whose_work_cannot_resume_fails_the_resource_instead_of_hanging(
    run: Services, events: asyncio.Queue[Any]
) -> None:
    """The restore's MilvusBackup was deleted (by hand, by a schedule's retention, by its
    ttl) while its Job ran: the Job's failure cannot be retried, and the restore must not
    stay Running for ever (an event handler's exception is not retried by Kopf)."""
    body = api(run).add(Kind.RESTORE, "drill", {"backupRef": "nightly"},
                        status={"phase": "Running", "jobName": "job-drill-0"})  # fmt: skip
    job_event(run, failed_job("job-drill-0", Kind.RESTORE, "drill"))
    status = body["status"]
    assert status["phase"] == "Failed" and executor(run).started == []
    assert "Job job-drill-0 failed" in status["message"]
    assert "cannot be resumed: MilvusBackup 'nightly' not found" in status["message"]


def test_a_completed_resource_gets_the_mark_its_copies_carry(events: asyncio.Queue[Any]) -> None:
    body = {"metadata": {"name": "drill", "namespace": NS, "uid": "uid-1"},
            "status": {"phase": "Completed", "completionTime": "2026-12-01T01:00:00Z"}}  # fmt: skip
    patch, view = kopf.Patch(), kopf.Body(body)
    lifecycle.phase_changed(body=view, new="Completed", status=view.status, patch=patch)
    assert patch.metadata.annotations[COMPLETED] == "uid-1 2026-12-01T01:00:00Z"
    assert reasons(events) == ["Completed"]


def test_a_started_resource_keeps_its_spec() -> None:
    old = {"spec": {"backupName": "a"}, "status": {"phase": "Running"}}
    new = kopf.Body({"kind": "MilvusBackup", "spec": {"backupName": "b"}})
    with pytest.raises(kopf.AdmissionError, match="cannot change once its work has started"):
        admission.spec_immutable(body=new, old=old)
    admission.spec_immutable(body=new, old={"spec": {"backupName": "a"}})  # not started: fine


# ---- MilvusBackupSchedule, against a clock the tests set -----------------------------------


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


START = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


@pytest.fixture
def clock(run: Services) -> Clock:
    run.clock = clock = Clock(START)
    return clock


def schedule(run: Services, **spec: Any) -> dict[str, Any]:
    body = api(run).add(
        Kind.SCHEDULE, "nightly", {"schedule": "0 2 * * *", "template": SPEC, **spec},
        metadata={"creationTimestamp": "2026-12-01T00:30:00Z"},
    )  # fmt: skip
    return body


def tick(run: Services, body: dict[str, Any]) -> kopf.Patch:
    patch = call(schedule_controller.tick, run, body)
    body["status"] = _merge(body.get("status") or {}, dict(patch.status))
    for key, value in (patch.get("metadata", {}).get("annotations") or {}).items():
        if value is None:
            body["metadata"]["annotations"].pop(key, None)
    return patch


def runs(run: Services) -> dict[str, dict[str, Any]]:
    return {
        b["metadata"]["name"]: b for b in api(run).find(Kind.BACKUP, NS, SCHEDULE_LABEL, "nightly")
    }


def finish(run: Services, name: str, phase: str, at: str = "2026-12-01T02:05:00Z") -> None:
    api(run).patch_status(Kind.BACKUP, NS, name, {"phase": phase, "completionTime": at})


def test_a_run_is_created_once_when_due_named_from_its_time(
    run: Services, clock: Clock, events: asyncio.Queue[Any]
) -> None:
    body = schedule(run)
    tick(run, body)
    assert runs(run) == {} and body["status"]["nextScheduleTime"] == "2026-12-01T02:00:00Z"
    clock.now = START.replace(hour=2, second=5)
    tick(run, body)
    tick(run, body)  # the next look, or a restarted operator: the same run, not a second one
    (made,) = runs(run).values()
    assert made["metadata"]["name"] == "nightly-20261201-0200"
    assert made["metadata"]["labels"] == {SCHEDULE_LABEL: "nightly", SCHEDULE_UID: "uid-nightly"}
    assert "ownerReferences" not in made["metadata"]  # it outlives the schedule
    assert made["spec"] == SPEC and body["status"]["lastScheduleTime"] == "2026-12-01T02:00:00Z"
    assert body["status"]["active"] == ["nightly-20261201-0200"]
    assert "Created" in reasons(events)


def test_forbid_skips_a_run_while_the_last_one_runs_and_says_so(
    run: Services, clock: Clock, events: asyncio.Queue[Any]
) -> None:
    body = schedule(run, schedule="@hourly")
    clock.now = START.replace(hour=2, second=1)
    tick(run, body)
    clock.now = START.replace(hour=3, second=1)  # the 02:00 run still runs
    tick(run, body)
    assert list(runs(run)) == ["nightly-20261201-0200"]
    assert "skipped the run of 2026-12-01T03:00:00Z" in body["status"]["message"]
    finish(run, "nightly-20261201-0200", "Completed")
    clock.now = START.replace(hour=4, second=1)
    tick(run, body)
    assert sorted(runs(run)) == ["nightly-20261201-0200", "nightly-20261201-0400"]


def test_replace_deletes_the_running_one_and_allow_runs_both(
    run: Services, clock: Clock, events: asyncio.Queue[Any]
) -> None:
    body = schedule(run, schedule="@hourly", concurrencyPolicy="Replace")
    clock.now = START.replace(hour=2, second=1)
    tick(run, body)
    clock.now = START.replace(hour=3, second=1)
    tick(run, body)
    assert list(runs(run)) == ["nightly-20261201-0300"]
    body["spec"]["concurrencyPolicy"] = "Allow"
    clock.now = START.replace(hour=4, second=1)
    tick(run, body)
    assert sorted(runs(run)) == ["nightly-20261201-0300", "nightly-20261201-0400"]


def test_only_the_latest_missed_run_starts_and_only_within_the_deadline(
    run: Services, clock: Clock, events: asyncio.Queue[Any]
) -> None:
    body = schedule(run, schedule="@hourly", startingDeadlineSeconds=600)
    clock.now = START.replace(hour=5, minute=5)  # the operator was down from 01:00
    tick(run, body)
    assert list(runs(run)) == ["nightly-20261201-0500"]
    clock.now = START.replace(hour=6, minute=30)  # 30 minutes late: past the deadline
    tick(run, body)
    assert list(runs(run)) == ["nightly-20261201-0500"]
    assert "missed the run of 2026-12-01T06:00:00Z" in body["status"]["message"]


def test_suspend_creates_nothing_and_resume_goes_on(
    run: Services, clock: Clock, events: asyncio.Queue[Any]
) -> None:
    body = schedule(run, schedule="@hourly", suspend=True)
    clock.now = START.replace(hour=2, second=1)
    tick(run, body)
    assert runs(run) == {} and "nextScheduleTime" not in body["status"]
    assert body["status"]["suspendedSince"] == "2026-12-01T02:00:01Z"
    body["spec"]["suspend"] = False
    clock.now = START.replace(hour=3, second=1)
    tick(run, body)
    assert list(runs(run)) == ["nightly-20261201-0300"]
    assert "suspendedSince" not in body["status"]


def test_run_now_starts_one_extra_run_and_the_annotation_goes(
    run: Services, clock: Clock, events: asyncio.Queue[Any]
) -> None:
    body = schedule(run)
    body["metadata"]["annotations"] = {RUN_NOW: "please"}
    tick(run, body)
    tick(run, body)
    (made,) = runs(run)
    assert made.startswith("nightly-now-") and RUN_NOW not in body["metadata"]["annotations"]
    body["metadata"]["annotations"] = {RUN_NOW: "please"}  # the same value again: said so
    tick(run, body)
    assert list(runs(run)) == [made] and RUN_NOW not in body["metadata"]["annotations"]
    assert f"run-now 'please' ignored: {made} was made for that value" in body["status"]["message"]


def test_retention_prunes_only_this_schedules_done_runs(
    run: Services, clock: Clock, events: asyncio.Queue[Any]
) -> None:
    body = schedule(run, schedule="@hourly", retention={"keepLast": 2, "keepFailed": 1},
                    concurrencyPolicy="Allow")  # fmt: skip
    api(run).add(Kind.BACKUP, "someone-elses", SPEC, status={"phase": "Completed"})
    for hour in range(2, 7):
        clock.now = START.replace(hour=hour, second=1)
        tick(run, body)
        finish(run, f"nightly-20261201-0{hour}00", "Failed" if hour == 3 else "Completed")
    tick(run, body)
    assert sorted(runs(run)) == [
        "nightly-20261201-0300", "nightly-20261201-0500", "nightly-20261201-0600",
    ]  # fmt: skip
    assert api(run).get(Kind.BACKUP, NS, "someone-elses") is not None
    assert body["status"]["completed"] == 2 and body["status"]["failed"] == 1


def test_a_backup_carrying_the_label_but_not_made_by_the_schedule_is_never_touched(
    run: Services, clock: Clock, events: asyncio.Queue[Any]
) -> None:
    """Anyone may label a MilvusBackup backup.milvus.io/schedule=nightly, and the runs of a
    deleted schedule of that name keep the label: neither is pruned (its data deleted with
    deletionPolicy Delete) nor replaced. A run is this schedule's by its uid: the uid label,
    or an older operator's controller owner reference; another controller's is not."""
    body = schedule(run, schedule="@hourly", retention={"keepLast": 1},
                    concurrencyPolicy="Replace")  # fmt: skip
    label = {SCHEDULE_LABEL: "nightly"}
    old = {"labels": label, "creationTimestamp": "2026-11-30T00:00:00Z"}
    done = {"phase": "Completed", "completionTime": "2026-11-30T00:05:00Z"}
    api(run).add(Kind.BACKUP, "mine", {**SPEC, "deletionPolicy": "Delete"}, metadata=old,
                 status=done)  # fmt: skip
    orphan = {**old, "ownerReferences": [{"uid": "uid-of-a-deleted-one", "controller": True}]}
    api(run).add(Kind.BACKUP, "nightly-20261130-0000", SPEC, metadata=orphan, status=done)
    kept = {**old, "labels": {**label, SCHEDULE_UID: "uid-of-a-deleted-one"}}
    api(run).add(Kind.BACKUP, "nightly-20261130-0100", SPEC, metadata=kept, status=done)
    stolen = {
        **old,
        "labels": {**label, SCHEDULE_UID: "uid-nightly"},
        "ownerReferences": [{"uid": "uid-of-another-controller", "controller": True}],
    }
    api(run).add(Kind.BACKUP, "nightly-20261130-0200", SPEC, metadata=stolen, status=done)
    api(run).add(Kind.BACKUP, "mine-running", SPEC, metadata={"labels": label},
                 status={"phase": "Running"})  # fmt: skip
    for hour in range(2, 5):
        clock.now = START.replace(hour=hour, second=1)
        tick(run, body)
        finish(run, f"nightly-20261201-0{hour}00", "Completed")
    tick(run, body)
    assert "pruned" in body["status"]["message"]  # its own runs are pruned
    for name in ("mine", "nightly-20261130-0000", "nightly-20261130-0100",
                 "nightly-20261130-0200", "mine-running"):  # fmt: skip
        assert api(run).get(Kind.BACKUP, NS, name) is not None, name
    assert body["status"]["active"] == []
    assert body["status"]["lastBackup"] == "nightly-20261201-0400"
    api(run).add(Kind.BACKUP, "nightly-20261201-0500", SPEC)  # someone took the next name
    clock.now = START.replace(hour=5, second=1)
    tick(run, body)
    assert (
        "could not create nightly-20261201-0500: a MilvusBackup of that name exists that "
        "this schedule did not make" in body["status"]["message"]
    )


def test_runs_outlive_the_schedule_unless_backup_owner_reference_is_schedule(
    run: Services, clock: Clock, events: asyncio.Queue[Any]
) -> None:
    """backupOwnerReference: schedule makes the schedule each run's controller (deleting it
    deletes them); back to none releases them, and an older operator's owned run is released
    too, keeping the owners that are not this schedule."""
    body = schedule(run, schedule="@hourly", backupOwnerReference="schedule",
                    retention={"keepLast": 1})  # fmt: skip
    legacy = {"labels": {SCHEDULE_LABEL: "nightly"}, "creationTimestamp": "2026-11-30T00:00:00Z",
              "ownerReferences": [{"uid": "uid-nightly", "controller": True},
                                  {"uid": "uid-a-configmap"}]}  # fmt: skip
    done = {"phase": "Completed", "completionTime": "2026-11-30T00:05:00Z"}
    api(run).add(Kind.BACKUP, "nightly-20261130-0000", SPEC, metadata=legacy, status=done)
    clock.now = START.replace(hour=2, second=1)
    tick(run, body)
    owners = runs(run)["nightly-20261201-0200"]["metadata"]["ownerReferences"]
    assert [(o["kind"], o["uid"], o["controller"]) for o in owners] == [
        ("MilvusBackupSchedule", "uid-nightly", True)
    ]
    body["spec"]["backupOwnerReference"] = "none"
    tick(run, body)
    made, old = runs(run)["nightly-20261201-0200"], runs(run)["nightly-20261130-0000"]
    assert not made["metadata"].get("ownerReferences")
    assert old["metadata"]["ownerReferences"] == [{"uid": "uid-a-configmap"}]
    assert old["metadata"]["labels"][SCHEDULE_UID] == "uid-nightly"  # still recognised as its
    finish(run, "nightly-20261201-0200", "Completed")
    tick(run, body)
    assert list(runs(run)) == ["nightly-20261201-0200"]  # retention pruned the released run


def test_backup_owner_reference_is_refused_by_name(run: Services) -> None:
    body = kopf.Body(schedule(run, backupOwnerReference="Schedule"))
    with pytest.raises(kopf.AdmissionError) as refused:
        admission.schedule_spec_valid(body=body, memo=kopf.Memo(services=run))
    assert str(refused.value) == (
        "spec.backupOwnerReference 'Schedule': use none (runs outlive the schedule, the "
        "default) or schedule (deleting the schedule deletes its runs)"
    )


def another(run: Services, name: str, created: str, **spec: Any) -> dict[str, Any]:
    return api(run).add(
        Kind.SCHEDULE, name, {"schedule": "0 2 * * *", "template": SPEC, **spec},
        metadata={"creationTimestamp": created},
    )  # fmt: skip


def test_a_second_schedule_with_the_same_run_prefix_is_refused_at_admission(
    run: Services,
) -> None:
    """Two schedules of a namespace whose runs are named alike starve each other; the prefix
    compared is the one in effect: backupNamePrefix, or else the schedule's name."""
    schedule(run)  # nightly: its runs are nightly-YYYYMMDD-HHMM
    memo = kopf.Memo(services=run)
    clash = {"metadata": {"name": "copy", "namespace": NS}, "spec": {
        "schedule": "@hourly", "template": SPEC, "backupNamePrefix": "nightly"}}  # fmt: skip
    with pytest.raises(kopf.AdmissionError) as refused:
        admission.schedule_spec_valid(body=kopf.Body(clash), memo=memo)
    assert str(refused.value) == (
        "spec.backupNamePrefix 'nightly' is also the run prefix of MilvusBackupSchedule "
        "'nightly' in this namespace: their runs would have the same names and one would "
        "starve the other; set another spec.backupNamePrefix"
    )
    another(run, "weekly", "2026-12-01T00:40:00Z", backupNamePrefix="hourly")
    named = {"metadata": {"name": "hourly", "namespace": NS}, "spec": {
        "schedule": "@hourly", "template": SPEC}}  # fmt: skip
    with pytest.raises(kopf.AdmissionError) as refused:
        admission.schedule_spec_valid(body=kopf.Body(named), memo=memo)
    assert str(refused.value).startswith(
        "spec.backupNamePrefix (unset: the schedule's name) 'hourly' is also the run prefix of "
        "MilvusBackupSchedule 'weekly'"
    )
    clash["spec"]["backupNamePrefix"] = "copy"
    admission.schedule_spec_valid(body=kopf.Body(clash), memo=memo)  # its own prefix: fine
    old = copy.deepcopy(clash)
    clash["spec"]["backupNamePrefix"] = "weekly"  # unset on weekly: weekly's runs are "hourly"
    admission.schedule_spec_valid(body=kopf.Body(clash), old=old, memo=memo)
    clash["spec"]["backupNamePrefix"] = "hourly"  # changed to one in use: refused
    with pytest.raises(kopf.AdmissionError, match="'weekly'"):
        admission.schedule_spec_valid(body=kopf.Body(clash), old=old, memo=memo)
    old["spec"]["backupNamePrefix"] = "hourly"  # clashing already (made while the webhook was
    clash["spec"]["suspend"] = True  # down): other changes, and the operator's, still pass
    admission.schedule_spec_valid(body=kopf.Body(clash), old=old, memo=memo)


def test_a_prefix_the_operator_cannot_check_is_left_to_the_controller(
    run: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A namespace the operator may not list schedules in (403): admitted, not failed."""

    def forbidden(kind: Kind, namespace: str) -> list[dict[str, Any]]:
        raise ApiException(status=403, reason="Forbidden")

    monkeypatch.setattr(api(run), "list_all", forbidden)
    body = {"metadata": {"name": "nightly", "namespace": "elsewhere"},
            "spec": {"schedule": "@daily", "template": SPEC}}  # fmt: skip
    admission.schedule_spec_valid(body=kopf.Body(body), memo=kopf.Memo(services=run))


def test_a_stored_schedule_the_rules_now_refuse_can_still_be_deleted(run: Services) -> None:
    """A spec stored while the webhook was down, or under older rules (croniter's day-of-week 7):
    updates that leave the spec alone pass (Kopf removing its finalizer, so that it can be
    deleted; run-now; labels); a spec change is checked in full."""
    old = schedule(run, schedule="0 2 * * 7")
    new = copy.deepcopy(old)
    new["metadata"]["finalizers"] = []
    memo = kopf.Memo(services=run)
    admission.schedule_spec_valid(body=kopf.Body(new), old=old, memo=memo)
    new["spec"]["suspend"] = True
    with pytest.raises(kopf.AdmissionError, match="day-of-week 7"):
        admission.schedule_spec_valid(body=kopf.Body(new), old=old, memo=memo)


def test_a_younger_schedule_with_an_older_ones_run_prefix_stalls_and_says_so_once(
    run: Services, clock: Clock, events: asyncio.Queue[Any]
) -> None:
    """Made while the webhook was down: the older schedule runs on, the younger is Stalled
    (a condition, not a message the next tick overwrites) with one warning event, until its
    prefix changes."""
    older = schedule(run, schedule="@hourly")
    younger = another(run, "nightly-copy", "2026-12-01T00:45:00Z", schedule="@hourly",
                      backupNamePrefix="nightly")  # fmt: skip
    for hour in (2, 3):
        clock.now = START.replace(hour=hour, second=1)
        tick(run, younger)
        tick(run, older)
        finish(run, f"nightly-20261201-0{hour}00", "Completed")
    assert sorted(runs(run)) == ["nightly-20261201-0200", "nightly-20261201-0300"]
    assert all(b["metadata"]["labels"][SCHEDULE_UID] == "uid-nightly" for b in runs(run).values())
    status = younger["status"]
    ready, stalled = (next(c for c in status["conditions"] if c["type"] == kind)
                      for kind in ("Ready", "Stalled"))  # fmt: skip
    assert ready["status"] == "False" and stalled["status"] == "True"
    assert ready["reason"] == "PrefixInUse"
    assert "also the run prefix of MilvusBackupSchedule 'nightly'" in ready["message"]
    warnings = []
    while not events.empty():
        event = events.get_nowait()
        if event.type == "Warning":
            warnings.append((event.reason, event.message))
    assert warnings == [("PrefixInUse", ready["message"])]  # once, not every tick
    assert older["status"]["conditions"][0]["status"] == "True"  # Ready: the older runs on
    younger["spec"]["backupNamePrefix"] = "nightly-copy"
    clock.now = START.replace(hour=4, second=1)
    tick(run, younger)
    assert api(run).get(Kind.BACKUP, NS, "nightly-copy-20261201-0400") is not None
    assert younger["status"]["conditions"][0]["status"] == "True"


def test_a_backup_a_restore_is_restoring_is_neither_pruned_nor_expired(
    run: Services, clock: Clock, events: asyncio.Queue[Any]
) -> None:
    """Pruning (and ttl) deletes the MilvusBackup, and with deletionPolicy Delete its data:
    not while a MilvusRestore still reads it."""
    body = schedule(run, schedule="@hourly", retention={"keepLast": 1})
    clock.now = START.replace(hour=2, second=1)
    tick(run, body)
    finish(run, "nightly-20261201-0200", "Completed")
    api(run).add(Kind.RESTORE, "drill", {"backupRef": "nightly-20261201-0200"},
                 status={"phase": "Running"})  # fmt: skip
    clock.now = START.replace(hour=3, second=1)
    tick(run, body)
    finish(run, "nightly-20261201-0300", "Completed")
    tick(run, body)
    assert sorted(runs(run)) == ["nightly-20261201-0200", "nightly-20261201-0300"]
    assert (
        "kept nightly-20261201-0200 while MilvusRestore drill restores it"
        in (body["status"]["message"])
    )
    api(run).patch_status(Kind.RESTORE, NS, "drill", {"phase": "Completed"})
    tick(run, body)
    assert sorted(runs(run)) == ["nightly-20261201-0300"]

    done = {"phase": "Completed", "completionTime": "2026-11-29T00:00:00Z"}
    one_off = api(run).add(Kind.BACKUP, "one-off", {**SPEC, "ttl": "1d"}, status=done)
    api(run).add(Kind.RESTORE, "drill-2", {"backupRef": "one-off"}, status={"phase": "Pending"})
    view = kopf.Body(one_off)
    schedule_controller.ttl_expired(spec=view.spec, status=view.status, name="one-off",
                                    namespace=NS, memo=kopf.Memo(services=run))  # fmt: skip
    assert api(run).get(Kind.BACKUP, NS, "one-off") is not None


def test_a_bad_schedule_is_stalled_naming_the_field(
    run: Services, clock: Clock, events: asyncio.Queue[Any]
) -> None:
    body = schedule(run, timeZone="Mars/Olympus")
    tick(run, body)
    assert "spec.timeZone 'Mars/Olympus'" in body["status"]["message"]
    stalled = next(c for c in body["status"]["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] == "True" and runs(run) == {}


def test_a_backup_past_its_ttl_is_deleted(run: Services, clock: Clock) -> None:
    done = {"phase": "Completed", "completionTime": "2026-11-29T00:00:00Z"}
    body = api(run).add(Kind.BACKUP, "one-off", {**SPEC, "ttl": "1d"}, status=done)
    view = kopf.Body(body)
    schedule_controller.ttl_expired(spec=view.spec, status=view.status, name="one-off",
                                    namespace=NS, memo=kopf.Memo(services=run))  # fmt: skip
    assert api(run).get(Kind.BACKUP, NS, "one-off") is None


def test_a_schedules_metrics_follow_its_runs(
    run: Services, clock: Clock, events: asyncio.Queue[Any]
) -> None:
    from tests.unit.controllers.test_metrics import scrape, value

    body = schedule(run)
    clock.now = START.replace(hour=2, second=5)
    tick(run, body)
    api(run).patch_status(Kind.BACKUP, NS, "nightly-20261201-0200", {
        "phase": "Completed", "startTime": "2026-12-01T02:00:10Z",
        "completionTime": "2026-12-01T02:01:10Z", "backupSize": 4096,
    })  # fmt: skip
    clock.now = START.replace(hour=2, minute=2)
    tick(run, body)
    labels = {"namespace": NS, "name": "nightly"}
    samples = scrape(run.metrics)
    prefix = "milvus_backup_schedule_"
    assert value(samples, prefix + "period_seconds", **labels) == 86400
    assert value(samples, prefix + "last_duration_seconds", **labels) == 60
    assert value(samples, prefix + "last_size_bytes", **labels) == 4096
    success = value(samples, prefix + "last_success_timestamp_seconds", **labels)
    assert success == datetime(2026, 12, 1, 2, 1, 10, tzinfo=UTC).timestamp()
    schedule_controller.schedule_gone(type="DELETED", name="nightly", namespace=NS,
                                      memo=kopf.Memo(services=run))  # fmt: skip
    assert value(scrape(run.metrics), prefix + "period_seconds", **labels) is None


def test_work_that_cannot_start_fails_the_resource_with_the_reason(
    run: Services, events: asyncio.Queue[Any]
) -> None:
    """A Job the API server refuses (e.g. an invalid affinity in spec.jobTemplate) is not
    retried forever: the resource Fails, InvalidSpec, with the server's reason."""

    def refuse(item: WorkItem) -> None:
        raise StartRefusedError("the API server refused Job mbk-nightly: bad affinity")

    executor(run).start = refuse  # type: ignore[method-assign]
    body = api(run).add(Kind.BACKUP, "nightly", SPEC)
    call(backup.reconcile, run, body)
    status = body["status"]
    assert status["phase"] == "Failed", status
    assert status["message"] == "the API server refused Job mbk-nightly: bad affinity"
    stalled = next(c for c in status["conditions"] if c["type"] == "Stalled")
    assert stalled["reason"] == "InvalidSpec"


def _delete(run: Services, body: dict[str, Any]) -> str:
    """Call the finalizer; return why it kept the data (it must keep it here)."""
    view = kopf.Body(body)
    with pytest.raises(kopf.TemporaryError) as kept:
        backup.delete_data(body=view, spec=view.spec, status=view.status,
                           name=body["metadata"]["name"], namespace=NS,
                           memo=kopf.Memo(services=run))  # fmt: skip
    return str(kept.value)


DELETE = {**SPEC, "deletionPolicy": "Delete"}
DONE = {"phase": "Completed", "backupName": "nightly"}


def test_a_deleted_backup_is_kept_while_an_unfinished_restore_reads_it(
    run: Services, events: asyncio.Queue[Any]
) -> None:
    """By backupRef, or by backupName in the same backup storage; a restore that is done,
    or reads another place, keeps nothing."""
    body = api(run).add(Kind.BACKUP, "nightly", DELETE, status=DONE)
    api(run).add(Kind.RESTORE, "done", {"backupRef": "nightly"}, status={"phase": "Completed"})
    elsewhere = {"backupName": "nightly", "milvus": SPEC["milvus"], "backupStorage": {},
                 "storage": {**SPEC["storage"], "endpoint": "other:9000"}}  # fmt: skip
    api(run).add(Kind.RESTORE, "other-place", elsewhere, status={"phase": "Running"})
    api(run).add(Kind.RESTORE, "drill", {"backupRef": "nightly"}, status={"phase": "Running"})
    same = {
        "backupName": "nightly",
        "milvus": SPEC["milvus"],
        "storage": SPEC["storage"],
        "backupStorage": {},
    }  # the same place: the storage's endpoint, rootPath backup
    api(run).add(Kind.RESTORE, "by-name", same)  # not started yet: it will read it
    why = _delete(run, body)
    assert why == (
        "backup data kept while MilvusRestores drill, by-name restore it: it is deleted once "
        "no unfinished restore reads it"
    )
    blocked = {c["type"]: c for c in body["status"]["conditions"]}["DeletionBlocked"]
    assert (blocked["status"], blocked["reason"], blocked["message"]) == ("True", "InUse", why)
    assert body["status"]["phase"] == "Completed" and body["status"]["message"] == why
    assert reasons(events) == ["DeletionBlocked"]
    _delete(run, body)  # looked at again: still kept, said once
    assert reasons(events) == []


def test_a_running_backup_deleted_is_stopped_first(
    run: Services, events: asyncio.Queue[Any]
) -> None:
    running = {"phase": "Running", "backupName": "nightly", "jobName": "mbk-nightly-r1"}
    body = api(run).add(Kind.BACKUP, "nightly", DELETE, status=running)
    api(run).add(Kind.RESTORE, "drill", {"backupRef": "nightly"})
    _delete(run, body)
    assert executor(run).stopped == [(NS, "mbk-nightly-r1")]
    run.executor = RecordingExecutor(can_stop=False)  # inline: a thread runs to its end
    body["status"]["message"] = ""
    why = _delete(run, body)
    assert "runs inside the operator (--executor inline), which cannot stop it" in why
