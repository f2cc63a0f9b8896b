"""The walkthrough's example scripts (examples/*.py) against the real Milvus 2.3.5.

prepare_data.py makes ``hello_milvus``; our CLI backs it up and restores it with the suffix
``_recover`` (what the walkthrough's curl commands do through the REST server); then
verify_data.py must pass on ``hello_milvus_recover``, and fail, saying why, when that copy is
missing or differs from what prepare_data.py wrote.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymilvus import MilvusClient

from testbed.stack import Stack
from tests.conftest import run_cli

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SOURCE = "hello_milvus"
RECOVER = "hello_milvus_recover"


def run_example(script: str, uri: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python examples/SCRIPT --uri URI ARGS`` as the walkthrough does."""
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--uri", uri, *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def output(done: subprocess.CompletedProcess[str]) -> str:
    return f"rc={done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"


@pytest.fixture(scope="module")
def milvus(stack: Stack) -> Iterator[MilvusClient]:
    client = MilvusClient(uri=stack.milvus.uri, timeout=60)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module")
def backup(stack: Stack, milvus: MilvusClient) -> Iterator[str]:
    """prepare_data.py's hello_milvus, backed up under a unique name; all removed afterwards."""
    taken = [c for c in (SOURCE, RECOVER) if milvus.has_collection(c)]
    assert not taken, f"{taken} already exist in the shared stack: this test owns those names"
    name = f"walkthrough_{uuid.uuid4().hex[:10]}"
    try:
        prepared = run_example("prepare_data.py", stack.milvus.uri)
        assert prepared.returncode == 0, output(prepared)
        assert "hello_milvus has 2990 rows (3000 inserted, 10 deleted)" in prepared.stdout
        created = run_cli(stack.config_path, "create", "-n", name, "-c", SOURCE)
        assert created.code == 0, created.output
        yield name
    finally:
        for collection in (SOURCE, RECOVER):
            if milvus.has_collection(collection):
                milvus.drop_collection(collection)
        run_cli(stack.config_path, "delete", "-n", name)


def test_walkthrough_scripts(stack: Stack, milvus: MilvusClient, backup: str) -> None:
    uri = stack.milvus.uri

    missing = run_example("verify_data.py", uri)
    assert missing.returncode == 1, output(missing)
    assert f"FAILED: collection {RECOVER} does not exist" in missing.stderr

    restored = run_cli(stack.config_path, "restore", "-n", backup, "-c", SOURCE, "-s", "_recover")
    assert restored.code == 0, restored.output
    recovered = f"{SOURCE} -> {RECOVER}: Completed (2990 rows: 2990 live rows recorded at backup"
    assert recovered in restored.stdout

    verified = run_example("verify_data.py", uri)
    assert verified.returncode == 0, output(verified)
    assert f"verify_data: OK: {RECOVER}" in verified.stdout
    assert "row count: 2990 (expected 2990)" in verified.stdout
    assert "search with the vector of pk 1501: top 3 = 1501 (0.000000)" in verified.stdout

    cleaned = run_example("clean_data.py", uri)
    assert cleaned.returncode == 0, output(cleaned)
    assert f"dropped collection {SOURCE}" in cleaned.stdout
    assert not milvus.has_collection(SOURCE)
    assert milvus.has_collection(RECOVER), "clean_data.py without --recover keeps the copy"

    again = run_example("verify_data.py", uri)  # the restored copy does not need its source
    assert again.returncode == 0, output(again)

    finished = run_example("clean_data.py", uri, "--recover")
    assert finished.returncode == 0, output(finished)
    assert f"collection {SOURCE} does not exist: nothing to drop" in finished.stdout
    assert f"dropped collection {RECOVER}" in finished.stdout
    assert not milvus.has_collection(RECOVER)

    gone = run_example("verify_data.py", uri)
    assert gone.returncode == 1, output(gone)
    assert f"verify_data: FAILED: collection {RECOVER} does not exist" in gone.stderr
    assert '"collection_suffix": "_recover"' in gone.stderr


def test_verify_reports_wrong_data(stack: Stack, milvus: MilvusClient, backup: str) -> None:
    """A restored copy with a moved vector, then a missing row, is refused with the reason."""
    uri = stack.milvus.uri
    suffix = f"_tampered_{uuid.uuid4().hex[:8]}"
    target = SOURCE + suffix
    restored = run_cli(stack.config_path, "restore", "-n", backup, "-c", SOURCE, "-s", suffix)
    assert restored.code == 0, restored.output
    try:
        intact = run_example("verify_data.py", uri, "--collection", target)
        assert intact.returncode == 0, output(intact)

        moved = {"pk": 1, "random": 0.5, "var": "1", "embeddings": [5.0] * 8}
        milvus.upsert(target, [moved])
        wrong_hit = run_example("verify_data.py", uri, "--collection", target)
        assert wrong_hit.returncode == 1, output(wrong_hit)
        assert "with the vector of pk 1 returned" in wrong_hit.stderr
        assert "expected pk 1 itself" in wrong_hit.stderr

        milvus.delete(target, ids=[2])
        short = run_example("verify_data.py", uri, "--collection", target)
        assert short.returncode == 1, output(short)
        assert f"FAILED: {target} has 2989 rows, expected 2990" in short.stderr
    finally:
        if milvus.has_collection(target):
            milvus.drop_collection(target)
