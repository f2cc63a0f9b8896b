"""Errors the engine raises, and the one table that says how each is told (status reason,
HTTP status). Every message says what went wrong and what to do about it."""

from __future__ import annotations

from dataclasses import dataclass


class BackupError(Exception):
    """Base class: an operation failed with a reason a human can act on."""


class InvalidRequestError(BackupError):
    """The request itself is wrong (bad name, unknown collection, conflicting options)."""


class NotFoundError(BackupError):
    """A backup, collection or object the request refers to does not exist."""


class UnsupportedError(InvalidRequestError):
    """The request needs something this version, or the target Milvus, cannot do (named)."""


class AlreadyExistsError(BackupError):
    """The request would overwrite something that exists."""


class MalformedMetaError(BackupError):
    """A backup's meta files are missing, truncated or not in milvus-backup's format."""


class DamagedBackupError(MalformedMetaError):
    """Objects a backup's meta names are missing, or not what was stored."""


class UnreachableError(BackupError):
    """Milvus or the object store could not be reached or refused the credentials."""


class AccessDeniedError(UnreachableError):
    """The object store took the credentials but denied this operation (read-only keys?)."""


class OperationError(BackupError):
    """Milvus or the object store accepted the request but the work itself failed."""


class InUseError(BackupError):
    """What the request would delete is in use: a backup being written, or read by a restore."""


class NotABackupError(BackupError):
    """A prefix holds neither a backup's meta nor our in-progress marker: never touched."""


@dataclass(frozen=True)
class ErrorKind:
    """How one kind of error is told everywhere: the reason a resource's status gives
    (its Ready condition's ``reason``) and the HTTP status the REST server answers."""

    error: type[BackupError]
    reason: str
    http_status: int
    also: tuple[str, ...] = ()  # other reasons that stand for it (older or wider names)


#: Most specific first: an error is told as the first kind it is an instance of.
ERROR_KINDS = (
    ErrorKind(UnsupportedError, "Unsupported", 400),
    ErrorKind(InvalidRequestError, "InvalidRequest", 400, also=("InvalidSpec",)),
    ErrorKind(NotFoundError, "NotFound", 404),
    ErrorKind(AlreadyExistsError, "AlreadyExists", 409),
    ErrorKind(InUseError, "InUse", 409),
    ErrorKind(NotABackupError, "NotABackup", 409),
    ErrorKind(DamagedBackupError, "DamagedBackup", 422),
    ErrorKind(MalformedMetaError, "MalformedMeta", 422),
    ErrorKind(UnreachableError, "Unreachable", 503),
    ErrorKind(OperationError, "OperationFailed", 500, also=("Failed", "RestoreFailed")),
)
_OPERATION = ERROR_KINDS[-1]


def kind_of(error: BaseException) -> ErrorKind:
    """The kind an error is told as (an error we do not know: a failed operation)."""
    return next((k for k in ERROR_KINDS if isinstance(error, k.error)), _OPERATION)


def error_for(reason: str, message: str) -> BackupError:
    """The error a recorded reason stands for, with its message (the way back)."""
    found = next((k for k in ERROR_KINDS if reason in (k.reason, *k.also)), _OPERATION)
    return found.error(message)
