"""The CustomResourceDefinitions, generated from this one source into ``crds/``.

``python -m milvus_backup_operator.api.crds crds/`` rewrites the files; a test keeps them equal.
Kubernetes 1.20 has no CEL rules, so everything checkable at the edge is said with the
structural schema (patterns, enums, bounds, defaults); the rest is checked by the operator.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from . import GROUP, VERSION, Kind, Phase
from .job_template import DNS_SUBDOMAIN, EFFECTS, QUANTITY
from .retention import PERIODS
from .schedule import CRON_PATTERN, OWNER_NONE, OWNER_SCHEDULE, PREFIX_PATTERN
from .specs import DURATION_PATTERN, TIMEOUT_BOUNDS

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
COLLECTION_PATTERN = r"^([A-Za-z_][A-Za-z0-9_]*\.)?[A-Za-z_][A-Za-z0-9_]*$"
PHASES = [str(phase) for phase in Phase]
#: ``kubectl get milvus-backup`` lists every kind of ours; ``milvus`` and ``backup`` are taken
#: (Milvus Operator's Milvus; Velero's and CloudNativePG's Backup), and a category must not be
#: one of our names: kubectl expands categories before it looks names up.
CATEGORY = "milvus-backup"

Schema = dict[str, Any]


def _string(description: str, **extra: Any) -> Schema:
    return {"type": "string", "description": description, **extra}


def _int(description: str) -> Schema:
    return {"type": "integer", "description": description}


def _bool(description: str) -> Schema:
    return {"type": "boolean", "description": description, "default": False}


def _obj(description: str, properties: Schema, required: list[str] | None = None) -> Schema:
    schema: Schema = {"type": "object", "description": description, "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _milvus(required: bool) -> Schema:
    return _obj(
        "The Milvus proxy (gRPC).",
        {
            "address": _string("Host name of Milvus's proxy, e.g. my-release-milvus.milvus.svc.", minLength=1),
            "port": {"type": "integer", "description": "gRPC port of the proxy.", "minimum": 1, "maximum": 65535, "default": 19530},
            "credentialsSecret": _string("Secret with keys username and password (Milvus auth)."),
            "tls": _bool("Connect with TLS (server certificate checked against system CAs)."),
        },
        ["address"] if required else None,
    )  # fmt: skip


def _storage(description: str, endpoint_required: bool, root: str | None) -> Schema:
    properties: Schema = {
        "endpoint": _string("S3 endpoint as host:port, e.g. my-release-minio.milvus.svc:9000.", minLength=1),
        "bucket": _string("Bucket name.", minLength=3),
        "rootPath": _string("Prefix inside the bucket."),
        "useSSL": _bool("Use HTTPS."),
        "region": _string("Region (empty for MinIO and Ceph)."),
        "credentialsSecret": _obj(
            "Secret holding the access key and secret key.",
            {
                "name": _string("Secret name.", minLength=1),
                "accessKeyKey": _string("Key of the access key.", default="accesskey"),
                "secretKeyKey": _string("Key of the secret key.", default="secretkey"),
            },
            ["name"],
        ),
    }  # fmt: skip
    if root is not None:
        properties["rootPath"]["default"] = root
        properties["bucket"]["default"] = "milvus-bucket"
    return _obj(description, properties, ["endpoint"] if endpoint_required else None)


def _collections() -> Schema:
    return {
        "type": "array",
        "description": "Collections, as name or db.name; empty means all.",
        "items": {"type": "string", "pattern": COLLECTION_PATTERN},
    }


# ---- the Job's settings: spec.jobTemplate and spec.timeouts (see job_template.py) ----------


def _string_map(description: str) -> Schema:
    return {
        "type": "object",
        "description": description,
        "additionalProperties": {"type": "string"},
    }


def _open(description: str) -> Schema:
    """An object whose inside the API server checks when it creates the Job."""
    return {
        "type": "object",
        "description": description,
        "x-kubernetes-preserve-unknown-fields": True,
    }


def _quantities(description: str) -> Schema:
    quantity = {
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "pattern": QUANTITY,
        "x-kubernetes-int-or-string": True,
    }
    return {"type": "object", "description": description, "additionalProperties": quantity}


def _strict(schema: Schema) -> Schema:
    """Unknown keys are kept (not pruned) so that the operator refuses them by name."""
    return {**schema, "x-kubernetes-preserve-unknown-fields": True}


def job_template() -> Schema:
    """spec.jobTemplate: Pod settings of the resource's Job, over the operator's defaults."""
    toleration = _strict(
        _obj(
            "A toleration, as in a Pod's spec.tolerations.",
            {
                "key": _string("Taint key; empty with operator Exists: every taint."),
                "operator": _string("Equal (the default) or Exists.", enum=["Equal", "Exists"]),
                "value": _string("Taint value (operator Equal)."),
                "effect": _string(
                    "NoSchedule, PreferNoSchedule or NoExecute; empty: all.", enum=["", *EFFECTS]
                ),
                "tolerationSeconds": {
                    "type": "integer",
                    "description": "With effect NoExecute: seconds the Pod stays once tainted.",
                },
            },
        )
    )
    return _strict(
        _obj(
            "Pod settings of this resource's Job, over the operator's defaults (the chart's jobTemplate values): "
            "maps (nodeSelector, podAnnotations, podLabels, resources.requests, resources.limits) are merged key by key, "
            "this resource's values winning; lists (tolerations, imagePullSecrets), affinity and priorityClassName replace "
            "the defaults when given (an empty list clears them). Unknown fields are refused.",
            {
                "nodeSelector": _string_map(
                    "Node labels the Job's Pod must run on (merged with the defaults)."
                ),
                "tolerations": {
                    "type": "array",
                    "description": "Taints the Job's Pod tolerates (replaces the defaults).",
                    "items": toleration,
                },
                "affinity": _strict(
                    _obj(
                        "Node and Pod affinity, as in a Pod's spec.affinity (replaces the defaults; the API server checks the inside when it creates the Job).",
                        {
                            "nodeAffinity": _open(
                                "Node affinity (requiredDuringSchedulingIgnoredDuringExecution, preferred...)."
                            ),
                            "podAffinity": _open("Pod affinity."),
                            "podAntiAffinity": _open("Pod anti-affinity."),
                        },
                    )
                ),
                "imagePullSecrets": {
                    "type": "array",
                    "description": "Secrets in this namespace to pull the Job's image with (replaces the defaults).",
                    "items": _strict(
                        _obj(
                            "A Secret of type kubernetes.io/dockerconfigjson.",
                            {"name": _string("Secret name.", pattern=DNS_SUBDOMAIN, maxLength=253)},
                            ["name"],
                        )
                    ),
                },
                "resources": _strict(
                    _obj(
                        "CPU and memory of the Job's container (merged with the defaults by resource name); raise limits.memory when Jobs are OOMKilled.",
                        {
                            "requests": _quantities(
                                "Resources reserved, e.g. cpu: 500m, memory: 512Mi."
                            ),
                            "limits": _quantities("Most the container may use, e.g. memory: 4Gi."),
                        },
                    )
                ),
                "podAnnotations": _string_map(
                    'Annotations of the Job\'s Pod, e.g. sidecar.istio.io/inject: "false" (merged with the defaults).'
                ),
                "podLabels": _string_map(
                    "Extra labels of the Job's Pod (merged with the defaults); the operator's own labels (app.kubernetes.io/managed-by, backup.milvus.io/*) cannot be set."
                ),
                "priorityClassName": _string(
                    "PriorityClass of the Job's Pod (replaces the default).",
                    pattern=f"^$|{DNS_SUBDOMAIN}",
                    maxLength=253,
                ),
            },
        )
    )


_TIMEOUT_HELP = {
    "connect": "Seconds to wait for Milvus and the S3 endpoints to answer at all (default 10).",
    "rpc": "Seconds for one call to Milvus or S3 (default 60).",
    "flush": "Seconds for Milvus to flush a collection before it is backed up (default 600).",
    "importJob": "Seconds for one of Milvus's bulk imports to finish during a restore (default 3600).",
    "index": "Seconds for an index rebuilt by a restore to be built (default 1800).",
    "load": "Seconds for a restored collection to load (default 1800).",
    "writerSilence": "Seconds after which a backup being written, whose writer stopped renewing its marker, counts as abandoned (default 120).",
}


def timeouts() -> Schema:
    """spec.timeouts: the engine's bounds on each wait, for this resource's work."""
    properties = {
        key: {"type": "integer", "description": _TIMEOUT_HELP[key], "minimum": low, "maximum": high}
        for key, (_, low, high) in TIMEOUT_BOUNDS.items()
    }
    return _strict(
        _obj(
            "Bounds, in seconds, on the waits of this resource's work (unset: the defaults); raise them for a large or slow Milvus.",
            properties,
        )
    )


BACKUP_SPEC = _obj(
    "What to back up and where to.",
    {
        "milvus": _milvus(required=True),
        "storage": _storage("Milvus's own bucket (where its binlogs are).", True, "file"),
        "backupStorage": _storage("Where backups go (defaults: Milvus's bucket, rootPath backup).", False, None),
        "collections": _collections(),
        "backupName": _string("milvus-backup name (default: from the resource name).", pattern=NAME_PATTERN, maxLength=128),
        "deletionPolicy": _string("Retain keeps the data when the resource is deleted; Delete removes it.", enum=["Retain", "Delete"], default="Retain"),
        "rbac": _bool("Back up Milvus's users (passwords only where Milvus >= 2.5 gives them out), roles and grants too."),
        "ttl": _string("Delete this MilvusBackup this long after it completed (e.g. 7d, 12h, 1w2d); its deletionPolicy decides whether its data goes too.", pattern=DURATION_PATTERN),
        "jobTemplate": job_template(),
        "timeouts": timeouts(),
    },
    ["milvus", "storage"],
)  # fmt: skip

RESTORE_SPEC = _obj(
    "What to restore, from where, into which Milvus.",
    {
        "backupRef": _string("A MilvusBackup in this namespace."),
        "backupName": _string("A backup by name (made elsewhere, or by milvus-backup).", pattern=NAME_PATTERN, maxLength=128),
        "backupStorage": _storage("Where the backup named by backupName lives.", False, None),
        "milvus": _milvus(required=False),
        "storage": _storage("The target Milvus's own bucket (default: the backup's).", False, None),
        "collections": _collections(),
        "collectionSuffix": _string("Append this to every restored collection's name.", pattern=r"^[A-Za-z0-9_]+$"),
        "collectionRenames": {"type": "object", "description": "old: new names (name or db.name).", "additionalProperties": {"type": "string", "pattern": COLLECTION_PATTERN}},
        "dropExistingCollection": _bool("Drop a target collection that exists."),
        "rebuildIndex": {"type": "boolean", "description": "Rebuild the indexes recorded in the backup (default: true with load, else false)."},
        "load": _bool("Load each restored collection (its indexes rebuilt unless rebuildIndex is false)."),
        "restoreAliases": _bool("Recreate the aliases the backup recorded (refused if one names another collection)."),
        "rbac": _bool("Add the backup's users, roles and grants that the target Milvus lacks (a user without a recorded password must exist there)."),
        "useV2Restore": _bool("Put many segments in one import job, through Milvus's REST API (Milvus >= 2.4)."),
        "dryRun": _bool("Make every check a restore makes (the backup's objects included) and record the plan in status.plan; create nothing."),
        "verify": _bool("Check every object of the whole backup first, not only those of the collections restored."),
        "jobTemplate": job_template(),
        "timeouts": timeouts(),
    },
)  # fmt: skip

_CONDITION = _obj(
    "kstatus condition.",
    {
        "type": _string("Ready, Reconciling or Stalled."),
        "status": _string("True, False or Unknown."),
        "reason": _string("CamelCase reason."),
        "message": _string("Human-readable detail."),
        "observedGeneration": _int("metadata.generation the condition was set for."),
        "lastTransitionTime": _string("When status last changed.", format="date-time"),
    },
)
_PROGRESS = _obj(
    "How far the work has come.",
    {
        "phase": _string("Step under way, e.g. copying or importing."),
        "percent": {"type": "integer", "description": "Percent done, 0 to 100.", "minimum": 0, "maximum": 100},
        "text": _string("Percentage for kubectl, e.g. 45%."),
        "summary": _string("e.g. 2/3 collections, 10/12 segments, 40 MiB/48 MiB."),
        **{f"{unit}{end}": _int(f"{what} {done}.") for unit, what in (
            ("collections", "Collections"), ("segments", "Segments"), ("bytes", "Bytes"),
            ("imports", "Import jobs"),
        ) for end, done in (("Done", "done so far"), ("Total", "to do in all"))},
    },
)  # fmt: skip
_COLLECTION_RESULT = _obj(
    "One collection's result.",
    {
        "name": _string("Collection (db.name outside the default database)."),
        "target": _string("Restored as (restores only)."),
        "state": _string(
            "Running, Swapping (checked, taking the place of the collection it replaces), Completed or Failed."
        ),
        "rows": _int("Live rows: recorded at backup, or restored and checked."),
        "size": _int("Bytes it holds in the backup (backups only)."),
        "checked": _string(
            "How the restored rows were checked against the backup (restores only)."
        ),
        "error": _string("Why it failed."),
        "collectionID": _int(
            "The ID Milvus gave the collection this restore created (restores only): a resumed "
            "restore drops an unfinished target only when it still holds this ID."
        ),
        "building": _string(
            "The temporary name a restore with dropExistingCollection builds under, beside "
            "the collection it replaces; it takes that one's place once its rows are checked."
        ),
        "replacesCollectionID": _int(
            "The ID of the existing collection it replaces (dropExistingCollection)."
        ),
    },
)
STATUS = _obj(
    "Observed state, written by the operator and its Jobs.",
    {
        "phase": _string("Pending, Running, Completed or Failed.", enum=PHASES),
        "message": _string("What happened, or what to fix."),
        "observedGeneration": _int("metadata.generation this status describes."),
        "startTime": _string("When the work started.", format="date-time"),
        "completionTime": _string("When it completed or failed.", format="date-time"),
        "backupName": _string("The milvus-backup name of the backup."),
        "backupSize": _int("Bytes the backup holds."),
        "size": _string("backupSize for humans."),
        "target": _string("Milvus the restore writes to (restores only)."),
        "jobName": _string("The Job doing the work."),
        "attempts": {
            "type": "integer",
            "description": "Workers started after the first one died (its Pod lost or killed); "
            "each resumes the work where the last one left it.",
        },
        "progress": _PROGRESS,
        "collections": {
            "type": "array",
            "description": "Each collection's result.",
            "items": _COLLECTION_RESULT,
        },
        "plan": {
            "type": "array",
            "description": "A dry run's plan: what the restore would do, one line per collection.",
            "items": {"type": "string"},
        },
        "conditions": {
            "type": "array",
            "description": "kstatus conditions: Ready, Reconciling, Stalled.",
            "items": _CONDITION,
        },
    },
)


def _schedule_spec() -> Schema:
    template = {k: v for k, v in BACKUP_SPEC["properties"].items() if k not in ("backupName",)}
    units = {"keepHourly": "hours", "keepDaily": "days", "keepWeekly": "ISO weeks",
             "keepMonthly": "months"}  # fmt: skip
    keep = {
        rule: {
            "type": "integer",
            "minimum": 0,
            "description": f"Keep the newest backup of each of the last N {units[rule]} "
            "(in timeZone) that have one.",
        }
        for rule in PERIODS
    }
    return _obj(
        "When to back up, what, and how many backups to keep.",
        {
            "schedule": _string("Five-field cron expression (minute hour day-of-month month day-of-week) or @hourly, @daily, @weekly, @monthly, @yearly, read as Kubernetes CronJob reads it (day-of-week 0-6, ranges low to high, no L, W or #).", pattern=CRON_PATTERN),
            "timeZone": _string("IANA time zone the schedule is read in (e.g. Europe/Berlin).", default="UTC", minLength=1),
            "template": _obj("The spec of each MilvusBackup a run creates (backupName comes from backupNamePrefix).", template, ["milvus", "storage"]),
            "retention": _obj(
                "Which Completed backups of this schedule to keep: a backup is kept when any rule keeps it (restic's forget). No rule: all are kept. The newest Completed one is always kept.",
                {
                    "keepLast": {"type": "integer", "minimum": 0, "description": "Keep the N newest."},
                    **keep,
                    "maxAge": _string("Keep every backup younger than this (e.g. 30d).", pattern=DURATION_PATTERN),
                    "keepFailed": {"type": "integer", "minimum": 0, "default": 3, "description": "Failed runs kept so that their reasons stay visible."},
                },
            ),
            "concurrencyPolicy": _string("A run while the last one still runs: Forbid skips it, Replace deletes the running one, Allow runs both.", enum=["Forbid", "Replace", "Allow"], default="Forbid"),
            "suspend": _bool("Create no runs until false again (retention goes on)."),
            "startingDeadlineSeconds": {"type": "integer", "minimum": 1, "description": "A run missed (operator down) by more than this is skipped; unset: the latest missed run always starts."},
            "backupNamePrefix": _string("Runs are named <prefix>-YYYYMMDD-HHMM (default: the schedule's name); no two schedules of a namespace may use one prefix.", pattern=PREFIX_PATTERN),
            "backupOwnerReference": _string("none: each run outlives the schedule (deleting the schedule keeps its MilvusBackups and their data). schedule: the schedule owns its runs, and deleting it deletes them (and, with deletionPolicy Delete, their data).", enum=[OWNER_NONE, OWNER_SCHEDULE], default=OWNER_NONE),
        },
        ["schedule", "template"],
    )  # fmt: skip


SCHEDULE_STATUS = _obj(
    "Observed state, written by the operator.",
    {
        "observedGeneration": _int("The generation of the spec this status describes."),
        "message": _string("What the schedule did last, or what to fix."),
        "lastScheduleTime": _string("When the latest run was due.", format="date-time"),
        "nextScheduleTime": _string("When the next run is due (absent while suspended).", format="date-time"),
        "lastSuccessfulTime": _string("When a run last completed.", format="date-time"),
        "lastBackup": _string("The newest MilvusBackup of this schedule."),
        "suspendedSince": _string("When suspend was first seen true.", format="date-time"),
        "active": {"type": "array", "description": "Runs not done yet.", "items": {"type": "string"}},
        "completed": {"type": "integer", "description": "Completed MilvusBackups of this schedule kept now."},
        "failed": {"type": "integer", "description": "Failed MilvusBackups of this schedule kept now."},
        "conditions": {"type": "array", "description": "kstatus conditions: Ready, Reconciling, Stalled.", "items": _CONDITION},
    },
)  # fmt: skip


def _column(name: str, path: str, kind: str = "string", priority: int = 0) -> Schema:
    column = {"name": name, "type": kind, "jsonPath": path}
    return {**column, "priority": priority} if priority else column


def crd(kind: Kind, spec: Schema, columns: list[Schema], status: Schema | None = None) -> Schema:
    """One namespaced CRD with status subresource and printer columns."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{kind.plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind.kind,
                "plural": kind.plural,
                "singular": kind.kind.lower(),
                "shortNames": [kind.short_name],
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {
                        "openAPIV3Schema": _obj(
                            kind.kind, {"spec": spec, "status": status or STATUS}, ["spec"]
                        )
                    },
                }
            ],
        },
    }


def all_crds() -> dict[str, Schema]:
    """File name to CRD, for ``crds/`` and the Helm chart."""
    age = _column("Age", ".metadata.creationTimestamp", "date")
    phase = _column("Phase", ".status.phase")
    progress = _column("Progress", ".status.progress.text")
    message = _column("Message", ".status.message", priority=1)
    return {
        f"{GROUP}_{Kind.BACKUP.plural}.yaml": crd(
            Kind.BACKUP, BACKUP_SPEC,
            [phase, progress, _column("Size", ".status.size"), age,
             _column("Backup", ".status.backupName", priority=1), message],
        ),
        f"{GROUP}_{Kind.RESTORE.plural}.yaml": crd(
            Kind.RESTORE, RESTORE_SPEC,
            [phase, progress, _column("Backup", ".status.backupName"),
             _column("Target", ".status.target"), age, message],
        ),
        f"{GROUP}_{Kind.SCHEDULE.plural}.yaml": crd(
            Kind.SCHEDULE, _schedule_spec(),
            [_column("Schedule", ".spec.schedule"), _column("Suspend", ".spec.suspend", "boolean"),
             _column("Last Backup", ".status.lastBackup"),
             _column("Last Success", ".status.lastSuccessfulTime", "date"),
             _column("Next Run", ".status.nextScheduleTime", "date"), age, message],
            status=SCHEDULE_STATUS,
        ),
    }  # fmt: skip


def render(crd_doc: Schema) -> str:
    header = "# Generated by `python -m milvus_backup_operator.api.crds crds/`: do not edit.\n"
    return header + yaml.safe_dump(crd_doc, sort_keys=False, width=100)


def write(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for filename, document in all_crds().items():
        (directory / filename).write_text(render(document))


if __name__ == "__main__":
    write(Path(sys.argv[1] if len(sys.argv) > 1 else "crds"))
