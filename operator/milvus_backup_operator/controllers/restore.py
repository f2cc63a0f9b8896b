"""MilvusRestore: wait for its backup, validate, start the work."""

from __future__ import annotations

from typing import Any

import kopf

from ..api import GROUP, RESTORE_PLURAL, VERSION
from ..api import status as st
from ..api.specs import SpecError
from ..executors import RESTORE, WorkItem
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
        assert parsed.milvus and parsed.storage and parsed.backup_storage
        gather(ApiSecrets(namespace), parsed.milvus, parsed.storage, parsed.backup_storage)
    except BackupNotReadyError as exc:
        if st.phase_of(status) != st.PENDING:
            patch.status.update(st.pending(generation, str(exc)))
        raise kopf.TemporaryError(str(exc), delay=RETRY_SECONDS) from None
    except SpecError as exc:
        patch.status.update(st.failed(generation, str(exc), reason="InvalidSpec"))
        kopf.warn(body, reason="InvalidSpec", message=str(exc))
        return
    if st.phase_of(status) in ("", st.PENDING) and not status.get("jobName"):
        secrets = secret_names(parsed.milvus, parsed.storage, parsed.backup_storage)
        runner = OPTIONS.executor.start(
            WorkItem(RESTORE, namespace, name, dict(body), tuple(secrets))
        )
        message = f"restore of {parsed.backup_name} scheduled ({runner})"
        target = f"{parsed.milvus.address}:{parsed.milvus.port}"
        patch.status.update(
            st.pending(generation, message, backupName=parsed.backup_name, target=target,
                       jobName=runner)
        )  # fmt: skip
        kopf.event(body, type="Normal", reason="Started", message=message)
    elif st.phase_of(status) == st.RUNNING:
        OPTIONS.executor.start(WorkItem(RESTORE, namespace, name, dict(body), ()))
