"""MilvusRestore: wait for its backup, validate, start the work."""

from __future__ import annotations

from typing import Any

import kopf

from ..api import GROUP, VERSION, Kind, Phase
from ..api.specs import SpecError
from ..api.status import RestoreStatus
from ..executors import WorkItem
from ..k8s.credentials import gather, secret_names
from ..k8s.references import BackupNotReadyError, resolve_restore
from .adoption import adopt
from .metrics import counted
from .services import services, start_work

RETRY_SECONDS = 10


@kopf.on.resume(GROUP, VERSION, Kind.RESTORE.plural)
@kopf.on.create(GROUP, VERSION, Kind.RESTORE.plural)
@counted
def reconcile(
    *, body: kopf.Body, spec: kopf.Spec, status: kopf.Status, name: str,
    namespace: str | None, patch: kopf.Patch, memo: kopf.Memo, **_: Any,
) -> None:  # fmt: skip
    """Start the restore once its backup is Completed; refuse a spec that cannot work."""
    current = RestoreStatus.of(status)
    if current.is_done() or namespace is None:
        return
    run, generation = services(memo), body.metadata.get("generation", 1)
    if adopt(Kind.RESTORE, body.metadata, current, generation):
        patch.status.update(current.patch())  # never run again over live data
        return
    try:
        parsed = resolve_restore(run.resources, namespace, dict(spec))
        gather(run.secrets(namespace), parsed)
    except BackupNotReadyError as exc:
        if current.phase != Phase.PENDING:
            current.set_pending(generation, str(exc))
            patch.status.update(current.patch())
        raise kopf.TemporaryError(str(exc), delay=RETRY_SECONDS) from None
    except SpecError as exc:
        current.set_failed(generation, str(exc), reason="InvalidSpec")
        patch.status.update(current.patch())
        kopf.warn(body, reason="InvalidSpec", message=str(exc))
        return
    item = WorkItem(Kind.RESTORE, namespace, name, dict(body), tuple(secret_names(parsed)),
                    attempt=current.attempts)  # fmt: skip
    if current.phase in (None, Phase.PENDING) and not current.job_name:
        current.job_name = run.executor.runner_name(item)
        current.backup_name, current.target = parsed.backup_name, parsed.target
        message = f"restore of {parsed.backup_name} scheduled ({current.job_name})"
        current.set_pending(generation, message)
        run.resources.patch_status(Kind.RESTORE, namespace, name, current.patch())  # first
        kopf.event(body, type="Normal", reason="Started", message=message)
    start_work(run, item, current, generation)
