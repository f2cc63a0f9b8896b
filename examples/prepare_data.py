"""Create the walkthrough's sample collection, ``hello_milvus``, with known (seeded) data.

    python examples/prepare_data.py [--uri http://localhost:19530]

The collection, in the shape of the one milvus-backup's ``example/prepare_data.py`` makes:

    pk          INT64, primary key, no auto id
    random      DOUBLE
    var         VARCHAR(65535), the primary key as text
    embeddings  FLOAT_VECTOR, dim 8

with Strong consistency. 3000 rows are inserted in two flushed halves (two sealed segments),
ten of them are then deleted (pk 0, 300, ..., 2700, so the backup carries delete logs too),
and an IVF_FLAT index (L2, nlist 128) is built on ``embeddings``. 2990 rows stay.

Every value comes from ``random.Random(SEED)``: ``verify_data.py`` regenerates the same rows
to check a restored copy exactly. An existing ``hello_milvus`` is dropped and made again.
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import dataclass

from pymilvus import CollectionSchema, DataType, MilvusClient

DEFAULT_URI = "http://localhost:19530"
COLLECTION = "hello_milvus"
SEED = 19530
NUM_ROWS = 3000
DIM = 8
DELETED_PKS = tuple(range(0, NUM_ROWS, 300))  # 0, 300, ..., 2700
EXPECTED_ROWS = NUM_ROWS - len(DELETED_PKS)
INDEX = {"index_type": "IVF_FLAT", "metric_type": "L2", "params": {"nlist": 128}}


@dataclass(frozen=True)
class Row:
    pk: int
    random: float
    var: str
    embeddings: list[float]

    def as_dict(self) -> dict[str, object]:
        return {
            "pk": self.pk,
            "random": self.random,
            "var": self.var,
            "embeddings": self.embeddings,
        }


def generate_rows(seed: int = SEED, count: int = NUM_ROWS, dim: int = DIM) -> list[Row]:
    """The rows this script inserts: the same on every run and every machine."""
    rng = random.Random(seed)
    rows = []
    for pk in range(count):
        value = rng.random()
        vector = [rng.random() for _ in range(dim)]
        rows.append(Row(pk, value, str(pk), vector))
    return rows


def _schema() -> CollectionSchema:
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("pk", DataType.INT64, is_primary=True, description="primary key")
    schema.add_field("random", DataType.DOUBLE, description="a double field")
    schema.add_field("var", DataType.VARCHAR, max_length=65535, description="the pk as text")
    schema.add_field("embeddings", DataType.FLOAT_VECTOR, dim=DIM, description="dim 8 vector")
    return schema


def prepare(uri: str, collection: str = COLLECTION) -> int:
    """Make ``collection`` from scratch; return how many rows it keeps."""
    print(f"connecting to Milvus at {uri}")
    client = MilvusClient(uri=uri, timeout=60)
    try:
        if client.has_collection(collection):
            print(f"collection {collection} exists: dropping it to start from known data")
            client.drop_collection(collection)

        print(f"creating collection {collection} (pk INT64, random DOUBLE, var VARCHAR,")
        print(f"  embeddings FLOAT_VECTOR dim {DIM}; Strong consistency)")
        client.create_collection(collection, schema=_schema(), consistency_level="Strong")

        rows = generate_rows()
        half = len(rows) // 2
        for part, chunk in enumerate((rows[:half], rows[half:]), start=1):
            result = client.insert(collection, [r.as_dict() for r in chunk])
            client.flush(collection)
            count = result["insert_count"]
            first, last = chunk[0].pk, chunk[-1].pk
            print(f"inserted {count} rows (pk {first}..{last}), flushed (part {part})")

        client.delete(collection, ids=list(DELETED_PKS))
        client.flush(collection)
        print(f"deleted {len(DELETED_PKS)} rows: pk in {list(DELETED_PKS)}")

        index_params = client.prepare_index_params()
        index_params.add_index(
            "embeddings",
            index_type=INDEX["index_type"],
            metric_type=INDEX["metric_type"],
            params=INDEX["params"],
        )
        client.create_index(collection, index_params)
        print(f"built index on embeddings: {INDEX}")
    finally:
        client.close()

    kept = len(rows) - len(DELETED_PKS)
    print(f"done: {collection} has {kept} rows ({len(rows)} inserted, {len(DELETED_PKS)} deleted)")
    return kept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", default=DEFAULT_URI, help=f"Milvus URI (default: {DEFAULT_URI})")
    parser.add_argument("--collection", default=COLLECTION, help="collection to create")
    args = parser.parse_args(argv)
    prepare(args.uri, args.collection)
    return 0


if __name__ == "__main__":
    sys.exit(main())
