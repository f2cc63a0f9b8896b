"""What a refused or dry operation must leave as it found: Milvus's databases, collections and
their rows, and every object outside Milvus's own rootPath in Milvus's bucket and in the backup
bucket (Milvus compacts and collects its own binlogs whenever it likes: a refused operation
that wrote there would show as a collection or rows that changed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from milvus_backup_operator.engine.storage import ObjectStore
from testbed import sample_data
from testbed.stack import Stack, stack_config


@dataclass(frozen=True)
class World:
    databases: tuple[str, ...]
    rows: dict[str, Any]  # db.collection -> live rows (loaded) or Milvus's row count
    objects: dict[str, dict[str, str]]  # bucket -> key -> ETag


def world(stack: Stack) -> World:
    uri = stack.milvus.uri
    databases = tuple(sorted(sample_data.client(uri).list_databases()))
    rows: dict[str, Any] = {}
    for db in databases:
        client = sample_data.client(uri, db)
        for name in client.list_collections():
            rows[f"{db}.{name}"] = _rows(client, name)
    config = stack_config(stack)
    objects: dict[str, dict[str, str]] = {}
    milvus_own = f"{config.storage.root_path.strip('/')}/"
    for storage in (config.storage, config.backup_storage):
        if storage.bucket not in objects:
            store = ObjectStore(storage, config.timeouts)
            objects[storage.bucket] = {
                o.key: o.etag
                for o in store.list("")
                if storage.bucket != config.storage.bucket or not o.key.startswith(milvus_own)
            }
    return World(databases, rows, objects)


def _rows(client: Any, name: str) -> Any:
    """Live rows of a loaded collection (count(*), as a user would see them); the row count
    Milvus keeps for one that is not loaded."""
    if client.get_load_state(name)["state"].name == "Loaded":
        found = client.query(name, filter="", output_fields=["count(*)"],
                             consistency_level="Strong")  # fmt: skip
        return ("live", found[0]["count(*)"])
    return ("stats", int(client.get_collection_stats(name)["row_count"]))
