"""The README's main job: a backup and a restore on the embedded stack, verified row by row."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from tests import sample_data
from tests.stack import Stack, start_stack


def cli(stack: Stack, *args: str) -> None:
    command = [sys.executable, "-m", "milvus_backup_operator", "--config", str(stack.config_path)]
    print(f"\n$ milvus-backup-operator {' '.join(args)}", flush=True)
    subprocess.run([*command, *args], check=True)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="mbo-demo-") as tmp:
        print("starting Milvus 2.3.5 and Ceph RADOS Gateway (S3)...", flush=True)
        stack = start_stack(Path(tmp), die_with_parent=True)
        try:
            return run(stack)
        finally:
            stack.stop()
            print("stack stopped", flush=True)


def run(stack: Stack) -> int:
    uri = stack.milvus.uri
    print(f"Milvus at {uri}, S3 at {stack.s3.url}; creating sample collections...", flush=True)
    sample_data.create_samples(uri)
    before = {s.ref: sample_data.rows(uri, s) for s in sample_data.SAMPLES}
    cli(stack, "check")
    cli(stack, "create", "-n", "demo_backup")
    cli(stack, "list")
    cli(stack, "get", "-n", "demo_backup")
    cli(stack, "restore", "-n", "demo_backup", "-s", "_recover", "--rebuild_index", "--load")
    failures = 0
    for sample in sample_data.SAMPLES:
        restored = sample_data.rows(uri, sample, sample.name + "_recover")
        same = restored == before[sample.ref]
        failures += not same
        verdict = "equal" if same else "DIFFERENT"
        print(f"{sample.ref}: {len(before[sample.ref])} rows backed up, {len(restored)} restored,"
              f" {verdict}")  # fmt: skip
    print("demo", "succeeded" if not failures else "FAILED", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
