"""Our records beside milvus-backup's meta: ``meta/operator_manifest.json``.

It holds what milvus-backup's meta has no place for: each copied object's key (relative to
the backup), size and the ETag the S3 server returned for the copy (computed by the server,
no object bytes pass through us), and the live rows of each collection and partition at the
backup's flush. milvus-backup never reads the file: it opens its meta files by name
(``backup_meta.json`` ... ``full_meta.json``; ``core/meta`` at v0.5.16), so its backups and
ours stay readable by both tools.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .errors import MalformedMetaError
from .layout import BackupLayout
from .storage import ObjectStore

MANIFEST = "operator_manifest.json"
FORMAT = 1


@dataclass(frozen=True)
class StoredObject:
    size: int
    etag: str = ""


@dataclass(frozen=True)
class Manifest:
    objects: dict[str, StoredObject]
    #: collection ID -> partition ID -> live rows; empty in manifests written before counts
    live_rows: dict[int, dict[int, int]] = field(default_factory=dict)

    def collection_rows(self, collection_id: int) -> int | None:
        """The live rows recorded for a collection, or None when none were recorded."""
        partitions = self.live_rows.get(collection_id)
        return None if partitions is None else sum(partitions.values())

    def to_json(self) -> bytes:
        body = {
            "tool": "milvus-backup-operator",
            "format": FORMAT,
            "objects": {
                key: {"size": o.size, "etag": o.etag} for key, o in sorted(self.objects.items())
            },
            "live_rows": {
                str(c): {str(p): n for p, n in sorted(parts.items())}
                for c, parts in sorted(self.live_rows.items())
            },
        }
        return json.dumps(body, indent=1).encode()


def read_manifest(store: ObjectStore, layout: BackupLayout) -> Manifest | None:
    """The backup's manifest; None for a backup without one (milvus-backup's, older ours)."""
    raw = store.get_if_exists(layout.meta_key(MANIFEST))
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        objects = {
            key: StoredObject(int(value["size"]), str(value["etag"]))
            for key, value in data["objects"].items()
        }
        live_rows = {
            int(c): {int(p): _count(n) for p, n in parts.items()}
            for c, parts in data.get("live_rows", {}).items()
        }
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        raise MalformedMetaError(
            f"backup {layout.name}: meta/{MANIFEST} is damaged: delete the backup and take a "
            "new one"
        ) from None
    return Manifest(objects, live_rows)


def _count(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(value)
    return value
