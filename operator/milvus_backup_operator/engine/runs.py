"""One run of a backup or a restore, and the one way an interrupted run is resumed.

The Job runner, the operator's inline executor and the standalone REST server all run
backups and restores through here; each keeps the run's record where it keeps state (a
resource's status, a task in the REST server's database) and hands back what the dead run
recorded. The policy is the same everywhere:

- a backup whose writer died is finished if its meta was written (it completed), else what
  it wrote is removed (only if its in-progress marker names this run) and it starts over;
- a restore keeps the collections it completed and the verdict of those that failed, waits
  for the imports the dead run left in Milvus, drops the targets it had started and redoes
  only those and the ones it never reached. A target is dropped only while it holds the
  collection ID the dead run recorded right after creating it; one without that proof (the
  run died between creating and recording, or someone made another collection of that name
  since) is left alone and that collection fails, saying so, unless the restore was asked to
  drop existing targets anyway. A record naming a collection this restore does not restore
  there (a status edited by hand) is ignored: it is never dropped.
- a replacement that was being built under a temporary name is dropped as above (the name it
  replaces was never touched); one that was checked and being swapped in is finished
  (:mod:`.swap`: every step checks collection IDs).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from .backup import BackupRequest, create_backup
from .catalog import Catalog
from .config import BackupConfig
from .meta import BackupInfo
from .milvus import connect
from .progress import ProgressCallback
from .reservation import Reservation
from .restore import (
    COMPLETED,
    FAILED,
    RUNNING,
    SWAPPING,
    CollectionCallback,
    CollectionRestoreResult,
    RestoreResult,
    restore_backup,
)
from .restore_plan import RestoreRequest, planned_pairs
from .selection import CollectionRef
from .swap import SwapError

log = logging.getLogger(__name__)


def run_backup(
    config: BackupConfig,
    request: BackupRequest,
    on_progress: ProgressCallback | None = None,
    *,
    resumed: bool = False,
    reservation: Reservation | None = None,
) -> BackupInfo:
    """Back up; ``resumed``: a run with this ``request.backup_id`` died while running."""
    if resumed:
        finished = Catalog.of(config).finished_or_cleared(request.name, request.backup_id)
        if finished is not None:
            log.info("backup %s had completed before its run stopped", request.name)
            return finished
    return create_backup(config, request, on_progress, reservation)


def run_restore(
    config: BackupConfig,
    request: RestoreRequest,
    on_progress: ProgressCallback | None = None,
    on_collection: CollectionCallback | None = None,
    *,
    previous: Sequence[CollectionRestoreResult] | None = None,
) -> RestoreResult:
    """Restore; ``previous``: what a dead run of this restore recorded (None: a fresh run)."""
    if previous is None:
        return restore_backup(config, request, on_progress, on_collection)
    backup = Catalog.of(config).read(request.backup_name)
    ours = planned_pairs(backup.collection_backups, request)
    foreign = [c for c in previous if (c.source, c.target) not in ours]
    for entry in foreign:  # a forged or stale record: never ours to drop, nor done
        log.warning(
            "restore %s: ignoring the record of %s -> %s (%s): this restore does not restore "
            "that collection there", request.task_id, entry.source, entry.target, entry.state,
        )  # fmt: skip
    previous = [c for c in previous if (c.source, c.target) in ours]
    kept = [c for c in previous if c.state not in (RUNNING, SWAPPING)]
    unproven = _drop_started(config, [c for c in previous if c.state == RUNNING], request)
    swapped = _finish_swaps(config, [c for c in previous if c.state == SWAPPING], request)
    for entry in [*unproven, *swapped]:  # said at once, not when the rest of the restore ends
        (on_collection or (lambda _: None))(entry)
    kept += unproven + swapped
    remaining = _remaining(request, backup, {c.source for c in kept})
    log.warning(
        "resuming restore %s: %d collections kept, %d to restore",
        request.task_id, len(kept), len(remaining),
    )  # fmt: skip
    if not remaining:
        return RestoreResult(request.task_id, request.backup_name, list(kept))
    renames = tuple(pair for pair in request.renames if pair[0] in remaining)
    resumed = replace(request, collections=tuple(remaining), renames=renames)
    result = restore_backup(config, resumed, on_progress, on_collection)
    result.collections = [*kept, *result.collections]
    return result


def _remaining(
    request: RestoreRequest, backup: BackupInfo, finished: set[str]
) -> list[CollectionRef]:
    wanted = request.collections or tuple(
        CollectionRef(c.db_name or "default", c.collection_name) for c in backup.collection_backups
    )
    return [ref for ref in wanted if str(ref) not in finished]


def _drop_started(
    config: BackupConfig, started: list[CollectionRestoreResult], request: RestoreRequest
) -> list[CollectionRestoreResult]:
    """Drop the targets a dead run had created, once the imports it left there have ended (a
    collection dropped under imports in flight stalls Milvus 2.3's import queue). Return, as
    Failed, those whose target exists but cannot be proven the dead run's: nothing dropped."""
    unproven: list[CollectionRestoreResult] = []
    with connect(config.milvus, config.timeouts) as milvus:
        for entry in started:
            target = _created_as(entry)
            found = milvus.collection_id(target.db, target.name)
            if found is not None and found == entry.collection_id:
                milvus.wait_imports_settled(target.db, target.name)
                found = milvus.collection_id(target.db, target.name)  # replaced meanwhile?
                if found == entry.collection_id:
                    log.warning("dropping %s, which the interrupted restore created", target)
                    milvus.drop_collection(target.db, target.name)
                    continue
            if found is not None and not request.drop_existing:  # else the redo drops it
                unproven.append(_not_proven_ours(entry, target, found))
    return unproven


def _created_as(entry: CollectionRestoreResult) -> CollectionRef:
    """The collection a run created: the target, or the replacement built beside it."""
    target = CollectionRef.parse(entry.target)
    return CollectionRef(target.db, entry.building) if entry.building else target


def _finish_swaps(
    config: BackupConfig, swapping: list[CollectionRestoreResult], request: RestoreRequest
) -> list[CollectionRestoreResult]:
    """Finish the replacements a dead run had checked and begun to swap in; one that cannot
    be put in place (the original was replaced meanwhile) is dropped, as a run would."""
    if not swapping:
        return []
    done = []
    with connect(config.milvus, config.timeouts) as milvus:
        for entry in swapping:
            log.warning("finishing the swap of %s into %s", entry.building, entry.target)
            try:
                said = entry.swap().run(milvus)
            except SwapError as exc:
                done.append(replace(entry, state=FAILED, error=str(exc)))
                if not exc.placed:
                    _drop_started(config, [entry], request)
                continue
            done.append(replace(entry, state=COMPLETED, checked=entry.checked + said))
    return done


def _not_proven_ours(
    entry: CollectionRestoreResult, target: CollectionRef, found: int
) -> CollectionRestoreResult:
    why = (
        "it stopped before recording the ID of the collection it created"
        if not entry.collection_id
        else f"it created ID {entry.collection_id}, the collection there is ID {found}"
    )
    log.warning("restore: leaving %s alone: %s", target, why)
    return replace(
        entry,
        state=FAILED,
        error=(
            f"left alone: a collection exists there, but this restore cannot prove it made it "
            f"({why}), so nothing was dropped. Check {target}: drop it if it is this restore's "
            "unfinished work, then restore that collection again (or restore with "
            "dropExistingCollection / --drop_exist_collection, which replaces it)"
        ),
    )
