"""Backup-name rules, identical to milvus-backup's (``core/backup/func.go``)."""

import re
from datetime import UTC, datetime

from .errors import InvalidRequestError

MAX_NAME_LENGTH = 128
NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def validate_backup_name(name: str) -> str:
    """Return ``name`` if milvus-backup would accept it, else raise :class:`InvalidRequestError`."""
    if not name:
        raise InvalidRequestError("backup name is empty: give one with -n NAME")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidRequestError(
            f"backup name is {len(name)} characters long: the limit is {MAX_NAME_LENGTH}"
        )
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidRequestError(
            f"invalid backup name {name!r}: start with a letter or '_', "
            "then use only letters, digits and '_'"
        )
    return name


def default_backup_name(now: datetime | None = None) -> str:
    """milvus-backup's default: ``backup_YYYY_MM_DD_HH_MM_SS_<nanos>`` in UTC."""
    now = now or datetime.now(UTC)
    return now.strftime("backup_%Y_%m_%d_%H_%M_%S_") + str(now.microsecond * 1000)


def validate_collection_suffix(suffix: str) -> str:
    """A rename suffix may only hold letters, digits and ``_`` (it is appended to a name)."""
    if not re.fullmatch(r"[A-Za-z0-9_]+", suffix):
        raise InvalidRequestError(
            f"invalid collection suffix {suffix!r}: use letters, digits and '_'"
        )
    return suffix
