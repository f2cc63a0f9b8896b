"""Telling a stopped writer or restorer from a live one, with this machine's real /proc."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest

from milvus_backup_operator.engine.leases import Notice
from milvus_backup_operator.engine.liveness import ProcessId
from milvus_backup_operator.engine.reservation import Marker


def a_dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(done.stdout)


def test_this_process_is_alive_and_a_dead_one_is_gone() -> None:
    here = ProcessId.here()
    assert here.boot_id and here.pid_namespace and here.pid_start  # this machine has /proc
    assert here.gone() is None
    pid = a_dead_pid()
    assert replace(here, pid=pid).gone() == f"process {pid} on this host is not running"


def test_a_reused_pid_is_another_process() -> None:
    here = ProcessId.here()
    assert replace(here, pid_start=here.pid_start - 1).gone() == (
        f"pid {here.pid} on this host is another process now"
    )


@pytest.mark.parametrize(
    "elsewhere",
    [{"pid_namespace": 1}, {"host": "other"}, {"boot_id": "another-boot"}, {"boot_id": ""},
     {"pid_start": 0}],
    ids=["pid-namespace", "host", "boot", "no-boot-id", "no-start-time"],
)  # fmt: skip
def test_nothing_is_proven_of_another_pod_host_boot_or_an_older_record(
    elsewhere: dict[str, object],
) -> None:
    process = replace(ProcessId.here(), pid=a_dead_pid(), **elsewhere)
    assert process.gone() is None


def test_markers_stay_readable_both_ways() -> None:
    """Older versions read only these fields; a marker they wrote reads as unprovable."""
    marker = Marker.new("id-1")
    written = json.loads(marker.to_json())
    old_fields = {"tool", "backup_id", "token", "started", "host", "pid"}
    assert old_fields <= set(written) and written["pid_start"] == marker.process.pid_start
    assert Marker.from_json(marker.to_json()) == marker
    older = Marker.from_json(json.dumps({k: written[k] for k in old_fields}).encode())
    assert older is not None and older.process.gone() is None and older.progress == 0


def test_a_marker_carries_its_writers_progress_within_bounds() -> None:
    marker = replace(Marker.new("id-1"), progress=42)
    assert Marker.from_json(marker.to_json()) == marker
    for forged, read in ((250, 100), (-3, 0)):
        data = {**json.loads(marker.to_json()), "progress": forged}
        found = Marker.from_json(json.dumps(data).encode())
        assert found is not None and found.progress == read


@pytest.mark.parametrize("started", ["1e400", '"nan"', "1e20", "-1"])
def test_a_forged_lease_is_not_ours(started: str) -> None:
    lease = Notice.new("MilvusRestore ns/rv", "rv")
    assert Notice.from_json(lease.to_json()) == lease
    raw = json.loads(lease.to_json())
    forged = json.dumps(raw).replace(f'"started": {raw["started"]}', f'"started": {started}')
    assert Notice.from_json(forged.encode()) is None
