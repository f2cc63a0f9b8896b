"""The calendar of MilvusBackupSchedule against a clock the tests set: cron in a time zone,
daylight-saving changes, missed runs, and restic's retention rules."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from milvus_backup_operator.api import Phase
from milvus_backup_operator.api.retention import Retention, Run, expired, to_delete
from milvus_backup_operator.api.schedule import Schedule
from milvus_backup_operator.api.specs import SpecError, parse_duration

NY = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(zone: ZoneInfo, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=zone, fold=fold)


def test_the_next_run_is_read_in_the_schedules_time_zone() -> None:
    berlin = Schedule.parse("30 2 * * *", "Europe/Berlin")
    at = berlin.next_after(utc(2026, 12, 1, 12, 0))
    assert at == utc(2026, 12, 2, 1, 30)  # 02:30 in Berlin is 01:30 UTC in winter
    assert Schedule.parse("@daily").next_after(utc(2026, 12, 1, 0, 0)) == utc(2026, 12, 2, 0, 0)


def test_a_run_in_the_spring_forward_gap_runs_once_the_clocks_have_jumped() -> None:
    nightly = Schedule.parse("30 2 * * *", "America/New_York")
    # 2026-03-08: 02:00 EST jumps to 03:00 EDT; 02:30 does not exist that night
    at = nightly.next_after(local(NY, 2026, 3, 8, 0, 0))
    assert at is not None and at.astimezone(NY).replace(tzinfo=None) == datetime(2026, 3, 8, 3, 30)
    after = nightly.next_after(at)
    assert after == local(NY, 2026, 3, 9, 2, 30)  # and the next night as usual


def test_a_run_in_the_repeated_autumn_hour_runs_once() -> None:
    nightly = Schedule.parse("30 1 * * *", "America/New_York")
    # 2026-11-01: 01:00-02:00 happens twice (EDT, then EST)
    first = nightly.next_after(local(NY, 2026, 11, 1, 0, 0))
    assert first == utc(2026, 11, 1, 5, 30)  # 01:30 EDT, the first 01:30 of the night
    assert nightly.next_after(first) == local(NY, 2026, 11, 2, 1, 30)
    hourly = Schedule.parse("0 * * * *", "America/New_York")
    runs, moment = [], local(NY, 2026, 11, 1, 0, 30)
    for _ in range(3):
        moment = hourly.next_after(moment)  # type: ignore[assignment]
        runs.append(moment)
    assert [r - runs[0] for r in runs] == [timedelta(0), timedelta(hours=2), timedelta(hours=3)]


def test_only_the_latest_missed_run_is_due() -> None:
    hourly = Schedule.parse("@hourly")
    last = utc(2026, 12, 1, 1, 0)
    assert hourly.latest_due(last, utc(2026, 12, 1, 4, 20)) == utc(2026, 12, 1, 4, 0)
    assert hourly.latest_due(last, utc(2026, 12, 1, 1, 59)) is None


def test_a_leap_day_schedule_runs_even_when_the_next_february_29_is_over_a_year_away() -> None:
    leap = Schedule.parse("0 0 29 2 *")  # refused as "never runs" from March 2026 on
    assert leap.next_after(utc(2026, 12, 1, 0, 0)) == utc(2028, 2, 29, 0, 0)
    assert leap.next_after(utc(2096, 3, 1, 0, 0)) == utc(2104, 2, 29, 0, 0)


def test_finding_the_due_run_does_not_walk_through_every_missed_one() -> None:
    """A minutely schedule suspended for a month (its lastScheduleTime stays put) missed
    43,200 runs; walking forward through them took over a minute, at every 10 s tick."""
    minutely = Schedule.parse("* * * * *")
    started = time.monotonic()
    due = minutely.latest_due(utc(2026, 11, 1, 0, 0), utc(2026, 12, 1, 0, 0, 30))
    assert due == utc(2026, 12, 1, 0, 0) and time.monotonic() - started < 1.0


@pytest.mark.parametrize(
    ("expression", "zone", "after", "now", "next_run", "due"),
    [
        # Antarctica/Troll jumps two hours (+00 -> +02 at 01:00 UTC): 03:42 local is 01:42
        # UTC, which a one-hour look back from 03:33 local (in the gap) never saw
        ("*/7 * * * *", "Antarctica/Troll", (2026, 3, 29, 1, 33, 9), (2026, 3, 29, 1, 42, 19),
         (2026, 3, 29, 1, 35), (2026, 3, 29, 1, 42)),
        # Lord Howe jumps half an hour (02:00 -> 02:30 local, 15:30 UTC): 02:07 is in the gap
        # (run at 15:37 UTC) but 02:42 local, 15:42 UTC, is the latest run due
        ("*/7 * * * *", "Australia/Lord_Howe", (2026, 10, 3, 8, 47, 58),
         (2026, 10, 3, 15, 43, 49), (2026, 10, 3, 8, 51), (2026, 10, 3, 15, 42)),
    ],
)  # fmt: skip
def test_runs_around_a_daylight_saving_jump_of_another_size_than_an_hour(
    expression: str, zone: str, after: tuple[int, ...], now: tuple[int, ...],
    next_run: tuple[int, ...], due: tuple[int, ...],
) -> None:  # fmt: skip
    schedule = Schedule.parse(expression, zone)
    assert schedule.next_after(utc(*after)) == utc(*next_run)
    assert schedule.latest_due(utc(*after), utc(*now)) == utc(*due)


@pytest.mark.parametrize(
    ("expression", "zone", "says"),
    [
        ("every night", "UTC", "spec.schedule 'every night' is not a cron expression"),
        ("61 * * * *", "UTC", "the minute field's '61': 61 is outside 0-59"),
        ("0 0 30 2 *", "UTC", "never runs"),
        ("* * * *", "UTC", "five fields"),
        ("@daily", "Mars/Olympus", "spec.timeZone 'Mars/Olympus' is not an IANA time zone"),
        ("@daily", "localtime", "'localtime' names a file of this machine's time zone"),
        ("@daily", "Factory", "'Factory' names a file of this machine's time zone"),
        ("@daily", "posixrules", "not an IANA time zone"),
        ("@daily", "right/UTC", "not an IANA time zone"),
        ("@daily", "posix/Europe/Berlin", "not an IANA time zone"),
    ],
)
def test_a_bad_schedule_or_zone_is_refused_naming_the_field(
    expression: str, zone: str, says: str
) -> None:
    with pytest.raises(SpecError, match=says):
        Schedule.parse(expression, zone)


@pytest.mark.parametrize(
    ("expression", "says"),
    [  # croniter runs each of these (1-0 every minute, 7 as Sunday); Kubernetes CronJob refuses
        ("1-0 * * * *", "the minute field's '1-0' is a range that starts after it ends "
         "(Kubernetes CronJob refuses it): write it low to high, or as two ranges: 1-59,0"),
        ("0 2 * * fri-Mon", "the day-of-week field's 'fri-Mon' is a range that starts after it "
         "ends (Kubernetes CronJob refuses it): write it low to high, or as two ranges: 5-6,0-1"),
        ("*/0 * * * *", "the minute field's step in '*/0' is 0: use 1 or more"),
        ("0 0-23/0 * * *", "the hour field's step in '0-23/0' is 0"),
        ("0 0 * * 7", "the day-of-week field's '7': day-of-week 7 is not one Kubernetes CronJob "
         "takes: write 0 (or sun) for Sunday"),
        ("0 0 * * 1-7", "the day-of-week field's '1-7': day-of-week 7"),
        ("0 0 L * *", "the day-of-month field's 'L' is not a number: Kubernetes CronJob takes no"),
        ("0 0 15W * *", "the day-of-month field's '15W' is not a number"),
        ("0 0 * * 5#2", "the day-of-week field's '5#2' is not one Kubernetes CronJob takes"),
        ("0 0 * * 5L", "the day-of-week field's '5L' is not a number nor a name (sun, mon, tue"),
        ("R * * * *", "the minute field's 'R' is not a number"),
        ("0 0 * foo *", "the month field's 'foo' is not a number nor a name (jan"),
        ("0 0 0 * *", "the day-of-month field's '0': 0 is outside 1-31"),
        ("? * * * *", "'?' is for day-of-month or day-of-week, not the minute field"),
        ("1,,2 * * * *", "the minute field's '' is not one Kubernetes CronJob takes"),
    ],
)  # fmt: skip
def test_cron_that_kubernetes_cronjob_refuses_is_refused_naming_field_and_fix(
    expression: str, says: str
) -> None:
    with pytest.raises(SpecError) as refused:
        Schedule.parse(expression)
    assert str(refused.value).startswith(f"spec.schedule {expression!r}: {says}"), refused.value


@pytest.mark.parametrize(
    "expression",
    ["5/15 * * * *", "*/60 * * * *", "0 0 ? * *", "0 0 * JAN-Mar mon-fri", "30 2 1-15,20-31 */2 *",
     "0 0 * * 0", "0 0 * * SUN", "@daily"],
)  # fmt: skip
def test_cron_that_kubernetes_cronjob_takes_is_taken(expression: str) -> None:
    Schedule.parse(expression)


def test_a_stored_schedule_keeps_running_where_croniter_means_what_cron_means() -> None:
    """A schedule stored before the stricter check (the controller parses it not strict):
    7 as Sunday, L, W and # run as before; what croniter misreads stops all the same."""
    sunday = datetime(2026, 12, 6, tzinfo=UTC)
    for expression in ("0 0 * * 7", "0 0 * * 5-7", "0 0 L * *", "0 0 15W * *", "0 0 * * mon#2"):
        with pytest.raises(SpecError):
            Schedule.parse(expression)
        Schedule.parse(expression, strict=False)
    stored = Schedule.parse("0 0 * * 7", strict=False)
    assert stored.next_after(sunday - timedelta(days=1)) == sunday
    for misread in ("1-0 * * * *", "*/0 * * * *", "0 0 * * fri-mon", "R * * * *", "H * * * *"):
        with pytest.raises(SpecError):
            Schedule.parse(misread, strict=False)


def test_durations() -> None:
    assert parse_duration("1w2d", "x") == timedelta(days=9)
    assert parse_duration("90m", "x") == timedelta(minutes=90)
    for bad in ("", "10", "3 days", "0h"):
        with pytest.raises(SpecError):
            parse_duration(bad, "spec.ttl")


def runs_every(hours: int, count: int, phase: Phase = Phase.COMPLETED) -> list[Run]:
    start = utc(2026, 1, 1, 0, 0)
    return [Run(f"b{n:03d}", start + timedelta(hours=hours * n), phase) for n in range(count)]


NOW = utc(2026, 6, 1, 0, 0)


UTC_ZONE = ZoneInfo("UTC")


def kept(runs: list[Run], rules: Retention, zone: ZoneInfo = UTC_ZONE) -> list[str]:
    gone = set(to_delete(runs, rules, NOW, zone))
    return [r.name for r in runs if r.name not in gone]


def test_keep_last_and_the_newest_completed_is_never_deleted() -> None:
    runs = runs_every(24, 10)
    assert kept(runs, Retention(keep_last=3)) == ["b007", "b008", "b009"]
    only_failed_rule = Retention(keep=(("keepDaily", 0),), max_age=timedelta(seconds=1))
    assert kept(runs, only_failed_rule) == ["b009"]


def test_keep_daily_weekly_monthly_keep_the_newest_of_each_period() -> None:
    runs = runs_every(6, 4 * 70)  # four a day for 70 days from 2026-01-01
    daily = kept(runs, Retention(keep=(("keepDaily", 3),)))
    assert daily == ["b271", "b275", "b279"]  # the last of each of the last 3 days
    monthly = kept(runs, Retention(keep=(("keepMonthly", 3),)))
    # the newest of March (day 70 = 2026-03-11), of February and of January
    assert [r.scheduled.date().isoformat() for r in runs if r.name in monthly] == [
        "2026-01-31", "2026-02-28", "2026-03-11",
    ]  # fmt: skip
    weekly = kept(runs, Retention(keep=(("keepWeekly", 2),)))
    assert len(weekly) == 2 and weekly[-1] == "b279"


def test_periods_are_read_in_the_schedules_time_zone() -> None:
    # 03:00 UTC is still the previous day in New York
    runs = [Run("late", utc(2026, 3, 2, 3, 0), Phase.COMPLETED),
            Run("early", utc(2026, 3, 1, 12, 0), Phase.COMPLETED)]  # fmt: skip
    rules = Retention(keep=(("keepDaily", 1),))
    assert kept(runs, rules, ZoneInfo("UTC")) == ["late"]
    assert kept(runs, rules, NY) == ["late"]  # same New York day: its newest only
    assert kept(runs, Retention(keep=(("keepDaily", 2),)), NY) == ["late"]


def test_max_age_and_any_rule_keeping_a_backup_keeps_it() -> None:
    runs = runs_every(24, 10)  # b009 is 2026-01-10
    rules = Retention(keep_last=1, max_age=NOW - utc(2026, 1, 7, 12, 0))
    assert kept(runs, rules) == ["b007", "b008", "b009"]


def test_failed_runs_are_kept_a_bounded_count_and_running_ones_never_touched() -> None:
    runs = [*runs_every(1, 6, Phase.FAILED), Run("now", utc(2026, 2, 1, 0, 0), Phase.RUNNING)]
    assert to_delete(runs, Retention(keep_last=1, keep_failed=2), NOW, ZoneInfo("UTC")) == [
        "b000", "b001", "b002", "b003",
    ]  # fmt: skip


def test_no_rule_keeps_every_completed_backup() -> None:
    runs = runs_every(24, 5)
    assert to_delete(runs, Retention(), NOW, ZoneInfo("UTC")) == []


def test_retention_rules_are_checked() -> None:
    with pytest.raises(SpecError, match=r"spec\.retention has no rule keepYearly"):
        Retention.parse({"keepYearly": 1})
    with pytest.raises(SpecError, match="keepLast must be a whole number"):
        Retention.parse({"keepLast": -1})
    assert Retention.parse({"keepDaily": 7, "maxAge": "30d"}).max_age == timedelta(days=30)


def test_ttl() -> None:
    done = utc(2026, 12, 1, 0, 0)
    assert not expired(done, timedelta(days=1), done + timedelta(hours=23))
    assert expired(done, timedelta(days=1), done + timedelta(days=1))
