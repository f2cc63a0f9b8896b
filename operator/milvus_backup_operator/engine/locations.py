"""Where Milvus keeps its data and where backups go: the two must never overlap.

A backup location that contains Milvus's data (its root is a prefix of Milvus's rootPath) or
lies inside it would list Milvus's own directories as backups, and a delete there would remove
Milvus's binlogs. The rule is checked wherever a configuration is built, so no entry point
(CLI, REST server, operator, Job) can act on such a configuration.

Endpoints are deliberately not compared: two host names (``minio`` and
``minio.milvus.svc.cluster.local``) can reach one server, so the same bucket name with
overlapping roots is refused even when the endpoints are spelled differently.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InvalidRequestError


@dataclass(frozen=True)
class Location:
    """A bucket and a root path inside it, and the setting names a user would change."""

    bucket: str
    root_path: str
    settings: str  # e.g. "minio.backupBucketName/minio.backupRootPath"

    @property
    def parts(self) -> tuple[str, ...]:
        """The root path as path segments (``""`` is the whole bucket)."""
        return root_parts(self.root_path, self.settings)

    def describe(self) -> str:
        return f"bucket {self.bucket!r}, rootPath {'/'.join(self.parts) or '(the whole bucket)'}"


def root_parts(root_path: str, setting: str) -> tuple[str, ...]:
    """``"a//b/"`` as ``("a", "b")``; a ``..`` segment is refused (S3 keeps it literally)."""
    parts = tuple(p for p in root_path.split("/") if p not in ("", "."))
    if ".." in parts:
        raise InvalidRequestError(f"{setting}: a rootPath must not contain '..'")
    return parts


def overlaps(a: Location, b: Location) -> bool:
    """True when one location contains the other (or they are the same)."""
    if a.bucket.lower() != b.bucket.lower():  # bucket names are case-insensitive on some servers
        return False
    shorter = min(len(a.parts), len(b.parts))
    return a.parts[:shorter] == b.parts[:shorter]


def require_separate(milvus: Location, backup: Location) -> None:
    """Refuse a backup location that contains, equals or lies inside Milvus's data."""
    if not overlaps(milvus, backup):
        return
    raise InvalidRequestError(
        f"the backup location ({backup.describe()}) overlaps Milvus's data "
        f"({milvus.describe()}): backups there could delete Milvus's own objects; set "
        f"{backup.settings} to a path outside Milvus's rootPath (for example 'backup') "
        "or use another bucket"
    )
