"""The HTTP layer: milvus-backup's paths and envelope, our status codes, Swagger UI.

Unlike milvus-backup, an error is never a 200: it gets the HTTP status that fits (400 for a
request to fix, 404 for an unknown backup or task, 409 for a clash, 503 when Milvus or S3
cannot be reached), with the same envelope and a ``msg`` that says what to fix.
"""

from __future__ import annotations

import hmac
import logging
import uuid
from pathlib import Path
from typing import Annotated, Any

import fastapi_offline
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..engine.errors import BackupError, InvalidRequestError, kind_of
from .backend import Backend
from .body import MAX_BODY, JsonBody
from .protocol import (
    CreateBackupRequest,
    Envelope,
    ResponseCode,
    RestoreBackupRequest,
    envelope,
)
from .requests import validate_task_id

log = logging.getLogger(__name__)
PREFIX = "/api/v1"
#: milvus-backup takes the task id from this header
RequestIdHeader = Annotated[str | None, Header(alias="request_id", convert_underscores=False)]
#: milvus-backup's code in the envelope, by HTTP status (the status: engine.errors.ERROR_KINDS)
_CODES = {400: ResponseCode.PARAMETER_ERROR, 404: ResponseCode.NOT_FOUND}
_ERRORS = {
    400: {"model": Envelope, "description": "The request is wrong: msg says what to fix."},
    401: {"model": Envelope, "description": "A bearer token is required (--token-file)."},
    404: {"model": Envelope, "description": "No such backup or task."},
    409: {
        "model": Envelope,
        "description": "It clashes with an existing backup or task, the name holds no "
        "backup, or the backup is in use (being written, or read by a restore).",
    },
    413: {"model": Envelope, "description": "The body is larger than the server accepts."},
    422: {"model": Envelope, "description": "The backup is damaged (a malformed meta file)."},
    500: {"model": Envelope, "description": "A bug: the server's log has the details."},
    503: {"model": Envelope, "description": "Milvus or S3 cannot be reached."},
}


def create_app(backend: Backend, token: str = "", max_body: int = MAX_BODY) -> FastAPI:
    """The ASGI application; with ``token``, every API call needs ``Authorization: Bearer``."""
    app = FastAPI(
        title="milvus-backup-operator REST API",
        version=__version__,
        description="milvus-backup's REST API (paths, fields, envelope) on milvus-backup-operator.",
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    _errors(app)
    app.add_middleware(JsonBody, limit=max_body)
    guard = [Depends(_bearer(token))] if token else []
    app.include_router(_public())  # /hello answers probes without the token
    app.include_router(_routes(backend), dependencies=guard)
    _docs(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, minus its default 422 (validation errors are 400 here)."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        for path in document["paths"].values():
            for operation in path.values():
                error = operation["responses"].get("422", {})
                if "HTTPValidationError" in str(error):
                    operation["responses"]["422"] = {
                        "description": _ERRORS[422]["description"],
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/Envelope"}
                            }
                        },
                    }
        document["components"]["schemas"].pop("HTTPValidationError", None)
        document["components"]["schemas"].pop("ValidationError", None)
        app.openapi_schema = document
    return app.openapi_schema


def _request_id(header: str | None, body_id: str = "") -> str:
    return validate_task_id(header or body_id) if header or body_id else str(uuid.uuid4())


def _routes(backend: Backend) -> APIRouter:
    router = APIRouter(prefix=PREFIX, responses=_ERRORS)  # type: ignore[arg-type]

    @router.post("/create", responses={200: {"model": Envelope}}, summary="Create a backup")
    def create(body: CreateBackupRequest, request_id: RequestIdHeader = None) -> dict[str, Any]:
        task_id = _request_id(request_id, body.request_id)
        msg = "create backup is executing asynchronously" if body.run_async else "success"
        return envelope(backend.create(body, task_id), task_id, msg)

    @router.get(
        "/list", responses={200: {"model": Envelope}}, summary="List the backups in storage"
    )
    def list_backups() -> dict[str, Any]:
        return envelope(backend.list())

    @router.get(
        "/get_backup", responses={200: {"model": Envelope}}, summary="One backup, by id or name"
    )
    def get_backup(backup_id: str = "", backup_name: str = "") -> dict[str, Any]:
        if not backup_id and not backup_name:
            raise InvalidRequestError("give backup_name (or backup_id)")
        return envelope(backend.get_backup(backup_id, backup_name))

    @router.delete("/delete", responses={200: {"model": Envelope}}, summary="Delete one backup")
    def delete(backup_name: Annotated[str, Query(min_length=1)]) -> dict[str, Any]:
        backend.delete(backup_name)
        return envelope(None)  # msg "success", as milvus-backup answers (scripts compare it)

    @router.get(
        "/verify",
        responses={200: {"model": Envelope}},
        summary="Check a backup's objects (data.intact, data.problems)",
    )
    def verify(backup_name: Annotated[str, Query(min_length=1)]) -> dict[str, Any]:
        return envelope(backend.verify(backup_name))

    @router.post("/restore", responses={200: {"model": Envelope}}, summary="Restore a backup")
    def restore(body: RestoreBackupRequest, request_id: RequestIdHeader = None) -> dict[str, Any]:
        given = request_id or body.request_id  # checked before any work
        reply_id = _request_id(request_id, body.request_id)
        task_id = validate_task_id(body.id) if body.id else given or f"restore_{reply_id}"
        msg = "restore backup is executing asynchronously" if _is_async(body) else "success"
        return envelope(backend.restore(body, task_id), reply_id, msg)

    @router.get(
        "/get_restore", responses={200: {"model": Envelope}}, summary="A restore task's state"
    )
    def get_restore(id: Annotated[str, Query(min_length=1)]) -> dict[str, Any]:
        return envelope(backend.get_restore(id))

    @router.get(
        "/check",
        response_class=PlainTextResponse,
        summary="Check Milvus and storage",
        responses={503: {"description": "Some check failed (the report says which).",
                         "content": {"text/plain": {"schema": {"type": "string"}}}}},
    )  # fmt: skip
    def check() -> PlainTextResponse:
        ok, report = backend.check()
        return PlainTextResponse(report, status_code=200 if ok else 503)

    return router


def _is_async(body: RestoreBackupRequest) -> bool:
    """milvus-backup's words for an async restore (core/server/restore.go); a dry run answers
    at once, whatever ``async`` says."""
    return bool(body.run_async and not body.dry_run)


def _public() -> APIRouter:
    router = APIRouter(prefix=PREFIX)

    @router.get("/hello", response_class=PlainTextResponse, summary="Is the server up?")
    def hello() -> str:
        return "Hello, This is backup service"

    return router


def _errors(app: FastAPI) -> None:
    @app.exception_handler(BackupError)
    def engine_error(request: Request, exc: BackupError) -> JSONResponse:
        status = kind_of(exc).http_status
        code = _CODES.get(status, ResponseCode.FAIL)
        body = envelope(None, request.headers.get("request_id", ""), str(exc), int(code))
        return JSONResponse(body, status_code=status)

    @app.exception_handler(RequestValidationError)
    def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(dict.fromkeys(_describe(e) for e in exc.errors()))
        body = envelope(None, request.headers.get("request_id", ""), problems, 400)
        return JSONResponse(body, status_code=400)

    @app.exception_handler(Exception)
    def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        message = f"internal error ({type(exc).__name__}): see the server's log"
        body = envelope(None, request.headers.get("request_id", ""), message, 500)
        return JSONResponse(body, status_code=500)

    @app.exception_handler(StarletteHTTPException)  # FastAPI's own 400s and 404s are these
    def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        body = envelope(
            None, request.headers.get("request_id", ""), str(exc.detail), exc.status_code
        )
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
    if error.get("type") == "json_invalid":
        return "the body is not valid JSON: send a JSON object"
    return f"{where}: {error.get('msg', 'invalid')}"


_BEARER = HTTPBearer(auto_error=False, description="The token from the server's --token-file.")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]


def _bearer(token: str) -> Any:
    def check(credentials: Credentials) -> None:
        given = credentials.credentials if credentials else ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(
                401, "send Authorization: Bearer <token>", {"WWW-Authenticate": "Bearer"}
            )

    return check


def _docs(app: FastAPI) -> None:
    """Swagger UI (5.x, which reads OpenAPI 3.1) at /api/v1/docs/index.html, from assets
    installed with the package: no internet is needed to show it."""
    assets = Path(fastapi_offline.__file__).parent / "static"

    @app.get(f"{PREFIX}/docs/index.html", include_in_schema=False)
    def swagger() -> HTMLResponse:
        return HTMLResponse(_SWAGGER_PAGE.format(openapi=f"{PREFIX}/openapi.json"))

    app.mount(f"{PREFIX}/docs", StaticFiles(directory=assets), name="swagger-assets")


_SWAGGER_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>milvus-backup-operator API</title>
<link rel="stylesheet" href="swagger-ui.css"><link rel="icon" href="favicon.png"></head>
<body><div id="swagger-ui"></div>
<script src="swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({{url: "{openapi}", dom_id: "#swagger-ui"}});</script>
</body></html>"""
