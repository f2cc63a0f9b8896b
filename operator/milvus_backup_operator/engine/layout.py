"""Object keys: where Milvus keeps binlogs and where a backup puts them (milvus-backup's mpath)."""

from __future__ import annotations

from dataclasses import dataclass

from .meta import Binlog, SegmentBackupInfo


def join(*parts: str | int) -> str:
    """Join key parts with ``/``, skipping empty ones (an empty rootPath adds nothing)."""
    return "/".join(str(p).strip("/") for p in parts if str(p).strip("/"))


def milvus_collection_dir(root_path: str, kind: str, collection: int) -> str:
    """``<rootPath>/<kind>/<collectionID>/`` in Milvus's bucket (kind: insert_log, delta_log).

    Below it: ``<p>/<s>/<field>/<log>`` for insert logs, ``<p>/<s>/<log>`` for delta logs.
    """
    return join(root_path, kind, collection) + "/"


@dataclass(frozen=True)
class ObjectCopy:
    """One binlog: its key in Milvus's bucket and its key in the backup."""

    src_key: str
    dst_key: str
    size: int
    segment_id: int


@dataclass(frozen=True)
class BackupLayout:
    """The keys of one named backup under a backup root path."""

    root_path: str
    name: str

    @property
    def prefix(self) -> str:
        """Everything of this backup, and nothing of another one, lives under this prefix."""
        return join(self.root_path, self.name) + "/"

    def meta_key(self, filename: str) -> str:
        return join(self.root_path, self.name, "meta", filename)

    def binlog_dir(self, kind: str, collection: int, partition: int | None = None,
                   group: int | None = None) -> str:  # fmt: skip
        """``binlogs/<kind>/<c>/[<p>/[<group>/]]``: a collection's logs, or one import's.

        Group 0 (legacy backups) has no directory of its own: the whole partition is imported.
        """
        parts = [p for p in (partition, group or None) if p is not None]
        return join(self.binlogs_dir(), kind, collection, *parts) + "/"

    def segment_dir(self, kind: str, segment: SegmentBackupInfo) -> str:
        """``binlogs/<kind>/<c>/<p>/<group>/<s>/``; ``kind`` is insert_log or delta_log."""
        group = segment.group_id or ""
        ids = (segment.collection_id, segment.partition_id, group, segment.segment_id)
        return join(self.binlogs_dir(), kind, *ids) + "/"

    def segment_copies(self, segment: SegmentBackupInfo) -> list[ObjectCopy]:
        """Every object of ``segment``: ``log_path`` in Milvus's bucket to its backup key."""
        keyed = [
            (b, self.insert_key(segment, fb.field_id, b))
            for fb in segment.binlogs
            for b in fb.binlogs
        ]
        keyed += [(b, self.delta_key(segment, b)) for fb in segment.deltalogs for b in fb.binlogs]
        return [ObjectCopy(b.log_path, key, b.log_size, segment.segment_id) for b, key in keyed]

    def insert_key(self, segment: SegmentBackupInfo, field_id: int, binlog: Binlog) -> str:
        """The backup's copy of one insert log of ``field_id``."""
        return f"{self.segment_dir('insert_log', segment)}{field_id}/{_log_id(binlog)}"

    def delta_key(self, segment: SegmentBackupInfo, binlog: Binlog) -> str:
        """The backup's copy of one delta log."""
        return f"{self.segment_dir('delta_log', segment)}{_log_id(binlog)}"

    def binlogs_dir(self) -> str:
        return join(self.root_path, self.name, "binlogs")

    def relative(self, key: str) -> str:
        """``key`` relative to the backup's prefix (for staging copies elsewhere)."""
        return key.removeprefix(self.prefix)


def _log_id(binlog: Binlog) -> int:
    """The log ID (v0.4 backups did not record it: it is the last element of the path)."""
    return binlog.log_id or int(binlog.log_path.rsplit("/", 1)[-1])
