"""What the operator was started with; set once by ``milvus-backup-operator run``."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..executors import Executor
from ..executors.inline import InlineExecutor


@dataclass
class Options:
    executor: Executor = field(default_factory=InlineExecutor)


OPTIONS = Options()
