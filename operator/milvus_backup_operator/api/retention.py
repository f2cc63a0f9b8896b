"""Which backups of a schedule to keep: restic's ``forget`` rules, as K8up applies them.

A Completed backup is kept when any rule keeps it: the ``keepLast`` newest; the newest of
each of the ``keepHourly`` (``keepDaily``, ``keepWeekly``, ``keepMonthly``) most recent
hours (days, ISO weeks, months) that have one, read in the schedule's time zone; every
backup younger than ``maxAge``. The newest Completed backup is always kept, and so is
everything when no rule is set. Failed runs are kept, the ``keepFailed`` newest, so that
their reasons stay visible. Running or Pending backups are never touched. A one-off
MilvusBackup's ``ttl`` is :func:`expired`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from . import Phase
from .specs import SpecError, parse_duration

Period = Callable[[datetime], tuple[int, ...]]
PERIODS: dict[str, Period] = {
    "keepHourly": lambda t: (t.year, t.month, t.day, t.hour),
    "keepDaily": lambda t: (t.year, t.month, t.day),
    "keepWeekly": lambda t: tuple(t.isocalendar()[:2]),
    "keepMonthly": lambda t: (t.year, t.month),
}
RULES = ("keepLast", *PERIODS, "maxAge", "keepFailed")


@dataclass(frozen=True)
class Retention:
    keep_last: int = 0
    keep: tuple[tuple[str, int], ...] = ()  # (period rule, count)
    max_age: timedelta | None = None
    keep_failed: int = 3

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None, field: str = "spec.retention") -> Retention:
        raw = dict(raw or {})
        unknown = sorted(set(raw) - set(RULES))
        if unknown:
            raise SpecError(f"{field} has no rule {', '.join(unknown)}: use {', '.join(RULES)}")
        counts = {k: _count(raw, k, field) for k in raw if k not in ("maxAge",)}
        age = raw.get("maxAge")
        return cls(
            keep_last=counts.get("keepLast", 0),
            keep=tuple((k, counts[k]) for k in PERIODS if counts.get(k)),
            max_age=parse_duration(str(age), f"{field}.maxAge") if age else None,
            keep_failed=counts.get("keepFailed", 3),
        )

    @property
    def prunes(self) -> bool:
        return bool(self.keep_last or self.keep or self.max_age)


def _count(raw: Mapping[str, Any], key: str, field: str) -> int:
    value = raw[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise SpecError(f"{field}.{key} must be a whole number, 0 or more (not {value!r})")
    return value


@dataclass(frozen=True)
class Run:
    """One MilvusBackup a schedule made: its name, when it was scheduled, its phase."""

    name: str
    scheduled: datetime  # aware
    phase: Phase | None


def to_delete(runs: Sequence[Run], rules: Retention, now: datetime, zone: ZoneInfo) -> list[str]:
    """The runs no rule keeps, oldest first."""
    newest_first = sorted(runs, key=lambda r: r.scheduled, reverse=True)
    completed = [r for r in newest_first if r.phase == Phase.COMPLETED]
    failed = [r for r in newest_first if r.phase == Phase.FAILED]
    kept = {r.name for r in failed[: rules.keep_failed]}
    if not rules.prunes:
        kept |= {r.name for r in completed}
    kept |= {r.name for r in completed[: max(1, rules.keep_last)]}
    for rule, count in rules.keep:
        kept |= _newest_per_period(completed, PERIODS[rule], count, zone)
    if rules.max_age is not None:
        kept |= {r.name for r in completed if now - r.scheduled < rules.max_age}
    done = [r for r in newest_first if r.phase in (Phase.COMPLETED, Phase.FAILED)]
    return [r.name for r in reversed(done) if r.name not in kept]


def _newest_per_period(
    completed: Sequence[Run], period: Period, count: int, zone: ZoneInfo
) -> set[str]:
    kept: dict[tuple[int, ...], str] = {}
    for run in completed:  # newest first: the first of each period is its newest
        key = period(run.scheduled.astimezone(zone))
        if key not in kept:
            if len(kept) == count:
                break
            kept[key] = run.name
    return set(kept.values())


def expired(completed_at: datetime, ttl: timedelta, now: datetime) -> bool:
    """A one-off backup's ``ttl`` has passed since it completed."""
    return now - completed_at >= ttl
