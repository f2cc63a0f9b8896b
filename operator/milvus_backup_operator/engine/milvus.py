"""A small gRPC client for the Milvus calls a physical backup and restore need.

It speaks to the proxy with pymilvus's generated protobuf stubs, as milvus-backup does in Go,
so schemas, field IDs and default values pass through exactly. Every call has a deadline and
every failure becomes an engine error that names what to check.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import grpc
from pymilvus.grpc_gen import common_pb2, milvus_pb2, milvus_pb2_grpc, schema_pb2

from .capabilities import Capabilities
from .config import MilvusConfig, Timeouts
from .errors import BackupError, NotFoundError, OperationError, UnreachableError
from .milvus_calls import MILVUS_CALLS
from .selection import DEFAULT_DB


@dataclass(frozen=True)
class SegmentInfo:
    segment_id: int
    partition_id: int
    num_rows: int
    state: int
    level: int  # 0 legacy, 1 L0 (deletes only), 2 L1, 3 L2
    storage_version: int = 0  # 0/1 classic binlogs, 2 storage v2 (Milvus 2.6)

    @property
    def is_flushed(self) -> bool:
        return bool(self.state == common_pb2.SegmentState.Flushed)

    @property
    def is_l0(self) -> bool:
        """Deletes only (Milvus >= 2.4); partition ``ALL_PARTITIONS`` when collection-wide."""
        return bool(self.level == common_pb2.SegmentLevel.L0)


#: the partition ID of a collection-wide L0 segment (milvus-backup's ``_allPartitionID``)
ALL_PARTITIONS = -1


@dataclass(frozen=True)
class FlushResult:
    segment_ids: list[int]
    flush_ts: int
    seal_time: int
    channel_checkpoints: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DatabaseDescription:
    db_id: int
    properties: list[tuple[str, str]]  # in Milvus's order


@dataclass(frozen=True)
class ImportState:
    state: str  # pending, running, completed, failed
    row_count: int
    reason: str


_IMPORT_STATES = {
    common_pb2.ImportPending: "pending",
    common_pb2.ImportStarted: "running",
    common_pb2.ImportPersisted: "running",
    common_pb2.ImportFlushed: "running",
    common_pb2.ImportCompleted: "completed",
    common_pb2.ImportFailed: "failed",
    common_pb2.ImportFailedAndCleaned: "failed",
}


class Milvus:
    """One connection to a Milvus proxy; use :func:`connect` to open it."""

    def __init__(self, config: MilvusConfig, timeouts: Timeouts) -> None:
        self.config = config
        self.timeouts = timeouts
        self._channel = _open_channel(config)
        self._stub = milvus_pb2_grpc.MilvusServiceStub(self._channel)
        self._auth: list[tuple[str, str]] = []
        if config.user:
            token = base64.b64encode(f"{config.user}:{config.password}".encode()).decode()
            self._auth = [("authorization", token)]

    def close(self) -> None:
        self._channel.close()

    # ---- server ---------------------------------------------------------------------------

    def version(self) -> str:
        response = self._call("GetVersion", milvus_pb2.GetVersionRequest(), DEFAULT_DB)
        return str(response.version)

    @cached_property
    def capabilities(self) -> Capabilities:
        """What this Milvus can do, by its version (read once)."""
        return Capabilities.of(self.version())

    def list_databases(self) -> list[str]:
        try:
            response = self._call("ListDatabases", milvus_pb2.ListDatabasesRequest(), DEFAULT_DB)
        except OperationError:
            return [DEFAULT_DB]  # Milvus before 2.2.9 has no databases
        return list(response.db_names)

    def describe_database(self, db: str) -> DatabaseDescription:
        """A database's ID and properties (``DescribeDatabase``, Milvus >= 2.4.3)."""
        request = milvus_pb2.DescribeDatabaseRequest(db_name=db)
        response = self._call("DescribeDatabase", request, db)
        properties = [(kv.key, kv.value) for kv in response.properties]
        return DatabaseDescription(int(response.dbID), properties)

    def create_database(self, db: str) -> None:
        self._call("CreateDatabase", milvus_pb2.CreateDatabaseRequest(db_name=db), DEFAULT_DB)

    # ---- users, roles and grants ----------------------------------------------------------

    def backup_rbac(self) -> milvus_pb2.RBACMeta | None:
        """Every user (with its stored password), role, grant and privilege group, in one
        call; None from a Milvus without ``BackupRBAC`` (before 2.5)."""
        request = milvus_pb2.BackupRBACMetaRequest()
        response = self._call_if_served("BackupRBAC", request)
        return None if response is None else response.RBAC_meta

    def restore_rbac(self, meta: milvus_pb2.RBACMeta) -> None:
        """Create what ``meta`` holds (``RestoreRBAC``, Milvus >= 2.5)."""
        self._call("RestoreRBAC", milvus_pb2.RestoreRBACMetaRequest(RBAC_meta=meta), DEFAULT_DB)

    def list_users(self) -> list[str]:
        response = self._call("ListCredUsers", milvus_pb2.ListCredUsersRequest(), DEFAULT_DB)
        return list(response.usernames)

    def users_and_roles(self) -> dict[str, list[str]]:
        """Each user and the roles bound to it."""
        request = milvus_pb2.SelectUserRequest(include_role_info=True)
        results = self._call("SelectUser", request, DEFAULT_DB).results
        return {r.user.name: [role.name for role in r.roles] for r in results}

    def roles(self) -> list[str]:
        results = self._call("SelectRole", milvus_pb2.SelectRoleRequest(), DEFAULT_DB).results
        return [r.role.name for r in results]

    def grants(self, role: str, db: str) -> list[milvus_pb2.GrantEntity]:
        """The privileges granted to ``role`` in database ``db``."""
        entity = milvus_pb2.GrantEntity(role=milvus_pb2.RoleEntity(name=role), db_name=db)
        request = milvus_pb2.SelectGrantRequest(entity=entity)
        return list(self._call("SelectGrant", request, db).entities)

    def create_role(self, role: str) -> None:
        entity = milvus_pb2.RoleEntity(name=role)
        self._call("CreateRole", milvus_pb2.CreateRoleRequest(entity=entity), DEFAULT_DB)

    def bind_role(self, user: str, role: str) -> None:
        request = milvus_pb2.OperateUserRoleRequest(
            username=user, role_name=role, type=milvus_pb2.OperateUserRoleType.AddUserToRole
        )
        self._call("OperateUserRole", request, DEFAULT_DB)

    def grant(self, grant: milvus_pb2.GrantEntity) -> None:
        request = milvus_pb2.OperatePrivilegeRequest(
            entity=grant, type=milvus_pb2.OperatePrivilegeType.Grant
        )
        self._call("OperatePrivilege", request, grant.db_name or DEFAULT_DB)

    # ---- collections ----------------------------------------------------------------------

    def list_collections(self, db: str) -> list[str]:
        request = milvus_pb2.ShowCollectionsRequest(db_name=db)
        return list(self._call("ShowCollections", request, db).collection_names)

    def has_collection(self, db: str, name: str) -> bool:
        request = milvus_pb2.HasCollectionRequest(db_name=db, collection_name=name)
        return bool(self._call("HasCollection", request, db).value)

    def collection_id(self, db: str, name: str) -> int | None:
        """The ID of the collection of that name now; None when there is none (what tells a
        collection a restore created from one that took its name since)."""
        try:
            if not self.has_collection(db, name):
                return None
            return int(self.describe_collection(db, name).collectionID)
        except NotFoundError:  # dropped between the two calls, or its database is gone
            return None

    def describe_collection(self, db: str, name: str) -> milvus_pb2.DescribeCollectionResponse:
        request = milvus_pb2.DescribeCollectionRequest(db_name=db, collection_name=name)
        return self._call("DescribeCollection", request, db)

    def create_collection(
        self,
        db: str,
        schema: schema_pb2.CollectionSchema,
        *,
        shards_num: int,
        consistency_level: int,
        properties: dict[str, str],
        num_partitions: int = 0,
    ) -> None:
        request = milvus_pb2.CreateCollectionRequest(
            db_name=db,
            collection_name=schema.name,
            schema=schema.SerializeToString(),
            shards_num=shards_num,
            consistency_level=consistency_level,
            properties=[common_pb2.KeyValuePair(key=k, value=v) for k, v in properties.items()],
            num_partitions=num_partitions,
        )
        self._call("CreateCollection", request, db)

    def add_field(self, db: str, collection: str, field: schema_pb2.FieldSchema) -> None:
        """Add a field to a collection (``AddCollectionField``, Milvus >= 2.6)."""
        request = milvus_pb2.AddCollectionFieldRequest(
            db_name=db, collection_name=collection, schema=field.SerializeToString()
        )
        self._call("AddCollectionField", request, db)

    def collection_behind(self, db: str, name: str) -> str | None:
        """The collection ``name`` resolves to (itself, or an alias's), or None."""
        try:
            return str(self.describe_collection(db, name).schema.name) or None
        except NotFoundError:
            return None

    def create_alias(self, db: str, collection: str, alias: str) -> None:
        request = milvus_pb2.CreateAliasRequest(db_name=db, collection_name=collection, alias=alias)
        self._call("CreateAlias", request, db)

    def aliases_of(self, db: str, name: str) -> list[str]:
        """The aliases that point at collection ``name``."""
        return list(self.describe_collection(db, name).aliases)

    def alter_alias(self, db: str, collection: str, alias: str) -> None:
        """Point an existing alias at ``collection`` (one metadata change: readers through
        the alias move from one collection to the other at once)."""
        request = milvus_pb2.AlterAliasRequest(db_name=db, collection_name=collection, alias=alias)
        self._call("AlterAlias", request, db)

    def rename_collection(self, db: str, old: str, new: str) -> None:
        """Rename within one database; the collection keeps its ID, data, load and aliases."""
        request = milvus_pb2.RenameCollectionRequest(db_name=db, oldName=old, newName=new)
        self._call("RenameCollection", request, db)

    def drop_collection(self, db: str, name: str) -> None:
        request = milvus_pb2.DropCollectionRequest(db_name=db, collection_name=name)
        self._call("DropCollection", request, db)

    def partitions(self, db: str, name: str) -> dict[str, int]:
        """Partition name to partition ID."""
        request = milvus_pb2.ShowPartitionsRequest(db_name=db, collection_name=name)
        response = self._call("ShowPartitions", request, db)
        return dict(zip(response.partition_names, response.partitionIDs, strict=True))

    def create_partition(self, db: str, collection: str, partition: str) -> None:
        request = milvus_pb2.CreatePartitionRequest(
            db_name=db, collection_name=collection, partition_name=partition
        )
        self._call("CreatePartition", request, db)

    # ---- data -----------------------------------------------------------------------------

    def flush(self, db: str, name: str) -> FlushResult:
        """Seal and persist the collection's segments, and wait until they are flushed."""
        request = milvus_pb2.FlushRequest(db_name=db, collection_names=[name])
        response = self._call("Flush", request, db, timeout=self.timeouts.flush)
        segment_ids = list(response.coll_segIDs[name].data)
        result = FlushResult(
            segment_ids=segment_ids,
            flush_ts=int(response.coll_flush_ts[name]),
            seal_time=int(response.coll_seal_times[name]),
            channel_checkpoints={
                channel: base64.b64encode(position.SerializeToString()).decode()
                for channel, position in response.channel_cps.items()
            },
        )
        state_request = milvus_pb2.GetFlushStateRequest(
            segmentIDs=segment_ids, flush_ts=result.flush_ts, db_name=db, collection_name=name
        )
        self._poll(
            lambda: bool(self._call("GetFlushState", state_request, db).flushed),
            self.timeouts.flush,
            f"flush of collection {name!r}",
        )
        return result

    def persistent_segments(self, db: str, name: str) -> list[SegmentInfo]:
        request = milvus_pb2.GetPersistentSegmentInfoRequest(dbName=db, collectionName=name)
        response = self._call("GetPersistentSegmentInfo", request, db)
        return [
            SegmentInfo(s.segmentID, s.partitionID, s.num_rows, s.state, s.level,
                        s.storage_version)
            for s in response.infos
        ]  # fmt: skip

    def import_backup(
        self,
        db: str,
        collection: str,
        partition: str,
        paths: list[str],
        *,
        l0: bool = False,
        storage_version: int = 0,
        ezk: str = "",
    ) -> int:
        """Start a bulk import of binlog directories in backup mode (of an L0 segment's
        delta logs with ``l0``); return the task ID. The options are milvus-backup's
        (``internal/client/milvus/grpc.go``, ``GrpcBulkInsertInput.opts``)."""
        options = import_options(l0=l0, storage_version=storage_version, ezk=ezk)
        request = milvus_pb2.ImportRequest(
            db_name=db,
            collection_name=collection,
            partition_name=partition,
            files=paths,
            options=[common_pb2.KeyValuePair(key=k, value=v) for k, v in options.items()],
        )
        response = self._call("Import", request, db)
        if not response.tasks:
            raise OperationError(f"Milvus returned no import task for {collection}/{partition}")
        return int(response.tasks[0])

    def import_state(self, task_id: int) -> ImportState:
        request = milvus_pb2.GetImportStateRequest(task=task_id)
        response = self._call("GetImportState", request, DEFAULT_DB)
        infos = {kv.key: kv.value for kv in response.infos}
        return ImportState(
            state=_IMPORT_STATES.get(response.state, "running"),
            row_count=int(response.row_count),
            reason=infos.get("failed_reason", ""),
        )

    def unfinished_imports(self, db: str, collection: str) -> int:
        """How many import tasks into ``collection`` are still pending or running."""
        request = milvus_pb2.ListImportTasksRequest(db_name=db, collection_name=collection)
        tasks = self._call("ListImportTasks", request, db).tasks
        return sum(_IMPORT_STATES.get(t.state, "running") in ("pending", "running") for t in tasks)

    def wait_imports_settled(self, db: str, collection: str) -> None:
        """Wait until no import into ``collection`` is in flight (e.g. a dead process's)."""
        self._poll(
            lambda: self.unfinished_imports(db, collection) == 0,
            self.timeouts.import_job,
            f"imports into {collection!r} to settle",
        )

    def count_rows(self, db: str, name: str) -> int:
        """``count(*)`` of a loaded collection, strongly consistent (every write so far)."""
        request = milvus_pb2.QueryRequest(
            db_name=db,
            collection_name=name,
            expr="",
            output_fields=["count(*)"],
            consistency_level=common_pb2.ConsistencyLevel.Strong,
            use_default_consistency=False,
        )
        response = self._call("Query", request, db)
        for field_data in response.fields_data:
            if field_data.field_name == "count(*)":
                return int(field_data.scalars.long_data.data[0])
        raise OperationError(f"Milvus answered count(*) of {name!r} without a count")

    # ---- indexes and loading --------------------------------------------------------------

    def describe_indexes(self, db: str, name: str) -> list[milvus_pb2.IndexDescription]:
        request = milvus_pb2.DescribeIndexRequest(db_name=db, collection_name=name)
        try:
            return list(self._call("DescribeIndex", request, db).index_descriptions)
        except NotFoundError:
            return []

    def create_index(
        self, db: str, collection: str, field_name: str, index_name: str, params: dict[str, str]
    ) -> None:
        request = milvus_pb2.CreateIndexRequest(
            db_name=db,
            collection_name=collection,
            field_name=field_name,
            index_name=index_name,
            extra_params=[common_pb2.KeyValuePair(key=k, value=v) for k, v in params.items()],
        )
        self._call("CreateIndex", request, db)

    def wait_indexes_built(self, db: str, collection: str) -> None:
        def built() -> bool:
            indexes = self.describe_indexes(db, collection)
            for index in indexes:
                if index.state == common_pb2.IndexState.Failed:
                    raise OperationError(
                        f"index {index.index_name!r} on {collection!r} failed to build: "
                        f"{index.index_state_fail_reason}"
                    )
            return all(i.state == common_pb2.IndexState.Finished for i in indexes)

        self._poll(built, self.timeouts.index, f"index build on {collection!r}")

    def loading_progress(self, db: str, name: str) -> int:
        request = milvus_pb2.GetLoadingProgressRequest(db_name=db, collection_name=name)
        try:
            return int(self._call("GetLoadingProgress", request, db).progress)
        except OperationError:
            return 0  # not loaded (Milvus reports this as an error)

    def load_collection(self, db: str, name: str) -> None:
        request = milvus_pb2.LoadCollectionRequest(db_name=db, collection_name=name)
        self._call("LoadCollection", request, db)
        self._poll(
            lambda: self.loading_progress(db, name) >= 100,
            self.timeouts.load,
            f"load of collection {name!r}",
        )

    # ---- plumbing -------------------------------------------------------------------------

    def _call(self, method: str, request: Any, db: str, timeout: float | None = None) -> Any:
        metadata = [*self._auth, ("dbname", db)]
        deadline = timeout or self.timeouts.rpc
        try:
            with MILVUS_CALLS.call():
                response = getattr(self._stub, method)(request, timeout=deadline, metadata=metadata)
        except grpc.RpcError as exc:
            raise self._rpc_error(exc, method, deadline) from None
        status = response if isinstance(response, common_pb2.Status) else response.status
        _check_status(status, method)
        return response

    def _call_if_served(self, method: str, request: Any) -> Any | None:
        """``_call``, or None when this Milvus does not know ``method`` (an older version)."""
        try:
            with MILVUS_CALLS.call():
                response = getattr(self._stub, method)(
                    request,
                    timeout=self.timeouts.rpc,
                    metadata=[*self._auth, ("dbname", DEFAULT_DB)],
                )
        except grpc.RpcError as exc:
            if isinstance(exc, grpc.Call) and exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                return None
            raise self._rpc_error(exc, method, self.timeouts.rpc) from None
        _check_status(response.status, method)
        return response

    def _rpc_error(self, exc: grpc.RpcError, method: str, deadline: float) -> BackupError:
        code = exc.code() if isinstance(exc, grpc.Call) else None
        where = f"Milvus at {self.config.endpoint}"
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            return UnreachableError(
                f"cannot reach {where} ({method} got no answer within {deadline:g}s): check "
                "milvus.address, milvus.port and milvus.tlsMode, and that Milvus is up"
            )
        if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            return UnreachableError(f"{where} refused the credentials: check user and password")
        details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
        return OperationError(f"{where}: {method} failed: {details}")

    def _poll(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.05  # a flush is often done in a fraction of a second
        while not done():
            if time.monotonic() > deadline:
                raise OperationError(
                    f"{what} did not finish within {timeout:g}s: raise the timeout in the "
                    "configuration (timeouts) or check Milvus's health"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)


def import_options(*, l0: bool, storage_version: int, ezk: str = "") -> dict[str, str]:
    """A backup-mode import's options, gRPC and REST alike (milvus-backup's ``opts``); an
    encrypted database's key as ``ezk``, which Milvus reads to decrypt the binlogs
    (``hookutil.GetReadStoragePluginContext``)."""
    options = {"skip_disk_quota_check": "true", ("l0_import" if l0 else "backup"): "true"}
    if storage_version > 0:
        options["storage_version"] = str(storage_version)
    if ezk:
        options["ezk"] = ezk
    return options


@contextmanager
def connect(config: MilvusConfig, timeouts: Timeouts) -> Iterator[Milvus]:
    """Open a connection and prove it works (GetVersion within the connect timeout)."""
    client = Milvus(config, timeouts)
    try:
        client._call("GetVersion", milvus_pb2.GetVersionRequest(), DEFAULT_DB, timeouts.connect)
        yield client
    finally:
        client.close()


def _open_channel(config: MilvusConfig) -> grpc.Channel:
    options = [("grpc.max_receive_message_length", 256 * 1024 * 1024)]
    if config.tls_mode == 0:
        return grpc.insecure_channel(config.endpoint, options=options)
    ca = _read(config.ca_cert_path)
    cert = _read(config.mtls_cert_path) if config.tls_mode == 2 else None
    key = _read(config.mtls_key_path) if config.tls_mode == 2 else None
    credentials = grpc.ssl_channel_credentials(ca, key, cert)
    if config.server_name:
        options.append(("grpc.ssl_target_name_override", config.server_name))  # type: ignore[arg-type]
    return grpc.secure_channel(config.endpoint, credentials, options=options)


def _read(path: str) -> bytes | None:
    return Path(path).read_bytes() if path else None


_NOT_FOUND_CODES = {4, 100, 200}  # CollectionNotExists, CollectionNotFound, PartitionNotFound
_NOT_FOUND_WORDS = ("not found", "not exist", "doesn't exist", "does not exist")


def _check_status(status: common_pb2.Status, method: str) -> None:
    if status.error_code == 0 and status.code == 0:
        return
    reason = status.reason or common_pb2.ErrorCode.Name(status.error_code)
    lowered = reason.lower()
    if status.error_code in _NOT_FOUND_CODES or any(w in lowered for w in _NOT_FOUND_WORDS):
        raise NotFoundError(f"Milvus {method}: {reason}")
    if "auth" in lowered or "permission" in lowered or "credential" in lowered:
        raise UnreachableError(f"Milvus {method} refused: {reason}: check user and password")
    raise OperationError(f"Milvus {method} failed: {reason}")
