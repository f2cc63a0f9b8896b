"""What Milvus 2.5/2.6 does with a backup-mode or L0 import, for the stand-in.

Each rule follows the milvus-io/milvus code named beside it:
- the request (``internal/proxy/task_import.go``, ``importTask.PreExecute``): a backup-mode
  import needs a partition that exists ("partition not specified"); an L0 import takes ""
  for the whole collection, or a partition that exists; files without paths are dropped
  and none left is "import request is empty";
- the paths of a backup-mode file (``internal/datacoord/import_util.go``,
  ``validateBinlogImportPaths``, ``ListBinlogImportRequestFiles``): one or two, checked for
  every file before anything is listed; a refusal answers the Import call;
- the segments (``ListBinlogsAndGroupBySegment``): the insert prefix is listed one level
  deep, each entry one segment, paired by its base name with an entry of the delta prefix;
  none is "no binlog to import";
- each segment (``internal/util/importutilv2/binlog/util.go`` ``listInsertLogs``/``verify``,
  ``reader.go``): its insert logs listed recursively, each keyed by its parent directory's
  name as a field (storage v2: column group) ID; RowID and Timestamp (v2: group 0) there,
  every field's log count equal to RowID's, every field of the target schema there unless
  nullable, dynamic or defaulted (v2: every vector field); the rows imported are those
  the delete filter and the time range keep (``filter.go``: a delete removes rows written
  at or before it; ``option.go`` ``ParseTimeRange``: ``start_ts``/``end_ts`` as hybrid
  timestamps, deletes outside the range ignored);
- an L0 file (``l0_reader.go`` ``NewL0Reader``): exactly one path, its delta logs listed
  recursively; before 2.6.5 a job holds one L0 file (``there should be one prefix for l0
  import``, the datanode's L0 import task).
A failure past the request fails the job (state Failed and its reason), as the datanode's
import task reports it. Messages are Milvus's (``pkg/util/merr``: the wrapped message, then
the error's own text).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq
from pymilvus.grpc_gen import schema_pb2

from . import binlogs

#: ``pkg/util/merr`` codes
COLLECTION_NOT_FOUND, PARTITION_NOT_FOUND, PARAMETER_INVALID, IMPORT_FAILED = 100, 202, 1100, 2100
ROW_ID, TIMESTAMP, SYSTEM_GROUP = 0, 1, 0  # common.RowIDField, TimeStampField; short group
MAX_TS = 2**64 - 1
VECTOR_TYPES = range(100, 107)  # typeutil.IsVectorType: binary ... int8 vector
ONE_L0_PER_JOB_BEFORE = (2, 6, 5)


class RefusedError(Exception):
    """The Import call itself answers this Status error."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


class FailedError(Exception):
    """The job is accepted, then fails with this reason."""


class Store(Protocol):
    def list(self, prefix: str, recursive: bool = True) -> Any: ...
    def get(self, key: str) -> bytes: ...


@dataclass(frozen=True)
class Target:
    """The collection imported into, as the stand-in holds it."""

    name: str
    schema: schema_pb2.CollectionSchema
    partitions: dict[str, int]


def invalid(message: str) -> RefusedError:
    return RefusedError(PARAMETER_INVALID, f"{message}: invalid parameter")


def import_failed(message: str) -> str:
    return f"{message}: importing data failed"


def check_request(target: Target | None, name: str, partition: str, options: dict[str, str],
                  files: list[list[str]]) -> list[list[str]]:  # fmt: skip
    """The proxy's checks (``importTask.PreExecute``); the files with paths."""
    if target is None:
        raise RefusedError(COLLECTION_NOT_FOUND, f"collection not found[collection={name}]")
    backup, l0 = is_set(options, "backup"), is_set(options, "l0_import")
    if not (backup or l0):
        raise invalid("the stand-in serves backup-mode and L0 imports only")
    if backup and not partition:
        raise invalid("partition not specified")
    if partition and partition not in target.partitions:
        raise RefusedError(PARTITION_NOT_FOUND, f"partition not found[partition={partition}]")
    kept = [f for f in files if f]
    if not kept:
        raise invalid("import request is empty")
    return kept


def is_set(options: dict[str, str], key: str) -> bool:
    """``importutilv2.IsBackup``/``IsL0Import``: the option's value is "true", any case."""
    return options.get(key, "").lower() == "true"


def segment_files(store: Store, files: list[list[str]]) -> list[list[str]]:
    """``ListBinlogImportRequestFiles``: every file's paths checked, then each listed into
    its segments; a refusal of the Import call."""
    for paths in files:
        if len(paths) > 2:
            raise RefusedError(IMPORT_FAILED, import_failed(
                "too many input paths for binlog import. Valid paths length should be one "
                f"or two, but got paths:[{' '.join(paths)}]"))  # fmt: skip
    segments = [s for paths in files for s in _by_segment(store, paths)]
    if not segments:
        raise RefusedError(IMPORT_FAILED, import_failed(f"no binlog to import, input={files}"))
    return segments


def _by_segment(store: Store, paths: list[str]) -> list[list[str]]:
    """``ListBinlogsAndGroupBySegment``: entries right under the insert prefix, each with
    the delta prefix's entry of the same base name."""
    inserts = [o.key for o in store.list(paths[0], recursive=False)]
    deltas = {_base(o.key): o.key for p in paths[1:] for o in store.list(p, recursive=False)}
    return [[key, *([deltas[_base(key)]] if _base(key) in deltas else [])] for key in inserts]


def _base(key: str) -> str:
    return key.rstrip("/").rsplit("/", 1)[-1]


def time_range(options: dict[str, str]) -> tuple[int, int]:
    """``ParseTimeRange``: ``start_ts``/``startTs``, ``end_ts``/``endTs`` in any case."""
    lowered = {k.lower(): v for k, v in options.items()}

    def stamp(keys: tuple[str, str], default: int) -> int:
        for key in keys:
            if key.lower() in lowered:
                value = lowered[key.lower()]
                if not value.isdigit():
                    raise FailedError(import_failed(f"parse {key} failed, value={value}"))
                return int(value)
        return default

    start, end = stamp(("start_ts", "startTs"), 0), stamp(("end_ts", "endTs"), MAX_TS)
    if start > end:
        message = f"start_ts shouldn't be larger than end_ts, start_ts:{start}, end_ts:{end}"
        raise FailedError(import_failed(message))
    return start, end


def segment_rows(store: Store, target: Target, storage_version: int, paths: list[str],
                 window: tuple[int, int]) -> int:  # fmt: skip
    """The rows ``reader.go`` imports from one segment: those its filters keep."""
    logs = _insert_logs(store, paths[0])
    _verify(target.schema, storage_version, logs)
    pk = next(f.fieldID for f in target.schema.fields if f.is_primary_key)
    keys, stamps = _keys_and_stamps(store, storage_version, logs, pk)
    deletes = _deletes(store, paths[1], window) if len(paths) > 1 else {}
    start, end = window
    return sum(
        1
        for key, ts in zip(keys, stamps, strict=True)
        if start <= ts <= end and deletes.get(key, -1) <= ts
    )


def _insert_logs(store: Store, prefix: str) -> dict[int, list[str]]:
    """``listInsertLogs``: every object below the segment, by its directory's ID."""
    logs: dict[int, list[str]] = {}
    for o in store.list(prefix, recursive=True):
        parent = o.key.rsplit("/", 2)[-2]
        if not parent.isdigit():
            raise FailedError(import_failed(
                f"failed to parse field id from log, error: strconv.ParseInt: parsing "
                f"\"{parent}\": invalid syntax"))  # fmt: skip
        logs.setdefault(int(parent), []).append(o.key)
    return {f: sorted(keys) for f, keys in logs.items()}


def _verify(schema: schema_pb2.CollectionSchema, version: int, logs: dict[int, list[str]]) -> None:
    """``verify``: the system fields, aligned log counts, the target's fields."""
    required = {SYSTEM_GROUP: "system fields"} if version == 2 else {
        ROW_ID: "RowID field", TIMESTAMP: "Timestamp field"}  # fmt: skip
    for field_id, what in required.items():
        if field_id not in logs:
            raise FailedError(import_failed(f"no binlog for {what}"))
    for field_id, keys in logs.items():
        if len(keys) != len(logs.get(ROW_ID, [])):
            raise FailedError(import_failed(
                f"misaligned binlog count, field{field_id}:{len(keys)}, "
                f"field{ROW_ID}:{len(logs.get(ROW_ID, []))}"))  # fmt: skip
    for f in schema.fields:
        optional = f.is_dynamic or f.nullable or f.HasField("default_value")
        needed = f.data_type in VECTOR_TYPES if version == 2 else not optional
        if needed and f.fieldID not in logs:
            raise FailedError(import_failed(f"no binlog for field:{f.name}"))


def _keys_and_stamps(store: Store, version: int, logs: dict[int, list[str]],
                     pk: int) -> tuple[list[Any], list[int]]:  # fmt: skip
    if version != 2:
        keys = [v for key in logs[pk] for v in _read(store, key, binlogs.read_values, 1)]
        stamps = [v for key in logs[TIMESTAMP] for v in _read(store, key, binlogs.read_values, 1)]
    else:
        columns = _group_columns(store, logs, (pk, TIMESTAMP))
        keys, stamps = columns[pk], columns[TIMESTAMP]
    if len(keys) != len(stamps):
        raise FailedError(import_failed(f"{len(keys)} primary keys but {len(stamps)} timestamps"))
    return keys, stamps


def _group_columns(store: Store, logs: dict[int, list[str]],
                   fields: tuple[int, ...]) -> dict[int, list[Any]]:  # fmt: skip
    """Storage v2: each field's values from the column group files holding it (the
    ``PARQUET:field_id`` of its column, ``internal/storagev2/packed``)."""
    found: dict[int, list[Any]] = {}
    for group in sorted(logs):
        for key in logs[group]:
            table = _read(store, key, _parquet)
            for i, column in enumerate(table.schema):
                field_id = int((column.metadata or {}).get(b"PARQUET:field_id", b"-1"))
                if field_id in fields:
                    found.setdefault(field_id, []).extend(table.column(i).to_pylist())
    for field_id in fields:
        if field_id not in found:
            raise FailedError(import_failed(f"no column of field {field_id} in the column groups"))
    return found


def _parquet(data: bytes) -> pa.Table:
    return pq.ParquetFile(io.BytesIO(data)).read()


def _deletes(store: Store, prefix: str, window: tuple[int, int]) -> dict[Any, int]:
    """``readDelete``: the latest delete of each key among those in the time range."""
    latest: dict[Any, int] = {}
    start, end = window
    for o in store.list(prefix, recursive=True):
        for pk, ts in _read(store, o.key, binlogs.read_deletes):
            if start <= ts <= end and ts >= latest.get(pk, ts):
                latest[pk] = ts
    return latest


def read_l0(store: Store, files: list[list[str]], version: tuple[int, ...]) -> None:
    """An L0 job (``l0_reader.go``): one file before 2.6.5, one path per file, every delta
    log below it readable."""
    if len(files) != 1 and version < ONE_L0_PER_JOB_BEFORE:
        raise FailedError(
            import_failed(f"there should be one prefix for l0 import, but got {files}")
        )
    for paths in files:
        if len(paths) != 1:
            raise FailedError(
                import_failed(f"there should be one prefix, but got [{' '.join(paths)}]")
            )
        for o in store.list(paths[0], recursive=True):
            _read(store, o.key, binlogs.read_deletes)


def _read(store: Store, key: str, reader: Any, *args: Any) -> Any:
    try:
        return reader(store.get(key), *args)
    except (ValueError, KeyError, TypeError, pa.ArrowException) as exc:
        raise FailedError(import_failed(f"failed to read {key}: {exc}")) from None
