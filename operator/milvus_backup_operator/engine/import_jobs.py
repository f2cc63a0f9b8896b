"""The import jobs that restore one collection, planned from its meta.

Data first: one job per segment group (a whole partition for legacy backups without groups)
over gRPC, or, with the v2 restore (Milvus >= 2.4, its REST API), up to
``segments_per_import_job`` groups of one partition and storage version in one job, as
milvus-backup's ``notL0SegBatchesWithGroupID`` does. Then the L0 segments (deletes), one per
job, or several where Milvus takes them (2.6.5, ``l0SegmentBatches``).

A partition whose data segments mix group 0 and other groups is refused (:func:`check_groups`):
a group-0 segment's logs lie in the partition's own directory (``<p>/<s>/<field>/<log>``), so
importing them takes the whole partition, the grouped segments (``<p>/<g>/<s>/...``) a second
time; and no per-segment path holds them alone (Milvus reads an import path's children as
segment directories, ``ListBinlogsAndGroupBySegment``). milvus-backup's ``coll_task.go``
(``notL0SegmentBatches``) switches to per-group paths once any group is non-zero and so asks
for ``<p>/0/``, which a backup never writes. Neither tool writes such a partition.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import groupby
from typing import TypeVar

from .capabilities import Capabilities
from .config import Parallelism
from .errors import MalformedMetaError
from .layout import BackupLayout
from .meta import CollectionBackupInfo, PartitionBackupInfo, SegmentBackupInfo

T = TypeVar("T")


@dataclass(frozen=True)
class ImportJob:
    partition_name: str  # "" for the collection-wide L0 segments
    partition_id: int
    files: tuple[tuple[str, ...], ...]  # (insert dir, delta dir) per group; (delta dir,) for L0
    l0: bool
    storage_version: int
    segments: int


def collection_jobs(
    info: CollectionBackupInfo,
    layout: BackupLayout,
    parallelism: Parallelism,
    v2: bool,
    target: Capabilities,
) -> tuple[list[ImportJob], list[ImportJob]]:
    """A collection's import jobs as a restore runs them into ``target``: several segment
    groups per job only with the v2 restore, several L0 segments only where Milvus takes them."""
    per_job = parallelism.segments_per_import_job if v2 else 1
    l0_per_job = per_job if v2 and target.several_l0_per_job else 1
    return plan_imports(info, layout, per_job, l0_per_job)


def plan_imports(
    info: CollectionBackupInfo, layout: BackupLayout, per_job: int, l0_per_job: int
) -> tuple[list[ImportJob], list[ImportJob]]:
    """The data jobs, then the L0 jobs (to run once every data job has finished)."""
    data = []
    for partition, group in import_units(info):
        segments = [s for s in partition.segment_backups if s.group_id == group]
        dirs = tuple(
            layout.binlog_dir(kind, info.collection_id, partition.partition_id, group)
            for kind in ("insert_log", "delta_log")
        )
        version = max((s.storage_version for s in segments), default=0)
        name, pid = partition.partition_name, partition.partition_id
        data.append(ImportJob(name, pid, (dirs,), False, version, len(segments)))
    deletes = []
    for name, segment in l0_units(info):
        pid, sid = segment.partition_id, segment.segment_id
        deltas = layout.binlog_dir("delta_log", info.collection_id, pid, sid)
        deletes.append(ImportJob(name, pid, ((deltas,),), True, segment.storage_version, 1))
    return _merged(data, per_job), _merged(deletes, l0_per_job)


def _merged(jobs: list[ImportJob], per_job: int) -> list[ImportJob]:
    """Consecutive jobs of one partition and storage version, ``per_job`` to a job."""
    merged = []
    for _, batch in groupby(jobs, key=lambda j: (j.partition_name, j.storage_version)):
        for chunk in _chunks(list(batch), per_job):
            first = chunk[0]
            merged.append(
                ImportJob(
                    first.partition_name,
                    first.partition_id,
                    tuple(files for job in chunk for files in job.files),
                    first.l0,
                    first.storage_version,
                    sum(job.segments for job in chunk),
                )
            )
    return merged


def _chunks(items: list[T], size: int) -> Iterator[list[T]]:
    step = max(1, size)
    for start in range(0, len(items), step):
        yield items[start : start + step]


def import_units(info: CollectionBackupInfo) -> list[tuple[PartitionBackupInfo, int]]:
    """(partition, group) pairs: one import job each (a whole partition for legacy backups).
    L0 segments are imported apart, after these (:func:`l0_units`)."""
    check_groups(info)
    units: list[tuple[PartitionBackupInfo, int]] = []
    for partition in info.partition_backups:
        groups = dict.fromkeys(s.group_id for s in partition.segment_backups if not s.is_l0)
        units.extend((partition, group) for group in groups)
    return units


def check_groups(info: CollectionBackupInfo) -> None:
    """Refuse a partition whose data segments are some in group 0, some in other groups:
    no import takes the group-0 ones without taking the others twice."""
    for partition in info.partition_backups:
        data = [s for s in partition.segment_backups if not s.is_l0]
        ungrouped = [s.segment_id for s in data if not s.group_id]
        if ungrouped and len(ungrouped) < len(data):
            raise MalformedMetaError(
                f"partition {partition.partition_name!r} of collection {info.collection_name!r} "
                f"holds segments without a group (group_id 0: {ungrouped[:5]}) beside grouped "
                "ones: importing the first would import the others twice, so nothing is "
                "restored. A backup writes one kind or the other: restore from an unedited "
                "copy of its meta"
            )


def l0_units(info: CollectionBackupInfo) -> list[tuple[str, SegmentBackupInfo]]:
    """(partition name, L0 segment): one import each, "" naming the whole collection."""
    units = [(p.partition_name, s) for p in info.partition_backups for s in p.segment_backups]
    units = [(name, s) for name, s in units if s.is_l0]
    return units + [("", s) for s in info.l0_segments]
