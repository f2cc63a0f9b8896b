"""Replacing an existing collection by a restored one, only once the restored one is proven.

A restore asked to replace an existing collection (``dropExistingCollection``,
``--drop_exist_collection``) builds the new one beside it under a temporary name, imports,
checks its rows (and builds its indexes and loads it, when asked); only then:

1. the original is renamed aside (``<name>__mbo_old_<id>``),
2. the restored collection is renamed into its place,
3. each alias of the original is pointed at the restored collection,
4. the original is dropped.

Readers by name see the original until step 1 and the restored collection from step 2 on;
between the two (two metadata calls, milliseconds) the name does not exist. Readers through
an alias see the original until step 3 moves their alias. A restore that fails before step 2
has not touched the original; the collection it built is dropped (it is provably its own: its
ID was recorded when it was created). Every step checks collection IDs and does nothing twice,
so a restore stopped in the middle is finished by its resumed run.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from .errors import BackupError, OperationError
from .milvus import Milvus
from .milvus_calls import MILVUS_CALLS
from .selection import CollectionRef

log = logging.getLogger(__name__)

MAX_NAME = 255  # Milvus's limit on a collection name (proxy.maxNameLength)
_BASE = MAX_NAME - len("__mbo_new_") - 12


class SwapError(OperationError):
    """The swap stopped. ``placed``: the restored collection is in place already (nothing
    may be dropped); otherwise the original is where it was."""

    def __init__(self, message: str, placed: bool) -> None:
        super().__init__(message)
        self.placed = placed


def building_name(target: CollectionRef, task_id: str) -> CollectionRef:
    """The name a restore builds a replacement of ``target`` under: the same for every run
    of one restore, so that a resumed run finds it."""
    digest = hashlib.sha256(f"{task_id}/{target}".encode()).hexdigest()[:12]
    return CollectionRef(target.db, f"{target.name[:_BASE]}__mbo_new_{digest}")


@dataclass(frozen=True)
class Swap:
    """One replacement: ``build`` (Milvus's ID ``built``) takes the place of ``target``,
    which held collection ``original`` when the restore started."""

    target: CollectionRef
    build: CollectionRef
    built: int
    original: int

    @property
    def aside(self) -> CollectionRef:
        """Where the original is set aside: the build's name, ``old`` for ``new``."""
        head, _, digest = self.build.name.rpartition("__mbo_new_")
        return CollectionRef(self.target.db, f"{head}__mbo_old_{digest}")

    def run(self, milvus: Milvus) -> str:
        """Steps 1 to 4, from wherever a stopped run left them; return what was done.

        Raises :class:`SwapError`; with ``placed`` false the original is untouched.
        """
        try:
            self._place(milvus)
        except SwapError:
            raise
        except BackupError as exc:
            put_back = self._put_back(milvus)
            raise SwapError(
                f"could not swap the restored collection into place ({exc}){put_back}",
                placed=False,
            ) from None
        try:
            return self._retire_original(milvus)
        except SwapError:
            raise
        except BackupError as exc:
            raise SwapError(
                f"restored and in place, but the original's aliases and the original itself "
                f"(kept as {self.aside}) could not be dealt with ({exc}): run the restore "
                f"again to finish, or point its aliases at {self.target} and drop it",
                placed=True,
            ) from None

    def _place(self, milvus: Milvus) -> None:
        db = self.target.db
        now = milvus.collection_id(db, self.target.name)
        if now == self.built:
            return  # a stopped run got this far
        if now not in (None, self.original):
            raise SwapError(
                f"{self.target} now holds another collection (ID {now}) than the one this "
                f"restore was to replace (ID {self.original}): someone replaced it meanwhile; "
                "it was left alone",
                placed=False,
            )
        if now == self.original:
            milvus.wait_imports_settled(db, self.target.name)
        if milvus.collection_id(db, self.build.name) != self.built:
            raise OperationError(f"the restored collection {self.build} is gone")
        with MILVUS_CALLS.together():  # a stop signal lets both renames go, not only one
            if now == self.original:
                milvus.rename_collection(db, self.target.name, self.aside.name)
            milvus.rename_collection(db, self.build.name, self.target.name)

    def _put_back(self, milvus: Milvus) -> str:
        """Undo step 1: the original back under its name."""
        db = self.target.db
        try:
            if milvus.collection_id(db, self.aside.name) == self.original:
                milvus.rename_collection(db, self.aside.name, self.target.name)
            return f"; the original {self.target} is back in place, untouched"
        except BackupError as exc:
            return (
                f"; the original could not be put back ({exc}): it is untouched as "
                f"{self.aside}; rename it to {self.target.name}"
            )

    def _retire_original(self, milvus: Milvus) -> str:
        """Steps 3 and 4: the original's aliases to the restored collection, then drop it."""
        db = self.target.db
        if milvus.collection_id(db, self.aside.name) != self.original:
            return f"; swapped into the place of {self.target}"
        moved = []
        try:
            for alias in milvus.aliases_of(db, self.aside.name):
                milvus.alter_alias(db, self.target.name, alias)
                moved.append(alias)
        except BackupError as exc:
            raise SwapError(
                f"restored and in place, but alias moves failed ({exc}): aliases "
                f"{', '.join(milvus.aliases_of(db, self.aside.name)) or '(none)'} still point "
                f"at the original, kept as {self.aside}; point them at {self.target} "
                "(alter_alias) and drop it",
                placed=True,
            ) from None
        said = f"; swapped into the place of {self.target}"
        said += f", aliases {', '.join(moved)} moved to it" if moved else ""
        try:
            milvus.wait_imports_settled(db, self.aside.name)
            milvus.drop_collection(db, self.aside.name)
        except BackupError as exc:
            log.warning("could not drop the replaced collection %s: %s", self.aside, exc)
            return f"{said}; the original could not be dropped ({exc}): drop {self.aside}"
        return f"{said}; the original (ID {self.original}) was dropped"
