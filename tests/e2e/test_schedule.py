"""MilvusBackupSchedule on the real kube-apiserver with the real Milvus + S3, in real minutes:
runs, retention with the objects gone from the bucket, an operator restart between runs,
run-now, a second schedule of the same run prefix refused, deleting a schedule keeping its runs
(or, opted in, cascading to them), Forbid with a slow backup, suspend and resume. (The calendar
itself, time zones and DST, is unit-tested against a clock the tests set:
tests/unit/test_schedule.py.)"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from testbed.bed import GROUP, NAMESPACE, VERSION, OperatorProcess
from testbed.jobrunner import LocalJobRunner
from testbed.kube import Cluster
from testbed.s3relay import S3Relay
from testbed.stack import Stack
from tests.e2e.resources import apply, get, milvus_backup
from tests.e2e.test_operator import catalog

pytestmark = pytest.mark.e2e
PLURAL = "milvusbackupschedules"


def schedule(name: str, stack: Stack, **spec: Any) -> dict[str, Any]:
    template = milvus_backup("x", stack, collections=["tiny"])["spec"]
    template.update(spec.pop("template", {}))
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "MilvusBackupSchedule",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"schedule": "* * * * *", "template": template, **spec},
    }  # fmt: skip


def runs_of(kube: client.ApiClient, name: str) -> dict[str, dict[str, Any]]:
    found = client.CustomObjectsApi(kube).list_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, "milvusbackups",
        label_selector=f"backup.milvus.io/schedule={name}",
    )  # fmt: skip
    return {b["metadata"]["name"]: b for b in found["items"]}


def until(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.5)


def completed(kube: client.ApiClient, name: str) -> list[str]:
    return sorted(n for n, b in runs_of(kube, name).items()
                  if (b.get("status") or {}).get("phase") == "Completed")  # fmt: skip


def schedule_status(kube: client.ApiClient, name: str) -> dict[str, Any]:
    return dict((get(kube, PLURAL, name) or {}).get("status") or {})


def patch_schedule(kube: client.ApiClient, name: str, body: dict[str, Any]) -> None:
    client.CustomObjectsApi(kube).patch_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, name, body
    )


def test_a_schedule_runs_every_minute_prunes_survives_a_restart_and_runs_now(
    cluster: Cluster, kube: client.ApiClient, stack: Stack, operator: OperatorProcess,
    jobrunner: LocalJobRunner, samples: Any,
) -> None:  # fmt: skip
    apply(cluster, schedule("every-min", stack, retention={"keepLast": 1},
                            template={"deletionPolicy": "Delete"}))  # fmt: skip
    (first,) = until("the first run to complete", lambda: completed(kube, "every-min"), 150)
    first_backup = first.replace("-", "_")
    assert catalog(stack).exists(first_backup)
    operator.kill()  # between two runs
    operator.start()
    second = until(
        "the second run", lambda: [n for n in completed(kube, "every-min") if n != first], 150
    )[0]
    until("the first run to be pruned", lambda: first not in runs_of(kube, "every-min"), 60)
    until("its objects to go", lambda: not catalog(stack).exists(first_backup), 60)
    assert catalog(stack).exists(second.replace("-", "_"))
    for run in (first, second):  # one Job each: the restart made no run twice
        assert len(jobrunner.runs.get(f"mbk-{run}", [])) == 1, jobrunner.runs
    status = schedule_status(kube, "every-min")
    assert status["lastBackup"] in runs_of(kube, "every-min")
    assert status["lastSuccessfulTime"] and status["nextScheduleTime"] > status["lastScheduleTime"]
    assert next(c for c in status["conditions"] if c["type"] == "Ready")["status"] == "True"

    now = {"metadata": {"annotations": {"backup.milvus.io/run-now": "1"}}}
    patch_schedule(kube, "every-min", now)
    manual = until(
        "the run-now run", lambda: [n for n in runs_of(kube, "every-min") if "-now-" in n], 30
    )
    until("the run-now run to complete", lambda: manual[0] in completed(kube, "every-min"), 120)
    annotations = (get(kube, PLURAL, "every-min") or {})["metadata"].get("annotations") or {}
    assert "backup.milvus.io/run-now" not in annotations
    printed = cluster.kubectl("get", "mbks", "-n", NAMESPACE).stdout.splitlines()
    assert printed[0].split()[:4] == ["NAME", "SCHEDULE", "SUSPEND", "LAST"]

    for refused, says in (
        (schedule("copy", stack, backupNamePrefix="every-min"),
         "spec.backupNamePrefix 'every-min' is also the run prefix of MilvusBackupSchedule "
         "'every-min'"),
        (schedule("wraps", stack, schedule="1-0 * * * *"),
         "the minute field's '1-0' is a range that starts after it ends"),
    ):  # fmt: skip
        result = apply(cluster, refused, check=False)
        assert result.returncode != 0 and "schedule-valid.backup.milvus.io" in result.stderr
        assert says in result.stderr, result.stderr
        assert get(kube, PLURAL, refused["metadata"]["name"]) is None

    kept = runs_of(kube, "every-min")
    cluster.kubectl("delete", "mbks", "every-min", "-n", NAMESPACE, "--wait=true")
    time.sleep(5)  # the garbage collector deletes owned objects within about a second
    assert sorted(runs_of(kube, "every-min")) == sorted(kept) and second in kept
    assert catalog(stack).exists(second.replace("-", "_"))  # deletionPolicy Delete: data kept
    cluster.kubectl("delete", "mbk", "-n", NAMESPACE, "-l", "backup.milvus.io/schedule=every-min")


def test_forbid_skips_a_run_while_one_is_slow_and_suspend_stops_runs(
    cluster: Cluster, kube: client.ApiClient, stack: Stack, operator: OperatorProcess,
    jobrunner: LocalJobRunner, samples: Any,
) -> None:  # fmt: skip
    frozen: list[str] = []

    def freeze() -> None:  # the first run's Job, right after its first copy: it stays Running
        (name,) = runs_of(kube, "slow")
        frozen.append(name)
        jobrunner.pause(f"mbk-{name}")

    relay = S3Relay(stack.s3.endpoint, trigger=lambda m, p: m == "PUT" and "/binlogs/" in p,
                    on_trigger=freeze).start()  # fmt: skip
    try:
        storage = {"endpoint": relay.endpoint, "credentialsSecret": {"name": "milvus-s3"}}
        apply(cluster, schedule("slow", stack, template={"storage": storage}))
        until("the first run to be held", lambda: frozen, 150)
        skipped = until(
            "a run skipped",
            lambda: "skipped the run" in schedule_status(kube, "slow").get("message", ""),
            100,
        )
        assert skipped
        message = schedule_status(kube, "slow")["message"]
        assert f"{frozen[0]} still running (concurrencyPolicy Forbid)" in message
        assert list(runs_of(kube, "slow")) == frozen  # no second run beside the slow one

        # and opt in to cascade: the run made without an owner is taken (its metadata patched)
        cascade = {"suspend": True, "backupOwnerReference": "schedule"}
        patch_schedule(kube, "slow", {"spec": cascade})
        jobrunner.kill(f"mbk-{frozen[0]}")  # its retry finishes it
        until("the held run to complete", lambda: completed(kube, "slow"), 150)
        until("the schedule to see the suspension",
              lambda: schedule_status(kube, "slow").get("suspendedSince"), 30)  # fmt: skip
        assert "nextScheduleTime" not in schedule_status(kube, "slow")
        time.sleep(65)  # a whole minute boundary passes while suspended
        assert list(runs_of(kube, "slow")) == frozen

        patch_schedule(kube, "slow", {"spec": {"suspend": False}})
        until("a run after resuming", lambda: len(runs_of(kube, "slow")) == 2, 90)

        cluster.kubectl("delete", "mbks", "slow", "-n", NAMESPACE, "--wait=true")
        until("the runs to go with it (backupOwnerReference: schedule)",
              lambda: not runs_of(kube, "slow"), 60)  # fmt: skip
    finally:
        cluster.kubectl("delete", "mbks", "slow", "-n", NAMESPACE, "--wait=true", check=False)
        relay.stop()
