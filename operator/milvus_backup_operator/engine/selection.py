"""Which collections a request means: ``coll`` (default database) or ``db.coll``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .errors import InvalidRequestError

DEFAULT_DB = "default"
ALL = "*"  # ``db.*``: every collection of a database


@dataclass(frozen=True, order=True)
class CollectionRef:
    db: str
    name: str

    @classmethod
    def parse(cls, text: str) -> CollectionRef:
        """``coll`` means the default database; ``db.coll`` names one; ``db.*`` all of db."""
        db, _, name = text.strip().rpartition(".")
        if not name:
            raise InvalidRequestError(f"invalid collection name {text!r}: use coll or db.coll")
        return cls(db or DEFAULT_DB, name)

    def __str__(self) -> str:
        return self.name if self.db == DEFAULT_DB else f"{self.db}.{self.name}"


def parse_list(text: str | Iterable[str] | None) -> list[CollectionRef]:
    """``"a,db.b"`` or ``["a", "db.b"]`` as references, without duplicates, in order."""
    if not text:
        return []
    items = text.split(",") if isinstance(text, str) else list(text)
    refs = [CollectionRef.parse(item) for item in items if item.strip()]
    return list(dict.fromkeys(refs))


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
