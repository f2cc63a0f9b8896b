"""Drive the test stack from a shell.

python -m testbed.stack up   --dir DIR             # start, write DIR/stack.json + DIR/backup.yaml
python -m testbed.stack down --dir DIR             # kill exactly the pids in DIR/stack.json
python -m testbed.stack run  --dir DIR -- CMD...   # up, run CMD with MBO_CONFIG, always down
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from . import STACK_JSON, Stack, StackError, start_stack, stop_recorded


def _describe(stack: Stack, seconds: float) -> str:
    """A short human summary of a running stack."""
    return (
        f"stack up in {seconds:.1f}s\n"
        f"  milvus  {stack.milvus.host}:{stack.milvus.port}\n"
        f"  s3      {stack.s3.url}  bucket {stack.bucket}  key {stack.s3.access_key}\n"
        f"  config  {stack.config_path}\n"
        f"  state   {stack.dir / STACK_JSON}"
    )


def _up(base_dir: Path) -> int:
    """Start the stack and leave it running."""
    started = time.monotonic()
    stack = start_stack(base_dir)
    print(_describe(stack, time.monotonic() - started))
    print(f"stop it with: python -m testbed.stack down --dir {base_dir}")
    return 0


def _down(base_dir: Path) -> int:
    """Stop the stack recorded in ``base_dir``."""
    if not (base_dir / STACK_JSON).exists():
        print(f"no {STACK_JSON} in {base_dir}: nothing to stop", file=sys.stderr)
        return 0
    stopped = stop_recorded(base_dir)
    print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
    return 0


def _terminate(signum: int, _frame: FrameType | None) -> None:
    """Turn SIGTERM/SIGHUP into an exception so that ``finally`` blocks stop the stack."""
    raise SystemExit(128 + signum)


def _run(base_dir: Path, cmd: list[str]) -> int:
    """Start the stack, run ``cmd`` against it, always stop it; return cmd's exit code."""
    if not cmd:
        print("run: give a command after --", file=sys.stderr)
        return 2
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)
    try:
        started = time.monotonic()
        stack = start_stack(base_dir, die_with_parent=True)
        try:
            print(_describe(stack, time.monotonic() - started), file=sys.stderr)
            env = {
                **os.environ,
                "MBO_CONFIG": str(stack.config_path),
                "MBO_STACK": str(base_dir / STACK_JSON),
            }
            code = subprocess.run(cmd, env=env, check=False).returncode
            return 128 - code if code < 0 else code
        finally:
            stack.stop()
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    """The command line: ``up|down|run --dir DIR [-- CMD...]``."""
    parser = argparse.ArgumentParser(
        prog="python -m testbed.stack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", required=True)
    for name, text in [
        ("up", "start the stack and leave it running"),
        ("down", "kill exactly the pids recorded in DIR/stack.json"),
        ("run", "start the stack, run CMD with MBO_CONFIG=DIR/backup.yaml, always stop"),
    ]:
        sub = actions.add_parser(name, help=text, description=text)
        sub.add_argument("--dir", required=True, type=Path, help="folder for state, logs, data")
        if name == "run":
            sub.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m testbed.stack``."""
    args = _parser().parse_args(argv)
    base_dir = args.dir.resolve()
    try:
        if args.action == "up":
            return _up(base_dir)
        if args.action == "down":
            return _down(base_dir)
        cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        return _run(base_dir, cmd)
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
