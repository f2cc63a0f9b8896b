"""The version table's row for Milvus 2.3.5, checked against the real server."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from milvus_backup_operator.engine.gc_pause import PAUSE
from milvus_backup_operator.engine.milvus import connect
from testbed.stack import Stack, stack_config

pytestmark = pytest.mark.integration


def test_the_embedded_milvus_is_read_as_2_3_without_l0_storage_v2_or_gc_pause(
    stack: Stack,
) -> None:
    config = stack_config(stack)
    with connect(config.milvus, config.timeouts) as milvus:
        can = milvus.capabilities
    assert can.release[:2] == (2, 3)
    assert not can.l0_import and can.storage_versions == {0, 1} and not can.gc_pause


def test_milvus_2_3_5_has_no_gc_pause_endpoint(stack: Stack) -> None:
    """Why the table says so: its management port does not know the path (measured)."""
    port = stack.milvus_process.ports["metrics_port"]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://127.0.0.1:{port}{PAUSE}?pause_seconds=10", timeout=10)
    assert refused.value.code == 404
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as healthy:
        assert healthy.status == 200  # the port is the management one: it answers
