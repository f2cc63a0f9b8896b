"""The in-cluster backend: API calls become MilvusBackup and MilvusRestore resources.

The API, ``kubectl`` and GitOps then see one state: a backup made through the API is a
resource the operator runs in a Job, and its progress is that resource's status (durable,
whichever replica of the server answers). Backups in storage are read directly, so backups
made by anyone (CLI, milvus-backup, another cluster) are listed and readable too.
"""

from __future__ import annotations

import builtins
import copy
import hashlib
import re
import time
from typing import Any

from ..api import API_VERSION, Kind, Phase
from ..api.specs import SpecError, parse_backup
from ..api.status import Status
from ..engine.backup import check_backup_request
from ..engine.catalog import Catalog
from ..engine.check import run_check
from ..engine.config import BackupConfig
from ..engine.errors import (
    AlreadyExistsError,
    MalformedMetaError,
    NotFoundError,
    OperationError,
    error_for,
)
from ..engine.restore_plan import check_restore_request
from ..engine.verify import verify_backup
from ..k8s.credentials import ApiSecrets, config_for
from ..k8s.resources import Resources
from . import views
from .backend import name_of, require_id, require_name, stored_backup
from .protocol import CreateBackupRequest, RestoreBackupRequest, StateCode
from .requests import backup_request, restore_request
from .tasks import CREATE, RESTORE, Task

TASK_LABEL = "backup.milvus.io/task-id"


def resource_name(text: str) -> str:
    """A Kubernetes name for a backup or task name (``my_backup`` -> ``my-backup``)."""
    name = re.sub(r"[^a-z0-9-]", "-", text.lower()).strip("-") or "task"
    if len(name) <= 63:
        return name  # two names differing only in case meet here: the second gets a 409
    digest = hashlib.sha1(text.encode()).hexdigest()[:6]
    return f"{name[:56]}-{digest}"


class ClusterBackend:
    def __init__(self, namespace: str, template: dict[str, Any], wait_timeout: float = 3600):
        """``template`` is a MilvusBackup spec (milvus, storage, backupStorage) for every call."""
        self.namespace = namespace
        self.template = template
        self.wait_timeout = wait_timeout
        self.resources = Resources()
        spec = parse_backup("template", template)
        self.config: BackupConfig = config_for(ApiSecrets(namespace), spec)
        self.catalog = Catalog.of(self.config)

    # ---- backups --------------------------------------------------------------------------

    def create(self, request: CreateBackupRequest, task_id: str) -> dict[str, Any]:
        engine_request = backup_request(request)
        check_backup_request(self.config, engine_request)  # refuse now, with the reason
        spec = copy.deepcopy(self.template)
        spec.update(
            backupName=engine_request.name, collections=[str(r) for r in engine_request.collections]
        )
        if request.rbac:
            spec["rbac"] = True
        owners = self._owners(engine_request.name)
        if any(Status.of(o.get("status")).phase != Phase.FAILED for o in owners):
            raise AlreadyExistsError(
                f"a MilvusBackup in namespace {self.namespace!r} already writes backup "
                f"{engine_request.name!r}: choose another name"
            )
        body = self._resource(Kind.BACKUP, resource_name(engine_request.name), task_id, spec)
        body = self._create(Kind.BACKUP, body, rename_on_clash=True)
        if request.run_async:
            return views.backup_task(_backup_task(body, engine_request.name))
        status = self._wait(Kind.BACKUP, body["metadata"]["name"])
        if status.phase != Phase.COMPLETED:
            raise error_for(status.reason, status.message or "failed")
        return stored_backup(self.catalog, engine_request.name)

    def list(self) -> list[dict[str, Any]]:
        return [views.summary(entry) for entry in self.catalog.list()]

    def get_backup(self, backup_id: str, backup_name: str) -> dict[str, Any]:
        """By id (the backup's: its MilvusBackup's uid; or the request id that created it)
        or by name (both: the same backup), whichever process makes it."""
        found = self._by_id(backup_id) if backup_id else None
        if found is not None:
            name = str(found["spec"].get("backupName", ""))
            require_name(backup_id, name, backup_name)
            if Status.of(found.get("status")).phase != Phase.COMPLETED:
                return views.backup_task(_backup_task(found, name))  # running, or failed
            uid = str(found["metadata"].get("uid", ""))
            return require_id(stored_backup(self.catalog, name), uid, name)
        if backup_id:
            name = backup_name or name_of(self.catalog, backup_id)
            return require_id(stored_backup(self.catalog, name), backup_id, name)
        return self._by_name(backup_name)

    def _by_name(self, name: str) -> dict[str, Any]:
        """The newest MilvusBackup writing ``name`` while it runs; else the backup stored
        (whoever wrote it); else why that MilvusBackup failed."""
        newest = next(reversed(self._owners(name)), None)
        phase = Status.of(newest.get("status")).phase if newest else None
        if newest is not None and phase not in (Phase.COMPLETED, Phase.FAILED):
            return views.backup_task(_backup_task(newest, name))
        try:
            return stored_backup(self.catalog, name)
        except (MalformedMetaError, NotFoundError):
            if newest is not None and phase == Phase.FAILED:
                return views.backup_task(_backup_task(newest, name))
            raise

    def _by_id(self, backup_id: str) -> dict[str, Any] | None:
        found = self._by_task(Kind.BACKUP, backup_id)
        if found is None:
            every = self.resources.list_all(Kind.BACKUP, self.namespace)
            found = next((b for b in every if b["metadata"].get("uid") == backup_id), None)
        return found

    def delete(self, backup_name: str) -> None:
        """Delete the backup (asked for) and the MilvusBackups that wrote it, found by the
        backup name in their spec, never by their resource name."""
        owners = self._owners(backup_name)
        self.catalog.delete(backup_name)
        for owner in owners:
            self.resources.delete(Kind.BACKUP, self.namespace, owner["metadata"]["name"])

    def _owners(self, backup_name: str) -> tuple[dict[str, Any], ...]:
        """The MilvusBackups here that write ``backup_name`` to this server's location."""
        location = self.config.backup_storage
        owners: builtins.list[dict[str, Any]] = []
        for body in self.resources.list_all(Kind.BACKUP, self.namespace):
            try:
                spec = parse_backup(body["metadata"]["name"], body.get("spec") or {})
            except SpecError:
                continue
            where = spec.backup_storage
            same = (where.bucket, where.root_path) == (location.bucket, location.root_path)
            if same and spec.backup_name == backup_name:
                owners.append(body)
        return tuple(sorted(owners, key=lambda b: b["metadata"].get("creationTimestamp") or ""))

    def verify(self, backup_name: str) -> dict[str, Any]:
        return views.verification(verify_backup(self.catalog, backup_name))

    # ---- restores -------------------------------------------------------------------------

    def restore(self, request: RestoreBackupRequest, task_id: str) -> dict[str, Any]:
        engine_request = restore_request(request, task_id)
        if request.dry_run:
            return views.restore_plan(check_restore_request(self.config, engine_request))
        check_restore_request(self.config, engine_request)
        spec: dict[str, Any] = {
            "backupName": request.backup_name,
            **{key: self.template[key] for key in ("milvus", "storage") if key in self.template},
            "backupStorage": {**self.template.get("storage", {}), "rootPath": "backup",
                              **self.template.get("backupStorage", {})},
            "collections": [str(r) for r in engine_request.collections],
            "collectionSuffix": request.collection_suffix,
            "collectionRenames": request.collection_renames,
            "dropExistingCollection": request.drop_exist_collection,
            "rebuildIndex": engine_request.rebuild_index,
            "load": request.load,
            "restoreAliases": request.restore_aliases,
            "rbac": request.rbac,
            "useV2Restore": request.use_v2_restore,
        }  # fmt: skip
        spec = {k: v for k, v in spec.items() if v not in ("", [], {})}
        body = self._resource(Kind.RESTORE, resource_name(task_id), task_id, spec)
        self._create(Kind.RESTORE, body)
        if not request.run_async:
            self._wait(Kind.RESTORE, body["metadata"]["name"])
        return self.get_restore(task_id)

    def get_restore(self, task_id: str) -> dict[str, Any]:
        found = self._by_task(Kind.RESTORE, task_id)
        if found is None:
            raise NotFoundError(f"no restore task with id {task_id!r}")
        task = _task(RESTORE, task_id, found["spec"].get("backupName", ""), found.get("status"))
        task.collections = [
            {**entry, "source": entry.get("name", "")}
            for entry in (found.get("status") or {}).get("collections", [])
        ]
        return views.restore_task(task)

    def check(self) -> tuple[bool, str]:
        report = run_check(self.config)
        return report.ok, report.render()

    # ---- plumbing -------------------------------------------------------------------------

    def _resource(
        self, kind: Kind, name: str, task_id: str, spec: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": kind.kind,
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": {
                    TASK_LABEL: resource_name(task_id),
                    "app.kubernetes.io/created-by": "rest-api",
                },
            },
            "spec": spec,
        }

    def _create(
        self, kind: Kind, body: dict[str, Any], rename_on_clash: bool = False
    ) -> dict[str, Any]:
        """Create the resource; on a name clash, under a generated name if asked to."""
        from kubernetes.client.exceptions import ApiException

        try:
            return self.resources.create(kind, self.namespace, body)
        except ApiException as exc:
            if exc.status != 409:
                raise
            if not rename_on_clash:
                raise AlreadyExistsError(
                    f"{body['kind']} {body['metadata']['name']!r} already exists in namespace "
                    f"{self.namespace!r}: use another name or id"
                ) from None
        # another resource holds the name (for another backup): let the API server pick one
        metadata = body["metadata"]
        renamed = {**metadata, "generateName": metadata["name"][:57] + "-"}
        del renamed["name"]
        return self.resources.create(kind, self.namespace, {**body, "metadata": renamed})

    def _by_task(self, kind: Kind, task_id: str) -> dict[str, Any] | None:
        found = self.resources.find(kind, self.namespace, TASK_LABEL, resource_name(task_id))
        return found[0] if found else None

    def _wait(self, kind: Kind, name: str) -> Status:
        deadline = time.monotonic() + self.wait_timeout
        while True:
            status = Status.of((self.resources.get(kind, self.namespace, name) or {}).get("status"))
            if status.is_done():
                return status
            if time.monotonic() > deadline:
                raise OperationError(f"{kind.plural}/{name} is still {status.phase}: poll it")
            time.sleep(0.5)


def _backup_task(body: dict[str, Any], backup_name: str) -> Task:
    """A MilvusBackup as a create task; its id is the backup's (the resource's uid)."""
    return _task(CREATE, str(body["metadata"].get("uid", "")), backup_name, body.get("status"))


def _task(kind: str, task_id: str, backup_name: str, raw: dict[str, Any] | None) -> Task:
    status = Status.of(raw)
    code = {Phase.COMPLETED: StateCode.SUCCESS, Phase.FAILED: StateCode.FAIL}.get(
        status.phase or Phase.PENDING, StateCode.EXECUTING
    )
    task = Task(task_id, kind, backup_name, {}, state_code=code,
                progress=int(status.progress.get("percent", 1)) or 1)  # fmt: skip
    if status.phase == Phase.FAILED:
        task.error = status.message or "failed"
    return task
