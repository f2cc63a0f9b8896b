"""Sample collections with every shape a physical backup must carry, and a way to compare them.

Used by the integration tests, the benchmark and the README's demo.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from pymilvus import DataType, MilvusClient

QUERY_LIMIT = 16384


@dataclass(frozen=True)
class SampleCollection:
    name: str
    db: str
    pk: str
    vector: str
    dim: int

    @property
    def ref(self) -> str:
        return self.name if self.db == "default" else f"{self.db}.{self.name}"


BOOKS = SampleCollection("books", "default", "pk", "vec", 8)
TINY = SampleCollection("tiny", "default", "code", "emb", 4)
DOCS = SampleCollection("docs", "db1", "id", "v", 4)
SAMPLES = (BOOKS, TINY, DOCS)


def client(uri: str, db: str = "default") -> MilvusClient:
    return MilvusClient(uri=uri, db_name=db, timeout=30)


def _vec(rng: random.Random, dim: int) -> list[float]:
    return [rng.random() for _ in range(dim)]


def create_books(c: MilvusClient, rows_per_batch: int = 1500, seed: int = 1) -> None:
    """Int64 pk, VARCHAR, JSON, dynamic field, two partitions, several segments, deletes."""
    rng = random.Random(seed)
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    schema.add_field("pk", DataType.INT64, is_primary=True)
    schema.add_field("title", DataType.VARCHAR, max_length=128)
    schema.add_field("meta", DataType.JSON)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=BOOKS.dim)
    c.create_collection("books", schema=schema, consistency_level="Bounded", num_shards=2)
    c.create_partition("books", "p2")
    pk = 0
    for batch, partition in enumerate(("_default", "_default", "p2")):
        rows = []
        for _ in range(rows_per_batch):
            rows.append(
                {
                    "pk": pk,
                    "title": f"book {pk} {'ü' * (pk % 3)}",
                    "meta": {"batch": batch, "tags": ["a", "b"][: pk % 3], "n": pk * 1.5},
                    "vec": _vec(rng, BOOKS.dim),
                    "extra": f"dyn-{pk}" if pk % 2 else pk,
                }
            )
            pk += 1
        c.insert("books", rows, partition_name=partition)
        c.flush("books")  # one segment per batch
    c.create_index("books", _index(c, "vec", "HNSW", {"M": 8, "efConstruction": 64}))
    c.load_collection("books")  # deleting by a range expression needs a loaded collection
    c.delete("books", filter="pk in [0, 7, 1499, 1500, 2999, 3000, 4100]")
    c.delete("books", filter="pk >= 4400 and pk < 4420")


def create_tiny(c: MilvusClient, seed: int = 2) -> None:
    """VARCHAR primary key, Strong consistency, one segment, no deletes."""
    rng = random.Random(seed)
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("code", DataType.VARCHAR, is_primary=True, max_length=32)
    schema.add_field("emb", DataType.FLOAT_VECTOR, dim=TINY.dim)
    schema.add_field("score", DataType.DOUBLE)
    c.create_collection("tiny", schema=schema, consistency_level="Strong")
    c.insert(
        "tiny", [{"code": f"c{i:04d}", "emb": _vec(rng, 4), "score": i / 7} for i in range(200)]
    )
    c.create_index("tiny", _index(c, "emb", "FLAT", {}))
    c.load_collection("tiny")


def create_docs(c: MilvusClient, seed: int = 3) -> None:
    """A collection in another database, with an auto-generated primary key."""
    rng = random.Random(seed)
    schema = MilvusClient.create_schema(auto_id=True, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True, auto_id=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DOCS.dim)
    schema.add_field("body", DataType.VARCHAR, max_length=64)
    c.create_collection("docs", schema=schema, consistency_level="Session")
    c.insert("docs", [{"v": _vec(rng, 4), "body": f"doc {i}"} for i in range(500)])
    c.create_index("docs", _index(c, "v", "IVF_FLAT", {"nlist": 16}))
    c.load_collection("docs")


def _index(c: MilvusClient, field: str, kind: str, params: dict[str, Any]) -> Any:
    index = c.prepare_index_params()
    index.add_index(field_name=field, index_type=kind, metric_type="L2", params=params)
    return index


def create_samples(uri: str) -> None:
    """Create every sample collection (``db1`` included) in the Milvus at ``uri``."""
    c = client(uri)
    if "db1" not in c.list_databases():
        c.create_database("db1")
    create_books(c)
    create_tiny(c)
    create_docs(client(uri, "db1"))


def rows(uri: str, sample: SampleCollection, name: str | None = None) -> dict[Any, dict[str, Any]]:
    """Every live row of a loaded collection by primary key, read with Strong consistency."""
    c = client(uri, sample.db)
    name = name or sample.name
    result = c.query(
        name, filter=f"{sample.pk} != ''" if sample is TINY else f"{sample.pk} >= 0",
        output_fields=["*"], limit=QUERY_LIMIT, consistency_level="Strong",
    )  # fmt: skip
    return {row[sample.pk]: _plain(row) for row in result}


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {
        key: (list(value) if key in ("vec", "emb", "v") else value) for key, value in row.items()
    }


def prepare_for_query(uri: str, sample: SampleCollection, name: str) -> None:
    """Give a restored collection an index (when the restore did not) and load it."""
    c = client(uri, sample.db)
    if not c.list_indexes(name):
        c.create_index(name, _index(c, sample.vector, "FLAT", {}))
    c.load_collection(name)
