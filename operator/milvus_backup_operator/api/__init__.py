"""The custom resources: group, kinds, phases, spec parsing and validation, typed status.

Pure data and rules (no API calls): the controllers and the Job runner build on it.
"""

from __future__ import annotations

from enum import Enum, StrEnum

GROUP = "backup.milvus.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


class Kind(Enum):
    """Our resource kinds; the value is the word the Job runner and the CLI use."""

    BACKUP = "backup"
    RESTORE = "restore"
    SCHEDULE = "schedule"

    @property
    def kind(self) -> str:
        return {"backup": "MilvusBackup", "restore": "MilvusRestore"}.get(
            self.value, "MilvusBackupSchedule"
        )

    @property
    def plural(self) -> str:
        return self.kind.lower() + "s"

    @property
    def short_name(self) -> str:
        return {"backup": "mbk", "restore": "mrs"}.get(self.value, "mbks")


class Phase(StrEnum):
    """``status.phase`` of both kinds: Pending -> Running -> Completed | Failed."""

    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"

    @property
    def done(self) -> bool:
        return self in (Phase.COMPLETED, Phase.FAILED)
