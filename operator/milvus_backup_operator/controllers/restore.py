"""MilvusRestore: wait for its backup, validate, start the work."""

from __future__ import annotations

from typing import Any

import kopf

from ..api import GROUP, RESTORE_PLURAL, VERSION
from ..api import status as st
from ..api.specs import SpecError
from ..executors import RESTORE, WorkItem
from ..k8s import resources
from ..k8s.credentials import ApiSecrets, gather, secret_names
from ..worker import BackupNotReadyError, resolve_restore
from .options import OPTIONS

RETRY_SECONDS = 10


@kopf.on.resume(GROUP, VERSION, RESTORE_PLURAL)
@kopf.on.create(GROUP, VERSION, RESTORE_PLURAL)
def reconcile(
    *, body: kopf.Body, spec: kopf.Spec, status: kopf.Status, name: str,
    namespace: str | None, patch: kopf.Patch, **_: Any,
) -> None:  # fmt: skip
    """Start the restore once its backup is Completed; refuse a spec that cannot work."""
    if st.is_done(status) or namespace is None:
        return
    generation = body.metadata.get("generation", 1)
    try:
        parsed = resolve_restore(namespace, dict(spec))
        gather(ApiSecrets(namespace), parsed)
    except BackupNotReadyError as exc:
        if st.phase_of(status) != st.PENDING:
            patch.status.update(st.pending(generation, str(exc)))
        raise kopf.TemporaryError(str(exc), delay=RETRY_SECONDS) from None
    except SpecError as exc:
        patch.status.update(st.failed(generation, str(exc), reason="InvalidSpec"))
        kopf.warn(body, reason="InvalidSpec", message=str(exc))
        return
    item = WorkItem(RESTORE, namespace, name, dict(body), tuple(secret_names(parsed)))
    if st.phase_of(status) in ("", st.PENDING) and not status.get("jobName"):
        runner = OPTIONS.executor.runner_name(item)
        message = f"restore of {parsed.backup_name} scheduled ({runner})"
        pending = st.pending(generation, message, backupName=parsed.backup_name,
                             target=parsed.target, jobName=runner)  # fmt: skip
        resources.patch_status(RESTORE_PLURAL, namespace, name, pending)  # before the work
        kopf.event(body, type="Normal", reason="Started", message=message)
    OPTIONS.executor.start(item)
