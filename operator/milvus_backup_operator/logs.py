"""Log lines of the operator and of its Jobs: Kopf's formats, plain or JSON, at one level."""

from __future__ import annotations

import logging

import kopf


def use_kopf_format(json_logs: bool) -> None:
    """Kopf's own handler (one line per record, JSON with ``json_logs``) on the root logger,
    keeping the level that ``--log-level`` set."""
    root = logging.getLogger()
    level = root.level
    for handler in root.handlers[:]:
        root.removeHandler(handler)
    kopf.configure(
        verbose=False, log_format=kopf.LogFormat.JSON if json_logs else kopf.LogFormat.FULL
    )
    root.setLevel(level)


def level_name() -> str:
    """The root logger's level as ``--log-level`` takes it (e.g. ``info``)."""
    return logging.getLevelName(logging.getLogger().level).lower()
