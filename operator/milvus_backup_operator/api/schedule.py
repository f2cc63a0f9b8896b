"""When a MilvusBackupSchedule runs: its cron expression in its time zone, and the run due now.

The calendar is read in the schedule's time zone, as Kubernetes CronJob's ``timeZone`` is:
a run whose local time falls in a daylight-saving gap runs once the clocks have jumped (02:30
on a spring-forward night runs at 03:30), and a run in the hour repeated in autumn runs once,
the first time. A restarted operator catches up at most one missed run, the latest, and only
within ``startingDeadlineSeconds`` (CronJob's rule).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

from .retention import Retention
from .specs import SpecError, parse_backup

MACROS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}  # fmt: skip
#: What the CRD schema can check of a cron expression: a macro, or five fields of the
#: characters cron takes (the webhook and the controller check the rest).
CRON_PATTERN = r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|(\S+\s+){4}\S+)$"
_FIELD = re.compile(r"^[0-9A-Za-z*/,\-?LW#]+$")
#: each field's name and bounds as Kubernetes CronJob reads them (robfig/cron: day-of-week
#: 0-6, no L, W, # or H, a range low to high, a step of 1 or more)
_BOUNDS = (("minute", 0, 59), ("hour", 0, 23), ("day-of-month", 1, 31), ("month", 1, 12),
           ("day-of-week", 0, 6))  # fmt: skip
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_NAMES = {
    "month": {m: i for i, m in enumerate(_MONTHS, 1)},
    "day-of-week": {d: i for i, d in enumerate(_DAYS)},
}
#: one item of a field: * or ? or a value or a range, and maybe a step
#: croniter's extras that mean what cron users mean by them (let through for stored schedules)
_EXTRA = re.compile(r"^(l|\d+l|l-\d+|\d+w|lw|[0-7]l|[0-7]#[1-5]|[a-z]{3}#[1-5])$")
_ITEM = re.compile(r"^(?P<span>\*|\?|(?P<lo>[0-9a-z]+)(-(?P<hi>[0-9a-z]+))?)(/(?P<step>\d+))?$")
#: hours: a schedule that never fires within eight years is refused (February 29 can be
#: eight years away: 2096 -> 2104; croniter itself gives up on dates that never come)
_LOOKAHEAD = (8 * 366 + 1) * 24
_DST_MARGIN = timedelta(hours=3)  # more than any daylight-saving jump (Antarctica/Troll: 2h)


@dataclass(frozen=True)
class Schedule:
    """A validated cron expression in a time zone."""

    expression: str
    zone: ZoneInfo

    @classmethod
    def parse(
        cls, expression: str, time_zone: str = "UTC", field: str = "spec", strict: bool = True
    ) -> Schedule:
        """Check ``expression`` and ``time_zone``; a bad one is refused naming its field.

        ``strict`` (admission): Kubernetes CronJob's dialect only. Not strict (a schedule
        stored before that check): croniter's extras whose meaning is the usual cron one
        (day-of-week 7 for Sunday, ``L``, ``W``, ``#``) keep running; what it misreads (a
        range that starts after it ends, a step of 0, ``H``, ``R``) is refused all the same.
        """
        text = " ".join(str(expression).split())
        cron = MACROS.get(text, text)
        fields = cron.split(" ")
        if len(fields) != 5 or not all(_FIELD.match(f) for f in fields):
            raise SpecError(
                f"{field}.schedule {expression!r} is not a cron expression: give five fields "
                "(minute hour day-of-month month day-of-week, e.g. '30 2 * * *') or one of "
                f"{', '.join(sorted(MACROS))}"
            )
        for text, bounds in zip(fields, _BOUNDS, strict=True):
            for item in text.split(","):
                _check_item(item, *bounds, f"{field}.schedule {expression!r}", strict=strict)
        if not croniter.is_valid(cron):
            raise SpecError(f"{field}.schedule {expression!r}: a field is out of range")
        schedule = cls(cron, _zone(time_zone, field))
        if schedule.next_after(datetime.now(UTC)) is None:
            raise SpecError(f"{field}.schedule {expression!r} never runs (e.g. February 30)")
        return schedule

    def next_after(self, moment: datetime) -> datetime | None:
        """The first run strictly after ``moment`` (aware), in UTC; None if none within a year.

        Walls are read from :data:`_DST_MARGIN` before ``moment`` until that long after the
        best run found: around a daylight-saving jump, a later wall time can be an earlier
        instant (02:42 after a half-hour jump comes before 02:07 in the gap, run at 02:37),
        and a jump of two hours (Antarctica/Troll) hides runs from a one-hour look back."""
        local = self._wall(moment)
        found = croniter(self.expression, local - _DST_MARGIN)
        horizon = local + timedelta(hours=_LOOKAHEAD)
        best: datetime | None = None
        while True:
            try:
                wall = found.get_next(datetime)
            except CroniterBadDateError:  # croniter gives up on dates that never come
                return best
            if wall > horizon or (best is not None and wall > self._wall(best) + _DST_MARGIN):
                return best
            instant = _instant(wall, self.zone)
            if instant > moment and (best is None or instant < best):
                best = instant

    def period_seconds(self, now: datetime) -> float | None:
        """The time between the next two runs (a day for ``@daily``): how often a
        successful backup is expected."""
        first = self.next_after(now)
        second = self.next_after(first) if first else None
        return (second - first).total_seconds() if first and second else None

    def latest_due(self, after: datetime, now: datetime) -> datetime | None:
        """The latest run in ``(after, now]``: the one to start (older missed runs are not
        caught up, as CronJob's controller does); None if nothing fell due.

        Searched backwards from ``now``, so its cost does not grow with the runs missed
        (a minutely schedule suspended for a month missed 43,200; walking forward through
        them took minutes, every tick). Walls are read until they are :data:`_DST_MARGIN`
        before the best run found (or before ``after``): a daylight-saving jump moves a
        wall time's instant by less than that, so no later run is left unseen."""
        if now <= after:
            return None
        found = croniter(self.expression, self._wall(now) + _DST_MARGIN)
        floor, best = self._wall(after) - _DST_MARGIN, None
        while True:
            try:
                wall = found.get_prev(datetime)
            except CroniterBadDateError:
                return best
            if wall < floor:
                return best
            instant = _instant(wall, self.zone)
            if after < instant <= now and (best is None or instant > best):
                best = instant
                floor = max(floor, self._wall(best) - _DST_MARGIN)

    def _wall(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone).replace(tzinfo=None)


def _check_item(item: str, name: str, low: int, high: int, where: str, *, strict: bool) -> None:
    """One comma-separated item of a cron field, refused as Kubernetes CronJob refuses it
    (croniter would run some of these: 1-0 every minute, 7 as Sunday, L, W and #); not
    ``strict``, the extras croniter reads as cron users mean them pass (:meth:`Schedule.parse`)."""
    if not strict and _EXTRA.match(item.lower()):
        return
    found = _ITEM.match(item.lower())
    if found and found["span"] == "?" and name not in ("day-of-month", "day-of-week"):
        raise SpecError(f"{where}: '?' is for day-of-month or day-of-week, not the {name} field")
    if not found:
        raise SpecError(
            f"{where}: the {name} field's {item!r} is not one Kubernetes CronJob takes: give a "
            "number, a name (jan, mon), *, a range a-b, a step /n, or a list of these (no L, "
            "W, #, H)"
        )
    step = found["step"]
    if step is not None and int(step) == 0:
        raise SpecError(f"{where}: the {name} field's step in {item!r} is 0: use 1 or more")
    if found["lo"] is None:
        return
    where = f"{where}: the {name} field's {item!r}"
    high = 7 if name == "day-of-week" and not strict else high  # 7: croniter's Sunday
    start = _value(found["lo"], name, low, high, where, strict=strict)
    end = _value(found["hi"], name, low, high, where, strict=strict) if found["hi"] else start
    if start > end:
        raise SpecError(
            f"{where} is a range that starts after it ends (Kubernetes CronJob refuses it): "
            "write it low to high, or as two ranges: "
            f"{_span(start, high)},{_span(low, end)}"
        )


def _span(start: int, end: int) -> str:
    return str(start) if start == end else f"{start}-{end}"


def _value(text: str, name: str, low: int, high: int, where: str, *, strict: bool) -> int:
    value = int(text) if text.isdigit() else _NAMES.get(name, {}).get(text)
    if value is None:
        names = f" nor a name ({', '.join(list(_NAMES[name])[:3])}...)" if name in _NAMES else ""
        raise SpecError(f"{where} is not a number{names}: Kubernetes CronJob takes no L, W, # "
                        "or H")  # fmt: skip
    if name == "day-of-week" and value == 7 and strict:
        raise SpecError(f"{where}: day-of-week 7 is not one Kubernetes CronJob takes: write 0 "
                        "(or sun) for Sunday")  # fmt: skip
    if not low <= value <= high:
        raise SpecError(f"{where}: {value} is outside {low}-{high}")
    return value


_NOT_IANA = ("localtime", "Factory", "posixrules")  # the machine's zone, or no zone at all
_NOT_IANA_TREES = ("posix/", "right/")  # copies of the database; right/ counts leap seconds


def _zone(name: str, field: str) -> ZoneInfo:
    if name in _NOT_IANA or name.startswith(_NOT_IANA_TREES):
        raise SpecError(
            f"{field}.timeZone {name!r} names a file of this machine's time zone database, "
            "not an IANA time zone: use one such as 'UTC', 'Europe/Berlin', 'America/New_York'"
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SpecError(
            f"{field}.timeZone {name!r} is not an IANA time zone (e.g. 'UTC', 'Europe/Berlin', "
            "'America/New_York')"
        ) from None


def _instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """A local wall time as an instant: the first of a repeated hour, and a time in a gap as
    the moment after the jump (02:30 in the gap -> 03:30 local)."""
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


# ---- the MilvusBackupSchedule spec ---------------------------------------------------------

FORBID, REPLACE, ALLOW = "Forbid", "Replace", "Allow"
PREFIX_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,46}[a-z0-9])?$"  # a run's name: <prefix>-YYYYMMDD-HHMM
SCHEDULE_LABEL = "backup.milvus.io/schedule"  # on each MilvusBackup a schedule made
#: the uid of the schedule that made a run: how the schedule recognises its runs (a schedule
#: deleted and made again under the same name has another uid)
SCHEDULE_UID = "backup.milvus.io/schedule-uid"
#: spec.backupOwnerReference: runs outlive their schedule (none, the default), or the
#: schedule owns them and deleting it deletes them (schedule), as CloudNativePG names it
OWNER_NONE, OWNER_SCHEDULE = "none", "schedule"
SCHEDULED_AT = "backup.milvus.io/scheduled-at"  # the run's scheduled time (UTC, ISO 8601)
RUN_NOW = "backup.milvus.io/run-now"  # set it (any value) on a schedule: one extra run now


@dataclass(frozen=True)
class ScheduleSpec:
    schedule: Schedule
    template: dict[str, object]  # a MilvusBackup spec, checked
    retention: Retention
    concurrency_policy: str
    suspend: bool
    starting_deadline: timedelta | None
    prefix: str
    owned_by_schedule: bool = False  # spec.backupOwnerReference: schedule

    def run_name(self, scheduled: datetime) -> str:
        """The MilvusBackup of the run scheduled at ``scheduled``: one name per run, so a
        restarted operator can never make one run twice."""
        return f"{self.prefix}-{scheduled.astimezone(UTC):%Y%m%d-%H%M}"

    def manual_run_name(self, token: str) -> str:
        digest = hashlib.sha1(token.encode()).hexdigest()[:8]
        return f"{self.prefix}-now-{digest}"


def parse_schedule(name: str, spec: Mapping[str, Any], strict: bool = True) -> ScheduleSpec:
    """A MilvusBackupSchedule's spec, every rule checked, each refusal naming its field
    (``strict``: the cron dialect of Kubernetes CronJob only, see :meth:`Schedule.parse`)."""
    zone = str(spec.get("timeZone") or "UTC")
    schedule = Schedule.parse(str(spec.get("schedule", "")), zone, strict=strict)
    template = dict(spec.get("template") or {})
    if not template:
        raise SpecError("spec.template is required: the MilvusBackup spec of each run")
    if template.get("backupName"):
        raise SpecError(
            "spec.template.backupName cannot be set: each run is named from the schedule and "
            "its time (set spec.backupNamePrefix)"
        )
    try:
        parse_backup(name, template)
    except SpecError as exc:
        raise SpecError(str(exc).replace("spec.", "spec.template.", 1)) from None
    prefix = prefix_of(name, spec)
    if not re.match(PREFIX_PATTERN, prefix):
        raise SpecError(
            f"spec.backupNamePrefix {prefix!r} must be lower-case letters, digits and '-', at "
            "most 48 characters (a run is named <prefix>-YYYYMMDD-HHMM); set it if the "
            "schedule's own name is longer"
        )
    policy = str(spec.get("concurrencyPolicy") or FORBID)
    if policy not in (FORBID, REPLACE, ALLOW):
        raise SpecError(f"spec.concurrencyPolicy {policy!r}: use {FORBID}, {REPLACE} or {ALLOW}")
    deadline = spec.get("startingDeadlineSeconds")
    if deadline is not None and (not isinstance(deadline, int) or deadline < 1):
        raise SpecError("spec.startingDeadlineSeconds must be a whole number of seconds, 1 or more")
    owner = str(spec.get("backupOwnerReference") or OWNER_NONE)
    if owner not in (OWNER_NONE, OWNER_SCHEDULE):
        raise SpecError(
            f"spec.backupOwnerReference {owner!r}: use {OWNER_NONE} (runs outlive the schedule, "
            f"the default) or {OWNER_SCHEDULE} (deleting the schedule deletes its runs)"
        )
    return ScheduleSpec(
        schedule=schedule,
        template=template,
        retention=Retention.parse(spec.get("retention")),
        concurrency_policy=policy,
        suspend=bool(spec.get("suspend", False)),
        starting_deadline=timedelta(seconds=deadline) if deadline else None,
        prefix=prefix,
        owned_by_schedule=owner == OWNER_SCHEDULE,
    )


def prefix_of(name: str, spec: Mapping[str, Any]) -> str:
    """The prefix of a schedule's run names: ``backupNamePrefix``, or the schedule's name."""
    return str(spec.get("backupNamePrefix") or name)


def same_prefix(
    name: str, spec: Mapping[str, Any], schedules: Iterable[Mapping[str, Any]]
) -> list[str]:
    """The other schedules (of one namespace) whose runs would be named as this one's: a
    run's name is taken by whichever schedule makes it first, so two such schedules starve
    each other. One being deleted is left out."""
    prefix, found = prefix_of(name, spec), []
    for body in schedules:
        meta = body.get("metadata") or {}
        other = str(meta.get("name", ""))
        if other == name or meta.get("deletionTimestamp"):
            continue
        if prefix_of(other, body.get("spec") or {}) == prefix:
            found.append(other)
    return sorted(found)


def prefix_in_use(name: str, spec: Mapping[str, Any], other: str) -> str:
    """What to fix when schedule ``other`` names its runs as this one would."""
    given = "spec.backupNamePrefix" if spec.get("backupNamePrefix") else (
        "spec.backupNamePrefix (unset: the schedule's name)"
    )  # fmt: skip
    return (
        f"{given} {prefix_of(name, spec)!r} is also the run prefix of MilvusBackupSchedule "
        f"{other!r} in this namespace: their runs would have the same names and one would "
        "starve the other; set another spec.backupNamePrefix"
    )
