"""Drop the walkthrough's sample collection, ``hello_milvus``.

    python examples/clean_data.py [--uri http://localhost:19530] [--recover]

In the walkthrough this runs between the two restores: once ``hello_milvus_recover`` exists,
dropping ``hello_milvus`` lets the backup be restored again under its own name. With
``--recover`` it drops ``hello_milvus_recover`` too (to finish). A collection that does not
exist is reported and skipped.
"""

from __future__ import annotations

import argparse
import sys

from pymilvus import MilvusClient

DEFAULT_URI = "http://localhost:19530"
COLLECTION = "hello_milvus"
RECOVER_COLLECTION = "hello_milvus_recover"


def clean(uri: str, names: list[str]) -> list[str]:
    """Drop each of ``names`` that exists; return the ones dropped."""
    print(f"connecting to Milvus at {uri}")
    client = MilvusClient(uri=uri, timeout=60)
    dropped = []
    try:
        for name in names:
            if client.has_collection(name):
                client.drop_collection(name)
                dropped.append(name)
                print(f"dropped collection {name}")
            else:
                print(f"collection {name} does not exist: nothing to drop")
    finally:
        client.close()
    return dropped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", default=DEFAULT_URI, help=f"Milvus URI (default: {DEFAULT_URI})")
    parser.add_argument("--recover", action="store_true", help=f"drop {RECOVER_COLLECTION} as well")
    args = parser.parse_args(argv)
    names = [COLLECTION, RECOVER_COLLECTION] if args.recover else [COLLECTION]
    clean(args.uri, names)
    return 0


if __name__ == "__main__":
    sys.exit(main())
