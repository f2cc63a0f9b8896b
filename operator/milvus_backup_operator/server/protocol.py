"""milvus-backup's REST protocol: request bodies, task states and the response envelope.

Field names are milvus-backup's own (``backup_name``, ``collection_names``, the camelCase
``dropExistCollection`` and ``restoreIndex``...). Types are checked strictly, as Go's JSON
decoder does: a string where a boolean belongs is an error, not a guess.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class StateCode(IntEnum):
    INITIAL = 0
    EXECUTING = 1
    SUCCESS = 2
    FAIL = 3
    TIMEOUT = 4


class ResponseCode(IntEnum):
    SUCCESS = 0  # omitted from responses, as milvus-backup does
    FAIL = 3
    PARAMETER_ERROR = 400
    NOT_FOUND = 404


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, populate_by_name=True)


class CreateBackupRequest(_Request):
    request_id: str = Field("", alias="requestId")
    backup_name: str = ""
    collection_names: list[str] = Field(default_factory=list)
    db_collections: str | dict[str, list[str]] | None = Field(
        None, description='{"db": ["coll", ...]} (an empty list: every collection of db)'
    )
    run_async: bool = Field(False, alias="async")


class RestoreBackupRequest(_Request):
    request_id: str = Field("", alias="requestId")
    id: str = Field("", description="Task id to use (default: a new one).")
    backup_name: str
    collection_names: list[str] = Field(default_factory=list)
    db_collections: str | dict[str, list[str]] | None = None
    collection_suffix: str = ""
    collection_renames: dict[str, str] = Field(default_factory=dict)
    drop_exist_collection: bool = Field(False, alias="dropExistCollection")
    restore_index: bool = Field(False, alias="restoreIndex")
    load: bool = Field(False, description="Load each restored collection (our addition).")
    run_async: bool = Field(False, alias="async")


class Envelope(BaseModel):
    """Every response: ``code`` is left out on success; ``data`` is always there."""

    requestId: str = ""  # noqa: N815  (milvus-backup's name)
    code: int | None = None
    msg: str = "success"
    data: Any = None


def envelope(
    data: Any, request_id: str = "", msg: str = "success", code: int = 0
) -> dict[str, Any]:
    body: dict[str, Any] = {"requestId": request_id, "msg": msg, "data": data}
    if code:
        body["code"] = code
    return body
