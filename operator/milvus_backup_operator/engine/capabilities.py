"""What a Milvus can do, from the version it reports: the one place the engine asks.

The gates follow milvus-backup's (``internal/client/milvus/grpc.go``, ``_featureTuples``) and
Milvus's own releases:

- L0 segments and the ``l0_import`` import option: Milvus 2.4 (deletes moved to L0
  segments; ``internal/datacoord/import_util.go``).
- the management endpoint's GC pause (``/management/datacoord/garbage_collection/pause``,
  ``internal/http/server.go``): Milvus 2.4; 2.3.5 answers 404 (measured here).
- each segment's file list from Milvus (REST ``/v2/vectordb/segments/describe``, milvus PR
  #40464): 2.5.8 (``GetSegmentInfo``, ">= 2.5.8-0", so 2.5.8's pre-releases too).
- storage v2 segments (``storage_version`` 2, passed to the import): Milvus 2.6, its default
  there (milvus PR #43652).
- several L0 segments in one import job: 2.6.5 (``MultiL0InOneJob``).
- collection schemas with functions (BM25): 2.5; with struct array fields: 2.6.
- ``DescribeDatabase`` (a database's ID and properties): 2.4.3 (``DescribeDatabase``).
- encrypted databases (encryption zones, the ``cipher.*`` database properties of
  ``pkg/util/hookutil/cipher.go``) and the ``ezk`` import option that decrypts their backed
  up binlogs (``hookutil.ImportEZ``): the 2.6 line.
- the snapshot backup format: 3.0 (``Snapshot``).

A version string this module cannot read is refused by name: guessing could import deletes
into a Milvus that ignores them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import OperationError

#: a development build (``master-20260226-abcdef``) is taken as newer than every release,
#: as milvus-backup does (``_latestDevVersion``)
DEVELOPMENT = (99, 0, 0)
_RELEASE = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")
_DEV_BUILD = re.compile(r"^(master|unknown)-\d{8}")
_HEAD_OF_LINE = 9999  # "2.6-20260404-31fb3fc": somewhere on the 2.6 line, most likely its head

#: storage versions of a segment: 0 and 1 are the classic binlogs, 2 the v2 (Parquet
#: column groups) layout
STORAGE_V1 = frozenset({0, 1})
STORAGE_V2 = 2
KNOWN_STORAGE_VERSIONS = STORAGE_V1 | {STORAGE_V2}


@dataclass(frozen=True)
class Capabilities:
    version: str  # as Milvus reported it
    release: tuple[int, int, int]

    @classmethod
    def of(cls, version: str) -> Capabilities:
        """Read ``GetVersion``'s answer (``v2.3.5-lite``, ``2.6.3``, ``master-2026...``)."""
        text = version.strip()
        if _DEV_BUILD.match(text):
            return cls(text, DEVELOPMENT)
        found = _RELEASE.match(text)
        if found is None:
            raise OperationError(
                f"Milvus reports version {version!r}, which this tool cannot read: it cannot "
                "tell what that Milvus supports (L0 deletes, storage v2); report it"
            )
        major, minor, patch = found.groups()
        dated = patch is None and text[found.end() :].startswith("-")
        level = _HEAD_OF_LINE if dated else int(patch or 0)
        return cls(text, (int(major), int(minor), level))

    def at_least(self, *release: int) -> bool:
        return self.release >= tuple(release)

    @property
    def l0_import(self) -> bool:
        """Imports L0 segments (``l0_import=true``): deletes restored after the inserts."""
        return self.at_least(2, 4)

    @property
    def gc_pause(self) -> bool:
        """Serves the GC pause of its management endpoint."""
        return self.at_least(2, 4)

    @property
    def collection_gc_pause(self) -> bool:
        """Pauses the collector of one collection, with a ticket to resume it (2.6.8)."""
        return self.at_least(2, 6, 8)

    @property
    def segment_info(self) -> bool:
        """Names each segment's insert and delta logs over REST (``segments/describe``)."""
        return self.at_least(2, 5, 8)

    @property
    def storage_versions(self) -> frozenset[int]:
        """The segment storage versions its import reads."""
        return STORAGE_V1 | {STORAGE_V2} if self.at_least(2, 6) else STORAGE_V1

    @property
    def functions(self) -> bool:
        """Creates collections with functions (BM25 full text search: Milvus 2.5)."""
        return self.at_least(2, 5)

    @property
    def struct_arrays(self) -> bool:
        """Creates collections with struct array fields (Milvus 2.6)."""
        return self.at_least(2, 6)

    @property
    def add_field(self) -> bool:
        """Adds a field to an existing collection (``AddCollectionField``: Milvus 2.6)."""
        return self.at_least(2, 6)

    @property
    def describe_database(self) -> bool:
        """Answers ``DescribeDatabase``: a database's ID and properties (2.4.3)."""
        return self.at_least(2, 4, 3)

    @property
    def import_ezk(self) -> bool:
        """Takes an encryption zone key with an import (option ``ezk``: Milvus 2.6)."""
        return self.at_least(2, 6)

    @property
    def several_l0_per_job(self) -> bool:
        return self.at_least(2, 6, 5)

    @property
    def snapshot_format(self) -> bool:
        return self.at_least(3, 0)

    def describe(self) -> str:
        return f"Milvus {self.version}"
