"""Chinese working days (工作日): the State Council's holidays and make-up working days (调休).

The calendar is the maintained ``chinese-calendar`` package, which follows each year's State Council
notice on public holidays. A year it does not know yet (the notice for year N comes out late in year
N-1) is counted Monday to Friday, and every result computed so says so (:attr:`WorkdayDate.assumed_years`):
a deadline in such a year is an estimate, never silently exact.

Counting follows the Civil Code (民法典 art. 201): the day an act happens is not counted, the period
starts the next day; "within N working days of day d" ends on the N-th working day after d.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import chinese_calendar

from planning.text import Text

#: The note shown beside a date computed with the Monday-to-Friday assumption.
ASSUMED_NOTE = Text("{years}年法定节假日安排尚未收录，按周一至周五计算，请以国务院通知为准",
                    "{years}: holidays not yet in the calendar, counted Monday to Friday; check the State Council notice")


@dataclass(frozen=True)
class WorkdayDate:
    """A date computed in working days, and the years whose holidays were unknown on the way
    (counted Monday to Friday); empty when the calendar knew every day counted."""

    day: dt.date
    assumed_years: tuple[int, ...] = ()

    @property
    def assumed(self) -> bool:
        return bool(self.assumed_years)

    def note(self) -> Text | None:
        """Why the date is an estimate, or None when it is exact."""
        if not self.assumed_years:
            return None
        return ASSUMED_NOTE.format(years="、".join(str(y) for y in self.assumed_years))


def is_workday(day: dt.date) -> tuple[bool, bool]:
    """(is ``day`` a working day, did the holiday calendar know its year). Unknown years: Monday to Friday."""
    try:
        return bool(chinese_calendar.is_workday(day)), True
    except NotImplementedError:  # the package has no data for this year
        return day.weekday() < 5, False


def add_workdays(start: dt.date, count: int) -> WorkdayDate:
    """The ``count``-th working day after ``start`` (``start`` itself not counted); ``count`` >= 0
    (0 gives ``start``)."""
    if count < 0:
        raise ValueError(f"count must be >= 0, not {count}")
    day, _, unknown = _walk(start, lambda day, found: found >= count)
    return WorkdayDate(day, unknown)


def workdays_between(start: dt.date, end: dt.date) -> tuple[int, tuple[int, ...]]:
    """(how many working days lie after ``start`` up to and including ``end``, the years on the way whose
    holidays were unknown). 0 when ``end`` <= ``start``."""
    _, found, unknown = _walk(start, lambda day, found: day >= end)
    return found, unknown


def _walk(start: dt.date, done) -> tuple[dt.date, int, tuple[int, ...]]:
    """Day by day after ``start`` until ``done(day, working days so far)``: (the last day, the working
    days counted, the unknown years met)."""
    day, found, unknown = start, 0, set()
    while not done(day, found):
        day += dt.timedelta(days=1)
        working, known = is_workday(day)
        if not known:
            unknown.add(day.year)
        found += working
    return day, found, tuple(sorted(unknown))
