"""The chart's alerting rules (files/alerts.yaml) checked by Prometheus's own promtool, their
expressions unit-tested (alerts-test.yaml), and written against metrics the operator has."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

from milvus_backup_operator.api import Kind
from milvus_backup_operator.controllers.metrics import Metrics
from tests.deploy.chart import CHART
from tests.unit.controllers.test_metrics import body, scrape

ALERTS = CHART / "files" / "alerts.yaml"
ALERT_TESTS = Path(__file__).with_name("alerts-test.yaml")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """promtool, which scripts/bootstrap.sh installs (testbed/promtool/install.sh)."""
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: run scripts/bootstrap.sh (testbed/promtool/install.sh)"
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120, check=False)


def test_promtool_accepts_the_rules() -> None:
    done = promtool("check", "rules", str(ALERTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 5 rules found" in done.stdout


def test_the_alerts_fire_when_they_should_and_only_then() -> None:
    done = promtool("test", "rules", str(ALERT_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_rules_only_use_metrics_the_operator_serves() -> None:
    metrics = Metrics(process=False)
    for kind in Kind:
        done = {"phase": "Completed", "startTime": "2026-11-25T01:00:00Z",
                "completionTime": "2026-11-25T01:00:05Z", "backupSize": 1}  # fmt: skip
        metrics.observe(kind, body("nightly", done))
    metrics.record_schedule(
        "milvus", "nightly", period_seconds=86400, next_run_time=1.0, last_success_time=1.0,
        created_time=1.0, suspended=False, last_duration_seconds=1.0, last_size_bytes=1,
        failures_total=0,
    )  # fmt: skip
    served = {name for name, _ in scrape(metrics)}
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    used = {m for r in rules for m in re.findall(r"\bmilvus_backup_\w+", r["expr"])}
    assert used, rules
    assert used <= served, used - served
