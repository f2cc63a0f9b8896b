"""Drive the test Kubernetes API from a shell.

python -m testbed.kube build                       # build.sh: build once, then cached
python -m testbed.kube up   --dir DIR [--token NAME=TOKEN[:GROUP,...]]...
                                                 # start; write DIR/kubeconfig + DIR/cluster.json
python -m testbed.kube down --dir DIR              # kill exactly the pids in DIR/cluster.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from testbed.stack.rgw import StackError

from .cluster import CLUSTER_JSON, Cluster, ensure_built, start_cluster, stop_recorded


def _describe(cluster: Cluster, seconds: float) -> str:
    """A short human summary of a running cluster."""
    pids = ", ".join(f"{d.name} {d.pid}" for d in cluster.daemons)
    return (
        f"kube API up in {seconds:.1f}s\n"
        f"  server      {cluster.server}\n"
        f"  kubeconfig  {cluster.kubeconfig}\n"
        f"  kubectl     {cluster.bins / 'kubectl'}\n"
        f"  pids        {pids}\n"
        f"  state       {cluster.dir / CLUSTER_JSON}"
    )


def _parse_token(text: str) -> tuple[str, tuple[str, list[str]]]:
    """``NAME=TOKEN[:GROUP,GROUP...]`` -> ``(name, (token, groups))``."""
    name, sep, rest = text.partition("=")
    token, _, groups = rest.partition(":")
    if not (sep and name and token):
        raise argparse.ArgumentTypeError(f"expected NAME=TOKEN[:GROUP,...], got {text!r}")
    return name, (token, [g for g in groups.split(",") if g])


def _up(base_dir: Path, tokens: list[tuple[str, tuple[str, list[str]]]]) -> int:
    """Build if needed, start the cluster and leave it running."""
    ensure_built()
    started = time.monotonic()
    cluster = start_cluster(base_dir, extra_tokens=dict(tokens))
    print(_describe(cluster, time.monotonic() - started))
    print(f"stop it with: python -m testbed.kube down --dir {base_dir}")
    return 0


def _down(base_dir: Path) -> int:
    """Stop the cluster recorded in ``base_dir``."""
    if not (base_dir / CLUSTER_JSON).exists():
        print(f"no {CLUSTER_JSON} in {base_dir}: nothing to stop", file=sys.stderr)
        return 0
    stopped = stop_recorded(base_dir)
    print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
    return 0


def _parser() -> argparse.ArgumentParser:
    """The command line: ``build | up --dir DIR [--token ...] | down --dir DIR``."""
    parser = argparse.ArgumentParser(
        prog="python -m testbed.kube",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("build", help="build and cache the binaries (instant when cached)")
    for name, text in [
        ("up", "start the cluster and leave it running"),
        ("down", "kill exactly the pids recorded in DIR/cluster.json"),
    ]:
        sub = actions.add_parser(name, help=text, description=text)
        sub.add_argument("--dir", required=True, type=Path, help="folder for state, logs, data")
        if name == "up":
            sub.add_argument(
                "--token",
                action="append",
                default=[],
                type=_parse_token,
                metavar="NAME=TOKEN[:GROUP,...]",
                help="an extra token user (repeatable); no RBAC is granted",
            )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m testbed.kube``."""
    args = _parser().parse_args(argv)
    try:
        if args.action == "build":
            print(f"kube binaries in {ensure_built()}")
            return 0
        if args.action == "up":
            return _up(args.dir.resolve(), args.token)
        return _down(args.dir.resolve())
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
