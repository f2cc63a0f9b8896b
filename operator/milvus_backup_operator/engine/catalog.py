"""The backups in a backup location: list, read, delete."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import NoReturn

from .config import BackupConfig, Timeouts
from .errors import (
    InUseError,
    MalformedMetaError,
    NotABackupError,
    NotFoundError,
)
from .layout import BackupLayout, join
from .leases import delete_unread, deletion_started, only_notices, reading
from .manifest import Manifest, read_manifest
from .meta import (
    BACKUP_META,
    FULL_META,
    META_FILES,
    BackupInfo,
    assemble_from_level_files,
    parse_full_meta,
    parse_json,
)
from .names import NAME_PATTERN as _NAME
from .names import validate_backup_name
from .reservation import Marker, read_marker, silent_for
from .storage import ObjectStore

log = logging.getLogger(__name__)

COMPLETED = "Completed"
RUNNING = "Running"
INCOMPLETE = "Incomplete"


@dataclass(frozen=True)
class BackupSummary:
    """One entry of ``list``: a finished backup, one being written, or the leftovers of one
    that did not finish."""

    name: str
    state: str  # Completed, Running or Incomplete
    id: str = ""
    size: int = 0
    milvus_version: str = ""
    backup_timestamp: int = 0
    collections: tuple[str, ...] = ()
    error: str = ""
    meta_only: bool = False  # schemas only, no data (milvus-backup's ``meta_only`` strategy)
    started: float = 0.0  # a running backup's start (from its in-progress marker)
    progress: int = 0  # a running backup's percent at its writer's last renewal


@dataclass(frozen=True)
class Writer:
    """The writer of a backup that has no meta yet, as its in-progress marker tells."""

    marker: Marker
    silent: float | None  # seconds since the marker was last renewed
    gone: str | None  # why its process is provably gone, when it is
    silence: float  # a writer unheard for longer has stopped (see Marker.silence_for)

    @property
    def alive(self) -> bool:
        """Heard from within ``silence``, and not provably gone: it may still be writing."""
        return self.gone is None and self.silent is not None and self.silent < self.silence

    def describe(self) -> str:
        """Who, and since when it is silent or why it is gone."""
        if self.gone is not None:
            return f"{self.marker.describe()}; its writer is gone: {self.gone}"
        heard = "never renewed" if self.silent is None else f"heard from {self.silent:.0f}s ago"
        return f"{self.marker.describe()}; its writer was {heard}"


class UnfinishedError(MalformedMetaError):
    """A backup of ours without its last meta file, and who writes (or wrote) it."""

    def __init__(self, message: str, writer: Writer) -> None:
        super().__init__(message)
        self.writer = writer


class Catalog:
    """Backups under one root path of one bucket."""

    def __init__(
        self, store: ObjectStore, root_path: str, writer_silence: float = Timeouts.writer_silence
    ) -> None:
        self.store = store
        self.root_path = root_path
        self.writer_silence = writer_silence

    @classmethod
    def of(cls, config: BackupConfig) -> Catalog:
        """The backups in ``config``'s backup location."""
        store = ObjectStore(config.backup_storage, config.timeouts, config.parallelism.copy_data)
        return cls(store, config.backup_storage.root_path, config.timeouts.writer_silence)

    def layout(self, name: str) -> BackupLayout:
        """Where backup ``name`` lives; a name that breaks the rule is refused, never used."""
        return BackupLayout(self.root_path, validate_backup_name(name))

    def exists(self, name: str) -> bool:
        """True when anything at all is stored under the backup's prefix."""
        return self.store.has_any(self.layout(name).prefix)

    def names(self) -> list[str]:
        """The first-level "directories" under the root that could be backups."""
        prefix = join(self.root_path) + "/" if self.root_path else ""
        found = (
            obj.key.removeprefix(prefix).removesuffix("/")
            for obj in self.store.list(prefix, False)
            if obj.key.endswith("/")  # a plain object is not a backup
        )
        return sorted(name for name in found if _NAME.fullmatch(name))

    def list(self) -> list[BackupSummary]:
        """Every backup, with the ones that did not finish marked Incomplete (never hidden).

        A prefix that is not a backup (no meta, no in-progress marker of ours) is not listed.
        """
        with ThreadPoolExecutor(16, thread_name_prefix="list") as pool:
            return [s for s in pool.map(self.summary, self.names()) if s is not None]

    def summary(self, name: str) -> BackupSummary | None:
        """One backup as ``list`` shows it; None when ``name`` is not a backup at all."""
        try:
            info = self.read(name)
        except NotABackupError:
            return None
        except (MalformedMetaError, NotFoundError) as exc:
            # read() has just looked at the marker when the backup is unfinished
            writer = exc.writer if isinstance(exc, UnfinishedError) else self.writer(name)
            if writer is not None and writer.alive:
                return BackupSummary(
                    name=name,
                    state=RUNNING,
                    id=writer.marker.backup_id,
                    started=writer.marker.started,
                    progress=writer.marker.progress,
                )
            backup_id = writer.marker.backup_id if writer is not None else ""
            return BackupSummary(name=name, state=INCOMPLETE, id=backup_id, error=str(exc))
        return BackupSummary(
            name=name,  # the directory: what get and delete take (a copy's meta may differ)
            state=COMPLETED,
            id=info.id,
            size=info.size,
            milvus_version=info.milvus_version,
            backup_timestamp=info.backup_timestamp,
            collections=tuple(c.qualified_name for c in info.collection_backups),
            meta_only=info.meta_only,
        )

    def read(self, name: str) -> BackupInfo:
        """The backup's meta: ``full_meta.json`` when present, else the four level files."""
        layout = self.layout(name)
        where = f"backup {name!r} ({self.store.describe()}, {layout.prefix})"
        head = self.store.get_if_exists(layout.meta_key(BACKUP_META))
        self._refuse_half_deleted(where, layout)  # a delete under way, or one that stopped
        full = self.store.get_if_exists(layout.meta_key(FULL_META))
        if head is None or full is None:  # ours write full_meta.json last, then drop the marker
            writer = self.writer(name)
            if writer is None and head is not None:
                return self._from_level_files(where, layout, head)  # an older milvus-backup's
            if writer is not None and writer.alive:
                raise UnfinishedError(
                    f"{where} is still being written ({writer.describe()}): wait for it to finish",
                    writer,
                )
            if writer is not None:
                raise UnfinishedError(
                    f"{where} has not completed and its writer stopped ({writer.describe()}): "
                    "delete it and take the backup again",
                    writer,
                )
            self._missing_or_not_a_backup(name)
        assert full is not None
        return parse_full_meta(full, f"{where}/meta/{FULL_META}")

    def _from_level_files(self, where: str, layout: BackupLayout, head: bytes) -> BackupInfo:
        files = {BACKUP_META: head}
        for filename in META_FILES[1:-1]:
            raw = self.store.get_if_exists(layout.meta_key(filename))
            if raw is None:
                raise MalformedMetaError(f"{where} is missing meta/{filename}")
            files[filename] = raw
        return assemble_from_level_files(files, f"{where}/meta")

    def _refuse_half_deleted(self, where: str, layout: BackupLayout) -> None:
        since = deletion_started(self.store, layout)
        if since is not None:
            when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(since))
            raise MalformedMetaError(
                f"{where} is being deleted since {when}, or that delete stopped: if no "
                "delete is running, run it again"
            )

    def manifest(self, name: str) -> Manifest | None:
        """Our records of the backup (:mod:`.manifest`); None for milvus-backup's backups."""
        return read_manifest(self.store, self.layout(name))

    def _missing_or_not_a_backup(self, name: str) -> NoReturn:
        """Raise NotFound for an empty prefix, NotABackup for one that holds something else."""
        layout = self.layout(name)
        if not self.exists(name):
            raise NotFoundError(f"backup {name!r} does not exist in {self.store.describe()}")
        raise NotABackupError(
            f"{layout.prefix} in {self.store.describe()} is not a backup (it has no "
            f"meta/{BACKUP_META} and no in-progress marker of ours): it is left untouched"
        )

    def finished_or_cleared(self, name: str, backup_id: str) -> BackupInfo | None:
        """After a writer died: its backup if it completed, else remove what it left (None).

        The leftovers are removed only if their in-progress marker names ``backup_id`` (the
        dead writer was this caller's predecessor); anything else is refused.
        """
        if not self.exists(name):
            return None
        try:
            return self.read(name)
        except MalformedMetaError:
            marker = read_marker(self.store, self.layout(name))
            if marker is None or marker.backup_id != backup_id:
                raise
            self.store.delete_prefix(self.layout(name).prefix)
            return None

    def delete(self, name: str) -> int:
        """Delete one backup: a prefix holding a backup's meta or our in-progress marker.

        Anything else under the name is refused (:class:`NotABackupError`) and left as it is;
        so is a backup whose writer renewed its marker within ``writer_silence`` and may be
        alive, or that a restore reads (:class:`InUseError`; see :mod:`.leases`).
        """
        layout = self.layout(name)
        marker = read_marker(self.store, layout)
        if marker is not None:  # being written, up to its last meta file
            self._refuse_live_writer(layout)
        elif (
            self.store.get_if_exists(layout.meta_key(BACKUP_META)) is None
            and deletion_started(self.store, layout) is None
            and not only_notices(self.store, layout)
        ):
            self._missing_or_not_a_backup(name)
        # else a backup's meta, what a delete of ours left when it stopped half way, or a
        # lease a stopped restore left behind it: delete it, or finish the job
        return delete_unread(self.store, layout, self.writer_silence)

    def reading(self, name: str, reader: str, task_id: str) -> AbstractContextManager[None]:
        """Hold a reader's lease on backup ``name`` while the block runs (a restore): a
        delete refuses it meanwhile; refused while a delete of it is under way."""
        return reading(self.store, self.layout(name), reader, task_id, self.writer_silence)

    def writer(self, name: str) -> Writer | None:
        """Who writes backup ``name``, if it has an in-progress marker of ours."""
        layout = self.layout(name)
        marker = read_marker(self.store, layout)
        if marker is None:
            return None
        silent = silent_for(self.store, layout)
        silence = marker.silence_for(self.writer_silence)
        fresh = silent is not None and silent < silence
        gone = marker.process.gone() if fresh else None  # only a fresh one needs looking up
        return Writer(marker, silent, gone, silence)

    def find_id(self, backup_id: str) -> str | None:
        """The name of the backup whose id is ``backup_id`` (complete, being written, or left
        by a stopped writer), if any: one small object read per backup, until it is found."""
        names = self.names()
        pool = ThreadPoolExecutor(16, thread_name_prefix="find")
        try:
            for name, found in zip(names, pool.map(self._id_of, names), strict=True):
                if found == backup_id:
                    return name
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return None

    def _id_of(self, name: str) -> str | None:
        """The id in a backup's ``backup_meta.json``, or its writer's marker."""
        layout = self.layout(name)
        head = self.store.get_if_exists(layout.meta_key(BACKUP_META))
        if head is None:
            marker = read_marker(self.store, layout)
            return marker.backup_id if marker else None
        try:
            meta = parse_json(head, layout.meta_key(BACKUP_META))
        except MalformedMetaError:
            return None
        found = meta.get("id") if isinstance(meta, dict) else None
        return found if isinstance(found, str) else None

    def meta_size(self, name: str) -> int:
        """Bytes under the backup's ``meta/`` (milvus-backup's ``meta_size``)."""
        return sum(o.size for o in self.store.list(self.layout(name).meta_key("") + "/"))

    def _refuse_live_writer(self, layout: BackupLayout) -> None:
        """Raise while the backup's writer may be alive: heard from within ``writer_silence``
        and not provably gone (a process of this host, boot and pid namespace)."""
        writer = self.writer(layout.name)
        if writer is None or writer.silent is None or writer.silent >= writer.silence:
            return
        if not writer.alive:
            log.warning(
                "backup %s: %s: deleted without waiting timeouts.writerSilence",
                layout.name, writer.describe(),
            )  # fmt: skip
            return
        raise InUseError(
            f"backup {layout.name!r} is being written ({writer.describe()}): wait for it to "
            f"finish; if its writer has stopped, it can be deleted {writer.silence:.0f}s "
            "after that (timeouts.writerSilence)"
        )
