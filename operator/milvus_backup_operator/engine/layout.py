"""Object keys: where Milvus keeps binlogs and where a backup puts them (milvus-backup's mpath)."""

from __future__ import annotations

from dataclasses import dataclass

from .meta import SegmentBackupInfo


def join(*parts: str | int) -> str:
    """Join key parts with ``/``, skipping empty ones (an empty rootPath adds nothing)."""
    return "/".join(str(p).strip("/") for p in parts if str(p).strip("/"))


def milvus_insert_log_dir(root_path: str, collection: int, partition: int, segment: int) -> str:
    """``<rootPath>/insert_log/<c>/<p>/<s>/`` in Milvus's bucket."""
    return join(root_path, "insert_log", collection, partition, segment) + "/"


def milvus_delta_log_dir(root_path: str, collection: int, partition: int, segment: int) -> str:
    """``<rootPath>/delta_log/<c>/<p>/<s>/`` in Milvus's bucket."""
    return join(root_path, "delta_log", collection, partition, segment) + "/"


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

    def insert_log_group_dir(self, collection: int, partition: int, group: int) -> str:
        """The directory handed to Milvus's import for one segment group."""
        return join(self.binlogs_dir(), "insert_log", collection, partition, group or "") + "/"

    def delta_log_group_dir(self, collection: int, partition: int, group: int) -> str:
        return join(self.binlogs_dir(), "delta_log", collection, partition, group or "") + "/"

    def segment_dir(self, kind: str, segment: SegmentBackupInfo) -> str:
        """``binlogs/<kind>/<c>/<p>/<group>/<s>/``; ``kind`` is insert_log or delta_log."""
        group = segment.group_id or ""
        ids = (segment.collection_id, segment.partition_id, group, segment.segment_id)
        return join(self.binlogs_dir(), kind, *ids) + "/"

    def binlogs_dir(self) -> str:
        return join(self.root_path, self.name, "binlogs")

    def relative(self, key: str) -> str:
        """``key`` relative to the backup's prefix (for staging copies elsewhere)."""
        return key.removeprefix(self.prefix)
