"""What-if scenarios: edits never touch the baseline, re-assessment reuses what did not change and equals a
fresh assessment, and diffs report classes, requirements, sites and zone areas (blocks added or lifted)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planning.assess import assess
from planning.demo import PLANTED
from planning.errors import ParameterError
from planning.model import Service
from planning.scenario import (
    AddSite,
    ChangePolicy,
    RemoveSite,
    Scenario,
    diff,
)
from planning.screening import check_location
from planning.siting import pairs_within, redundancy
from planning.synthetic import street_grid, synthetic_region

POOLING = Service.OUTPATIENT_POOLING


@pytest.fixture(scope="module")
def small():
    network = street_grid(18, seed=2)
    region = synthetic_region(network, counties_per_side=1, subdistricts_per_county_side=2, n_pharmacies=8, seed=2)
    return assess(region, network)


def snapshot(a) -> dict:
    """Deep copies of everything a scenario could touch in a baseline."""
    return {
        "pharmacies": a.region.pharmacies.copy(), "subdistricts": a.region.subdistricts.copy(),
        "counties": a.region.counties.copy(), "table": a.subdistricts.copy(), "coverage": a.coverage.copy(),
        "located": a.pharmacies.copy(), "persons": a.residents.persons.copy(), "policy": a.policy,
        "access": {s: (a.access[s], a.access[s].node_distance_m.copy()) for s in Service},
        "surfaces": {s: a.surfaces[s].distance_m.copy() for s in Service},
    }


def assert_unchanged(a, before: dict) -> None:
    for name in ("pharmacies", "subdistricts", "counties"):
        pd.testing.assert_frame_equal(getattr(a.region, name), before[name])
    pd.testing.assert_frame_equal(a.subdistricts, before["table"])
    pd.testing.assert_frame_equal(a.coverage, before["coverage"])
    pd.testing.assert_frame_equal(a.pharmacies, before["located"])
    np.testing.assert_array_equal(a.residents.persons, before["persons"])
    assert a.policy == before["policy"]
    for s in Service:
        assert a.access[s] is before["access"][s][0]
        np.testing.assert_array_equal(a.access[s].node_distance_m, before["access"][s][1])
        np.testing.assert_array_equal(a.surfaces[s].distance_m, before["surfaces"][s])


def test_edits_never_change_the_baseline(demo):
    before = snapshot(demo)
    ids = demo.region.pharmacies["pharmacy_id"].tolist()
    lon, lat = PLANTED["saturated_core_street"]["core_point"]
    scenario = (Scenario(demo).add_site("X-1", lon, lat, ["outpatient_pooling", "chronic_disease"])
                .remove_site(ids[0]).change_services(ids[1], ["dual_channel"])
                .scale_population(1.3).set_population("990103005", 1000).change_policy(walk_minutes=12))
    scenario.assess()
    scenario.diff(services=[POOLING])
    assert_unchanged(demo, before)
    assert "X-1" not in set(demo.region.pharmacies["pharmacy_id"])
    assert len(scenario.region().pharmacies) == len(demo.region.pharmacies)  # one in, one out


def test_scenarios_are_immutable_values(demo):
    base = Scenario(demo)
    one = base.remove_site(demo.region.pharmacies["pharmacy_id"].iloc[0])
    assert base.edits == () and len(one.edits) == 1
    assert one.edits[0] == RemoveSite(demo.region.pharmacies["pharmacy_id"].iloc[0])
    with pytest.raises(AttributeError):
        one.edits = ()  # frozen
    assert ChangePolicy(walk_minutes=10) == ChangePolicy(walk_minutes=10)
    assert AddSite("A", 111.5, 27.3, ["chronic_disease", "outpatient_pooling"]).services == (
        "outpatient_pooling", "chronic_disease")
    assert list(one.describe()["kind"]) == ["RemoveSite"]


def test_invalid_edits_are_refused_with_a_bilingual_message(demo):
    scenario = Scenario(demo)
    existing = demo.region.pharmacies["pharmacy_id"].iloc[0]
    with pytest.raises(ParameterError, match="already exists"):
        scenario.add_site(existing, 111.5, 27.3, ["personal_account"])
    with pytest.raises(ParameterError, match="no pharmacy"):
        scenario.remove_site("NOPE")
    with pytest.raises(ParameterError, match="no pharmacy"):
        scenario.remove_site(existing).change_services(existing, ["personal_account"])
    with pytest.raises(ParameterError, match="unknown service"):
        scenario.add_site("A", 111.5, 27.3, ["massage"])
    with pytest.raises(ParameterError, match="no sub-district"):
        scenario.set_population("000000000", 10)
    with pytest.raises(ParameterError, match="whole number"):
        scenario.set_population("990103005", -5)
    with pytest.raises(ParameterError, match="unknown policy key"):
        scenario.change_policy(walk_speed=3)
    with pytest.raises(ParameterError, match="walk_minutes"):
        scenario.change_policy(walk_minutes=500)
    with pytest.raises(ParameterError, match="lon/lat"):
        scenario.add_site("A", float("nan"), 27.3, ["personal_account"])


def test_reassessment_searches_only_changed_services_and_equals_a_fresh_assessment(demo):
    lon, lat = PLANTED["saturated_core_street"]["core_point"]
    scenario = Scenario(demo).add_site("X-1", lon, lat, ["outpatient_pooling"])
    assert scenario.changed_services() == (POOLING,)
    after = scenario.assess()
    for s in Service:
        assert (after.access[s] is demo.access[s]) == (s is not POOLING)
        assert (after.surfaces[s] is demo.surfaces[s]) == (s is not POOLING)
    assert after.network is demo.network and after.residents is demo.residents
    fresh = assess(scenario.region(), demo.network, scenario.policy(), residents=demo.residents)
    pd.testing.assert_frame_equal(after.coverage, fresh.coverage)
    pd.testing.assert_frame_equal(after.subdistricts, fresh.subdistricts)
    for s in Service:
        np.testing.assert_array_equal(after.surfaces[s].distance_m, fresh.surfaces[s].distance_m)
    assert scenario.assess() is after  # computed once


def test_no_edit_means_no_search_and_an_empty_diff(demo):
    scenario = Scenario(demo)
    assert scenario.changed_services() == ()
    change = scenario.diff(services=[POOLING])
    assert change.class_changes.empty and change.requirements.empty and change.sites.empty
    assert (change.zones[["added_km2", "lifted_km2"]] == 0).all().all()
    assert change.layer.empty
    assert np.allclose(change.summary["covered_delta"], 0)


def test_population_edits_rescale_resident_weights_in_place(demo):
    code = "990103005"
    scenario = Scenario(demo).scale_population(1.2, [code])
    assert scenario.changed_services() == ()  # no walk search runs again
    residents = scenario.residents()
    assert residents.snap is demo.residents.snap  # positions unchanged
    position = list(demo.region.subdistricts["code"]).index(code)
    inside = demo.residents.subdistrict == position
    new_population = scenario.region().subdistricts.set_index("code").loc[code, "population"]
    assert new_population == round(66900 * 1.2)
    assert residents.persons[inside].sum() == pytest.approx(new_population)
    np.testing.assert_array_equal(residents.persons[~inside], demo.residents.persons[~inside])
    after = scenario.assess()
    cov_before = demo.coverage.set_index(["code", "service"])
    cov_after = after.coverage.set_index(["code", "service"])
    for s in Service:
        old, new = cov_before.loc[(code, s.value)], cov_after.loc[(code, s.value)]
        assert new["covered_share"] == pytest.approx(old["covered_share"])
        assert new["covered"] == pytest.approx(1.2 * old["covered"], rel=1e-3)


def test_population_of_an_empty_subdistrict_is_spread_over_its_streets(small):
    code = small.region.subdistricts["code"].iloc[0]
    emptied = Scenario(small).set_population(code, 0)
    assert emptied.residents().persons[small.residents.subdistrict == 0].sum() == 0
    refilled = Scenario(emptied.assess()).set_population(code, 5000)
    assert refilled.residents().persons[small.residents.subdistrict == 0].sum() == pytest.approx(5000)
    assert refilled.assess().coverage.set_index("code").loc[code, "population"].iloc[0] == 5000


def test_a_shorter_walk_cuts_the_baseline_search_back_and_a_longer_one_searches_again(demo):
    scenario = Scenario(demo).change_policy(walk_minutes=10)
    assert scenario.changed_services() == ()  # 10 minutes lie inside the baseline's 30-minute horizon
    assert scenario.policy().walk_minutes == 10 and demo.policy.walk_minutes == 15
    fresh = assess(demo.region, demo.network, scenario.policy(), residents=demo.residents)
    pd.testing.assert_frame_equal(scenario.assess().subdistricts, fresh.subdistricts)
    assert Scenario(demo).change_policy(walk_minutes=20).changed_services() == tuple(Service)
    change = scenario.diff(services=[POOLING])
    row = change.summary.set_index("service").loc[POOLING.value]
    assert row["covered_share_after"] < row["covered_share_before"]
    assert row["blocked_lifted_km2"] > 0  # smaller B1 circles
    rules_only = Scenario(demo).change_policy(rules=demo.policy.rules - {"B2"})
    assert rules_only.changed_services() == ()
    assert (rules_only.diff(services=[POOLING]).zones.query("rule_ids == 'B2'")["lifted_km2"] > 0).all()


def isolated_site(a, service):
    """The site of ``service`` farthest (walking) from every other site of that service, and that distance."""
    access = a.access[service]
    nearest = np.full(len(access.site_ids), np.inf)
    for s, t, d in pairs_within(a.network, access.sites, access.sites, 3 * a.policy.budget_m):
        other = s != t
        np.minimum.at(nearest, s[other], d[other])
    best = int(np.argmax(nearest))
    return str(access.site_ids[best]), nearest[best]


def test_a_removed_sites_circle_disappears_from_the_blocked_zones(demo):
    """Withdraw the outpatient-pooling site farthest from any other: its B1 circle is lifted."""
    pid, gap_m = isolated_site(demo, POOLING)
    assert gap_m > demo.policy.budget_m + 300
    row = demo.region.pharmacies.set_index("pharmacy_id").loc[pid]
    lon, lat = row.geometry.x, row.geometry.y
    scenario = Scenario(demo).remove_site(pid)
    after = scenario.assess()
    change = scenario.diff(services=[POOLING])

    b1 = change.zones.set_index(["zone", "rule_ids"]).loc[("blocked", "B1")]
    assert b1["lifted_km2"] > 0.1 and b1["added_km2"] == 0
    assert abs(b1["area_before_km2"] - b1["area_after_km2"] - b1["lifted_km2"]) < 0.01
    lifted = change.layer[(change.layer["change"] == "lifted") & (change.layer["rule_ids"] == "B1")]
    assert len(lifted) == 1

    point = shapely.Point(lon, lat)
    b1_before = demo.zones_for(POOLING).set_index(["zone", "rule_ids"]).geometry.loc[("blocked", "B1")]
    b1_after = after.zones_for(POOLING).set_index(["zone", "rule_ids"]).geometry.loc[("blocked", "B1")]
    assert b1_before.contains(point) and not b1_after.contains(point)
    assert lifted.geometry.iloc[0].contains(point)
    rules_before = {f.rule_id for f in check_location(demo, lon, lat, [POOLING]).verdicts[POOLING].findings}
    rules_after = {f.rule_id for f in check_location(after, lon, lat, [POOLING]).verdicts[POOLING].findings}
    assert "B1" in rules_before and "B1" not in rules_after
    # The residents only this site covered are exactly the coverage lost (planning.siting.redundancy).
    lost = redundancy(demo, POOLING).set_index("pharmacy_id").loc[pid, "persons_lost"]
    assert lost > 0
    assert change.summary.set_index("service").loc[POOLING.value, "covered_delta"] == pytest.approx(-lost, rel=1e-6)


def test_cell_by_cell_zone_differences_equal_the_vector_overlay(demo):
    """B1, R3 and review zones are compared as cell masks; the result equals shapely's overlay of their
    polygons (the slower path, still used for boundary unions)."""
    pid, _ = isolated_site(demo, POOLING)
    row = demo.region.pharmacies.set_index("pharmacy_id").loc[pid]
    scenario = (Scenario(demo).remove_site(pid)
                .add_site("X-9", row.geometry.x + 0.01, row.geometry.y + 0.004, ["outpatient_pooling"]))
    change = scenario.diff(services=[POOLING])
    after = scenario.assess()
    crs = demo.network.crs
    zb = demo.zones_for(POOLING).to_crs(crs).set_index(["zone", "rule_ids"]).geometry
    za = after.zones_for(POOLING).to_crs(crs).set_index(["zone", "rule_ids"]).geometry
    cells = {(p.zone, p.rule_ids) for a in (demo, after) for p in a.zone_parts(POOLING) if p.boundary is None}
    assert ("blocked", "B1") in cells and ("priority", "R3") in cells
    zones = change.zones.set_index(["zone", "rule_ids"])
    compared = 0
    for key in cells:
        before = zb.get(key, shapely.MultiPolygon())
        after_geometry = za.get(key, shapely.MultiPolygon())
        assert zones.loc[key, "area_before_km2"] == pytest.approx(before.area / 1e6, rel=1e-6)
        assert zones.loc[key, "area_after_km2"] == pytest.approx(after_geometry.area / 1e6, rel=1e-6)
        if shapely.equals_exact(before, after_geometry, tolerance=0):
            continue
        compared += 1
        for column, overlay in (("added_km2", shapely.difference(after_geometry, before)),
                                ("lifted_km2", shapely.difference(before, after_geometry))):
            assert zones.loc[key, column] == pytest.approx(overlay.area / 1e6, rel=1e-6, abs=1e-9)
    assert compared >= 2  # at least B1 and R3 changed
    assert zones.loc[("blocked", "B1"), "added_km2"] > 0.1 and zones.loc[("blocked", "B1"), "lifted_km2"] > 0.1


def test_diff_reports_classes_requirements_sites_and_a_geojson_layer(demo):
    blank = PLANTED["blank_town"]["code"]
    r1 = PLANTED["r1_no_chronic_street"]["code"]
    where = demo.region.subdistricts.set_index("code").geometry
    town, street = where[blank].representative_point(), where[r1].representative_point()
    scenario = (Scenario(demo).add_site("T-1", town.x, town.y, ["personal_account", "outpatient_pooling"])
                .add_site("S-1", street.x, street.y, ["chronic_disease"]))
    change = scenario.diff()
    classes = change.class_changes.set_index(["code", "service"])
    assert classes.loc[(blank, "outpatient_pooling"), "class_before"] == "blank"
    assert classes.loc[(blank, "outpatient_pooling"), "class_after"] != "blank"
    req = change.requirements.set_index(["rule", "code", "service"])
    assert req.loc[("R1", r1, "chronic_disease"), "change"] == "met"
    assert set(change.sites["pharmacy_id"]) == {"T-1", "S-1"} and set(change.sites["change"]) == {"site_added"}
    r1_zone = change.zones.set_index(["service", "zone", "rule_ids"]).loc[("chronic_disease", "priority", "R1")]
    # 望月街道 still fails R1 (its chronic-disease pharmacies are suspended): only 柳湾街道's zone is lifted.
    assert r1_zone["lifted_km2"] > 0
    assert r1_zone["area_after_km2"] == pytest.approx(r1_zone["area_before_km2"] - r1_zone["lifted_km2"], abs=1e-6)
    still = PLANTED["r1_only_suspended_street"]["code"]
    assert change.after.subdistrict_row(still, "chronic_disease")["r1_ok"] == False  # noqa: E712
    summary = change.summary.set_index("service")
    chronic, pooling = summary.loc["chronic_disease"], summary.loc["outpatient_pooling"]
    assert chronic["r1_failing_before"] == 2 and chronic["r1_failing_after"] == 1
    assert pooling["pharmacies_after"] == pooling["pharmacies_before"] + 1

    layer = change.layer
    assert layer.crs == "EPSG:4326"
    assert {"subdistrict", "added", "lifted", "site_added"} <= set(layer["change"])
    assert layer.geometry.notna().all() and layer.is_valid.all()
    collection = change.to_geojson()
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) == len(layer)
    json.dumps(collection, allow_nan=False)
    import folium

    assert isinstance(change.map(service="chronic_disease"), folium.Map)


def test_diff_of_two_assessments_directly(demo):
    scenario = Scenario(demo).remove_site(demo.region.pharmacies["pharmacy_id"].iloc[3])
    a = diff(demo, scenario.assess(), services=["dual_channel"])
    assert set(a.zones["service"]) <= {"dual_channel"}
    assert len(a.coverage) == len(demo.subdistricts)


# ---------------------------------------------------------------------- property: any edit sequence
def edit_strategy(ids, codes):
    services = st.lists(st.sampled_from([s.value for s in Service]), min_size=1, max_size=4)
    return st.lists(st.one_of(
        st.builds(lambda i, s: ("add", f"N{i}", s), st.integers(0, 3), services),
        st.builds(lambda i: ("remove", i), st.sampled_from(ids)),
        st.builds(lambda i, s: ("change", i, s), st.sampled_from(ids), services),
        st.builds(lambda f, c: ("scale", f, c), st.floats(0, 3),
                  st.none() | st.lists(st.sampled_from(codes), min_size=1)),
        st.builds(lambda c, p: ("set", c, p), st.sampled_from(codes), st.integers(0, 50_000)),
        st.builds(lambda m: ("policy", m), st.sampled_from([10, 15, 20])),
    ), max_size=5)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(data=st.data())
def test_any_edit_sequence_leaves_the_baseline_alone_and_matches_a_fresh_assessment(small, data):
    ids = list(small.region.pharmacies["pharmacy_id"])
    codes = list(small.region.subdistricts["code"])
    steps = data.draw(edit_strategy(ids, codes))
    before = snapshot(small)
    x0, y0 = small.network.node_xy.min(axis=0)
    scenario = Scenario(small)
    present = set(ids)
    for step in steps:
        try:
            if step[0] == "add":
                lon, lat = small.network.to_lonlat.transform(x0 + 300 + 20 * len(present), y0 + 400)
                scenario = scenario.add_site(step[1], lon, lat, step[2])
                present.add(step[1])
            elif step[0] == "remove":
                scenario = scenario.remove_site(step[1])
                present.discard(step[1])
            elif step[0] == "change":
                scenario = scenario.change_services(step[1], step[2])
            elif step[0] == "scale":
                scenario = scenario.scale_population(step[1], step[2])
            elif step[0] == "set":
                scenario = scenario.set_population(step[1], step[2])
            else:
                scenario = scenario.change_policy(walk_minutes=step[1])
        except ParameterError:  # a duplicate id or an id already removed: refused, the scenario unchanged
            continue
    assert set(scenario.region().pharmacies["pharmacy_id"]) == present
    after = scenario.assess()
    fresh = assess(scenario.region(), small.network, scenario.policy(), residents=scenario.residents())
    pd.testing.assert_frame_equal(after.coverage, fresh.coverage)
    pd.testing.assert_frame_equal(after.subdistricts, fresh.subdistricts)
    assert_unchanged(small, before)
