"""Shared fixtures: the real stack (RADOS Gateway + Milvus 2.3.5), sample data, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from testbed import sample_data
from testbed.stack import Stack, start_stack

ARTIFACTS = Path(__file__).parent / "artifacts"


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(config_path: Path, *args: str, timeout: float = 600) -> CliResult:
    """Run ``python -m milvus_backup_operator --config FILE ARGS`` as a user would."""
    command = [sys.executable, "-m", "milvus_backup_operator", "--config", str(config_path)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MILVUS_", "MINIO_"))}
    done = subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    started = start_stack(tmp_path_factory.mktemp("stack"), die_with_parent=True)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(autouse=True)
def _shared_milvus_survives(request: pytest.FixtureRequest) -> Iterator[None]:
    """Stop the session, saying why, when a test leaves the shared Milvus dead: every test
    after it would fail only with "cannot reach Milvus"."""
    yield
    if "stack" not in request.fixturenames:
        return
    milvus = request.getfixturevalue("stack").milvus_process
    if not milvus.daemon.running():
        pytest.exit(
            f"the shared Milvus died during {request.node.nodeid}; its log ({milvus.log}):\n"
            + _crash_of(milvus.log.read_text(errors="replace")),
            returncode=1,
        )


def _crash_of(log: str, lines: int = 40) -> str:
    """The lines around Milvus's panic (its goroutine dump is long), else the log's tail."""
    text = log.splitlines()
    start = next((i for i, line in enumerate(text) if line.startswith("panic:")), None)
    picked = text[-lines:] if start is None else text[max(0, start - 10) : start + lines - 10]
    return "\n".join(line[:400] for line in picked)


@pytest.fixture(scope="session")
def samples(stack: Stack) -> dict[str, dict[object, dict[str, object]]]:
    """Create the sample collections; return their live rows by collection reference."""
    sample_data.create_samples(stack.milvus.uri)
    return {s.ref: sample_data.rows(stack.milvus.uri, s) for s in sample_data.SAMPLES}
