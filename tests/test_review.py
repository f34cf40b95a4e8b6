"""The annual-review scenario (MDJ-2025 art. 15-17) on the demo: it is a manual removal scenario."""

from __future__ import annotations

import pandas as pd
import pytest

from planning.demo import PLANTED
from planning.errors import ParameterError
from planning.coverage import resident_minutes
from planning.model import Service
from planning.review import exit_list, review_scenario
from planning.scenario import Scenario
from planning.screening import pharmacy_flags


def test_flagged_exits_are_the_natural_exit_and_termination_flags(demo):
    table = exit_list(demo)
    flags = pharmacy_flags(demo.pharmacies, demo.policy.on)
    expected = set(flags.loc[flags["natural_exit"] | flags["termination_trigger"], "pharmacy_id"])
    assert set(table["pharmacy_id"]) == expected
    assert set(PLANTED["settlement"]["natural_exit"]) <= expected
    assert set(table.loc[table["pharmacy_id"].isin(PLANTED["settlement"]["natural_exit"]), "exit_reason"]) == {"natural_exit"}


def test_lowest_ranked_are_the_lowest_credit_scores_of_the_serving_others(demo):
    flagged = set(exit_list(demo)["pharmacy_id"])
    table = exit_list(demo, lowest=3)
    ranked = table[table["exit_reason"] == "lowest_ranked"]
    others = demo.pharmacies[~demo.pharmacies["pharmacy_id"].isin(flagged) & demo.pharmacies["serves"]]
    oracle = others.sort_values(["credit_score", "pharmacy_id"])["pharmacy_id"].head(3).tolist()
    assert set(ranked["pharmacy_id"]) == set(oracle) and len(table) == len(flagged) + 3
    with pytest.raises(ParameterError):
        exit_list(demo, lowest=-1)


def test_review_scenario_equals_a_manual_scenario_removing_the_same_pharmacies(demo):
    review = review_scenario(demo, lowest=2)
    ids = review.exit_table["pharmacy_id"].tolist()
    manual = Scenario(demo)
    for pid in ids:
        manual = manual.remove_site(pid)
    ours, theirs = review.diff(), manual.diff()
    pd.testing.assert_frame_equal(ours.summary, theirs.summary)
    pd.testing.assert_frame_equal(ours.coverage, theirs.coverage)
    pd.testing.assert_frame_equal(ours.requirements, theirs.requirements)
    pd.testing.assert_frame_equal(ours.zones, theirs.zones)
    assert set(ours.sites["pharmacy_id"]) == set(ids) and set(ours.sites["change"]) == {"site_removed"}
    exits = review.exits()
    assert list(exits["pharmacy_id"]) == ids
    # Safe means: nobody it served loses the circle and nothing breaks in its area.
    assert (exits["safe"] == ((exits["persons_losing_circle"] == 0) & (exits["requirements_broken"] == ""))).all()
    # The natural exits stand in the saturated core (40 pharmacies): leaving there opens no gap.
    core = exits[exits["pharmacy_id"].isin(PLANTED["settlement"]["natural_exit"])]
    assert core["safe"].all()
    # A resident who loses a circle lost its nearest site, an exit: the exits' persons (each resident once,
    # whatever the services) lie between the largest loss of one service and the sum over services.
    # (in residents: the coverage deltas weigh each service's own demand, planning.demand)
    after, budget, persons = review.scenario.assess(), demo.policy.walk_minutes, demo.residents.persons
    inside = demo.residents.subdistrict >= 0
    per_service = pd.Series({s: persons[inside & (resident_minutes(demo.access[s], demo.residents) <= budget)
                                        & ~(resident_minutes(after.access[s], demo.residents) <= budget)].sum()
                             for s in Service})
    total = exits["persons_losing_circle"].sum()
    assert per_service.max() - 1e-6 <= total <= per_service.sum() + 1e-6 and total > 0


def test_pharmacies_to_watch_lists_the_planted_statuses_and_exit_flags(demo):
    from planning.review import pharmacies_to_watch

    table = pharmacies_to_watch(demo).set_index("pharmacy_id")
    planted = PLANTED["settlement"]
    assert set(planted["suspended"]) | set(planted["terminated"]) | set(planted["natural_exit"]) <= set(table.index)
    assert (table.loc[planted["suspended"], "settlement"] == "suspended").all()
    assert not table.loc[planted["suspended"] + planted["terminated"], "serves"].any()
    assert table.loc[planted["natural_exit"], "natural_exit"].all()
    flagged = table["natural_exit"].fillna(False) | table["termination_trigger"].fillna(False)
    assert ((table["settlement"] != "settling") | flagged).all()
