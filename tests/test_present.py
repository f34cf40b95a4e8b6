"""Tables for people: every column the app shows has a header in both languages, coded values become
words, numbers are rounded but stay numbers (sortable), and no row is lost or reordered."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planning.present import column_label, for_people
from planning.scenario import AddSite, ChangePolicy, ChangeServices, RemoveSite, ScalePopulation, Scenario, SetPopulation

POOLING = "outpatient_pooling"
SNAKE = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)+$")  # a machine name such as covered_share_before


@pytest.fixture(scope="module")
def what_if(demo):
    withdrawn = demo.region.pharmacies["pharmacy_id"].iloc[0]
    scenario = (Scenario(demo).add_site("NEW-1", 111.64101, 27.27965, [POOLING, "chronic_disease"])
                .remove_site(withdrawn).scale_population(1.2, ["990103005"]))
    return scenario, scenario.diff(services=[POOLING])


def shown_tables(demo, what_if) -> dict[str, pd.DataFrame]:
    """Every table the app shows (and a notebook would print)."""
    scenario, change = what_if
    return {"subdistricts": demo.subdistricts, "counties": demo.counties, "coverage": demo.coverage,
            "rejected": demo.region.rejected, "edits": scenario.describe(), "summary": change.summary,
            "classes": change.class_changes, "requirements": change.requirements, "zones": change.zones,
            "sites": change.layer}


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_column_the_app_shows_has_a_header_in_both_languages(demo, what_if, lang):
    for name, table in shown_tables(demo, what_if).items():
        shown = for_people(table, lang)
        raw = [c for c in shown.columns if SNAKE.match(c)]
        assert raw == [], f"{name}: no {lang} header for {raw}"
        assert len(shown) == len(table), name  # every row kept
        if lang == "zh":
            assert all(re.search(r"[\u4e00-\u9fff]", c) or c.startswith(("R", "B")) for c in shown.columns), name
    assert column_label("covered_share_before", "zh") == "时限内覆盖率（%）（前）"
    assert column_label("not_a_known_column", "en") == "not_a_known_column"  # unknown: kept, not guessed


def test_values_become_words_and_numbers_stay_numbers(demo):
    table = demo.subdistricts
    zh, en = for_people(table, "zh"), for_people(table, "en")
    assert list(zh["业务类别"].unique()) == ["个人账户", "门诊统筹", "门诊慢特病", "“双通道”"]
    assert set(zh["分类"].dropna()) - {""} <= {"相对饱和", "均衡", "相对不足", "空白"}
    assert set(zh["R1 满足"]) <= {"是", "否", "不适用"} and set(en["R1 met"]) <= {"yes", "no", "n/a"}
    # Persons are whole numbers equal to the rounded persons, shares are percent; both still sort as numbers.
    assert zh["常住参保人口"].dtype == "Int64"
    assert (zh["时限外人口"].to_numpy(dtype=float) == np.round(table["uncovered"].to_numpy())).all()
    assert np.allclose(zh["时限内覆盖率（%）"], table["covered_share"] * 100, atol=0.05)
    assert pd.api.types.is_float_dtype(zh["时限内覆盖率（%）"])
    # The classes' reasons in the reader's language; the row order is the library's.
    assert zh["判定依据"].dropna().str.contains("每万人|覆盖率").all()
    assert en["reason"].dropna().str.contains("per 10,000|covered").all()
    assert zh["代码"].tolist() == table["code"].tolist()


def test_every_edit_describes_itself_in_both_languages():
    edits = [AddSite("NEW-1", 111.6, 27.3, ["chronic_disease"]), RemoveSite("P1"), ChangeServices("P2", []),
             ScalePopulation(1.5), SetPopulation("990103005", 1000), ChangePolicy(walk_minutes=10)]
    zh = [e.describe("zh") for e in edits]
    en = [e.describe("en") for e in edits]
    assert zh == ["在 111.60000, 27.30000 新增 NEW-1（门诊慢特病）", "撤销 P1", "P2 开通：无业务",
                  "全部街道/乡镇人口 × 1.5", "990103005 人口设为 1,000", "政策参数：walk_minutes=10"]
    assert en == ["add NEW-1 (chronic disease) at 111.60000, 27.30000", "remove P1", "P2 holds no service",
                  "population x 1.5 in all sub-districts", "population of 990103005 = 1,000", "policy: walk_minutes=10"]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1e7, allow_nan=False), st.floats(0, 1, allow_nan=False),
                          st.sampled_from([True, False, None])), min_size=0, max_size=30))
def test_rounding_keeps_every_row_and_moves_no_value_by_more_than_half_a_unit(rows):
    table = pd.DataFrame(rows, columns=["population", "covered_share", "r3_ok"])
    shown = for_people(table, "en")
    assert len(shown) == len(table)
    if len(table):
        assert (np.abs(shown["insured residents"].to_numpy(dtype=float) - table["population"]) <= 0.5).all()
        assert (np.abs(shown["share within the walk time (%)"] - table["covered_share"] * 100) <= 0.05 + 1e-9).all()
        assert shown["R3 met"].tolist() == [{True: "yes", False: "no", None: "n/a"}[v] for v in table["r3_ok"]]


def test_a_blank_outcome_of_a_rule_the_data_could_not_decide_reads_not_judged_not_n_a():
    """r1_ok / r2_ok / class left blank: "not judged" where the row's not_judged names the rule (R1, R2, S),
    "n/a" where the rule simply does not apply (a rural township has no R1)."""
    table = pd.DataFrame({"name": ["no boundaries", "township", "street"], "class": [None, "balanced", None],
                          "r1_ok": pd.array([pd.NA, pd.NA, True], dtype=object),
                          "r2_ok": pd.array([pd.NA, pd.NA, False], dtype=object),
                          "not_judged": ["R1,R2,S", "", "S"]})
    shown = for_people(table, "zh")
    assert list(shown["R1 满足"]) == ["未判定", "不适用", "是"]
    assert list(shown["R2 满足"]) == ["未判定", "不适用", "否"]
    assert list(shown["分类"]) == ["未判定", "均衡", "未判定"]
    assert list(for_people(table.drop(columns="not_judged"), "en")["R1 met"]) == ["n/a", "n/a", "yes"]
