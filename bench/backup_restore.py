"""Backup and restore wall time against the plain operations underneath them, on the real stack.

    .venv/bin/python -m bench.backup_restore [--rows 100000] [--segments 8] [--repeat 3]

Starts the test stack (Ceph RADOS Gateway + Milvus 2.3.5) in a temporary folder, creates one
collection (int64 pk, VARCHAR, FLOAT_VECTOR) flushed into ``--segments`` segments, then, in
the same run and alternating which goes first, repeatedly measures:

1. ``create_backup`` against a bare concurrent ``copy_object`` (minio SDK, CopySource, as many
   threads as ``backup.parallelism.copydata``) of the very same source keys (taken from the
   backup's own meta through ``BackupLayout.segment_copies``) to fresh destination keys;
2. ``restore_backup`` against the very same backup-mode bulk inserts alone
   (``utility.do_bulk_insert(..., backup="true")`` for each segment group, all at once, polled
   every ``--poll`` seconds) into an identical collection created before the clock starts.

Medians are compared. ``--profile`` adds one instrumented run of each: the time of every phase,
every Milvus RPC and S3 request, and how late our import polling notices completed imports.
The stack is always stopped at the end.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import minio
import numpy as np
import pymilvus
import urllib3
from minio import Minio
from minio.commonconfig import CopySource
from pymilvus import BulkInsertState, CollectionSchema, DataType, MilvusClient, connections, utility
from pymilvus.grpc_gen import milvus_pb2

from milvus_backup_operator.engine.backup import BackupRequest, create_backup
from milvus_backup_operator.engine.config import BackupConfig
from milvus_backup_operator.engine.import_jobs import plan_imports
from milvus_backup_operator.engine.layout import BackupLayout
from milvus_backup_operator.engine.meta import BackupInfo, CollectionBackupInfo
from milvus_backup_operator.engine.milvus import Milvus, connect
from milvus_backup_operator.engine.progress import Progress
from milvus_backup_operator.engine.restore import restore_backup
from milvus_backup_operator.engine.restore_plan import RestoreRequest
from milvus_backup_operator.engine.selection import CollectionRef
from milvus_backup_operator.engine.storage import ObjectStore
from testbed.stack import Stack, stack_config, start_stack

COLLECTION = "c"
REF = CollectionRef("default", COLLECTION)
ALIAS = "bench"
BACKUP_TARGET = 1.15
RESTORE_TARGET = 1.2


# --------------------------------------------------------------------------- the data set


@dataclass(frozen=True)
class Dataset:
    rows: int
    deleted: int
    segments: int
    dim: int


def collection_schema(dim: int) -> CollectionSchema:
    """The schema of the benchmark collection (and of the bare restore's target)."""
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("pk", DataType.INT64, is_primary=True)
    schema.add_field("title", DataType.VARCHAR, max_length=64)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=dim)
    return schema


def create_empty(client: MilvusClient, name: str, dim: int) -> None:
    client.create_collection(
        name, schema=collection_schema(dim), consistency_level="Bounded", num_shards=1
    )


def create_dataset(client: MilvusClient, rows: int, segments: int, dim: int) -> Dataset:
    """``rows`` rows in ``segments`` flushed segments, then 1 % of them deleted (delta logs)."""
    create_empty(client, COLLECTION, dim)
    rng = np.random.default_rng(7)
    bounds = np.linspace(0, rows, segments + 1, dtype=int)
    for start, stop in itertools.pairwise(bounds):
        vectors = rng.random((int(stop - start), dim), dtype=np.float32)
        for offset in range(int(start), int(stop), 10_000):  # gRPC messages stay small
            end = min(offset + 10_000, int(stop))
            batch = [
                {"pk": pk, "title": f"title {pk:08d}", "vec": vectors[pk - start].tolist()}
                for pk in range(offset, end)
            ]
            client.insert(COLLECTION, batch)
        client.flush(COLLECTION)  # one sealed segment per batch
    deleted = list(range(0, rows, 100))
    client.delete(COLLECTION, ids=deleted)
    client.flush(COLLECTION)
    return Dataset(rows, len(deleted), segments, dim)


# --------------------------------------------------------------------------- measuring


@dataclass
class PhaseClock:
    """Records when a backup or restore enters each phase (through the progress callback)."""

    start: float = field(default_factory=time.perf_counter)
    marks: list[tuple[str, float]] = field(default_factory=list)

    def __call__(self, progress: Progress) -> None:
        if progress.phase == "preparing":  # counted as setup
            return
        if not self.marks or self.marks[-1][0] != progress.phase:
            self.marks.append((progress.phase, time.perf_counter()))

    def durations(self) -> dict[str, float]:
        points = [("setup", self.start), *self.marks]
        return {
            name: later - at
            for (name, at), (_, later) in itertools.pairwise(points)
            if name != "completed"
        }


@dataclass
class Samples:
    ours: list[float] = field(default_factory=list)
    bare: list[float] = field(default_factory=list)
    phases: list[dict[str, float]] = field(default_factory=list)

    def ratio(self) -> float:
        return statistics.median(self.ours) / statistics.median(self.bare)


def bare_client(config: BackupConfig) -> Minio:
    """A plain minio client for the backup's S3, with as many pooled connections as threads."""
    storage = config.backup_storage
    http = urllib3.PoolManager(maxsize=max(config.parallelism.copy_data, 4))
    return Minio(
        storage.endpoint,
        access_key=storage.access_key,
        secret_key=storage.secret_key,
        secure=storage.use_ssl,
        region=storage.region or None,
        http_client=http,
    )


def copy_pairs(info: BackupInfo, layout: BackupLayout) -> list[tuple[str, str]]:
    """(source key, destination key) of every binlog of the backup, re-rooted at ``layout``."""
    return [
        (copy.src_key, copy.dst_key)
        for collection in info.collection_backups
        for segment in collection.segments()
        for copy in layout.segment_copies(segment)
    ]


def time_ours_backup(config: BackupConfig, name: str) -> tuple[float, BackupInfo, PhaseClock]:
    clock = PhaseClock()
    info = create_backup(config, BackupRequest(name, (REF,)), clock)
    return time.perf_counter() - clock.start, info, clock


def time_bare_copy(
    config: BackupConfig, client: Minio, pairs: list[tuple[str, str]], workers: int
) -> float:
    src_bucket, dst_bucket = config.storage.bucket, config.backup_storage.bucket
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        futures = [
            pool.submit(client.copy_object, dst_bucket, dst, CopySource(src_bucket, src))
            for src, dst in pairs
        ]
        for future in futures:
            future.result()
    return time.perf_counter() - start


def import_units(info: CollectionBackupInfo, layout: BackupLayout) -> list[tuple[str, list[str]]]:
    """(partition, [insert dir, delta dir]) of each import job the restore runs over gRPC."""
    data, _ = plan_imports(info, layout, per_job=1, l0_per_job=1)
    return [(job.partition_name, list(job.files[0])) for job in data]


def time_ours_restore(config: BackupConfig, backup: str, suffix: str) -> tuple[float, int]:
    start = time.perf_counter()
    result = restore_backup(config, RestoreRequest(backup, suffix=suffix))
    elapsed = time.perf_counter() - start
    if not result.succeeded:
        raise RuntimeError(f"restore failed: {result.failure_summary()}")
    return elapsed, sum(c.rows for c in result.collections)


def time_bare_restore(
    collection: str, units: list[tuple[str, list[str]]], poll: float
) -> tuple[float, int]:
    """Start every bulk insert at once, poll them all every ``poll`` s until all are done."""

    def start_import(unit: tuple[str, list[str]]) -> int:
        partition, files = unit
        task = utility.do_bulk_insert(
            collection, files=files, partition_name=partition, using=ALIAS, backup="true"
        )
        return int(task)

    start = time.perf_counter()
    with ThreadPoolExecutor(len(units)) as pool:
        pending = set(pool.map(start_import, units))
    rows = 0
    while pending:
        for task in list(pending):
            state = utility.get_bulk_insert_state(task, using=ALIAS)
            if state.state == BulkInsertState.ImportCompleted:
                pending.discard(task)
                rows += int(state.row_count)
            elif state.state in (
                BulkInsertState.ImportFailed,
                BulkInsertState.ImportFailedAndCleaned,
            ):
                raise RuntimeError(f"bulk insert {task} failed: {state.failed_reason}")
        if pending:
            time.sleep(poll)
    return time.perf_counter() - start, rows


# --------------------------------------------------------------------------- profiling


@dataclass
class Trace:
    """Milvus RPCs and S3 requests of one instrumented run, with their start and duration."""

    start: float = field(default_factory=time.perf_counter)
    rpcs: list[tuple[str, float, float]] = field(default_factory=list)
    http: list[tuple[str, float, float]] = field(default_factory=list)
    polls: list[tuple[int, float, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: list[tuple[str, float, float]], name: str, at: float) -> None:
        with self.lock:
            kind.append((name, at - self.start, time.perf_counter() - at))

    def summary(self, title: str) -> str:
        lines = [title]
        for label, calls in (("Milvus RPC", self.rpcs), ("S3 request", self.http)):
            groups: dict[str, list[float]] = defaultdict(list)
            for name, _, duration in calls:
                groups[name].append(duration)
            for name, durations in sorted(groups.items(), key=lambda kv: -sum(kv[1])):
                lines.append(
                    f"    {label:<10} {name:<28} x{len(durations):<4} "
                    f"sum {sum(durations):6.3f}s  max {max(durations):6.3f}s"
                )
        return "\n".join(lines)


def _s3_kind(method: str, headers: Any, query: Any) -> str:
    if method == "PUT" and headers and "x-amz-copy-source" in {k.lower() for k in headers}:
        return "PUT (server-side copy)"
    if method == "GET" and query and ("list-type" in query or "prefix" in query):
        return "GET (list)"
    if method == "POST" and query and "delete" in query:
        return "POST (delete objects)"
    return method


@contextmanager
def instrumented(trace: Trace) -> Iterator[None]:
    """Time every engine RPC and every S3 request of this process while the block runs."""
    original_call = Milvus._call
    original_state = Milvus.import_state
    original_open = Minio._url_open

    def call(self: Milvus, method: str, request: Any, db: str, timeout: float | None = None) -> Any:
        at = time.perf_counter()
        try:
            return original_call(self, method, request, db, timeout)
        finally:
            trace.add(trace.rpcs, method, at)

    def import_state(self: Milvus, task_id: int) -> Any:
        state = original_state(self, task_id)
        with trace.lock:
            trace.polls.append((task_id, time.perf_counter() - trace.start, state.state))
        return state

    def url_open(self: Minio, method: str, region: str, *args: Any, **kwargs: Any) -> Any:
        headers = kwargs.get("headers") or (args[3] if len(args) > 3 else None)
        query = kwargs.get("query_params") or (args[4] if len(args) > 4 else None)
        at = time.perf_counter()
        try:
            return original_open(self, method, region, *args, **kwargs)
        finally:
            trace.add(trace.http, _s3_kind(method, headers, query), at)

    patches: list[tuple[type, str, Callable[..., Any]]] = [
        (Milvus, "_call", call),
        (Milvus, "import_state", import_state),
        (Minio, "_url_open", url_open),
    ]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    try:
        for owner, name, replacement in patches:
            setattr(owner, name, replacement)
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)


class ImportWatcher:
    """Polls Milvus every 50 ms on its own connection to see when imports really complete."""

    def __init__(self, trace: Trace, interval: float = 0.05) -> None:
        self.trace = trace
        self.interval = interval
        self.done_at: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ImportWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self.trace.lock:
                tasks = {task for task, _, _ in self.trace.polls}
            for task in tasks - set(self.done_at):
                state = utility.get_bulk_insert_state(task, using=ALIAS)
                if state.state == BulkInsertState.ImportCompleted:
                    self.done_at[task] = time.perf_counter() - self.trace.start
            self._stop.wait(self.interval)


def tight_flush(config: BackupConfig) -> tuple[float, int]:
    """How long the flush the backup starts with takes when its state is polled every 20 ms."""
    db = REF.db
    with connect(config.milvus, config.timeouts) as milvus:
        start = time.perf_counter()
        request = milvus_pb2.FlushRequest(db_name=db, collection_names=[COLLECTION])
        response = milvus._call("Flush", request, db)
        state = milvus_pb2.GetFlushStateRequest(
            segmentIDs=list(response.coll_segIDs[COLLECTION].data),
            flush_ts=response.coll_flush_ts[COLLECTION],
            db_name=db,
            collection_name=COLLECTION,
        )
        polls = 1
        while not milvus._call("GetFlushState", state, db).flushed:
            time.sleep(0.02)
            polls += 1
        return time.perf_counter() - start, polls


def profile(config: BackupConfig, client: MilvusClient) -> None:
    """One instrumented backup and restore: where the time goes."""
    print("\nprofile (one instrumented run of each):")
    trace = Trace()
    clock = PhaseClock(start=trace.start)
    with instrumented(trace):
        create_backup(config, BackupRequest("bench_profile", (REF,)), clock)
    total = time.perf_counter() - trace.start
    phases = ", ".join(f"{k} {v:.3f}s" for k, v in clock.durations().items())
    print(f"  backup {total:.3f}s: {phases}")
    print(trace.summary("  calls:"))
    flush_s, flush_polls = tight_flush(config)
    print(
        f"  for comparison, Flush + GetFlushState polled every 20 ms: {flush_s:.3f}s "
        f"({flush_polls} polls)"
    )

    trace = Trace()
    with instrumented(trace), ImportWatcher(trace) as watcher:
        restore_backup(config, RestoreRequest("bench_profile", suffix="_profile"))
        total = time.perf_counter() - trace.start
    first_import = min(at for name, at, _ in trace.rpcs if name == "Import")
    print(f"  restore {total:.3f}s; first Import RPC at {first_import:.3f}s")
    print(trace.summary("  calls:"))
    seen: dict[int, float] = {}
    for task, at, state in trace.polls:
        if state == "completed":
            seen.setdefault(task, at)
    done = ", ".join(f"{at:.2f}" for at in sorted(watcher.done_at.values()))
    print(f"  imports really complete at (s): {done}")
    lags = [seen[t] - watcher.done_at[t] for t in seen if t in watcher.done_at]
    polls: dict[int, int] = defaultdict(int)
    for task, _, _ in trace.polls:
        polls[task] += 1
    print(
        f"  imports: {len(seen)}, GetImportState polls per import: "
        f"{sorted(polls.values())}; really complete (50 ms watcher) at "
        f"{max(watcher.done_at.values(), default=0):.3f}s, last seen complete by us at "
        f"{max(seen.values(), default=0):.3f}s"
    )
    if lags:
        print(
            f"  polling lag per import (ours - watcher): median {statistics.median(lags):.3f}s, "
            f"max {max(lags):.3f}s"
        )
    client.drop_collection(COLLECTION + "_profile")
    ObjectStore(config.backup_storage, config.timeouts).delete_prefix(
        BackupLayout(config.backup_storage.root_path, "bench_profile").prefix
    )


# --------------------------------------------------------------------------- the run


def versions(client: MilvusClient) -> str:
    try:
        rgw = subprocess.run(
            ["radosgw", "--version"], capture_output=True, text=True, check=False, timeout=10
        ).stdout.split(" (")[0]
    except OSError:
        rgw = "radosgw ?"
    return (
        f"Milvus {client.get_server_version()}, {rgw.replace('ceph version', 'Ceph RGW')} "
        f"(memstore), pymilvus {pymilvus.__version__}, minio {minio.__version__}, "
        f"Python {platform.python_version()}, {platform.machine()} x{_cpus()} CPUs"
    )


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


def median_phases(runs: list[dict[str, float]]) -> str:
    names = list(dict.fromkeys(name for run in runs for name in run))
    return ", ".join(
        f"{name} {statistics.median(run.get(name, 0.0) for run in runs):.3f}s" for name in names
    )


@dataclass
class Round:
    """One repeat: both backups, then both restores, in the given order."""

    backup_ours: float = 0.0
    backup_bare: float = 0.0
    restore_ours: float = 0.0
    restore_bare: float = 0.0
    rows: int = 0
    phases: dict[str, float] = field(default_factory=dict)


@dataclass
class Bench:
    config: BackupConfig
    client: MilvusClient
    data: Dataset
    poll: float
    s3: Minio
    latest: BackupInfo | None = None  # the last backup taken: its keys feed the bare copy

    @property
    def root(self) -> str:
        return self.config.backup_storage.root_path

    def round(self, tag: str, ours_first: bool) -> tuple[Round, CollectionBackupInfo]:
        result = Round()
        name, bare = f"bench_{tag}", f"bare_{tag}"
        bare_layout = BackupLayout(self.root, bare)
        order = ("ours", "bare") if ours_first or self.latest is None else ("bare", "ours")
        for who in order:
            if who == "ours":
                result.backup_ours, info, clock = time_ours_backup(self.config, name)
                result.phases = clock.durations()
                if self.latest and _sources(self.latest) != _sources(info):
                    print("  note: the segments changed (compaction?): new keys from now on")
                self.latest = info
            else:
                assert self.latest is not None
                pairs = copy_pairs(self.latest, bare_layout)
                workers = self.config.parallelism.copy_data
                result.backup_bare = time_bare_copy(self.config, self.s3, pairs, workers)
        assert self.latest is not None
        collection = self.latest.collection_backups[0]
        units = import_units(collection, BackupLayout(self.root, name))
        bare_target = f"{COLLECTION}_bare{tag}"
        ours_rows = bare_rows = 0
        for who in order:
            if who == "ours":
                result.restore_ours, ours_rows = time_ours_restore(self.config, name, f"_ours{tag}")
            else:
                create_empty(self.client, bare_target, self.data.dim)  # before the clock
                result.restore_bare, bare_rows = time_bare_restore(bare_target, units, self.poll)
        if ours_rows != bare_rows:
            raise RuntimeError(f"restored {ours_rows} rows with ours but {bare_rows} bare")
        result.rows = ours_rows
        # clean up before the next repeat
        for target in (f"{COLLECTION}_ours{tag}", bare_target):
            self.client.drop_collection(target)
        store = ObjectStore(self.config.backup_storage, self.config.timeouts)
        for layout in (BackupLayout(self.root, name), bare_layout):
            store.delete_prefix(layout.prefix)
        return result, collection


def _sources(info: BackupInfo) -> list[str]:
    return sorted(src for src, _ in copy_pairs(info, BackupLayout("", "x")))


def run(stack: Stack, args: argparse.Namespace) -> None:
    config = stack_config(stack)
    client = MilvusClient(uri=stack.milvus.uri, timeout=60)
    connections.connect(ALIAS, uri=stack.milvus.uri)
    print(versions(client))
    started = time.perf_counter()
    data = create_dataset(client, args.rows, args.segments, args.dim)
    print(f"created {data.rows} rows in {time.perf_counter() - started:.1f}s", flush=True)

    bench = Bench(config, client, data, args.poll, bare_client(config))
    rounds: list[Round] = []
    for i in range(-args.warmup, args.repeat):
        tag = f"w{-i}" if i < 0 else str(i)
        ours_first = i % 2 == 0
        r, collection = bench.round(tag, ours_first)
        label = "warm-up" if i < 0 else f"repeat {i + 1}"
        print(
            f"{label} ({'ours' if ours_first else 'bare'} first): "
            f"{len(collection.segments())} segments, {collection.size} bytes, {r.rows} rows "
            f"restored | backup ours {r.backup_ours:.3f}s bare {r.backup_bare:.3f}s | "
            f"restore ours {r.restore_ours:.3f}s bare {r.restore_bare:.3f}s",
            flush=True,
        )
        if i >= 0:
            rounds.append(r)

    assert bench.latest is not None
    collection = bench.latest.collection_backups[0]
    objects = len(copy_pairs(bench.latest, BackupLayout("", "x")))
    med = statistics.median
    backup = [med(r.backup_ours for r in rounds), med(r.backup_bare for r in rounds)]
    restore = [med(r.restore_ours for r in rounds), med(r.restore_bare for r in rounds)]
    print()
    print(
        f"data: {data.rows} rows ({data.deleted} deleted), {len(collection.segments())} "
        f"segments, {objects} binlog objects, {collection.size} bytes "
        f"({collection.size / 2**20:.1f} MiB), dim {data.dim}; "
        f"{config.parallelism.copy_data} copy threads; median of {len(rounds)}"
    )
    print(
        f"backup: ours {backup[0]:.2f}s, bare copy_object {backup[1]:.2f}s, "
        f"ratio {backup[0] / backup[1]:.2f}x (target <= {BACKUP_TARGET}x)"
    )
    print(f"  ours by phase (median): {median_phases([r.phases for r in rounds])}")
    copying = med(r.phases.get("copying", 0.0) for r in rounds)
    print(
        f"  ours' copying phase alone: {copying:.2f}s = {copying / backup[1]:.2f}x the bare "
        "copy; the rest is per-backup work the bare copy does not do"
    )
    print(
        f"restore: ours {restore[0]:.2f}s, bare do_bulk_insert {restore[1]:.2f}s, "
        f"ratio {restore[0] / restore[1]:.2f}x (target <= {RESTORE_TARGET}x)"
    )
    print(
        "  ours includes reading the meta, the checks and creating the collection; the bare "
        f"collection is created before its clock starts; bare polls every {args.poll:g}s"
    )
    if args.profile:
        profile(config, client)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.backup_restore", description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--segments", type=int, default=8)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first (default 1)")
    parser.add_argument("--poll", type=float, default=0.1, help="bare restore poll interval")
    parser.add_argument("--profile", action="store_true", help="one instrumented run at the end")
    parser.add_argument("--dir", type=Path, help="stack folder (default: a temporary one)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mbo-bench-") as tmp:
        base = args.dir or Path(tmp)
        print(f"starting the stack in {base} ...", flush=True)
        stack = start_stack(base, die_with_parent=True)
        try:
            run(stack, args)
        finally:
            connections.disconnect(ALIAS)
            stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
