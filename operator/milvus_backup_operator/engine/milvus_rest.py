"""Milvus's REST API: import jobs (Milvus >= 2.4), and each segment's files (>= 2.5.8).

``POST /v2/vectordb/jobs/import/create`` takes ``files`` as a list of ``[insert directory,
delta directory]`` pairs, one per segment, and the same options as the gRPC import;
``/v2/vectordb/jobs/import/describe`` reports the job's ``state`` (Pending, Importing,
Completed, Failed...), ``reason`` and rows. The request and answer shapes are milvus-backup's
(``internal/client/milvus/restful.go``: ``createImportReq``, ``GetProcessResp``) and
Milvus's (``internal/distributed/proxy/httpserver/handler_v2.go``). Every answer with a
``code`` other than 0, or an HTTP error, becomes an engine error naming the endpoint.

``POST /v2/vectordb/segments/describe`` (body ``dbName``, ``collectionId``, ``segmentIds``)
answers ``data.segmentInfos``: per segment its ``insertLogs`` and ``deltaLogs`` as
``{fieldID, logIDs}`` (Milvus's ``handler_v2.go`` ``getSegmentsInfo``, which passes on
datacoord's ``FieldBinlog``: in storage v2 ``fieldID`` is the column group's ID, the
directory its files are written under, ``internal/flushcommon/syncmgr/pack_writer_v2.go``).
milvus-backup calls it as ``GetSegmentInfo`` (``internal/client/milvus/restful.go``). An
answer this module does not fully understand (a segment missing, a key it does not know, a
value of the wrong type) is refused by name rather than half read.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeGuard

from .config import MilvusConfig, Timeouts
from .errors import OperationError, UnreachableError
from .milvus import ImportState

CREATE = "/v2/vectordb/jobs/import/create"
DESCRIBE = "/v2/vectordb/jobs/import/describe"
SEGMENTS = "/v2/vectordb/segments/describe"
#: segment IDs asked per ``segments/describe`` request
SEGMENTS_PER_REQUEST = 256
#: what Milvus's handler answers per segment; the logs are read, the rest only known
_SEGMENT_KEYS = frozenset({
    "segmentID", "collectionID", "partitionID", "vChannel", "numRows", "state", "level",
    "isSorted", "insertLogs", "deltaLogs", "statsLogs",
})  # fmt: skip
_LOG_KEYS = frozenset({"fieldID", "logIDs"})
_STATES = {
    "Pending": "pending",
    "Importing": "running",
    "Uncommitted": "running",
    "Committing": "running",
    "Completed": "completed",
    "Failed": "failed",
}


@dataclass(frozen=True)
class LogGroup:
    """The logs Milvus keeps for one field (storage v2: one column group) of a segment."""

    field_id: int
    log_ids: tuple[int, ...]


@dataclass(frozen=True)
class SegmentFiles:
    """The insert and delta logs Milvus names for one segment, and its virtual channel
    (recorded as milvus-backup records it: ``SegmentBackupInfo.v_channel``)."""

    segment_id: int
    insert_logs: tuple[LogGroup, ...]
    delta_logs: tuple[LogGroup, ...]
    v_channel: str = ""


class MilvusRest:
    """Import jobs and segment files through Milvus's REST API."""

    def __init__(self, config: MilvusConfig, timeouts: Timeouts) -> None:
        self.url = config.rest_url
        self._timeout = timeouts.rpc
        self._token = f"{config.user}:{config.password}" if config.user else ""

    def create_import(
        self, db: str, collection: str, partition: str, files: list[list[str]],
        options: dict[str, str],
    ) -> str:  # fmt: skip
        """Start one import job of ``files`` (one ``[insert, delta]`` pair per segment)."""
        body = {"dbName": db, "collectionName": collection, "files": files, "options": options}
        if partition:
            body["partitionName"] = partition
        answer = self._post(CREATE, body)
        job = (answer.get("data") or {}).get("jobId")
        if not job:
            raise OperationError(f"Milvus's REST API at {self.url} returned no import job")
        return str(job)

    def import_state(self, db: str, job: str) -> ImportState:
        data = self._post(DESCRIBE, {"dbName": db, "jobId": job}).get("data") or {}
        rows = data.get("importedRows", data.get("totalRows", 0))
        return ImportState(
            state=_STATES.get(str(data.get("state")), "running"),
            row_count=int(rows or 0),
            reason=str(data.get("reason", "")),
        )

    def segment_files(
        self, db: str, collection_id: int, segment_ids: Iterable[int]
    ) -> dict[int, SegmentFiles]:
        """The logs Milvus names for each of ``segment_ids``, by segment ID; every one of them
        must be in the answer."""
        wanted = list(dict.fromkeys(segment_ids))
        found: dict[int, SegmentFiles] = {}
        for start in range(0, len(wanted), SEGMENTS_PER_REQUEST):
            batch = wanted[start : start + SEGMENTS_PER_REQUEST]
            body = {"dbName": db, "collectionId": collection_id, "segmentIds": batch}
            found.update(self._segment_infos(self._post(SEGMENTS, body), collection_id))
        missing = [s for s in wanted if s not in found]
        if missing:
            raise OperationError(
                f"Milvus's REST API at {self.url}{SEGMENTS} did not describe segment "
                f"{', '.join(map(str, missing))} of collection {collection_id}"
            )
        unasked = sorted(set(found) - set(wanted))
        if unasked:
            raise self._refused(f"segment {', '.join(map(str, unasked))}, never asked for")
        return found

    def _segment_infos(self, answer: dict[str, Any], collection_id: int) -> dict[int, SegmentFiles]:
        data = answer.get("data")
        infos = data.get("segmentInfos") if isinstance(data, dict) else None
        if not isinstance(infos, list):
            raise self._refused("no data.segmentInfos list")
        read = [self._segment(info, collection_id) for info in infos]
        return {files.segment_id: files for files in read}

    def _segment(self, info: object, collection_id: int) -> SegmentFiles:
        if not isinstance(info, dict):
            raise self._refused(f"a segment info that is not an object ({info!r})")
        segment = info.get("segmentID")
        where = f"segment {segment}"
        unknown = sorted(set(info) - _SEGMENT_KEYS)
        if unknown:
            raise self._refused(f"{where} with keys this version does not know ({unknown})")
        if not _is_id(segment) or info.get("collectionID") != collection_id:
            raise self._refused(f"{where} of collection {info.get('collectionID')!r}")
        v_channel = info.get("vChannel", "")
        if not isinstance(v_channel, str):
            raise self._refused(f"{where} with vChannel {v_channel!r} (expected a name)")
        return SegmentFiles(
            segment_id=segment,
            insert_logs=self._groups(info, "insertLogs", where),
            delta_logs=self._groups(info, "deltaLogs", where),
            v_channel=v_channel,
        )

    def _groups(self, info: dict[str, Any], key: str, where: str) -> tuple[LogGroup, ...]:
        groups = info.get(key)
        if not isinstance(groups, list):
            raise self._refused(f"{where} with no {key} list")
        return tuple(self._group(g, f"{where} {key}") for g in groups)

    def _group(self, group: object, where: str) -> LogGroup:
        """One ``{fieldID, logIDs}``; Go writes an empty ``logIDs`` as null."""
        if not isinstance(group, dict) or set(group) != _LOG_KEYS:
            raise self._refused(f"{where} entry {group!r} (expected fieldID and logIDs)")
        log_ids = group["logIDs"] if group["logIDs"] is not None else []
        if not _is_id(group["fieldID"]) or not (
            isinstance(log_ids, list) and all(_is_id(i) for i in log_ids)
        ):
            raise self._refused(f"{where} entry {group!r} (IDs must be whole numbers)")
        return LogGroup(group["fieldID"], tuple(log_ids))

    def _refused(self, what: str) -> OperationError:
        return OperationError(
            f"Milvus's REST API at {self.url}{SEGMENTS} answered {what}: not understood"
        )

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Request-Timeout": "600"},
            method="POST",
        )
        if self._token:
            request.add_header("Authorization", f"Bearer {self._token}")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                answer = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise OperationError(
                f"Milvus's REST API at {self.url}{path}: HTTP {exc.code}"
            ) from None
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
            raise UnreachableError(
                f"cannot reach Milvus's REST API at {self.url} ({_reason(exc)}): check "
                "milvus.rest.endpoint"
            ) from None
        if not isinstance(answer, dict) or answer.get("code", 0) != 0:
            message = answer.get("message", answer) if isinstance(answer, dict) else answer
            raise OperationError(f"Milvus's REST API at {self.url}{path} refused: {message}")
        return answer


def _reason(exc: Exception) -> str:
    """Why a request got no answer; a gRPC-only port answers HTTP/2 frames, not a status."""
    garbled = isinstance(exc, http.client.BadStatusLine)
    if garbled and not isinstance(exc, http.client.RemoteDisconnected):
        return "the answer is not HTTP/1.1: a gRPC-only port?"
    return str(exc)


def _is_id(value: object) -> TypeGuard[int]:
    """A Milvus ID as JSON carries it: a whole number, never a bool."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
