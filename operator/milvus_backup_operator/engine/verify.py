"""Is a backup whole? Every object its meta names, with the size and checksum it was stored with.

A backup of ours carries ``meta/operator_manifest.json``: each copied object's key (relative to
the backup), size and the ETag the S3 server returned for the copy (computed by the server;
no object bytes pass through us). milvus-backup's reader ignores the file. A backup without
it (milvus-backup's, or older ones of ours) is checked against what its meta records: each
binlog's key and ``log_size``. The report says which check ran.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .catalog import Catalog
from .errors import DamagedBackupError, MalformedMetaError
from .layout import BackupLayout
from .meta import BackupInfo

MANIFEST = "operator_manifest.json"
MANIFEST_CHECK = "size and ETag of every object (our manifest)"
META_CHECK = "size of every object named by the meta (no manifest: milvus-backup's format)"
SHOWN = 20  # problems named in a message; the report has them all


@dataclass(frozen=True)
class StoredObject:
    size: int
    etag: str = ""


@dataclass
class VerifyReport:
    name: str
    check: str
    objects: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)  # (key, what is wrong)

    @property
    def ok(self) -> bool:
        return not self.problems

    def verdict(self) -> str:
        """One line: intact, or how many objects are wrong, and which check ran."""
        if self.ok:
            return f"backup {self.name} is intact: {self.objects} objects checked ({self.check})"
        return (
            f"backup {self.name} is damaged: {len(self.problems)} of {self.objects} objects "
            f"missing or changed ({self.check})"
        )

    def summary(self) -> str:
        """The verdict and the first problems, by key."""
        if self.ok:
            return self.verdict()
        listed = "; ".join(f"{key}: {problem}" for key, problem in self.problems[:SHOWN])
        more = len(self.problems) - SHOWN
        return f"{self.verdict()}: {listed}" + (f"; and {more} more" if more > 0 else "")


def manifest_json(objects: dict[str, StoredObject]) -> bytes:
    """The manifest of a backup: keys relative to its prefix."""
    body = {
        "tool": "milvus-backup-operator",
        "format": 1,
        "objects": {key: {"size": o.size, "etag": o.etag} for key, o in sorted(objects.items())},
    }
    return json.dumps(body, indent=1).encode()


def read_manifest(catalog: Catalog, layout: BackupLayout) -> dict[str, StoredObject] | None:
    raw = catalog.store.get_if_exists(layout.meta_key(MANIFEST))
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        return {
            key: StoredObject(int(value["size"]), str(value["etag"]))
            for key, value in data["objects"].items()
        }
    except (ValueError, KeyError, TypeError, AttributeError):
        raise MalformedMetaError(
            f"backup {layout.name}: meta/{MANIFEST} is damaged: delete the backup and take a "
            "new one"
        ) from None


def expected_objects(info: BackupInfo, layout: BackupLayout) -> dict[str, StoredObject]:
    """What the meta says the backup holds: every binlog's key in the backup, and its size."""
    return {
        layout.relative(copy.dst_key): StoredObject(copy.size)
        for collection in info.collection_backups
        for segment in collection.segments()
        for copy in layout.segment_copies(segment)
    }


def verify_backup(
    catalog: Catalog,
    name: str,
    info: BackupInfo | None = None,
    collections: set[int] | None = None,
) -> VerifyReport:
    """Check ``name`` (or only the ``collections`` of it, by ID) against its manifest, or its
    meta, with one listing of its objects."""
    layout = catalog.layout(name)
    info = info or catalog.read(name)
    manifest = read_manifest(catalog, layout)
    expected = expected_objects(info, layout)
    if collections is not None:
        expected = {k: v for k, v in expected.items() if _collection_of(k) in collections}
        if manifest is not None:
            manifest = {k: v for k, v in manifest.items() if _collection_of(k) in collections}
    report = VerifyReport(name, MANIFEST_CHECK if manifest is not None else META_CHECK)
    if manifest is not None:
        unrecorded = sorted(set(expected) - set(manifest))
        report.problems += [(k, "named by the meta but not in the manifest") for k in unrecorded]
        expected = manifest
    stored = {
        layout.relative(o.key): StoredObject(o.size, o.etag)
        for o in catalog.store.list(layout.binlogs_dir() + "/")
    }
    report.objects = len(expected)
    for key, want in sorted(expected.items()):
        got = stored.get(key)
        if got is None:
            report.problems.append((key, "missing"))
        elif got.size != want.size:
            report.problems.append((key, f"{got.size} bytes, {want.size} expected"))
        elif want.etag and got.etag != want.etag:
            report.problems.append((key, "its content changed (another ETag)"))
    return report


def _collection_of(key: str) -> int:
    """The collection ID in ``binlogs/<kind>/<collection>/...``."""
    parts = key.split("/")
    return int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else -1


def require_intact(
    catalog: Catalog,
    name: str,
    info: BackupInfo | None = None,
    collections: set[int] | None = None,
) -> VerifyReport:
    """The report of an intact backup (or of its intact ``collections``); a damaged one is
    refused, naming what is wrong."""
    report = verify_backup(catalog, name, info, collections)
    if not report.ok:
        raise DamagedBackupError(f"{report.summary()}: nothing was restored; take a new backup")
    return report
