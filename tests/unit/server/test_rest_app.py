"""The REST layer alone (FastAPI's TestClient): paths, the envelope, the one error table,
the bearer token and request ids, in milliseconds. The backend here answers from a script
of errors; the real backends are tested on the real Milvus and kube-apiserver
(``tests/integration/test_rest_api.py``, ``tests/e2e/test_rest_cluster.py``)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from milvus_backup_operator.api.specs import SpecError
from milvus_backup_operator.engine.errors import (
    AlreadyExistsError,
    DamagedBackupError,
    NotFoundError,
    OperationError,
    UnreachableError,
)
from milvus_backup_operator.server.app import create_app
from milvus_backup_operator.server.protocol import CreateBackupRequest, RestoreBackupRequest
from milvus_backup_operator.server.tasks import RESTORE, Task


class ScriptedBackend:
    """Raises ``error`` from every call if set, else answers with what it was asked."""

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.calls: list[tuple[str, Any]] = []

    def _answer(self, call: str, *args: Any) -> dict[str, Any]:
        self.calls.append((call, args))
        if self.error is not None:
            raise self.error
        return {"call": call}

    def create(self, request: CreateBackupRequest, task_id: str) -> dict[str, Any]:
        return self._answer("create", request.backup_name, task_id)

    def list(self) -> list[dict[str, Any]]:
        return [self._answer("list")]

    def get_backup(self, backup_id: str, backup_name: str) -> dict[str, Any]:
        return self._answer("get_backup", backup_id, backup_name)

    def delete(self, backup_name: str) -> None:
        self._answer("delete", backup_name)

    def verify(self, backup_name: str) -> dict[str, Any]:
        return self._answer("verify", backup_name)

    def restore(self, request: RestoreBackupRequest, task_id: str) -> dict[str, Any]:
        return self._answer("restore", request.backup_name, task_id)

    def get_restore(self, task_id: str) -> dict[str, Any]:
        return self._answer("get_restore", task_id)

    def check(self) -> tuple[bool, str]:
        self._answer("check")
        return True, "ok"


@pytest.fixture
def backend() -> ScriptedBackend:
    return ScriptedBackend()


@pytest.fixture
def http(backend: ScriptedBackend) -> TestClient:
    return TestClient(create_app(backend), raise_server_exceptions=False)


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (SpecError("spec.backupName is wrong"), 400, 400),  # a Job's refusal: not a 500 "bug"
        (NotFoundError("no backup b"), 404, 404),
        (AlreadyExistsError("b exists"), 409, 3),
        (DamagedBackupError("segment 7 is missing"), 422, 3),
        (UnreachableError("Milvus did not answer"), 503, 3),
        (OperationError("import failed"), 500, 3),
    ],
)
def test_each_engine_error_gets_its_status_and_says_what_happened(
    http: TestClient, backend: ScriptedBackend, error: Exception, status: int, code: int
) -> None:
    backend.error = error
    answer = http.get("/api/v1/get_backup", params={"backup_name": "b"})
    assert answer.status_code == status
    assert answer.json()["code"] == code and answer.json()["msg"] == str(error)


def test_an_unexpected_error_is_a_500_that_shows_no_internals(
    http: TestClient, backend: ScriptedBackend
) -> None:
    backend.error = RuntimeError("password=hunter2 in a traceback")
    answer = http.get("/api/v1/list")
    assert answer.status_code == 500 and "hunter2" not in answer.text


def test_the_request_id_is_the_task_id_and_is_checked_before_any_work(
    http: TestClient, backend: ScriptedBackend
) -> None:
    ok = http.post("/api/v1/create", json={"backup_name": "b"}, headers={"request_id": "t-1"})
    assert ok.status_code == 200 and ok.json()["requestId"] == "t-1"
    assert backend.calls == [("create", ("b", "t-1"))]
    bad = http.post("/api/v1/create", json={"backup_name": "b"}, headers={"request_id": "a b"})
    assert bad.status_code == 400 and len(backend.calls) == 1  # refused before the backend


ASYNC = "backup is executing asynchronously"  # core/server/create.go runAsync, restore.go


@pytest.mark.parametrize(
    ("path", "body", "msg"),
    [
        ("/create", {"backup_name": "b", "async": True}, f"create {ASYNC}"),
        ("/create", {"backup_name": "b"}, "success"),
        ("/restore", {"backup_name": "b", "async": True}, f"restore {ASYNC}"),
        ("/restore", {"backup_name": "b", "async": True, "dry_run": True}, "success"),
    ],
)
def test_async_work_is_answered_as_milvus_backup_answers_it(
    http: TestClient, path: str, body: dict[str, Any], msg: str
) -> None:
    reply = http.post(f"/api/v1{path}", json=body)
    assert reply.status_code == 200 and reply.json()["msg"] == msg


def test_a_tasks_progress_never_goes_back() -> None:
    """A resumed restore counts its imports anew: what it showed before a restart stays."""
    task = Task("t-1", RESTORE, "b", {})
    for reported in (0, 27, 20, 100):
        task.advance(reported)
    assert task.progress == 99  # 100 only once it is done
    task.finish()
    assert task.progress == 100


def test_a_token_is_required_where_one_is_set(backend: ScriptedBackend) -> None:
    http = TestClient(create_app(backend, token="s3cret"))
    assert http.get("/api/v1/list").status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert http.get("/api/v1/list", headers=wrong).status_code == 401
    right = {"Authorization": "Bearer s3cret"}
    assert http.get("/api/v1/list", headers=right).status_code == 200
    assert http.get("/api/v1/hello").status_code == 200  # probes need no token
    assert [call for call, _ in backend.calls] == ["list"]


def test_a_get_without_a_name_or_id_is_a_bad_request(
    http: TestClient, backend: ScriptedBackend
) -> None:
    answer = http.get("/api/v1/get_backup")
    assert answer.status_code == 400 and "backup_name" in answer.json()["msg"]
    assert backend.calls == []


@pytest.mark.parametrize(
    ("body", "rebuilt"),
    [({"load": True}, True), ({"load": True, "restoreIndex": False}, False),
     ({"restoreIndex": True}, True), ({}, False)],
)  # fmt: skip
def test_rest_load_rebuilds_the_indexes_unless_restore_index_is_false(
    body: dict[str, Any], rebuilt: bool
) -> None:
    """milvus-backup has no ``load``: its bodies keep their meaning (restoreIndex or nothing)."""
    from milvus_backup_operator.server.requests import restore_request

    request = RestoreBackupRequest.model_validate({"backup_name": "b", **body})
    assert restore_request(request, "t1").rebuild_index is rebuilt
