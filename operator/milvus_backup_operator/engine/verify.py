"""Is a backup whole? Every object its meta names, with the size and checksum it was stored with.

A backup of ours is checked against its manifest (:mod:`.manifest`): size and ETag of every
object. A backup without one (milvus-backup's, or older ones of ours) is checked against
what its meta records: each binlog's key and ``log_size``. The report says which check ran.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .catalog import Catalog
from .errors import DamagedBackupError
from .layout import BackupLayout
from .manifest import Manifest, StoredObject, read_manifest
from .meta import BackupInfo

MANIFEST_CHECK = "size and ETag of every object (our manifest)"
META_CHECK = "size of every object named by the meta (no manifest: milvus-backup's format)"
META_ONLY_NOTE = "it is meta only: no data, it restores as empty collections"
SHOWN = 20  # problems named in a message; the report has them all


@dataclass
class VerifyReport:
    name: str
    check: str
    objects: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)  # (key, what is wrong)
    manifest: Manifest | None = None
    meta_only: bool = False  # the backup holds no data at all (``meta_only``)

    @property
    def ok(self) -> bool:
        return not self.problems

    def verdict(self) -> str:
        """One line: intact, or how many objects are wrong, and which check ran."""
        if self.ok:
            note = f"; {META_ONLY_NOTE}" if self.meta_only else ""
            return (
                f"backup {self.name} is intact: {self.objects} objects checked ({self.check})"
                + note
            )
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


def expected_objects(info: BackupInfo, layout: BackupLayout) -> dict[str, StoredObject]:
    """What the meta says the backup holds: every binlog's key in the backup, and its size."""
    return {
        layout.relative(copy.dst_key): StoredObject(copy.size)
        for collection in info.collection_backups
        for segment in collection.all_segments()
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
    info.require_binlog_format()
    manifest = read_manifest(catalog.store, layout)
    expected = expected_objects(info, layout)
    recorded = manifest.objects if manifest is not None else None
    if collections is not None:
        expected = {k: v for k, v in expected.items() if _collection_of(k) in collections}
        if recorded is not None:
            recorded = {k: v for k, v in recorded.items() if _collection_of(k) in collections}
    check = MANIFEST_CHECK if recorded is not None else META_CHECK
    report = VerifyReport(name, check, manifest=manifest, meta_only=info.meta_only)
    if recorded is not None:
        unrecorded = sorted(set(expected) - set(recorded))
        report.problems += [(k, "named by the meta but not in the manifest") for k in unrecorded]
        expected = recorded
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
