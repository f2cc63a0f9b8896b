"""The import jobs a restore runs, and that its dry run counts, from one planner.

As milvus-backup master's ``core/restore/coll_task.go``: one job per segment group over gRPC;
with the v2 restore, groups of one partition and storage version batched
``maxSegmentsPerImportJob`` to a job (``notL0SegBatchesWithGroupID``), then the L0 segments,
one per job or batched from Milvus 2.6.5 (``l0SegmentBatches``).
"""

from __future__ import annotations

import pytest

from milvus_backup_operator.engine.capabilities import Capabilities
from milvus_backup_operator.engine.config import Parallelism
from milvus_backup_operator.engine.errors import MalformedMetaError
from milvus_backup_operator.engine.import_jobs import ImportJob, collection_jobs
from milvus_backup_operator.engine.layout import BackupLayout
from milvus_backup_operator.engine.meta import (
    CollectionBackupInfo,
    PartitionBackupInfo,
    SegmentBackupInfo,
)

LAYOUT = BackupLayout("backup", "b")


def segment(sid: int, pid: int, group: int, *, l0: bool = False, v: int = 0) -> SegmentBackupInfo:
    return SegmentBackupInfo(
        segment_id=sid, partition_id=pid, group_id=group, is_l0=l0, storage_version=v,
        num_of_rows=0 if l0 else 10,
    )  # fmt: skip


def collection() -> CollectionBackupInfo:
    """Partition 1: groups 11, 12, 13 (13 in storage v2) and an L0 segment; partition 2:
    one group; two collection-wide L0 segments."""
    first = [segment(11, 1, 11), segment(12, 1, 12), segment(13, 1, 13, v=2),
             segment(14, 1, 14, l0=True)]  # fmt: skip
    return CollectionBackupInfo(
        collection_id=7,
        partition_backups=[
            PartitionBackupInfo(1, "_default", 7, first),
            PartitionBackupInfo(2, "p2", 7, [segment(21, 2, 21)]),
        ],
        l0_segments=[segment(31, -1, 0, l0=True), segment(32, -1, 0, l0=True)],
    )


def shape(jobs: list[ImportJob]) -> list[tuple[str, int]]:
    return [(job.partition_name, job.segments) for job in jobs]


def test_over_grpc_one_job_per_segment_group_then_one_per_l0_segment() -> None:
    data, l0 = collection_jobs(
        collection(), LAYOUT, Parallelism(), v2=False, target=Capabilities.of("v2.6.9")
    )
    assert shape(data) == [("_default", 1), ("_default", 1), ("_default", 1), ("p2", 1)]
    assert shape(l0) == [("_default", 1), ("", 1), ("", 1)]
    assert all(job.l0 for job in l0) and not any(job.l0 for job in data)


@pytest.mark.parametrize(
    ("version", "l0_shape"),
    [("v2.5.20", [("_default", 1), ("", 1), ("", 1)]), ("v2.6.5", [("_default", 1), ("", 2)])],
)
def test_the_v2_restore_batches_groups_of_one_partition_and_storage_version(
    version: str, l0_shape: list[tuple[str, int]]
) -> None:
    parallelism = Parallelism(segments_per_import_job=2)
    data, l0 = collection_jobs(
        collection(), LAYOUT, parallelism, v2=True, target=Capabilities.of(version)
    )
    assert shape(data) == [("_default", 2), ("_default", 1), ("p2", 1)]
    assert [job.storage_version for job in data] == [0, 2, 0]
    assert data[0].files == (
        ("backup/b/binlogs/insert_log/7/1/11/", "backup/b/binlogs/delta_log/7/1/11/"),
        ("backup/b/binlogs/insert_log/7/1/12/", "backup/b/binlogs/delta_log/7/1/12/"),
    )
    assert shape(l0) == l0_shape


@pytest.mark.parametrize("v2", [False, True])
def test_a_partition_mixing_group_0_with_other_groups_is_refused_by_name(v2: bool) -> None:
    """Group 0's logs lie in the partition's directory: importing it would import groups
    11 and 12 a second time (the old plan: ``<p>/`` beside ``<p>/11/`` and ``<p>/12/``)."""
    info = collection()
    info.collection_name = "books"
    info.partition_backups[0].segment_backups.append(segment(15, 1, 0))
    target = Capabilities.of("v2.6.9")
    with pytest.raises(MalformedMetaError, match=r"partition '_default' of collection 'books'"):
        collection_jobs(info, LAYOUT, Parallelism(), v2=v2, target=target)


def test_a_legacy_partition_all_in_group_0_is_imported_whole_with_its_l0_apart() -> None:
    legacy = [segment(11, 1, 0), segment(12, 1, 0), segment(14, 1, 14, l0=True)]
    info = CollectionBackupInfo(
        collection_id=7, partition_backups=[PartitionBackupInfo(1, "_default", 7, legacy)]
    )
    data, l0 = collection_jobs(info, LAYOUT, Parallelism(), False, Capabilities.of("v2.6.9"))
    assert [job.files for job in data] == [
        (("backup/b/binlogs/insert_log/7/1/", "backup/b/binlogs/delta_log/7/1/"),)
    ]
    assert shape(l0) == [("_default", 1)]
