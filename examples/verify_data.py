"""Check a restored copy of ``hello_milvus`` (by default ``hello_milvus_recover``).

    python examples/verify_data.py [--uri http://localhost:19530] [--collection NAME]

Run it once the restore with ``"collection_suffix": "_recover"`` has completed. Like the
walkthrough says, it indexes the restored collection (IVF_FLAT, L2, nlist 128) when the
restore did not bring an index, loads it, and then checks it against the rows
``prepare_data.py`` inserted (regenerated from the same seed):

- the collection exists and has the fields pk, random, var and embeddings (dim 8);
- it counts 2990 rows (3000 inserted, 10 deleted), and none of the deleted pks is found;
- searching with the vectors of a few kept rows returns each row itself as the nearest hit
  (distance 0, same ``random`` and ``var``), and the vector of a deleted row does not find it.

It prints what it checks and exits 1 with a message on stderr at the first failed check.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pymilvus import MilvusClient

from prepare_data import (
    DEFAULT_URI,
    DELETED_PKS,
    DIM,
    EXPECTED_ROWS,
    INDEX,
    Row,
    generate_rows,
)

DEFAULT_COLLECTION = "hello_milvus_recover"
PROBE_PKS = (1, 299, 1234, 1501, 2999)  # kept rows, from both halves of the data
DELETED_PROBE = DELETED_PKS[1]  # pk 300
EXPECTED_FIELDS = {"pk", "random", "var", "embeddings"}


class VerifyError(Exception):
    """A check failed: the message says which, and what was found."""


def _ensure_index(client: MilvusClient, collection: str) -> dict[str, Any]:
    names = client.list_indexes(collection, field_name="embeddings")
    if not names:
        print(f"no index on {collection}.embeddings: building {INDEX}")
        params = client.prepare_index_params()
        params.add_index(
            "embeddings",
            index_type=INDEX["index_type"],
            metric_type=INDEX["metric_type"],
            params=INDEX["params"],
        )
        client.create_index(collection, params)
        names = client.list_indexes(collection, field_name="embeddings")
    index = client.describe_index(collection, names[0])
    print(f"index on embeddings: {index.get('index_type')} ({index.get('metric_type')})")
    return index


def _search_params(index: dict[str, Any]) -> dict[str, Any]:
    """Search parameters that make the index answer exactly on 3000 rows."""
    kind = str(index.get("index_type", ""))
    params: dict[str, Any] = {}
    if kind.startswith("IVF"):
        params["nprobe"] = int(index.get("nlist", 128))
    elif kind == "HNSW":
        params["ef"] = 256
    return {"metric_type": index.get("metric_type", "L2"), "params": params}


def _check_schema(client: MilvusClient, collection: str) -> None:
    fields = {f["name"]: f for f in client.describe_collection(collection)["fields"]}
    if set(fields) != EXPECTED_FIELDS:
        raise VerifyError(
            f"{collection} has fields {sorted(fields)}, expected {sorted(EXPECTED_FIELDS)}"
        )
    dim = fields["embeddings"].get("params", {}).get("dim")
    if dim is None or int(dim) != DIM:
        raise VerifyError(f"{collection}.embeddings has dim {dim}, expected {DIM}")
    print(f"schema: fields {sorted(fields)}, embeddings dim {dim}")


def _check_rows(client: MilvusClient, collection: str) -> None:
    counted = client.query(collection, output_fields=["count(*)"], consistency_level="Strong")
    count = int(counted[0]["count(*)"])
    print(f"row count: {count} (expected {EXPECTED_ROWS})")
    if count != EXPECTED_ROWS:
        raise VerifyError(
            f"{collection} has {count} rows, expected {EXPECTED_ROWS} "
            f"(prepare_data.py inserts 3000 rows and deletes {len(DELETED_PKS)})"
        )
    found = client.query(collection, ids=list(DELETED_PKS), output_fields=["pk"])
    if found:
        pks = sorted(r["pk"] for r in found)
        raise VerifyError(f"{collection} still has deleted rows: pk {pks}")
    print(f"deleted rows absent: pk in {list(DELETED_PKS)}")


def _check_search(
    client: MilvusClient, collection: str, rows: list[Row], params: dict[str, Any]
) -> None:
    probes = [rows[pk] for pk in PROBE_PKS]
    results = client.search(
        collection,
        data=[r.embeddings for r in probes],
        anns_field="embeddings",
        limit=3,
        output_fields=["random", "var"],
        search_params=params,
        consistency_level="Strong",
    )
    for row, hits in zip(probes, results, strict=True):
        shown = ", ".join(f"{h['id']} ({h['distance']:.6f})" for h in hits)
        print(f"search with the vector of pk {row.pk}: top 3 = {shown}")
        if not hits or hits[0]["id"] != row.pk:
            top = hits[0]["id"] if hits else "nothing"
            raise VerifyError(
                f"searching {collection} with the vector of pk {row.pk} returned {top} "
                f"as the nearest hit, expected pk {row.pk} itself"
            )
        top = hits[0]
        if abs(float(top["distance"])) > 1e-4:
            raise VerifyError(f"pk {row.pk} is at distance {top['distance']} of its own vector")
        entity = top.get("entity", {})
        if entity.get("random") != row.random or entity.get("var") != row.var:
            raise VerifyError(
                f"pk {row.pk} has random={entity.get('random')!r}, var={entity.get('var')!r}; "
                f"expected random={row.random!r}, var={row.var!r}"
            )

    deleted = rows[DELETED_PROBE]
    [hits] = client.search(
        collection,
        data=[deleted.embeddings],
        anns_field="embeddings",
        limit=3,
        search_params=params,
        consistency_level="Strong",
    )
    ids = [h["id"] for h in hits]
    print(f"search with the vector of deleted pk {deleted.pk}: top 3 = {ids}")
    if deleted.pk in ids:
        raise VerifyError(f"deleted pk {deleted.pk} is still found by search in {collection}")


def verify(uri: str, collection: str = DEFAULT_COLLECTION) -> None:
    """Raise VerifyError unless ``collection`` holds exactly what prepare_data.py left."""
    print(f"connecting to Milvus at {uri}")
    client = MilvusClient(uri=uri, timeout=60)
    try:
        if not client.has_collection(collection):
            raise VerifyError(
                f"collection {collection} does not exist at {uri}: restore the backup of "
                'hello_milvus with "collection_suffix": "_recover" first'
            )
        print(f"collection {collection} exists")
        _check_schema(client, collection)
        index = _ensure_index(client, collection)
        print(f"loading {collection}")
        client.load_collection(collection)
        _check_rows(client, collection)
        _check_search(client, collection, generate_rows(), _search_params(index))
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", default=DEFAULT_URI, help=f"Milvus URI (default: {DEFAULT_URI})")
    parser.add_argument(
        "--collection",
        default=DEFAULT_COLLECTION,
        help=f"collection to check (default: {DEFAULT_COLLECTION})",
    )
    args = parser.parse_args(argv)
    try:
        verify(args.uri, args.collection)
    except VerifyError as failure:
        print(f"verify_data: FAILED: {failure}", file=sys.stderr)
        return 1
    print(f"verify_data: OK: {args.collection} matches the data prepare_data.py wrote")
    return 0


if __name__ == "__main__":
    sys.exit(main())
