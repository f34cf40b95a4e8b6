"""The application register: CX-2022 deadlines in Chinese working days, ban windows, overdue, XLSX round trip.

Hand-computed cases use the State Council's holiday notices: National Day 2025 off 1-8 October with
Sunday 28 September and Saturday 11 October worked; National Day 2026 off 1-7 October with Sunday 20
September and Saturday 10 October worked; Spring Festival 2025 off 28 January - 4 February with Sunday
26 January and Saturday 8 February worked; Spring Festival 2026 off 15-23 February with Saturday 14
and Saturday 28 February worked; Mid-Autumn 2026 (Friday 25 September) off. The ``chinese-calendar`` package is the oracle of the property test.
"""

from __future__ import annotations

import datetime as dt
import io

import chinese_calendar
import openpyxl
import pytest
from hypothesis import given, settings, strategies as st

from planning.demo import PLANTED
from planning.errors import ParameterError
from planning.model import Service
from planning.register import (Application, Kind, Stage, StoredVerdict, add_months, ban_windows, banned_on,
                               deadlines, exclusions_of, from_check, is_overdue, next_deadline, recheck)
from planning.register_xlsx import read_register_xlsx, register_table, write_register_xlsx
from planning.screening import Applicant, applicant_checks, check_location
from planning.workdays import add_workdays, is_workday, workdays_between

D = dt.date


def application(received: D, **changes) -> Application:
    values = dict(app_id="A1", applicant="康宁大药房", address="示例市中山路1号", lon=101.5, lat=25.0,
                  services=("chronic_disease",), received=received)
    return Application(**(values | changes))


# ----------------------------------------------------------------------------- working days
@pytest.mark.parametrize("start, count, due", [
    (D(2025, 9, 26), 5, D(2025, 10, 10)),   # Sun 28 Sep worked; 1-8 Oct off
    (D(2026, 9, 25), 15, D(2026, 10, 22)),  # 1-7 Oct off; Sat 10 Oct worked
    (D(2025, 1, 24), 5, D(2025, 2, 7)),     # Sun 26 Jan worked; 28 Jan - 4 Feb off
    (D(2026, 2, 12), 5, D(2026, 2, 26)),    # Sat 14 Feb worked; 15-23 Feb off
    (D(2026, 2, 27), 1, D(2026, 2, 28)),    # Sat 28 Feb worked
    (D(2025, 10, 1), 0, D(2025, 10, 1)),
])
def test_hand_computed_working_days_over_the_holidays(start, count, due):
    result = add_workdays(start, count)
    assert result.day == due and not result.assumed and result.note() is None


@settings(max_examples=200, deadline=None)
@given(start=st.dates(D(2025, 1, 1), D(2026, 11, 30)), count=st.integers(1, 20))
def test_working_days_agree_with_the_calendar_package(start, count):
    due = add_workdays(start, count).day
    assert chinese_calendar.is_workday(due)
    assert len(chinese_calendar.get_workdays(start + dt.timedelta(days=1), due)) == count
    assert workdays_between(start, due) == (count, ())


def test_a_year_the_calendar_does_not_know_is_counted_monday_to_friday_and_says_so():
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(D(2027, 1, 4))
    assert is_workday(D(2027, 1, 1)) == (True, False)  # a Friday, surely a holiday, but the data is missing
    result = add_workdays(D(2026, 12, 30), 5)  # Thu 31 Dec, then Fri 1, Mon 4, Tue 5, Wed 6 Jan 2027
    assert result.day == D(2027, 1, 6) and result.assumed_years == (2027,)
    assert "2027" in result.note().zh and "Monday to Friday" in result.note().en
    late = application(D(2026, 12, 30))
    row = register_table([late], today=D(2026, 12, 31), lang="en").iloc[0]
    assert row["next_due"] == D(2027, 1, 6) and "2027" in row["due_note"]


# ----------------------------------------------------------------------------- deadlines
def test_materials_deadline_and_the_overdue_flag_over_national_day():
    a = application(D(2025, 9, 26))
    pending = next_deadline(a)
    assert (pending.rule_id, pending.due, pending.party) == ("CX-12", D(2025, 10, 10), "bureau")
    assert pending.citation == "CX-2022 art. 12"
    assert not is_overdue(a, D(2025, 10, 10))
    assert is_overdue(a, D(2025, 10, 11))  # a make-up Saturday, the day after the last day
    # the notice to supplement on 9 Oct meets it; now the applicant has 5 working days (Sat 11 Oct worked)
    notified = a.advanced(Stage.SUPPLEMENT, D(2025, 10, 9))
    pending = next_deadline(notified)
    assert (pending.rule_id, pending.due, pending.party) == ("CX-12", D(2025, 10, 15), "applicant")
    assert not is_overdue(notified, D(2025, 10, 11))


def test_evaluation_deadline_leaves_out_the_supplement_time():
    a = (application(D(2025, 9, 26)).advanced(Stage.SUPPLEMENT, D(2025, 10, 9))
         .advanced(Stage.EVALUATION, D(2025, 10, 14)))
    evaluation = next_deadline(a)
    # 4 working days used before the notice (28, 29, 30 Sep, 9 Oct), 11 left from 14 Oct
    assert evaluation.rule_id == "CX-15" and evaluation.due == D(2025, 10, 29)
    assert evaluation.due == add_workdays(D(2025, 10, 14), 15 - 4).day
    direct = application(D(2026, 9, 25)).advanced(Stage.EVALUATION, D(2026, 9, 28))
    assert next_deadline(direct).due == D(2026, 10, 22)


def test_publication_notice_negotiation_and_filing_over_national_day_2026():
    a = (application(D(2026, 9, 15)).advanced(Stage.EVALUATION, D(2026, 9, 16))
         .advanced(Stage.PUBLICATION, D(2026, 9, 29)))
    assert next((d.due for d in deadlines(a) if d.rule_id == "CX-15")) == D(2026, 10, 12)  # Sun 20 Sep worked, Fri 25 Sep (Mid-Autumn) off
    assert (next_deadline(a).rule_id, next_deadline(a).due) == ("CX-19", D(2026, 10, 9))
    a = a.published(D(2026, 10, 9))
    steps = {d.step.en: d for d in deadlines(a)}
    assert steps["notice period ends"].due == D(2026, 10, 16)  # 9 Oct first, Sat 10 Oct worked
    assert (next_deadline(a).rule_id, next_deadline(a).due) == ("CX-20", D(2026, 10, 30))
    a = a.advanced(Stage.NEGOTIATION, D(2026, 10, 20))
    assert next_deadline(a) is None  # art. 22 sets no number of days for the signing
    a = a.advanced(Stage.SIGNED, D(2026, 11, 2))
    assert (next_deadline(a).rule_id, next_deadline(a).due) == ("CX-23", D(2026, 11, 9))
    a = a.advanced(Stage.FILED, D(2026, 11, 12))
    assert next_deadline(a) is None and not is_overdue(a, D(2027, 6, 1))
    late = {d.rule_id: d.overdue(D(2030, 1, 1)) for d in deadlines(a) if d.party == "bureau"}
    assert late == {"CX-12": False, "CX-15": False, "CX-19": False, "CX-20": False, "CX-23": True}


def test_payment_category_has_ten_working_days_over_spring_festival():
    a = application(D(2026, 2, 12), kind=Kind.PAYMENT_CATEGORY)
    # 13 Feb, Sat 14 Feb, 24, 25, 26, 27 Feb, Sat 28 Feb, 2, 3, 4 Mar
    assert (next_deadline(a).rule_id, next_deadline(a).due) == ("CX-9", D(2026, 3, 4))


# ----------------------------------------------------------------------------- bans
def test_failed_twice_bans_a_new_application_for_a_year_first_and_last_day():
    a = (application(D(2025, 3, 3)).advanced(Stage.EVALUATION, D(2025, 3, 10))
         .advanced(Stage.FAILED, D(2025, 3, 20), rule_id="CX-18"))
    (rectify,) = ban_windows(a)
    assert (rectify.rule_id, rectify.first, rectify.last) == ("CX-18", D(2025, 3, 20), D(2025, 6, 20))
    assert banned_on(a, D(2025, 6, 20)) and not banned_on(a, D(2025, 6, 21))
    a = a.advanced(Stage.EVALUATION, D(2025, 6, 23)).advanced(Stage.FAILED, D(2025, 7, 1), rule_id="CX-18")
    year = ban_windows(a)[1]
    assert (year.first, year.last) == (D(2025, 7, 1), D(2026, 7, 1))
    assert year in banned_on(a, D(2025, 7, 1)) and year in banned_on(a, D(2026, 7, 1))
    assert year not in banned_on(a, D(2025, 6, 30)) and not banned_on(a, D(2026, 7, 2))
    assert next_deadline(a) is None


def test_not_accepted_application_is_banned_for_its_art_13_window():
    record = Applicant(application_fraud_dates=(D(2024, 5, 10),), unpaid_penalties=True)
    exclusions = exclusions_of(applicant_checks(record, D(2025, 3, 3)))
    a = application(D(2025, 3, 3), exclusions=exclusions).advanced(Stage.NOT_ACCEPTED, D(2025, 3, 4), rule_id="CX-13")
    windows = {w.last: w for w in ban_windows(a)}
    assert set(windows) == {D(2027, 5, 10), None}  # fraud: 3 years from the event; penalties: until paid
    fraud = windows[D(2027, 5, 10)]
    assert fraud.covers(D(2025, 3, 4)) and fraud.covers(D(2027, 5, 10)) and not fraud.covers(D(2027, 5, 11))
    assert windows[None].covers(D(2040, 1, 1))
    assert next_deadline(a) is None


def test_months_end_on_the_corresponding_day_or_the_months_last():
    assert add_months(D(2025, 11, 30), 3) == D(2026, 2, 28)
    assert add_months(D(2024, 2, 29), 12) == D(2025, 2, 28)
    assert add_months(D(2025, 10, 31), 1) == D(2025, 11, 30)


def test_stage_dates_out_of_order_are_refused():
    with pytest.raises(ParameterError, match="before the previous"):
        application(D(2025, 3, 3)).advanced(Stage.EVALUATION, D(2025, 3, 1))


# ----------------------------------------------------------------------------- verdict and re-check
def test_stored_verdict_is_rechecked_and_a_change_flagged(demo):
    core = PLANTED["saturated_core_street"]["core_point"]
    check = check_location(demo, core[0], core[1], [Service.CHRONIC_DISEASE])
    a = from_check(check, app_id="A7", applicant="康宁大药房", address="中山路", received=D(2025, 9, 26))
    assert a.verdicts[0].verdict == "blocked" and {"B1", "B2"} <= set(a.verdicts[0].rule_ids)
    (same,) = recheck(a, demo)
    assert not same.changed
    stale = Application(**{**a.__dict__, "verdicts": (StoredVerdict("chronic_disease", "allowed", ()),)})
    (change,) = recheck(stale, demo)
    assert change.changed and (change.before, change.after) == ("allowed", "blocked")


# ----------------------------------------------------------------------------- XLSX
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_register_xlsx_round_trips_and_marks_overdue(lang):
    record = Applicant(violation_termination_dates=(D(2023, 1, 5),))
    apps = [
        application(D(2025, 9, 26), app_id="A1", applicant="=HYPERLINK(\"x\")",
                    verdicts=(StoredVerdict("chronic_disease", "review", ("B1", "R3")),), checked_on=D(2025, 9, 26)),
        application(D(2026, 9, 1), app_id="A2", services=("outpatient_pooling", "dual_channel"))
        .advanced(Stage.EVALUATION, D(2026, 9, 2)).advanced(Stage.PUBLICATION, D(2026, 9, 29))
        .published(D(2026, 10, 9)),
        application(D(2025, 3, 3), app_id="A3", exclusions=exclusions_of(applicant_checks(record, D(2025, 3, 3))))
        .advanced(Stage.NOT_ACCEPTED, D(2025, 3, 4), rule_id="CX-13", note="3年内被解除协议"),
        application(D(2026, 2, 12), app_id="A4", kind=Kind.PAYMENT_CATEGORY),
    ]
    buffer = io.BytesIO()
    write_register_xlsx(apps, buffer, today=D(2025, 10, 13), lang=lang)
    buffer.seek(0)
    assert read_register_xlsx(buffer) == apps
    buffer.seek(0)
    sheet = openpyxl.load_workbook(buffer).worksheets[0]
    headers = [c.value for c in sheet[1]]
    overdue = headers.index({"zh": "已逾期", "en": "overdue"}[lang]) + 1
    first = sheet.cell(2, overdue)
    assert first.value == {"zh": "是", "en": "yes"}[lang] and first.fill.fgColor.rgb.endswith("F4CCCC")
    assert sheet.cell(3, overdue).value == {"zh": "否", "en": "no"}[lang]
    assert sheet.cell(2, headers.index({"zh": "申请机构", "en": "applicant"}[lang]) + 1).data_type == "s"


@settings(max_examples=100, deadline=None)
@given(received=st.dates(D(2025, 1, 1), D(2026, 9, 30)), to_notice=st.integers(0, 12), gap=st.integers(1, 30))
def test_evaluation_period_counts_fifteen_working_days_without_the_supplement_time(received, to_notice, gap):
    notice = received + dt.timedelta(days=to_notice)
    back = notice + dt.timedelta(days=gap)
    a = application(received).advanced(Stage.SUPPLEMENT, notice).advanced(Stage.EVALUATION, back)
    due = next(d for d in deadlines(a) if d.rule_id == "CX-15").due
    one_day = dt.timedelta(days=1)
    before = len(chinese_calendar.get_workdays(received + one_day, notice)) if notice > received else 0
    after = len(chinese_calendar.get_workdays(back + one_day, due)) if due > back else 0
    assert before + after == 15 or (before >= 15 and due == back)
    assert due == back or chinese_calendar.is_workday(due)
