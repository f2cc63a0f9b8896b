"""What each Milvus version can do: one table, read from the version Milvus reports."""

from __future__ import annotations

import pytest

from milvus_backup_operator.engine.capabilities import DEVELOPMENT, Capabilities
from milvus_backup_operator.engine.errors import OperationError


@pytest.mark.parametrize(
    ("reported", "release", "l0", "storage_v2", "gc", "snapshot"),
    [
        ("v2.3.5-lite", (2, 3, 5), False, False, False, False),  # the embedded Milvus here
        ("v2.4.23", (2, 4, 23), True, False, True, False),
        ("2.5.20", (2, 5, 20), True, False, True, False),
        ("v2.6.3", (2, 6, 3), True, True, True, False),
        ("2.6-20260404-31fb3fc", (2, 6, 9999), True, True, True, False),
        ("master-20260226-abcdef", DEVELOPMENT, True, True, True, True),
        ("v3.0.0-beta", (3, 0, 0), True, True, True, True),
    ],
)
def test_versions_and_what_they_can_do(
    reported: str,
    release: tuple[int, int, int],
    l0: bool,
    storage_v2: bool,
    gc: bool,
    snapshot: bool,
) -> None:
    can = Capabilities.of(reported)
    assert can.release == release
    assert (can.l0_import, 2 in can.storage_versions, can.gc_pause) == (l0, storage_v2, gc)
    assert can.snapshot_format == snapshot


def test_a_version_nobody_can_read_is_refused_by_name() -> None:
    with pytest.raises(OperationError, match="'Zilliz Cloud', which this tool cannot read"):
        Capabilities.of("Zilliz Cloud")


@pytest.mark.parametrize(
    ("reported", "names_segment_files"),
    [
        ("v2.4.23", False),
        ("v2.5.0", False),
        ("2.5.7", False),
        ("v2.5.8-beta", True),  # milvus-backup's ">= 2.5.8-0" takes 2.5.8's pre-releases
        ("v2.5.8", True),
        ("2.5-20260404-31fb3fc", True),  # the head of the 2.5 line
        ("v2.6.3", True),
        ("master-20260226-abcdef", True),
    ],
)
def test_milvus_names_segment_files_from_2_5_8(reported: str, names_segment_files: bool) -> None:
    assert Capabilities.of(reported).segment_info == names_segment_files
