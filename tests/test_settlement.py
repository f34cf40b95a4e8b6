"""Settlement status: each rule of planning.settlement at its boundary dates, on hand-built rows."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from planning.policy import Policy
from planning.settlement import (NOT_JUDGED, SETTLING, SUSPENDED, TERMINATED, missing_status_inputs, serves,
                                 settlement_status)

D = dt.date
#: Every status input given, each row settling on any day: the base the cases below change one cell of.
FULL = {"info_system_accepted": "2025-01-10", "traceability_accepted": "2025-01-10", "agreement_status": "settling",
        "suspension_start": None, "suspension_end": None, "earlier_suspensions": 0, "principal_status": "qualified"}


def status(on: dt.date, **cells) -> pd.Series:
    """The status columns of one hand-built pharmacy (FULL with ``cells`` changed) on ``on``."""
    return settlement_status(pd.DataFrame([{**FULL, **cells}]), on).iloc[0]


def test_every_input_given_and_nothing_wrong_is_settling():
    row = status(D(2026, 1, 1))
    assert row["settlement"] == SETTLING and row["settlement_rules"] == "" and row["settlement_not_judged"] == ""


@pytest.mark.parametrize("on, expected", [(D(2025, 6, 30), SETTLING), (D(2025, 7, 1), SUSPENDED)])
def test_information_system_deadline_is_2025_06_30_inclusive(on, expected):
    blank = status(on, info_system_accepted=None)  # a blank date is unknown: not judged once the rule applies
    assert blank["settlement"] == (SETTLING if expected == SETTLING else NOT_JUDGED)
    row = status(on, info_system_accepted="2025-09-15")  # accepted late: suspended from 07-01 until then
    assert row["settlement"] == expected
    if expected == SUSPENDED:
        assert row["settlement_rules"] == "ST-info" and row["settlement_until"] == "2025-09-15"
    assert status(D(2025, 9, 15), info_system_accepted="2025-09-15")["settlement"] == SETTLING
    assert status(on, info_system_accepted="2025-06-30")["settlement"] == SETTLING


def test_information_system_from_the_yes_no_column_when_no_date():
    rows = pd.DataFrame([{**FULL, "info_system_ready": ready} for ready in (True, False)]).drop(
        columns="info_system_accepted")
    found = settlement_status(rows, D(2025, 7, 1))
    assert found["settlement"].tolist() == [SETTLING, SUSPENDED]
    assert found["settlement_until"].tolist() == [None, None]  # until it passes: open-ended
    assert settlement_status(rows, D(2025, 6, 30))["settlement"].tolist() == [SETTLING, SETTLING]


@pytest.mark.parametrize("on, expected", [(D(2025, 3, 31), SETTLING), (D(2025, 4, 1), SUSPENDED)])
def test_traceability_deadline_is_2025_03_31_inclusive(on, expected):
    row = status(on, traceability_accepted="2025-05-01")
    assert row["settlement"] == expected
    assert row["settlement_rules"] == ("ST-trace" if expected == SUSPENDED else "")
    assert status(on, traceability_accepted="2025-03-31")["settlement"] == SETTLING


def test_blank_acceptance_date_after_the_deadline_is_not_judged():
    row = status(D(2025, 7, 1), traceability_accepted=None)
    assert row["settlement"] == NOT_JUDGED and row["settlement_not_judged"] == "ST-trace"


@pytest.mark.parametrize("day, expected, rule", [(180, SUSPENDED, "ST-suspended"), (181, TERMINATED, "ST-180")])
def test_a_suspension_ends_the_agreement_on_its_181st_day(day, expected, rule):
    start = D(2025, 8, 1)
    on = start + dt.timedelta(days=day - 1)  # the start is day 1
    row = status(on, agreement_status="suspended", suspension_start=start.isoformat())
    assert row["settlement"] == expected and row["settlement_rules"] == rule
    # A finished suspension of 181 days also ended the agreement; one of 180 days did not.
    finished = status(D(2026, 6, 1), suspension_start=start.isoformat(),
                      suspension_end=(start + dt.timedelta(days=day - 1)).isoformat())
    assert finished["settlement"] == (SETTLING if day == 180 else TERMINATED)


def test_a_suspension_with_an_end_date_says_until_when():
    row = status(D(2025, 9, 1), suspension_start="2025-08-01", suspension_end="2025-10-31")
    assert row["settlement"] == SUSPENDED and row["settlement_until"] == "2025-10-31"
    assert status(D(2025, 11, 1), suspension_start="2025-08-01", suspension_end="2025-10-31")["settlement"] == SETTLING


def test_a_second_suspension_in_one_agreement_period_terminates():
    once = status(D(2025, 9, 1), suspension_start="2025-08-01", earlier_suspensions=0)
    twice = status(D(2025, 9, 1), suspension_start="2025-08-01", earlier_suspensions=1)
    assert once["settlement"] == SUSPENDED
    assert twice["settlement"] == TERMINATED and twice["settlement_rules"] == "ST-twice"
    unknown = status(D(2025, 9, 1), suspension_start="2025-08-01", earlier_suspensions=None)
    assert unknown["settlement"] == SUSPENDED and "ST-twice" in unknown["settlement_not_judged"]


def test_terminated_agreement_and_principal():
    assert status(D(2026, 1, 1), agreement_status="terminated")["settlement_rules"] == "ST-terminated"
    for state in ("suspended", "terminated"):
        row = status(D(2026, 1, 1), principal_status=state)
        assert row["settlement"] == SUSPENDED and row["settlement_rules"] == "ST-principal"
    assert status(D(2026, 1, 1), principal_status=None)["settlement"] == NOT_JUDGED


def test_missing_columns_are_not_judged_never_settling():
    bare = pd.DataFrame([{"pharmacy_id": "A"}])
    row = settlement_status(bare, D(2026, 1, 1)).iloc[0]
    assert row["settlement"] == NOT_JUDGED
    assert set(row["settlement_not_judged"].split(",")) == {"ST-info", "ST-trace", "ST-suspended", "ST-terminated",
                                                            "ST-180", "ST-twice", "ST-principal"}
    assert missing_status_inputs(bare.columns) == ("column:info_system_ready", "column:traceability_accepted",
                                                   "column:agreement_status", "column:principal_status")
    assert missing_status_inputs(FULL) == ()


def test_who_serves_follows_the_policy():
    table = pd.DataFrame({"settlement": [SETTLING, SUSPENDED, TERMINATED, NOT_JUDGED]})
    assert serves(table, Policy()).tolist() == [True, False, False, True]
    assert serves(table, Policy(suspended_serve=True)).tolist() == [True, True, False, True]


def test_the_pharmacy_reader_takes_the_status_columns_under_chinese_headers(tmp_path):
    from planning import ingest

    header = ["编号", "名称", "地址", "经度", "纬度", "门诊统筹", "信息系统验收日期", "追溯码落实日期", "协议状态",
              "暂停开始日期", "暂停结束日期", "此前暂停次数", "主要负责人医保支付资格"]
    rows = [["A1", "甲药店", "一路1号", 112.91, 28.11, "是", "2025年6月30日", "2025/3/1", "正常", "", "", 0, "正常"],
            ["A2", "乙药店", "一路3号", 112.92, 28.11, "是", "2025-08-01", "2025-03-01", "暂停", "2025-10-01", "",
             "", "暂停"],
            ["A3", "丙药店", "一路5号", 112.93, 28.11, "是", "下月", "2025-03-01", "正常", "", "", 0, "正常"]]
    path = tmp_path / "药店.csv"
    pd.DataFrame(rows, columns=header).to_csv(path, index=False, encoding="utf-8")
    result = ingest.read_pharmacies(path)
    clean = result.clean.set_index("pharmacy_id")
    assert clean.loc["A1", "info_system_accepted"] == "2025-06-30" and clean.loc["A2", "agreement_status"] == SUSPENDED
    assert clean.loc["A2", "principal_status"] == "suspended" and pd.isna(clean.loc["A2", "earlier_suspensions"])
    assert result.rejected["row"].tolist() == [4]  # "下月" is no date: the row is rejected, saying which column
    found = settlement_status(clean, D(2025, 10, 15))
    assert found["settlement"].tolist() == [SETTLING, SUSPENDED]
    assert found.loc["A2", "settlement_rules"] == "ST-suspended,ST-principal"


def test_gap_report_and_map_carry_the_status_of_the_planted_pharmacies(demo):
    from planning.demo import PLANTED
    from planning.maps import STATUS_RINGS, pharmacy_geojson
    from planning.report import gap_report

    features = {f["properties"]["pharmacy_id"]: f["properties"] for f in gap_report(demo)["features"]
                if f["properties"]["layer"] == "pharmacy"}
    for pid in PLANTED["r1_only_suspended_street"]["suspended_chronic_pharmacies"]:
        assert features[pid]["settlement"] == SUSPENDED and features[pid]["serves"] is False
        assert features[pid]["settlement_rules"] in ("ST-info", "ST-principal") and features[pid]["settlement_until"] is None
    assert {features[p]["settlement"] for p in PLANTED["settlement"]["terminated"]} == {TERMINATED}
    shown = pharmacy_geojson(demo.pharmacies, "zh")["features"]
    rings = {f["properties"]["ring"] for f, pid in zip(shown, demo.pharmacies["pharmacy_id"])
             if pid in PLANTED["settlement"]["suspended"]}
    assert rings == {STATUS_RINGS[SUSPENDED][0]}
    assert any("暂停结算" in f["properties"]["status"] for f in shown)


def test_policy_file_settlement_keys(tmp_path):
    from planning.errors import ParameterError
    from planning.policy import load_policy

    path = tmp_path / "p.toml"
    path.write_text('id = "x"\n[settlement]\nsuspended_serve = true\nassessment_date = 2025-07-01\n', encoding="utf-8")
    policy = load_policy(path)
    assert policy.suspended_serve and policy.on == D(2025, 7, 1)
    assert Policy().on == dt.date.today() and not Policy().suspended_serve
    path.write_text('[settlement]\nserve = true\n', encoding="utf-8")
    with pytest.raises(ParameterError, match="settlement.serve"):
        load_policy(path)
    with pytest.raises(ParameterError):
        Policy(suspended_serve="yes")
