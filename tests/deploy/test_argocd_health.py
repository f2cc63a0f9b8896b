"""docs/argocd/health.lua, run by a Lua 5.1 runtime (Argo CD's gopher-lua speaks 5.1), on the
status objects the operator really wrote during backups on the end-to-end bed: a completed
backup (every status seen on the way), a failed one (an unknown collection), and a restore
that waited for that backup and then failed with it."""

from __future__ import annotations

import copy
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from lupa import lua51

from testbed.kube import Cluster
from testbed.stack import Stack
from tests.deploy.chart import ChartInstall, get_resource, wait_for_phase
from tests.deploy.conftest import WATCHED
from tests.e2e.resources import apply, milvus_backup, milvus_restore

pytestmark = pytest.mark.e2e

DOCS = Path(__file__).parents[2] / "docs"
HEALTH_LUA = DOCS / "argocd" / "health.lua"


def health(obj: dict[str, Any]) -> tuple[str, str]:
    """What Argo CD shows for ``obj``: (status, message)."""
    lua = lua51.LuaRuntime(register_eval=False)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(HEALTH_LUA.read_text())
    return str(result["status"]), str(result["message"])


def in_namespace(doc: dict[str, Any]) -> dict[str, Any]:
    doc["metadata"]["namespace"] = WATCHED
    return doc


def body_with(resource: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(resource)
    body["status"] = status
    return body


@pytest.fixture(scope="module")
def observed(
    chart_install: ChartInstall, cluster: Cluster, stack: Stack, samples: Any
) -> dict[str, Any]:
    """Every status the operator wrote, as polled, for three resources, and their bodies."""
    good = in_namespace(milvus_backup("argocd-good", stack, collections=["tiny"]))
    bad = in_namespace(milvus_backup("argocd-bad", stack, collections=["no_such_collection"]))
    waiting = in_namespace(milvus_restore("argocd-waits", backupRef="argocd-bad"))
    apply(cluster, bad, waiting)
    seen: dict[str, list[dict[str, Any]]] = {"good": [], "bad": [], "waits": []}
    wait_for_phase(cluster, "milvusbackups", WATCHED, "argocd-bad", seen=seen["bad"])
    apply(cluster, good)
    wait_for_phase(cluster, "milvusbackups", WATCHED, "argocd-good", seen=seen["good"])
    wait_for_phase(
        cluster, "milvusrestores", WATCHED, "argocd-waits", seen=seen["waits"], timeout=60
    )
    bodies = {
        "good": get_resource(cluster, "milvusbackups", WATCHED, "argocd-good"),
        "bad": get_resource(cluster, "milvusbackups", WATCHED, "argocd-bad"),
        "waits": get_resource(cluster, "milvusrestores", WATCHED, "argocd-waits"),
    }
    return {"seen": seen, "bodies": bodies}


def test_a_completed_backup_is_healthy_and_progressing_on_the_way(
    observed: dict[str, Any],
) -> None:
    body, seen = observed["bodies"]["good"], observed["seen"]["good"]
    assert body["status"]["phase"] == "Completed", body["status"]
    assert health(body) == ("Healthy", body["status"]["message"])
    assert body["status"]["message"].startswith("backed up tiny")
    working = [s for s in seen if s.get("phase") in ("Pending", "Running")]
    assert {s["phase"] for s in working} == {"Pending", "Running"}, seen
    for status in working:
        state, message = health(body_with(body, status))
        assert state == "Progressing", status
        assert message.startswith(status["phase"]), message
    running = [s for s in working if s["phase"] == "Running" and "progress" in s]
    assert running, seen
    assert re.match(r"Running \d+% \(", health(body_with(body, running[-1]))[1])


def test_a_failed_backup_is_degraded_with_the_operators_reason(observed: dict[str, Any]) -> None:
    body = observed["bodies"]["bad"]
    status = body["status"]
    assert status["phase"] == "Failed" and "no_such_collection" in status["message"], status
    assert health(body) == ("Degraded", status["message"])
    # kstatus alone, whatever the phase says: Stalled is Degraded
    assert health(body_with(body, {**status, "phase": "Running"}))[0] == "Degraded"


def test_a_restore_waiting_for_its_backup_is_progressing_then_degraded(
    observed: dict[str, Any],
) -> None:
    body, seen = observed["bodies"]["waits"], observed["seen"]["waits"]
    pending = [s for s in seen if s.get("phase") == "Pending"]
    assert pending, seen
    state, message = health(body_with(body, pending[0]))
    assert state == "Progressing"
    assert "waiting for MilvusBackup 'argocd-bad' to complete" in message
    assert body["status"]["phase"] == "Failed"
    assert health(body) == ("Degraded", body["status"]["message"])
    assert "MilvusBackup 'argocd-bad' failed" in body["status"]["message"]


def test_new_and_not_yet_observed_resources_are_progressing(observed: dict[str, Any]) -> None:
    body = copy.deepcopy(observed["bodies"]["good"])
    fresh = {k: v for k, v in body.items() if k != "status"}
    assert health(fresh) == ("Progressing", "Waiting for the operator")
    body["metadata"]["generation"] = body["status"]["observedGeneration"] + 1
    state, message = health(body)
    assert state == "Progressing" and "observe generation" in message


def test_the_gitops_guide_carries_this_very_script() -> None:
    guide = (DOCS / "gitops.md").read_text()
    script = HEALTH_LUA.read_text()
    for kind in ("MilvusBackup", "MilvusRestore"):
        key = f"resource.customizations.health.backup.milvus.io_{kind}: |\n"
        assert key in guide, key
        lines = []
        for line in guide.split(key, 1)[1].splitlines():
            if line and not line.startswith("    "):
                break  # the next key, or the end of the YAML block
            lines.append(line)
        assert textwrap.dedent("\n".join(lines)).strip() == script.strip(), kind


def test_a_resource_being_deleted_is_progressing_whatever_its_status(
    observed: dict[str, Any],
) -> None:
    """As Argo CD's own checks (and gitops-engine before any check) answer: "Pending deletion"."""
    for key in ("good", "bad", "waits"):
        body = copy.deepcopy(observed["bodies"][key])
        body["metadata"]["deletionTimestamp"] = "2026-11-26T03:00:00Z"
        body["metadata"]["finalizers"] = []
        assert health(body) == ("Progressing", "Pending deletion"), key
        body["metadata"]["finalizers"] = ["backup.milvus.io/finalizer"]
        assert health(body) == (
            "Progressing", "Pending deletion (finalizers: backup.milvus.io/finalizer)"
        ), key  # fmt: skip
