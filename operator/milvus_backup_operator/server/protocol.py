"""milvus-backup's REST protocol: request bodies, task states and the response envelope.

Field names are milvus-backup's own (``backup_name``, ``collection_names``, the camelCase
``dropExistCollection`` and ``restoreIndex``...). Types are checked strictly, as Go's JSON
decoder does: a string where a boolean belongs is an error, not a guess.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError


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
    """A request body: what we do not implement is refused by name, never ignored.

    ``NOT_IMPLEMENTED`` lists milvus-backup's own fields (``core/proto/backup.proto``) that this
    server does not act on: such a field is accepted only at its zero value (false, "", 0,
    empty), which is what a script sending every field with its default sends. Any other key
    is unknown (a typo, or a newer milvus-backup's field) and refused.
    """

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)
    NOT_IMPLEMENTED: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _refuse_what_we_do_not_do(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        known = {f.alias or name for name, f in cls.model_fields.items()} | set(cls.model_fields)
        for key, value in data.items():
            if key in known:
                continue
            if key not in cls.NOT_IMPLEMENTED:
                raise PydanticCustomError(
                    "unknown_field", "unknown field {key}: leave it out", {"key": key}
                )
            if value not in (None, False, 0, "", [], {}):
                raise PydanticCustomError(
                    "not_implemented",
                    "{key} is milvus-backup's, not supported by milvus-backup-operator: leave "
                    "it out (nothing was done)",
                    {"key": key},
                )
        return {k: v for k, v in data.items() if k in known}


class CollFilter(_Request):
    """milvus-backup's ``CollFilter``: the collections of one database (``["*"]``: all)."""

    colls: list[str] = Field(default_factory=list)


#: ``filter``: database -> its collections; milvus-backup's ``map<string, CollFilter>``
Filter = dict[str, CollFilter]


class CreateBackupRequest(_Request):
    request_id: str = Field("", alias="requestId")
    backup_name: str = ""
    collection_names: list[str] = Field(default_factory=list)
    db_collections: str | dict[str, list[str]] | None = Field(
        None, description='{"db": ["coll", ...]} (an empty list: every collection of db)'
    )
    rbac: bool = Field(False, description="Back up Milvus's users, roles and grants too.")
    gc_pause_enable: bool = Field(
        False, description="Pause Milvus's GC during the backup (also when the config says so)."
    )
    gc_pause_seconds: int = Field(0, ge=0, description="Each pause (0: the configuration's).")
    gc_pause_address: str = Field(
        "", description="Milvus's management endpoint (default: the configuration's)."
    )
    filter: Filter | None = Field(
        None, description='{"db": {"colls": ["coll", ...]}} ({"colls": ["*"]}: all of db)'
    )
    meta_only: bool = Field(
        False, description="Deprecated by milvus-backup for strategy=meta_only: the same."
    )
    strategy: str = Field(
        "", description='"meta_only": schemas, indexes and partitions only, no data.'
    )
    run_async: bool = Field(False, alias="async")

    @field_validator("filter", mode="before")
    @classmethod
    def _empty_is_absent(cls, value: Any) -> Any:
        """``{}`` is what a script sending every field at its default sends: no filter."""
        return None if value == {} else value

    NOT_IMPLEMENTED = frozenset(
        {"force", "backup_root_path", "with_index_extra", "format"}
    )  # fmt: skip


class CollectionOverride(_Request):
    """milvus-backup's ``RestoreCollectionOverride``: 0 and "" keep the backup's."""

    shard_num: int = Field(0, alias="shardNum", ge=0)
    description: str = ""


class CollectionMapping(_Request):
    """milvus-backup's ``RestoreCollectionMapping``: one collection of the source database."""

    source: str = ""
    target: str = ""
    override: CollectionOverride | None = None


class DatabaseMapping(_Request):
    """milvus-backup's ``RestoreMapping``: collections of ``source`` restored into ``target``."""

    source: str = ""
    target: str = ""
    colls: list[CollectionMapping] = Field(default_factory=list)

    NOT_IMPLEMENTED = frozenset({"withProp"})  # we create databases without properties


class RestorePlan(_Request):
    """milvus-backup's ``RestorePlan``: a mapping of collections, and the targets to restore."""

    mapping: list[DatabaseMapping] = Field(default_factory=list)
    filter: Filter = Field(default_factory=dict)


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
    load: bool = Field(
        False,
        description="Load each restored collection (our addition); its indexes are rebuilt "
        "too unless restoreIndex is false.",
    )
    restore_aliases: bool = Field(
        False,
        alias="restoreAliases",
        description="Recreate the collections' aliases (milvus-backup master's restoreAliases).",
    )
    dry_run: bool = Field(
        False, description="Make every check and answer the plan; write nothing (our addition)."
    )
    rbac: bool = Field(False, description="Add the backup's users, roles and grants it lacks.")
    use_v2_restore: bool = Field(
        False,
        alias="useV2Restore",
        description="Many segments per import job, through Milvus's REST API (Milvus >= 2.4).",
    )
    meta_only: bool = Field(
        False, alias="metaOnly", description="Create the collections; import no data."
    )
    restore_plan: RestorePlan | None = Field(None, alias="restorePlan")
    run_async: bool = Field(False, alias="async")

    @field_validator("restore_plan", mode="before")
    @classmethod
    def _empty_is_absent(cls, value: Any) -> Any:
        """``{}`` is what a script sending every field at its default sends: no plan."""
        return None if value == {} else value

    NOT_IMPLEMENTED = frozenset(
        {"bucket_name", "path", "useAutoIndex", "dropExistIndex",
         "skipCreateCollection", "skipImportDiskQuotaCheck", "maxShardNum", "skipParams",
         "truncateBinlogByTs", "db_collections_after_rename", "ezkMapping"}
    )  # fmt: skip


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
