"""Errors the engine raises. Every message says what went wrong and what to do about it."""


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


class OperationError(BackupError):
    """Milvus or the object store accepted the request but the work itself failed."""


class NotABackupError(BackupError):
    """A prefix holds neither a backup's meta nor our in-progress marker: never touched."""
