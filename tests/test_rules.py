"""Hand-built cases, one per rule: R1-R4, B1-B5, each saturation class, CX-2022 conditions and exclusions.

The region is a 4.8 x 4.8 km street grid (60 m blocks) cut into two counties (west: urban streets,
east: rural towns), each of two sub-districts (north, south). Pharmacies sit at chosen grid nodes.
"""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from planning.assess import assess
from planning.rules import classify
from planning.errors import ParameterError
from planning.model import SERVICE_COLUMNS, Region, validate_region
from planning.policy import SaturationThresholds, load_policy, policy_from_dict
from planning.screening import Applicant, applicant_checks, check_location, pharmacy_flags
from planning.synthetic import street_grid

SIDE, SPACING = 81, 60.0  # nodes 0..80 along each axis, 4.8 km
PA, OP, CD, DC = SERVICE_COLUMNS


@pytest.fixture(scope="module")
def grid():
    return street_grid(SIDE, spacing_m=SPACING, jitter_m=0.0, drop_fraction=0.0)


def node_xy(grid, col: int, row: int) -> tuple[float, float]:
    x, y = grid.node_xy[row * SIDE + col]
    return float(x), float(y)


def make_region(grid, pharmacies, *, populations=(40_000, 40_000, 20_000, 20_000), funds=None) -> Region:
    """``pharmacies``: list of (col, row, services set, extra columns dict)."""
    (x0, y0), (x1, y1) = grid.node_xy.min(axis=0) - 30, grid.node_xy.max(axis=0) + 30
    xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
    boxes = {"W-N": (x0, ym, xm, y1), "W-S": (x0, y0, xm, ym), "E-N": (xm, ym, x1, y1), "E-S": (xm, y0, x1, ym)}
    funds = funds or {}
    counties = gpd.GeoDataFrame(
        [{"code": code, "name": name, "fund_deficit_last_year": funds.get(code, {}).get("deficit", False),
          "fund_deficit_forecast": False, "fund_warning_letter": funds.get(code, {}).get("warning", False),
          "geometry": shapely.box(*box)}
         for code, name, box in (("980100", "西区", (x0, y0, xm, y1)), ("980200", "东县", (xm, y0, x1, y1)))],
        crs=grid.crs).to_crs("EPSG:4326")
    subdistricts = gpd.GeoDataFrame(
        [{"code": f"98{'01' if key[0] == 'W' else '02'}00{i}", "name": key + ("街道" if key[0] == "W" else "镇"),
          "kind": "street" if key[0] == "W" else "town", "county_code": "980100" if key[0] == "W" else "980200",
          "population": pop, "geometry": shapely.box(*boxes[key])}
         for i, (key, pop) in enumerate(zip(boxes, populations), start=1)],
        crs=grid.crs).to_crs("EPSG:4326")
    rows = []
    for i, (col, row, services, extra) in enumerate(pharmacies):
        rows.append({"pharmacy_id": f"T{i:03d}", "name": f"测试药店{i}", "address": f"测试路{i}号",
                     **{s: s in services for s in SERVICE_COLUMNS}, "chain": True, "info_system_ready": True,
                     "cross_region_settlement": True, **extra,
                     "geometry": shapely.Point(node_xy(grid, col, row))})
    layer = gpd.GeoDataFrame(rows, crs=grid.crs).to_crs("EPSG:4326")
    return validate_region(Region("测试", counties, subdistricts, layer, fictional=True))


def lonlat(grid, col, row):
    x, y = node_xy(grid, col, row)
    return grid.to_lonlat.transform(x, y)


@pytest.fixture(scope="module")
def base(grid):
    """West-north: outpatient only (R1 fails for chronic). West-south: one pharmacy with both (R1 passes)
    among nine spread on a lattice for 9,000 residents (saturated). East-north: personal account + dual channel. East-south: nothing."""
    pharmacies = [
        (20, 60, {PA, OP}, {}),
        (19, 19, {PA, OP, CD}, {}),
        *[(col, row, {PA}, {}) for col in (6, 18, 30) for row in (6, 18, 30)],
        (60, 60, {PA, DC}, {"cross_region_settlement": False}),
    ]
    region = make_region(grid, pharmacies, populations=(40_000, 9_000, 20_000, 20_000),
                         funds={"980200": {"warning": True}})
    return assess(region, grid, load_policy("default"))


def row(assessment, code, service):
    return assessment.subdistrict_row(code, service)


def test_r1_one_pharmacy_with_both_services_counts_for_both(base):
    assert row(base, "9801002", OP)["r1_ok"] is True and row(base, "9801002", CD)["r1_ok"] is True
    assert row(base, "9801001", OP)["r1_ok"] is True
    failing = row(base, "9801001", CD)
    assert failing["r1_ok"] is False and "R1" in failing["rule_ids"].split(",")
    assert row(base, "9802003", CD)["r1_ok"] is None  # towns are not bound by R1


def test_r2_dual_channel_per_county(base):
    county = base.counties.set_index(["code", "service"])
    assert county.loc[("980200", DC), "r2_ok"] is True
    assert county.loc[("980100", DC), "r2_ok"] is False
    assert "R2" in county.loc[("980100", DC), "rule_ids"]


def test_r3_uncovered_residents_and_r4_settlement(base):
    east_south = row(base, "9802004", PA)
    assert east_south["r3_ok"] is False and east_south["uncovered"] > 0.5 * east_south["population"]
    assert row(base, "9801002", PA)["r3_ok"] is True
    flags = base.pharmacies.set_index("pharmacy_id")["r4_ok"]
    assert flags[~flags].index.tolist() == ["T011"]


def test_classes_saturated_balanced_underserved_blank_with_their_measure(base):
    assert row(base, "9801002", PA)["class"] == "saturated"  # 9 pharmacies for 9,000 residents
    assert row(base, "9801002", PA)["class_measure"] == "per_10k"
    assert row(base, "9802004", PA)["class"] == "blank"      # nothing in or near the south-east
    assert row(base, "9802004", PA)["class_measure"] == "covered_share"
    assert row(base, "9801001", PA)["class"] == "underserved"  # 1 per 40,000
    assert "per 10,000" in row(base, "9801001", PA)["class_reason"]
    t = SaturationThresholds()
    assert classify(3.0, 0.9, 5, t)[0] == "balanced"
    assert classify(3.0, 0.5, 5, t)[:2] == ("underserved", "covered_share")


def test_b1_inside_a_same_service_circle_is_blocked(base, grid):
    check = check_location(base, *lonlat(grid, 22, 60), [OP, CD])
    op = check.verdicts[next(s for s in check.verdicts if s.value == OP)]
    b1 = next(f for f in op.findings if f.rule_id == "B1")
    assert b1.numbers["nearest_pharmacy_id"] == "T000" and b1.numbers["walk_minutes"] == pytest.approx(120 / 75, abs=0.01)
    name = base.region.pharmacies.set_index("pharmacy_id").loc["T000", "name"]
    assert b1.numbers["nearest_pharmacy_name"] == name  # the planner reads a name, not only an id
    assert f"{name}（T000）" in b1.message("zh") and f"{name} (T000)" in b1.message("en")
    cd = check.verdicts[next(s for s in check.verdicts if s.value == CD)]
    assert "B1" not in cd.rule_ids  # no chronic-disease pharmacy near: R1 gap makes it a priority
    assert cd.verdict == "priority" and "R1" in cd.rule_ids


def test_b2_saturated_area_blocks(base, grid):
    check = check_location(base, *lonlat(grid, 30, 5), [PA])
    verdict = next(iter(check.verdicts.values()))
    assert "B2" in verdict.rule_ids and verdict.verdict == "blocked"
    b2 = next(f for f in verdict.findings if f.rule_id == "B2")
    assert "每万人" in b2.message("zh") and "per 10,000" in b2.message("en")  # the reason in the reader's language


def test_b4_balance_only_county_meets_a_gap_as_review(base, grid):
    check = check_location(base, *lonlat(grid, 70, 10), [PA])  # blank town in a warning-letter county
    verdict = next(iter(check.verdicts.values()))
    assert set(verdict.rule_ids) >= {"B4", "R3"}
    assert verdict.verdict == "review"
    zones = base.zones[(base.zones["service"] == PA) & (base.zones["zone"] == "review")]
    assert "B4,R3" in zones["rule_ids"].tolist()


def test_b3_deficit_county_blocks_even_where_a_gap_exists(grid):
    region = make_region(grid, [(20, 60, {PA, OP, CD}, {})], funds={"980200": {"deficit": True}})
    result = assess(region, grid)
    check = check_location(result, *lonlat(grid, 70, 10), [PA, DC])
    for verdict in check.verdicts.values():
        assert "B3" in verdict.rule_ids and verdict.verdict == "blocked"
    assert not ((result.zones["zone"] == "review") & result.zones["rule_ids"].str.contains("B3")).any()


def test_b5_information_system_blocks_the_applicant(base, grid):
    check = check_location(base, *lonlat(grid, 70, 10), [DC], applicant=Applicant(info_system_ready=False))
    verdict = next(iter(check.verdicts.values()))
    assert "B5" in verdict.rule_ids and verdict.verdict == "blocked"


def test_allowed_where_nothing_applies(grid):
    region = make_region(grid, [(5, 75, {PA, OP, CD, DC}, {}), (75, 5, {PA, OP, CD, DC}, {})],
                         populations=(100_000, 100_000, 100_000, 100_000))
    result = assess(region, grid, load_policy("hunan-2025"))  # no B1, no R3
    check = check_location(result, *lonlat(grid, 40, 40), [DC])
    assert next(iter(check.verdicts.values())).verdict == "allowed"


@pytest.mark.parametrize(
    ("field", "years", "days_inside"),
    [("application_fraud_dates", 3, True), ("violation_termination_dates", 3, True),
     ("breach_termination_dates", 1, True), ("principal_termination_dates", 5, True)],
)
def test_cx2022_art13_exclusions_respect_their_date_windows(field, years, days_inside):
    today = dt.date(2026, 11, 24)
    inside = today.replace(year=today.year - years)            # the window's first day
    outside = inside - dt.timedelta(days=1)
    blocked = applicant_checks(Applicant(**{field: (inside,)}), today)
    cleared = applicant_checks(Applicant(**{field: (outside,)}), today)
    assert sum(f.outcome == "block" for f in blocked) == 1
    assert not any(f.outcome == "block" for f in cleared)


def test_cx2022_art8_conditions_and_other_exclusions():
    today = dt.date(2026, 11, 24)
    ok = Applicant(months_operating=3, licensed_pharmacists=1, pharmacist_contract_months=12,
                   insurance_administrators=2, administrator_contract_months=12, info_system_ready=True)
    assert all(f.outcome == "pass" for f in applicant_checks(ok, today))
    short = Applicant(months_operating=2, licensed_pharmacists=1, pharmacist_contract_months=6,
                      insurance_administrators=1, administrator_contract_months=12, info_system_ready=True,
                      unpaid_penalties=True, on_dishonest_list=True)
    findings = applicant_checks(short, today)
    assert sum(f.outcome == "fail" for f in findings) == 3
    assert sum(f.outcome == "block" for f in findings) == 2


def test_existing_pharmacy_flags():
    pharmacies = pd.DataFrame({
        "pharmacy_id": ["A", "B", "C"], PA: [True, True, True], OP: [False, True, True],
        CD: [False, False, False], DC: [False, False, False], "chain": [False, True, False],
        "last_review_date": ["2023-01-01", "2025-06-01", None], "annual_volume_yuan": [0.0, 1e6, 5e4],
        "suspensions": [0, 2, 1], "longest_suspension_days": [0, 10, 200],
    })
    flags = pharmacy_flags(pharmacies, on=dt.date(2026, 11, 24)).set_index("pharmacy_id")
    assert flags["risk_class"].tolist() == ["A", "B", "C"]
    assert flags["rereview_due"].tolist() == [True, False, True]
    assert flags["natural_exit"].tolist() == [True, False, False]
    assert flags["termination_trigger"].tolist() == [False, True, True]


def test_policy_presets_and_bad_keys():
    assert load_policy("hunan-2025").rules == frozenset({"R1", "R2", "R4", "B2", "B3", "B5", "S"})
    assert "B1" in load_policy("mudanjiang-2025").rules
    with pytest.raises(ParameterError, match="walk.minuets"):
        policy_from_dict({"walk": {"minuets": 10}})
    with pytest.raises(ParameterError, match="speed_m_per_min"):
        policy_from_dict({"walk": {"speed_m_per_min": 0}})
    with pytest.raises(ParameterError, match="unknown rule ids"):
        policy_from_dict({"rules": ["R9"]})
    with pytest.raises(ParameterError, match="saturation.chronic_disease.saturated_per_10"):
        policy_from_dict({"saturation": {"chronic_disease": {"saturated_per_10": 1}}})
    with pytest.raises(ParameterError, match="unknown policy preset"):
        load_policy("shanghai")
