"""``segments/describe`` answers, read as Milvus's ``handler_v2.go`` (``getSegmentsInfo``)
writes them: every requested segment must be there and understood, or the answer is refused
by name (the backup then lists the bucket instead)."""

from __future__ import annotations

from typing import Any

import pytest

from milvus_backup_operator.engine.config import MilvusConfig, Timeouts
from milvus_backup_operator.engine.errors import OperationError
from milvus_backup_operator.engine.milvus_rest import (
    SEGMENTS,
    SEGMENTS_PER_REQUEST,
    LogGroup,
    MilvusRest,
)

COLLECTION = 460000000000000001


def info(segment: int, **changes: Any) -> dict[str, Any]:
    """One segment as the handler describes it (a flushed L1 segment, two fields)."""
    described: dict[str, Any] = {
        "segmentID": segment, "collectionID": COLLECTION, "partitionID": 7,
        "vChannel": "by-dev-rootcoord-dml_0_v0", "numRows": 3, "state": 3, "level": 2,
        "isSorted": True,
        "insertLogs": [{"fieldID": 0, "logIDs": [segment + 1]},
                       {"fieldID": 100, "logIDs": [segment + 2, segment + 3]}],
        "deltaLogs": [{"fieldID": 100, "logIDs": [segment + 4]}],
        "statsLogs": [],
    }  # fmt: skip
    described.update(changes)
    return described


def rest_answering(*answers: dict[str, Any]) -> tuple[MilvusRest, list[dict[str, Any]]]:
    """A client whose POSTs get ``answers`` in turn; the bodies sent are recorded."""
    rest = MilvusRest(MilvusConfig(rest_endpoint="http://milvus:19530"), Timeouts())
    sent: list[dict[str, Any]] = []
    queue = list(answers)

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        assert path == SEGMENTS
        sent.append(body)
        return queue.pop(0)

    rest._post = post  # type: ignore[method-assign]
    return rest, sent


def answer(*infos: dict[str, Any]) -> dict[str, Any]:
    return {"code": 0, "data": {"segmentInfos": list(infos)}}


def test_each_segment_s_logs_are_read_by_field_and_asked_for_by_id() -> None:
    rest, sent = rest_answering(answer(info(11), info(21, deltaLogs=[])))
    files = rest.segment_files("db1", COLLECTION, [11, 21])
    assert sent == [{"dbName": "db1", "collectionId": COLLECTION, "segmentIds": [11, 21]}]
    assert files[11].insert_logs == (LogGroup(0, (12,)), LogGroup(100, (13, 14)))
    assert files[11].delta_logs == (LogGroup(100, (15,)),)
    assert files[21].delta_logs == ()
    assert files[11].v_channel == "by-dev-rootcoord-dml_0_v0"  # recorded as milvus-backup does


def test_an_empty_log_list_go_writes_as_null_is_empty() -> None:
    rest, _ = rest_answering(answer(info(11, deltaLogs=[{"fieldID": 0, "logIDs": None}])))
    assert rest.segment_files("", COLLECTION, [11])[11].delta_logs == (LogGroup(0, ()),)


def test_many_segments_are_asked_for_in_batches() -> None:
    ids = list(range(1, SEGMENTS_PER_REQUEST + 2))
    first, second = ids[:SEGMENTS_PER_REQUEST], ids[SEGMENTS_PER_REQUEST:]
    rest, sent = rest_answering(answer(*map(info, first)), answer(*map(info, second)))
    assert sorted(rest.segment_files("", COLLECTION, ids)) == ids
    assert [body["segmentIds"] for body in sent] == [first, second]


@pytest.mark.parametrize(
    ("answered", "refusal"),
    [
        (answer(info(11)), r"did not describe segment 21 of collection"),
        (answer(info(11), info(21), info(31)), r"segment 31, never asked for"),
        ({"code": 0, "data": {}}, r"no data.segmentInfos list"),
        (answer(info(11, manifestPath="x"), info(21)), r"segment 11 with keys .*'manifestPath'"),
        (answer(info(11, collectionID=5), info(21)), r"segment 11 of collection 5"),
        (answer(info(11), info(21, insertLogs=None)), r"segment 21 with no insertLogs list"),
        (answer(info(11, insertLogs=[{"fieldID": 100}]), info(21)),
         r"segment 11 insertLogs entry .* \(expected fieldID and logIDs\)"),
        (answer(info(11, deltaLogs=[{"fieldID": 0, "logIDs": ["12"]}]), info(21)),
         r"segment 11 deltaLogs entry .* \(IDs must be whole numbers\)"),
        (answer(info(True), info(21)), r"segment True of collection"),
        (answer(info(11), info(21, vChannel=7)), r"segment 21 with vChannel 7 \(expected a name"),
    ],
)  # fmt: skip
def test_an_answer_not_fully_understood_is_refused_by_name(
    answered: dict[str, Any], refusal: str
) -> None:
    rest, _ = rest_answering(answered)
    with pytest.raises(OperationError, match=refusal):
        rest.segment_files("", COLLECTION, [11, 21])
