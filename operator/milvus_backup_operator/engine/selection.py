"""Which collections a request means: ``coll`` (default database) or ``db.coll``."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import InvalidRequestError

DEFAULT_DB = "default"
ALL = "*"  # ``db.*``: every collection of a database
#: Milvus's rule for database and collection names (proxy ``validateCollectionName``)
MILVUS_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")


@dataclass(frozen=True, order=True)
class CollectionRef:
    db: str
    name: str

    @classmethod
    def parse(cls, text: str) -> CollectionRef:
        """``coll`` means the default database; ``db.coll`` names one; ``db.*`` all of db."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidRequestError(
                "empty collection name: name each collection (coll or db.coll)"
            )
        db, sep, name = text.strip().partition(".")
        if not sep:
            db, name = DEFAULT_DB, db
        if not MILVUS_NAME.fullmatch(db):
            raise InvalidRequestError(
                f"invalid database name in {text!r}: use coll or db.coll, names starting with a "
                "letter or '_' and holding only letters, digits and '_'"
            )
        if name != ALL and not MILVUS_NAME.fullmatch(name):
            raise InvalidRequestError(
                f"invalid collection name {text!r}: use coll or db.coll, names starting with a "
                "letter or '_' and holding only letters, digits and '_'"
            )
        return cls(db, name)

    @classmethod
    def parse_one(cls, text: str) -> CollectionRef:
        """Like :meth:`parse`, for one collection exactly (a rename's side): ``db.*`` is not."""
        return cls.parse(text).exact()

    def exact(self) -> CollectionRef:
        """This reference, if it names one collection with a name Milvus takes."""
        if self.name == ALL or not MILVUS_NAME.fullmatch(self.name):
            raise InvalidRequestError(
                f"invalid collection name {str(self)!r}: one collection, its name starting "
                "with a letter or '_', with only letters, digits and '_', up to 255 characters"
            )
        return self

    def __str__(self) -> str:
        return self.name if self.db == DEFAULT_DB else f"{self.db}.{self.name}"


def parse_list(text: str | Iterable[str] | None) -> list[CollectionRef]:
    """``"a,db.b"`` or ``["a", "db.b"]`` as references, in order; nothing given is ``[]``.

    A blank item (``",,"``, ``[""]``) or a collection named twice is refused: nothing named
    never means "everything".
    """
    if not text:
        return []
    items = text.split(",") if isinstance(text, str) else list(text)
    refs = [CollectionRef.parse(item) for item in items]
    return unique(refs)


def unique(refs: list[CollectionRef]) -> list[CollectionRef]:
    """``refs`` unchanged, or an error naming the collections given more than once."""
    repeated = sorted({str(ref) for ref in refs if refs.count(ref) > 1})
    if repeated:
        raise InvalidRequestError(f"collection {', '.join(repeated)} is named twice: name it once")
    return refs


def check_known(wanted: list[CollectionRef], known: Iterable[CollectionRef], where: str) -> None:
    """Raise, listing what exists, when any of ``wanted`` is not in ``known``."""
    existing = sorted(set(known))
    missing = [ref for ref in wanted if ref not in existing]
    if missing:
        names = ", ".join(str(ref) for ref in existing) or "none"
        raise InvalidRequestError(
            f"collection {', '.join(str(m) for m in missing)} does not exist in {where}; "
            f"the collections there are: {names}"
        )


DB_COLLECTIONS_SHAPE = 'db_collections must be {"db": ["collection", ...]}'


def collections(
    names: list[str], db_collections: str | dict[str, list[str]] | None
) -> tuple[CollectionRef, ...]:
    """``collection_names`` plus ``db_collections`` (``{"db": []}`` is every collection of db)."""
    refs = parse_list(names)
    if isinstance(db_collections, str):
        db_collections = _json_object(db_collections)
    for db, colls in (db_collections or {}).items():
        if not isinstance(colls, list) or not all(isinstance(c, str) for c in colls):
            raise InvalidRequestError(DB_COLLECTIONS_SHAPE)
        database = CollectionRef.parse(f"{db}.{ALL}").db if db else ""
        if not database:
            raise InvalidRequestError(
                f"db_collections: empty database name; {DB_COLLECTIONS_SHAPE}"
            )
        wanted = [f"{database}.{c}" if c.strip() else "" for c in colls] or [f"{database}.{ALL}"]
        refs += [CollectionRef.parse(text) for text in wanted]
    return tuple(unique(refs))


def _json_object(text: str) -> dict[str, list[str]]:
    try:
        value = json.loads(text, object_pairs_hook=_no_repeated_keys) if text.strip() else {}
    except (ValueError, RecursionError):  # JSONDecodeError, an integer too long to convert
        raise InvalidRequestError(DB_COLLECTIONS_SHAPE) from None
    if not isinstance(value, dict):
        raise InvalidRequestError(DB_COLLECTIONS_SHAPE)
    return value


def _no_repeated_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise InvalidRequestError(f"db_collections names database {', '.join(repeated)} twice")
    return dict(pairs)
