"""Milvus's REST import API (Milvus >= 2.4): many segments in one import job.

``POST /v2/vectordb/jobs/import/create`` takes ``files`` as a list of ``[insert directory,
delta directory]`` pairs, one per segment, and the same options as the gRPC import;
``/v2/vectordb/jobs/import/describe`` reports the job's ``state`` (Pending, Importing,
Completed, Failed...), ``reason`` and rows. The request and answer shapes are milvus-backup's
(``internal/client/milvus/restful.go``: ``createImportReq``, ``GetProcessResp``) and
Milvus's (``internal/distributed/proxy/httpserver/handler_v2.go``). Every answer with a
``code`` other than 0, or an HTTP error, becomes an engine error naming the endpoint.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from .config import MilvusConfig, Timeouts
from .errors import OperationError, UnreachableError
from .milvus import ImportState

CREATE = "/v2/vectordb/jobs/import/create"
DESCRIBE = "/v2/vectordb/jobs/import/describe"
_STATES = {
    "Pending": "pending",
    "Importing": "running",
    "Uncommitted": "running",
    "Committing": "running",
    "Completed": "completed",
    "Failed": "failed",
}


class MilvusRest:
    """Import jobs through Milvus's REST API."""

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
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise UnreachableError(
                f"cannot reach Milvus's REST API at {self.url} ({exc}): check milvus.rest.endpoint"
            ) from None
        if not isinstance(answer, dict) or answer.get("code", 0) != 0:
            message = answer.get("message", answer) if isinstance(answer, dict) else answer
            raise OperationError(f"Milvus's REST API at {self.url}{path} refused: {message}")
        return answer
