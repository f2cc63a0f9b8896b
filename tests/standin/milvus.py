"""A stand-in Milvus 2.5/2.6 gRPC server: the calls a backup and a restore make, answered as
that Milvus answers them, over pymilvus's generated service.

What it follows (milvus-io/milvus):
- ``GetPersistentSegmentInfo`` reports each flushed segment's ``level`` (L0 = 1 for delete-only
  segments, collection-wide ones in partition -1) and, from 2.6, its ``storage_version``
  (``internal/proxy/impl.go``; ``milvus.proto`` PersistentSegmentInfo).
- ``Import`` in backup mode takes the options ``backup``/``l0_import``,
  ``skip_disk_quota_check`` and ``storage_version`` (``internal/util/importutilv2/option.go``;
  milvus-backup's ``internal/client/milvus/grpc.go``): its ``files`` are the paths of one
  import file (``GrpcClient.BulkInsert`` sends ``[insert dir, delta dir]``), refused or read
  from the bucket as Milvus does
  (``tests/standin/imports.py``), and ``GetImportState`` reports the rows Milvus would
  import, or the job's failure and its ``failed_reason``.
- ``Flush`` answers the segment IDs, flush timestamp and seal time per collection, and the
  checkpoint of its one virtual channel (``channel_cps``), named as rootcoord names them
  (``<pchannel>_<collectionID>v<shard>``, ``internal/rootcoord/create_collection_task.go``;
  milvus-backup's fixtures show ``by-dev-rootcoord-dml_0_<collectionID>v0``).
- ``DescribeDatabase`` (2.4.3) answers a database's ``dbID`` and ``properties``, those of an
  encryption zone being ``cipher.enabled``, ``cipher.ezID`` and ``cipher.key``
  (``internal/proxy/task_database.go``; ``pkg/util/hookutil/cipher.go``
  ``GetDBCipherProperties``); an unknown database fails with code 800, "database not found"
  (``pkg/util/merr``). Collections live in a database each (``db``).

The objects live in the real S3 server, laid out as Milvus writes them
(``<root>/insert_log/<c>/<p>/<s>/<field>/<log>``, ``<root>/delta_log/<c>/<p>/<s>/<log>``);
the test writes them. Every request the engine sends is recorded for the test to assert.
"""

from __future__ import annotations

import itertools
import threading
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from pymilvus.grpc_gen import common_pb2, milvus_pb2, milvus_pb2_grpc, msg_pb2, schema_pb2

from . import imports

OK = common_pb2.Status()
FLUSH_TS = 462000000000000000


def v_channel(collection_id: int) -> str:
    """The one virtual channel of a stand-in collection (one shard, pchannel ``dml_0``)."""
    return f"by-dev-rootcoord-dml_0_{collection_id}v0"


@dataclass
class Segment:
    segment_id: int
    partition_id: int
    rows: int
    level: int = common_pb2.SegmentLevel.L1
    storage_version: int = 0


@dataclass(frozen=True)
class ImportJob:
    """What an accepted import comes to: the rows imported, or the reason it failed."""

    rows: int
    reason: str = ""


@dataclass
class Collection:
    collection_id: int
    name: str
    schema: schema_pb2.CollectionSchema
    partitions: dict[str, int]
    segments: list[Segment] = field(default_factory=list)
    db: str = "default"
    properties: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Database:
    db_id: int
    properties: list[tuple[str, str]] = field(default_factory=list)


class StandInMilvus(milvus_pb2_grpc.MilvusServiceServicer):  # type: ignore[misc]
    """Serve ``collections`` as Milvus ``version`` does; record every call."""

    def __init__(
        self, version: str, collections: list[Collection], store: imports.Store | None = None
    ) -> None:
        self.version = version
        self.collections = {c.name: c for c in collections}
        self.store = store  # Milvus's bucket, which imports read
        self.calls: list[tuple[str, Any]] = []
        self.imports: dict[int, ImportJob] = {}
        self.databases = {"default": Database(1)}
        self._ids = itertools.count(9000)
        self._lock = threading.Lock()
        self._server: grpc.Server | None = None
        self.port = 0

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self) -> StandInMilvus:
        self._server = grpc.server(futures.ThreadPoolExecutor(8))
        milvus_pb2_grpc.add_MilvusServiceServicer_to_server(self, self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(0)

    def requests(self, method: str) -> list[Any]:
        return [request for name, request in self.calls if name == method]

    def _record(self, method: str, request: Any) -> None:
        with self._lock:
            self.calls.append((method, request))

    # ---- the calls ------------------------------------------------------------------------

    def GetVersion(self, request: Any, context: Any) -> Any:  # noqa: N802
        return milvus_pb2.GetVersionResponse(status=OK, version=self.version)

    def ListDatabases(self, request: Any, context: Any) -> Any:  # noqa: N802
        return milvus_pb2.ListDatabasesResponse(status=OK, db_names=sorted(self.databases))

    def DescribeDatabase(self, request: Any, context: Any) -> Any:  # noqa: N802
        self._record("DescribeDatabase", request)
        found = self.databases.get(request.db_name)
        if found is None:
            reason = f"database not found[database={request.db_name}]"
            status = common_pb2.Status(error_code=common_pb2.UnexpectedError, code=800,
                                       reason=reason)  # fmt: skip
            return milvus_pb2.DescribeDatabaseResponse(status=status)
        properties = [common_pb2.KeyValuePair(key=k, value=v) for k, v in found.properties]
        return milvus_pb2.DescribeDatabaseResponse(
            status=OK, db_name=request.db_name, dbID=found.db_id, properties=properties
        )

    def CreateDatabase(self, request: Any, context: Any) -> Any:  # noqa: N802
        self._record("CreateDatabase", request)
        self.databases.setdefault(request.db_name, Database(next(self._ids)))
        return OK

    def ShowCollections(self, request: Any, context: Any) -> Any:  # noqa: N802
        db = request.db_name or "default"
        names = sorted(c.name for c in self.collections.values() if c.db == db)
        return milvus_pb2.ShowCollectionsResponse(status=OK, collection_names=names)

    def HasCollection(self, request: Any, context: Any) -> Any:  # noqa: N802
        found = request.collection_name in self.collections
        return milvus_pb2.BoolResponse(status=OK, value=found)

    def DescribeCollection(self, request: Any, context: Any) -> Any:  # noqa: N802
        found = self.collections.get(request.collection_name)
        if found is None:
            reason = f"collection not found[collection={request.collection_name}]"
            status = common_pb2.Status(error_code=common_pb2.CollectionNotExists, code=100,
                                       reason=reason)  # fmt: skip
            return milvus_pb2.DescribeCollectionResponse(status=status)
        return milvus_pb2.DescribeCollectionResponse(
            status=OK,
            schema=found.schema,
            collectionID=found.collection_id,
            collection_name=found.name,
            shards_num=1,
            consistency_level=common_pb2.ConsistencyLevel.Bounded,
            db_name=found.db,
            properties=[common_pb2.KeyValuePair(key=k, value=v) for k, v in found.properties],
        )

    def DescribeIndex(self, request: Any, context: Any) -> Any:  # noqa: N802
        status = common_pb2.Status(error_code=common_pb2.IndexNotExist, code=700,
                                   reason="index not found")  # fmt: skip
        return milvus_pb2.DescribeIndexResponse(status=status)

    def GetLoadingProgress(self, request: Any, context: Any) -> Any:  # noqa: N802
        return milvus_pb2.GetLoadingProgressResponse(status=OK, progress=0)

    def ShowPartitions(self, request: Any, context: Any) -> Any:  # noqa: N802
        found = self.collections[request.collection_name]
        return milvus_pb2.ShowPartitionsResponse(
            status=OK,
            partition_names=list(found.partitions),
            partitionIDs=list(found.partitions.values()),
        )

    def Flush(self, request: Any, context: Any) -> Any:  # noqa: N802
        self._record("Flush", request)
        (name,) = request.collection_names
        segments = [s.segment_id for s in self.collections[name].segments]
        channel = v_channel(self.collections[name].collection_id)
        return milvus_pb2.FlushResponse(
            status=OK,
            db_name="default",
            coll_segIDs={name: schema_pb2.LongArray(data=segments)},
            coll_flush_ts={name: FLUSH_TS},
            coll_seal_times={name: 1764590000},
            channel_cps={channel: msg_pb2.MsgPosition(channel_name=channel, timestamp=FLUSH_TS)},
        )

    def GetFlushState(self, request: Any, context: Any) -> Any:  # noqa: N802
        return milvus_pb2.GetFlushStateResponse(status=OK, flushed=True)

    def GetPersistentSegmentInfo(self, request: Any, context: Any) -> Any:  # noqa: N802
        found = self.collections[request.collectionName]
        infos = [
            milvus_pb2.PersistentSegmentInfo(
                segmentID=s.segment_id,
                collectionID=found.collection_id,
                partitionID=s.partition_id,
                num_rows=s.rows,
                state=common_pb2.SegmentState.Flushed,
                level=s.level,
                storage_version=s.storage_version,
            )
            for s in found.segments
        ]
        return milvus_pb2.GetPersistentSegmentInfoResponse(status=OK, infos=infos)

    def CreateCollection(self, request: Any, context: Any) -> Any:  # noqa: N802
        """Fields numbered from 100 in their order, ``$meta`` last, whatever IDs the request
        carries (``internal/rootcoord/create_collection_task.go``: ``assignFieldAndFunctionID``,
        ``appendDynamicField``)."""
        self._record("CreateCollection", request)
        schema = schema_pb2.CollectionSchema.FromString(request.schema)
        for number, f in enumerate(schema.fields):
            f.fieldID = 100 + number
        if schema.enable_dynamic_field:
            schema.fields.add(fieldID=100 + len(schema.fields), name="$meta", data_type=23,
                              is_dynamic=True)  # fmt: skip
        created = Collection(next(self._ids), request.collection_name, schema, {"_default": 1},
                             db=request.db_name or "default")  # fmt: skip
        self.collections[request.collection_name] = created
        return OK

    def AddCollectionField(self, request: Any, context: Any) -> Any:  # noqa: N802
        """Milvus 2.6: the new field takes the next ID (``internal/rootcoord``
        ``add_field_task.go``)."""
        self._record("AddCollectionField", request)
        schema = self.collections[request.collection_name].schema
        field = schema_pb2.FieldSchema.FromString(request.schema)
        field.fieldID = max(f.fieldID for f in schema.fields) + 1
        schema.fields.append(field)
        return OK

    def CreatePartition(self, request: Any, context: Any) -> Any:  # noqa: N802
        self._record("CreatePartition", request)
        found = self.collections[request.collection_name]
        found.partitions[request.partition_name] = next(self._ids)
        return OK

    def DropCollection(self, request: Any, context: Any) -> Any:  # noqa: N802
        self._record("DropCollection", request)
        self.collections.pop(request.collection_name, None)
        return OK

    def Import(self, request: Any, context: Any) -> Any:  # noqa: N802
        self._record("Import", request)
        options = {kv.key: kv.value for kv in request.options}
        try:
            job = self.start_import(
                request.collection_name, request.partition_name, [list(request.files)], options
            )
        except imports.RefusedError as exc:
            status = common_pb2.Status(error_code=common_pb2.UnexpectedError, code=exc.code,
                                       reason=exc.reason)  # fmt: skip
            return milvus_pb2.ImportResponse(status=status)
        task = next(self._ids)
        self.imports[task] = job
        return milvus_pb2.ImportResponse(status=OK, tasks=[task])

    def GetImportState(self, request: Any, context: Any) -> Any:  # noqa: N802
        job = self.imports[request.task]
        if job.reason:
            reason = common_pb2.KeyValuePair(key="failed_reason", value=job.reason)
            return milvus_pb2.GetImportStateResponse(
                status=OK, state=common_pb2.ImportFailed, infos=[reason]
            )
        return milvus_pb2.GetImportStateResponse(
            status=OK, state=common_pb2.ImportCompleted, row_count=job.rows
        )

    def start_import(
        self, name: str, partition: str, files: list[list[str]], options: dict[str, str]
    ) -> ImportJob:
        """Milvus's answer to an import of ``files`` (one list of paths per import file):
        :class:`imports.RefusedError` for the call, else the job's outcome."""
        if self.store is None:
            raise RuntimeError("the stand-in Milvus was given no bucket (store) to import from")
        found = self.collections.get(name)
        target = imports.Target(name, found.schema, found.partitions) if found else None
        kept = imports.check_request(target, name, partition, options, files)
        if not imports.is_set(options, "backup"):
            return _outcome(lambda: imports.read_l0(self.store, kept, self.version_tuple()) or 0)
        assert target is not None
        segments = imports.segment_files(self.store, kept)
        return _outcome(lambda: self._backup_rows(target, segments, options))

    def _backup_rows(
        self, target: imports.Target, segments: list[list[str]], options: dict[str, str]
    ) -> int:
        assert self.store is not None
        version, window = int(options.get("storage_version") or 0), imports.time_range(options)
        return sum(imports.segment_rows(self.store, target, version, s, window) for s in segments)

    def version_tuple(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self.version.lstrip("v").split("-")[0].split("."))

    def ListImportTasks(self, request: Any, context: Any) -> Any:  # noqa: N802
        return milvus_pb2.ListImportTasksResponse(status=OK)


def _outcome(run: Any) -> ImportJob:
    try:
        return ImportJob(int(run()))
    except imports.FailedError as exc:
        return ImportJob(0, str(exc))


class StandInRest:
    """Milvus's REST import API beside the stand-in (Milvus serves it on its gRPC port; here
    it has a port of its own): ``internal/distributed/proxy/httpserver/handler_v2.go``, as
    milvus-backup's ``internal/client/milvus/restful.go`` calls it. Jobs complete at once."""

    def __init__(self, milvus: StandInMilvus) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.milvus = milvus
        self.jobs: dict[str, ImportJob] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                import json

                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                milvus._record("REST " + self.path, body)
                answer = outer.answer(self.path, body)
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def answer(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if path.endswith("/jobs/import/create"):
            try:
                outcome = self.milvus.start_import(
                    body["collectionName"], body.get("partitionName", ""), body["files"],
                    body.get("options", {}),
                )  # fmt: skip
            except imports.RefusedError as exc:
                return {"code": exc.code, "message": exc.reason}
            job = str(next(self.milvus._ids))
            self.jobs[job] = outcome
            return {"code": 0, "data": {"jobId": job}}
        if path.endswith("/jobs/import/describe"):
            done: ImportJob = self.jobs[body["jobId"]]
            state = "Failed" if done.reason else "Completed"
            data = {"jobId": body["jobId"], "state": state, "progress": 100, "reason": done.reason,
                    "importedRows": done.rows, "totalRows": done.rows}  # fmt: skip
            return {"code": 0, "data": data}
        return {"code": 404, "message": f"no such path {path}"}

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class SegmentLogs:
    """The logs a Milvus >= 2.5.8 names for one segment in its meta: insert log IDs by field
    (storage v2: by column group), delta log IDs."""

    inserts: dict[int, list[int]]
    deltas: list[int] = field(default_factory=list)


class StandInSegmentsRest(StandInRest):
    """Also serves ``POST /v2/vectordb/segments/describe`` (Milvus >= 2.5.8, PR #40464) as
    ``internal/distributed/proxy/httpserver/handler_v2.go`` ``getSegmentsInfo`` does: body
    ``dbName``/``collectionId``/``segmentIds``; ``data.segmentInfos`` with, per segment, its
    IDs, ``vChannel``, ``numRows``, ``state``, ``level``, ``isSorted`` and ``insertLogs``/
    ``deltaLogs``/``statsLogs`` as ``{fieldID, logIDs}`` lists. A segment datacoord does not
    know fails the whole request with code 600, "segment not found" (``pkg/util/merr``), as
    ``wrapperProxy`` reports a failed call: HTTP 200 with the code. The named logs are what
    the test puts in ``logs``, Milvus's meta, whatever the bucket holds."""

    def __init__(self, milvus: StandInMilvus) -> None:
        super().__init__(milvus)
        self.logs: dict[int, SegmentLogs] = {}

    def answer(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if not path.endswith("/segments/describe"):
            return super().answer(path, body)
        found = {
            s.segment_id: (c, s)
            for c in self.milvus.collections.values()
            if c.collection_id == body["collectionId"]
            for s in c.segments
        }
        infos = []
        for segment_id in body["segmentIds"]:
            if segment_id not in found or segment_id not in self.logs:
                message = f"segment not found[segment={segment_id}]"
                return {"code": 600, "message": message, "data": {}}
            infos.append(self._info(*found[segment_id], self.logs[segment_id]))
        return {"code": 0, "data": {"segmentInfos": infos}}

    @staticmethod
    def _info(collection: Collection, segment: Segment, logs: SegmentLogs) -> dict[str, Any]:
        return {
            "segmentID": segment.segment_id,
            "collectionID": collection.collection_id,
            "partitionID": segment.partition_id,
            "vChannel": v_channel(collection.collection_id),
            "numRows": segment.rows,
            "state": common_pb2.SegmentState.Flushed,
            "level": segment.level,
            "isSorted": True,
            "insertLogs": [{"fieldID": f, "logIDs": ids} for f, ids in logs.inserts.items()],
            # one FieldBinlog of the primary key (``syncmgr/pack_writer.go`` ``writeDelta``)
            "deltaLogs": [{"fieldID": 100, "logIDs": logs.deltas}] if logs.deltas else [],
            "statsLogs": [],
        }
