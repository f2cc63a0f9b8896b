"""S3-compatible object storage through the ``minio`` SDK: list, copy, read, write, delete.

Copies between two prefixes on the same service are server-side (``CopyObject``: no object
bytes pass through this process); between different services they stream with bounded memory.
"""

from __future__ import annotations

import io
import logging
import threading
import typing
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import urllib3
from minio import Minio
from minio.commonconfig import CopySource
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from .config import StorageConfig, Timeouts
from .errors import (
    AccessDeniedError,
    AlreadyExistsError,
    BackupError,
    NotFoundError,
    OperationError,
    UnreachableError,
)

log = logging.getLogger(__name__)

STREAM_PART_SIZE = 16 * 1024 * 1024
_CREDENTIAL_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"}
#: how ``If-Match`` carries an ETag: quoted (RFC 7232, AWS S3; MinIO takes both) or bare
#: (Ceph's RADOS Gateway 16.2 answers 412 to the quoted form of the object's own ETag)
QUOTED, BARE = "quoted", "bare"
_if_match_forms: dict[tuple[str, bool], str] = {}  # the form each S3 endpoint took, once seen
_forms_lock = threading.Lock()


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str = ""  # the server's checksum of the object (no quotes)
    modified: float = 0.0  # when it was last written, by the server's clock (0: not known)


class ObjectStore:
    """One bucket on one S3 endpoint."""

    def __init__(self, config: StorageConfig, timeouts: Timeouts, pool_size: int = 16) -> None:
        self.config = config
        self.bucket = config.bucket
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeouts.connect, read=timeouts.rpc),
            retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=(500, 502, 503)),
            maxsize=max(pool_size, 4),
        )
        self.client = Minio(
            config.endpoint,
            access_key=config.access_key,
            secret_key=config.secret_key,
            secure=config.use_ssl,
            region=config.region or None,
            http_client=http,
        )

    def describe(self) -> str:
        """``bucket 'b' at host:port`` for messages (never the credentials)."""
        return f"bucket {self.bucket!r} at {self.config.endpoint}"

    def bucket_exists(self) -> bool:
        with self.translate_errors():
            return bool(self.client.bucket_exists(self.bucket))

    def ensure_bucket(self) -> None:
        """Create the bucket when it is missing (as milvus-backup does for backups)."""
        if not self.bucket_exists():
            with self.translate_errors():
                self.client.make_bucket(self.bucket, location=self.config.region or None)

    def require_bucket(self) -> None:
        if not self.bucket_exists():
            raise NotFoundError(
                f"{self.describe()} does not exist: check the bucket name in the configuration"
            )

    def list(self, prefix: str, recursive: bool = True) -> Iterator[ObjectInfo]:
        """Objects under ``prefix`` (or, not recursive, its first-level "directories")."""
        with self.translate_errors():
            for obj in self.client.list_objects(self.bucket, prefix=prefix, recursive=recursive):
                when = obj.last_modified.timestamp() if obj.last_modified else 0.0
                yield ObjectInfo(
                    str(obj.object_name), int(obj.size or 0), _unquoted(obj.etag), when
                )

    def has_any(self, prefix: str) -> bool:
        return next(iter(self.list(prefix)), None) is not None

    def get(self, key: str) -> bytes:
        with self.translate_errors(key):
            response = self.client.get_object(self.bucket, key)
            try:
                return bytes(response.read())
            finally:
                response.close()
                response.release_conn()

    def get_if_exists(self, key: str) -> bytes | None:
        try:
            return self.get(key)
        except NotFoundError:
            return None

    def put(self, key: str, data: bytes) -> None:
        with self.translate_errors(key):
            self.client.put_object(self.bucket, key, io.BytesIO(data), len(data))

    def put_new(self, key: str, data: bytes) -> str:
        """Write ``key`` only if it does not exist (``If-None-Match: *``, atomic on the server);
        return its ETag.

        Raises :class:`AlreadyExistsError` when it exists. A server that ignores the header
        overwrites instead: callers read the object back to find out (see ``reservation``).
        """
        return self._put_if(key, data, {"If-None-Match": "*"})

    def put_if_match(self, key: str, data: bytes, etag: str) -> str:
        """Overwrite ``key`` only if it is still the object with ``etag``; return the new ETag.

        Raises :class:`AlreadyExistsError` when it changed and :class:`NotFoundError` when it
        is gone. Servers differ on the form of the ETag in ``If-Match``: on a 412 while the
        object still has ``etag``, the server did not understand the form, so the other one
        is tried and the one that worked is kept for this endpoint. A 412 with another ETag
        (or none) there is a true mismatch: nothing is overwritten.
        """
        first = self.if_match_form()
        for form in (first, BARE if first == QUOTED else QUOTED):
            try:
                written = self._put_if(key, data, {"If-Match": _etag_in(form, etag)})
            except AlreadyExistsError:
                self._require_etag(key, etag)  # a true mismatch raises here
                continue
            if form != first:
                log.info("%s takes If-Match ETags %s, not %s", self.config.endpoint, form, first)
                with _forms_lock:
                    _if_match_forms[self._service] = form
            return written
        raise OperationError(
            f"S3 at {self.config.endpoint} refuses If-Match with the object's own ETag in "
            "either form (quoted and bare): conditional writes do not work on this server"
        )

    def if_match_form(self) -> str:
        """The form of ``If-Match`` this endpoint took last (quoted until one is refused)."""
        with _forms_lock:
            return _if_match_forms.get(self._service, QUOTED)

    @property
    def _service(self) -> tuple[str, bool]:
        return (self.config.endpoint, self.config.use_ssl)

    def _require_etag(self, key: str, etag: str) -> None:
        """Raise unless ``key`` is still the object with ``etag`` (after a 412)."""
        try:
            with self.translate_errors(key):
                current = _unquoted(self.client.stat_object(self.bucket, key).etag)
        except NotFoundError:
            raise NotFoundError(f"object {key!r} is gone from {self.describe()}") from None
        if current != etag:
            raise AlreadyExistsError(
                f"object {key!r} in {self.describe()} was replaced (its ETag is no longer {etag})"
            )

    def _put_if(self, key: str, data: bytes, condition: dict[str, str]) -> str:
        headers: dict[str, str | list[str] | tuple[str]] = dict(condition)
        with self.translate_errors(key):
            # put_object would turn these headers into user metadata (x-amz-meta-...):
            # _put_object sends them as given (minio 7.2, pinned below 8)
            written = self.client._put_object(self.bucket, key, data, headers=headers)
        return _unquoted(written.etag)

    def modified(self, key: str) -> float | None:
        """When ``key`` was last written, by the server's clock (None when it is gone)."""
        try:
            with self.translate_errors(key):
                stat = self.client.stat_object(self.bucket, key)
        except NotFoundError:
            return None
        return stat.last_modified.timestamp() if stat.last_modified else None

    def delete(self, key: str) -> None:
        with self.translate_errors(key):
            self.client.remove_object(self.bucket, key)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix``; return how many were deleted."""
        if not prefix.endswith("/"):
            raise ValueError(f"refusing to delete a prefix that is not a directory: {prefix!r}")
        keys = [obj.key for obj in self.list(prefix)]
        self.delete_many(keys, prefix)
        return len(keys)

    def delete_many(self, keys: Sequence[str], where: str = "") -> None:
        """Delete these objects (those already gone are no error)."""
        with self.translate_errors(where):
            for error in self.client.remove_objects(self.bucket, map(DeleteObject, keys)):
                raise OperationError(f"could not delete {error.name} in {self.describe()}")

    @contextmanager
    def translate_errors(self, key: str = "") -> Iterator[None]:
        """Turn SDK and network errors into engine errors that say what to check."""
        try:
            yield
        except BackupError:
            raise
        except S3Error as exc:
            raise self._s3_error(exc, key) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise UnreachableError(
                f"cannot reach S3 at {self.config.endpoint} ({type(exc).__name__}): check "
                "the address, port and useSSL, and that the service is up"
            ) from None

    def _s3_error(self, exc: S3Error, key: str) -> BackupError:
        if exc.code in _CREDENTIAL_CODES:
            kind = AccessDeniedError if exc.code == "AccessDenied" else UnreachableError
            return kind(
                f"S3 at {self.config.endpoint} refused the credentials ({exc.code}): check "
                "the access key and secret key"
            )
        if exc.code == "NoSuchBucket":
            return NotFoundError(f"{self.describe()} does not exist")
        if exc.code == "PreconditionFailed":
            return AlreadyExistsError(f"object {key!r} already exists in {self.describe()}")
        if exc.code in ("NoSuchKey", "NoSuchObject"):
            return NotFoundError(f"object {key!r} not found in {self.describe()}")
        return OperationError(f"S3 error on {key or self.bucket!r}: {exc.code}: {exc.message}")


def copy_object(src: ObjectStore, src_key: str, dst: ObjectStore, dst_key: str, size: int) -> str:
    """Copy one object: server-side on the same service, else streamed in bounded parts.

    Returns the ETag the server gave the copy (its own checksum: no bytes are read here).
    """
    if src.config.same_service(dst.config):
        with dst.translate_errors(src_key):
            done = dst.client.copy_object(dst.bucket, dst_key, CopySource(src.bucket, src_key))
        return _unquoted(done.etag)
    with src.translate_errors(src_key):
        response = src.client.get_object(src.bucket, src_key)
    try:
        with dst.translate_errors(dst_key):
            done = dst.client.put_object(
                dst.bucket,
                dst_key,
                typing.cast(typing.BinaryIO, response),
                length=size,
                part_size=STREAM_PART_SIZE,
            )
        return _unquoted(done.etag)
    finally:
        response.close()
        response.release_conn()


def _etag_in(form: str, etag: str) -> str:
    return f'"{etag}"' if form == QUOTED else etag


def _unquoted(etag: str | None) -> str:
    """An ETag as servers list it, without the quotes some SDK paths keep."""
    return (etag or "").strip('"')
