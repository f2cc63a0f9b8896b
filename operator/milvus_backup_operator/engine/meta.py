"""milvus-backup's meta files (``core/proto/backup.proto`` at v0.5.16) as dataclasses.

Field order is the proto declaration order, so :func:`codec.encode` writes keys in the order
milvus-backup does. Enumerations are kept as the proto's integers. Keys written by other
versions (v0.5.0-v0.5.9's ``progress``, 0.6's ``snapshot_backup``...) are read and ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from . import codec
from .codec import jfield
from .errors import MalformedMetaError, UnsupportedError

# commonpb.ConsistencyLevel
CONSISTENCY_LEVELS = {0: "Strong", 1: "Session", 2: "Bounded", 3: "Eventually", 4: "Customized"}


@dataclass
class KeyValuePair:
    key: str = jfield("key", "")
    value: str = jfield("value", "")


@dataclass
class FieldSchema:
    field_id: int = jfield("fieldID", 0)
    name: str = jfield("name", "")
    is_primary_key: bool = jfield("is_primary_key", False)
    description: str = jfield("description", "")
    data_type: int = jfield("data_type", 0)
    type_params: list[KeyValuePair] = jfield("type_params", [])
    index_params: list[KeyValuePair] = jfield("index_params", [])
    auto_id: bool = jfield("autoID", False)
    state: int = jfield("state", 0)
    element_type: int = jfield("element_type", 0)
    default_value: str = jfield("default_value", "")  # unused by milvus-backup
    is_dynamic: bool = jfield("is_dynamic", False)
    is_partition_key: bool = jfield("is_partition_key", False)
    nullable: bool = jfield("nullable", False)
    default_value_proto: str = jfield("default_value_proto", "")  # legacy: raw proto bytes
    is_function_output: bool = jfield("is_function_output", False)
    default_value_base64: str = jfield("default_value_base64", "")


@dataclass
class FunctionSchema:
    """A function computing output fields from input fields (1 BM25, 2 text embedding)."""

    name: str = jfield("name", "")
    id: int = jfield("id", 0)
    description: str = jfield("description", "")
    type: int = jfield("type", 0)
    input_field_names: list[str] = jfield("input_field_names", [])
    input_field_ids: list[int] = jfield("input_field_ids", [])
    output_field_names: list[str] = jfield("output_field_names", [])
    output_field_ids: list[int] = jfield("output_field_ids", [])
    params: list[KeyValuePair] = jfield("params", [])


@dataclass
class StructArrayFieldSchema:
    field_id: int = jfield("fieldID", 0)
    name: str = jfield("name", "")
    description: str = jfield("description", "")
    fields: list[FieldSchema] = jfield("fields", [])


@dataclass
class CollectionSchema:
    name: str = jfield("name", "")
    description: str = jfield("description", "")
    auto_id: bool = jfield("autoID", False)
    fields: list[FieldSchema] = jfield("fields", [])
    enable_dynamic_field: bool = jfield("enable_dynamic_field", False)
    properties: list[KeyValuePair] = jfield("properties", [])
    functions: list[FunctionSchema] = jfield("functions", [])
    struct_array_fields: list[StructArrayFieldSchema] = jfield("struct_array_fields", [])


@dataclass
class IndexInfo:
    field_name: str = jfield("field_name", "")
    index_name: str = jfield("index_name", "")
    index_type: str = jfield("index_type", "")
    params: dict[str, str] = jfield("params", {})
    index_id: int = jfield("index_id", 0)


@dataclass
class Binlog:
    entries_num: int = jfield("entries_num", 0)
    timestamp_from: int = jfield("timestamp_from", 0)
    timestamp_to: int = jfield("timestamp_to", 0)
    log_path: str = jfield("log_path", "")
    log_size: int = jfield("log_size", 0, always=True)
    log_id: int = jfield("log_id", 0)


@dataclass
class FieldBinlog:
    field_id: int = jfield("fieldID", 0)
    binlogs: list[Binlog] = jfield("binlogs", [])


@dataclass
class SegmentBackupInfo:
    segment_id: int = jfield("segment_id", 0)
    collection_id: int = jfield("collection_id", 0)
    partition_id: int = jfield("partition_id", 0)
    num_of_rows: int = jfield("num_of_rows", 0)
    binlogs: list[FieldBinlog] = jfield("binlogs", [])
    deltalogs: list[FieldBinlog] = jfield("deltalogs", [])
    size: int = jfield("size", 0, always=True)
    group_id: int = jfield("group_id", 0)
    is_l0: bool = jfield("is_l0", False)
    v_channel: str = jfield("v_channel", "")
    storage_version: int = jfield("storage_version", 0)

    def log_bytes(self) -> int:
        """The sum of the sizes of every insert and delta log of the segment."""
        return sum(b.log_size for fb in self.binlogs + self.deltalogs for b in fb.binlogs)


@dataclass
class PartitionBackupInfo:
    partition_id: int = jfield("partition_id", 0)
    partition_name: str = jfield("partition_name", "")
    collection_id: int = jfield("collection_id", 0)
    segment_backups: list[SegmentBackupInfo] = jfield("segment_backups", [])
    size: int = jfield("size", 0, always=True)
    load_state: str = jfield("load_state", "")


@dataclass
class SnapshotBackupInfo:
    """Where a collection's exported snapshot bundle lives (milvus-backup master, Milvus 3.0)."""

    metadata_path: str = jfield("metadata_path", "")
    total_files: int = jfield("total_files", 0)
    total_bytes: int = jfield("total_bytes", 0)


@dataclass
class CollectionBackupInfo:
    id: str = jfield("id", "")  # the backup's ID
    collection_id: int = jfield("collection_id", 0)
    db_name: str = jfield("db_name", "")
    collection_name: str = jfield("collection_name", "")
    schema: CollectionSchema | None = jfield("schema", None)
    shards_num: int = jfield("shards_num", 0)
    consistency_level: int = jfield("consistency_level", 0)
    partition_backups: list[PartitionBackupInfo] = jfield("partition_backups", [])
    backup_timestamp: int = jfield("backup_timestamp", 0)
    size: int = jfield("size", 0, always=True)
    has_index: bool = jfield("has_index", False, always=True)
    index_infos: list[IndexInfo] = jfield("index_infos", [])
    load_state: str = jfield("load_state", "")
    backup_physical_timestamp: int = jfield("backup_physical_timestamp", 0)
    channel_checkpoints: dict[str, str] = jfield("channel_checkpoints", {})
    l0_segments: list[SegmentBackupInfo] = jfield("l0_segments", [])
    properties: list[KeyValuePair] = jfield("properties", [])
    db_id: int = jfield("db_id", 0)
    created_timestamp: int = jfield("created_timestamp", 0)
    virtual_channel_names: list[str] = jfield("virtual_channel_names", [])
    physical_channel_names: list[str] = jfield("physical_channel_names", [])
    aliases: list[str] = jfield("aliases", [])
    snapshot_backup: SnapshotBackupInfo | None = jfield("snapshot_backup", None)

    @property
    def qualified_name(self) -> str:
        """``db.collection``, or just the collection in the default database."""
        db = self.db_name or "default"
        return self.collection_name if db == "default" else f"{db}.{self.collection_name}"

    def segments(self) -> list[SegmentBackupInfo]:
        """Every segment of every partition (collection-wide L0 segments excluded)."""
        return [s for p in self.partition_backups for s in p.segment_backups]

    def all_segments(self) -> list[SegmentBackupInfo]:
        """Every segment whose objects the backup holds, collection-wide L0 ones included."""
        return self.segments() + self.l0_segments

    def row_count(self) -> int:
        """Rows stored in the binlogs (before the segments' deltas are applied)."""
        return sum(s.num_of_rows for s in self.segments())

    @property
    def meta_only(self) -> bool:
        """True when the backup recorded this collection's schema but none of its data.

        milvus-backup marks nothing: its ``meta_only`` strategy records the schema, indexes
        and partitions and skips the flush, so no backup timestamp (set only when data is
        backed up: ``metaBuilder.addPOS``, ``core/backup`` at v0.5.16) and no segment is
        recorded. A backup of an empty collection has its flush's timestamp.
        """
        return self.backup_timestamp == 0 and not self.segments() and not self.l0_segments


@dataclass
class DatabaseBackupInfo:
    """A database as milvus-backup records it (``core/backup/database_task.go``): its ID and
    properties from ``DescribeDatabase`` (Milvus >= 2.4.3), and for an encrypted one the key
    of its encryption zone (``ezk``, passed to every import of its data at restore)."""

    db_name: str = jfield("db_name", "")
    db_id: int = jfield("db_id", 0)
    properties: list[KeyValuePair] = jfield("properties", [])
    ezk: str = jfield("ezk", "", secret=True)


# ---- RBAC (core/proto/backup.proto: RBACMeta and the entities it holds) ----------------------


@dataclass
class RoleEntity:
    name: str = jfield("name", "")


@dataclass
class UserEntity:
    name: str = jfield("name", "")


@dataclass
class ObjectEntity:
    name: str = jfield("name", "")


@dataclass
class PrivilegeEntity:
    name: str = jfield("name", "")


@dataclass
class GrantorEntity:
    user: UserEntity | None = jfield("user", None)
    privilege: PrivilegeEntity | None = jfield("privilege", None)


@dataclass
class GrantEntity:
    role: RoleEntity | None = jfield("role", None)
    object: ObjectEntity | None = jfield("object", None)
    object_name: str = jfield("object_name", "")
    grantor: GrantorEntity | None = jfield("grantor", None)
    db_name: str = jfield("db_name", "")


@dataclass
class PrivilegeGroupInfo:
    group_name: str = jfield("group_name", "")
    privileges: list[PrivilegeEntity] = jfield("privileges", [])


@dataclass
class UserInfo:
    user: str = jfield("user", "")
    password: str = jfield("password", "")  # as Milvus stores it (encrypted); "" if unreadable
    roles: list[RoleEntity] = jfield("roles", [])


@dataclass
class RBACMeta:
    users: list[UserInfo] = jfield("users", [])
    roles: list[RoleEntity] = jfield("roles", [])
    grants: list[GrantEntity] = jfield("grants", [])
    privilege_groups: list[PrivilegeGroupInfo] = jfield("privilege_groups", [])


@dataclass
class BackupInfo:
    id: str = jfield("id", "")
    state_code: int = jfield("state_code", 0, always=True)  # v0.5.10+ writes 0 (deprecated)
    name: str = jfield("name", "")
    backup_timestamp: int = jfield("backup_timestamp", 0)
    collection_backups: list[CollectionBackupInfo] = jfield("collection_backups", [])
    size: int = jfield("size", 0, always=True)
    milvus_version: str = jfield("milvus_version", "")
    rbac_meta: RBACMeta | None = jfield("rbac_meta", None)  # full_meta.json only
    database_backups: list[DatabaseBackupInfo] = jfield("database_backups", [])
    format: str = jfield("format", "")  # BINLOG_FORMAT, or SNAPSHOT_FORMAT

    def require_binlog_format(self) -> None:
        """Refuse by name what this version cannot restore or verify: any format but binlogs."""
        if self.format in (BINLOG_FORMAT, "binlog"):  # milvus-backup's own name for it
            return
        what = (
            "milvus-backup's snapshot format (exported by Milvus >= 3.0 itself)"
            if self.format == SNAPSHOT_FORMAT
            else f"the format {self.format!r}"
        )
        raise UnsupportedError(
            f"backup {self.name!r} is in {what}, which this version cannot restore or verify; "
            "nothing was done: restore it with milvus-backup"
        )

    @property
    def meta_only(self) -> bool:
        """True when the backup holds collections but no data for any (``meta_only``)."""
        colls = self.collection_backups
        return bool(colls) and all(c.meta_only for c in colls)

    def ezk_of(self, db_name: str) -> str:
        """The encryption zone key recorded for database ``db_name`` ("" when none)."""
        wanted = db_name or "default"
        found = (d.ezk for d in self.database_backups if (d.db_name or "default") == wanted)
        return next(found, "")

    def public(self) -> dict[str, Any]:
        """The meta as JSON to show (an API's answer): without the databases' keys, which
        only the meta file and the imports may hold."""
        document = codec.encode(self)
        for database in document.get("database_backups", []):
            database.pop("ezk", None)
        return document


#: ``BackupInfo.format`` (``internal/meta/meta.go`` in milvus-backup master)
BINLOG_FORMAT = ""
SNAPSHOT_FORMAT = "snapshot"


# ---- the five meta files ---------------------------------------------------------------------

BACKUP_META = "backup_meta.json"
COLLECTION_META = "collection_meta.json"
PARTITION_META = "partition_meta.json"
SEGMENT_META = "segment_meta.json"
FULL_META = "full_meta.json"
#: The order milvus-backup writes them in; full_meta.json last marks a finished backup.
META_FILES = (BACKUP_META, COLLECTION_META, PARTITION_META, SEGMENT_META, FULL_META)


def to_json(document: dict[str, Any]) -> bytes:
    """Compact JSON as Go writes it (no spaces, UTF-8)."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def render_meta_files(backup: BackupInfo) -> dict[str, bytes]:
    """The five files milvus-backup writes for ``backup``, in writing order."""
    top = codec.encode(backup)
    level_backup = {k: v for k, v in top.items() if not isinstance(v, list | dict)}
    collections: list[dict[str, Any]] = []
    partitions: list[dict[str, Any]] = []
    segments: list[dict[str, Any]] = []
    for coll in backup.collection_backups:
        coll_doc = codec.encode(coll)
        coll_doc.pop("l0_segments", None)
        for part_doc in coll_doc.get("partition_backups", []):
            part_doc.pop("segment_backups", None)
        collections.append(coll_doc)
        for part in coll.partition_backups:
            part_doc = codec.encode(part)
            part_doc.pop("segment_backups", None)
            partitions.append(part_doc)
            segments.extend(codec.encode(seg) for seg in part.segment_backups)
    return {
        BACKUP_META: to_json(level_backup),
        COLLECTION_META: to_json({"infos": collections}),
        PARTITION_META: to_json({"infos": partitions}),
        SEGMENT_META: to_json({"infos": segments}),
        FULL_META: to_json(top),
    }


def parse_json(raw: bytes, where: str) -> Any:
    """Parse a meta file, turning truncation or garbage into :class:`MalformedMetaError`."""
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        problem = str(exc)
    except (ValueError, RecursionError):  # a number of thousands of digits, deep nesting
        problem = "a number too long, or nesting too deep, to be a backup's"
    raise MalformedMetaError(
        f"{where} is not valid JSON ({problem}): the backup is damaged or was not written "
        "completely; delete it and take a new one"
    )


def parse_full_meta(raw: bytes, where: str) -> BackupInfo:
    """Read ``full_meta.json``."""
    return codec.decode(BackupInfo, parse_json(raw, where), where)


def assemble_from_level_files(files: dict[str, bytes], where: str) -> BackupInfo:
    """Rebuild the tree from the four level files, as milvus-backup does without full_meta."""
    backup = codec.decode(BackupInfo, parse_json(files[BACKUP_META], where), where)
    colls = _infos(CollectionBackupInfo, files[COLLECTION_META], f"{where}/{COLLECTION_META}")
    parts = _infos(PartitionBackupInfo, files[PARTITION_META], f"{where}/{PARTITION_META}")
    segs = _infos(SegmentBackupInfo, files[SEGMENT_META], f"{where}/{SEGMENT_META}")
    for part in parts:
        part.segment_backups = [
            s
            for s in segs
            if (s.collection_id, s.partition_id) == (part.collection_id, part.partition_id)
        ]
        part.size = sum(s.size for s in part.segment_backups)
    for coll in colls:
        coll.partition_backups = [p for p in parts if p.collection_id == coll.collection_id]
        coll.size = sum(p.size for p in coll.partition_backups)
    backup.collection_backups = colls
    backup.size = sum(c.size for c in colls)
    return backup


def _infos(cls: type[codec.T], raw: bytes, where: str) -> list[codec.T]:
    doc = parse_json(raw, where)
    if not isinstance(doc, dict):
        raise MalformedMetaError(f"{where}: expected a JSON object with 'infos'")
    items = doc.get("infos") or []
    if not isinstance(items, list):
        raise MalformedMetaError(f"{where}.infos: expected an array")
    return [codec.decode(cls, item, f"{where}.infos[{i}]") for i, item in enumerate(items)]
