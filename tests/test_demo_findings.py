"""The tool finds every situation planted in the demo region (geodata/demo/README.md), with its rule ids."""

from __future__ import annotations

import numpy as np
import shapely

from planning.demo import CUTOFF_POINT, CUTOFF_POLYGON, PLANTED
from planning.model import Service
from planning.screening import check_location


def test_network_is_organic_and_large(demo):
    network = demo.network
    assert network.n_nodes >= 20_000 and network.n_components == 1
    classes = set(network.edge_highway.tolist())
    assert {"footway", "steps", "residential", "primary"} <= classes
    assert "motorway" not in classes and "motorway_link" not in classes


def test_residents_across_the_river_are_cut_off(demo):
    """澜湾花园小区: pharmacies 361-477 m away across the water, but no bridge near, so > 15 minutes."""
    network = demo.network
    planted = PLANTED["cutoff_neighbourhood"]
    ids = [p["pharmacy_id"] for p in planted["across_river_pharmacies"]]
    across = demo.pharmacies.set_index("pharmacy_id").loc[ids]
    here = network.project([CUTOFF_POINT[0]], [CUTOFF_POINT[1]])[0]
    straight = np.hypot(*(network.project(across.geometry.x, across.geometry.y) - here).T)
    assert straight.min() < 500
    snap = network.snap_lonlat([CUTOFF_POINT[0]], [CUTOFF_POINT[1]])
    minutes, _ = demo.access[Service.PERSONAL_ACCOUNT].point_minutes(snap)
    assert minutes[0] > demo.policy.walk_minutes  # the motorway bridge and the private bridge are not walkable
    # Every resident point inside the neighbourhood is uncovered, and the uncovered layer shows it.
    res = demo.residents
    lonlat = np.column_stack(network.to_lonlat.transform(res.xy[:, 0], res.xy[:, 1]))
    inside = shapely.contains_xy(CUTOFF_POLYGON, lonlat[:, 0], lonlat[:, 1])
    assert inside.sum() > 5
    resident_minutes, _ = demo.access[Service.PERSONAL_ACCOUNT].point_minutes(res.snap.subset(inside))
    assert (resident_minutes > demo.policy.walk_minutes).all()
    uncovered = demo.uncovered.set_index("service").loc[Service.PERSONAL_ACCOUNT.value, "geometry"]
    assert uncovered.contains(shapely.Point(CUTOFF_POINT))


def test_r1_street_without_chronic_disease_pharmacy(demo):
    """柳湾街道 has no chronic-disease pharmacy; 望月街道 has two, both suspended (ST-info, ST-principal), so
    under the default policy (suspended pharmacies do not serve) it fails R1 as well."""
    code = PLANTED["r1_no_chronic_street"]["code"]
    suspended_street = PLANTED["r1_only_suspended_street"]["code"]
    failing = demo.subdistricts[demo.subdistricts["r1_ok"] == False]  # noqa: E712
    assert failing[["code", "service"]].values.tolist() == [[code, Service.CHRONIC_DISEASE.value],
                                                            [suspended_street, Service.CHRONIC_DISEASE.value]]
    assert "R1" in demo.subdistrict_row(code, Service.CHRONIC_DISEASE)["rule_ids"]
    row = demo.subdistrict_row(suspended_street, Service.CHRONIC_DISEASE)
    assert row["pharmacies"] == 0 and row["suspended"] == 2 and "R1" in row["rule_ids"]


def test_r1_passes_through_suspended_pharmacies_only_when_the_policy_counts_them(demo):
    """The planted street office: fails R1 when suspended pharmacies do not serve, passes when they do."""
    from planning.assess import assess

    code = PLANTED["r1_only_suspended_street"]["code"]
    ids = PLANTED["r1_only_suspended_street"]["suspended_chronic_pharmacies"]
    status = demo.pharmacies.set_index("pharmacy_id").loc[ids]
    assert status["settlement"].tolist() == ["suspended", "suspended"]
    assert sorted(status["settlement_rules"]) == ["ST-info", "ST-principal"]
    assert not status["serves"].any()
    counted = assess(demo.region, demo.network, demo.policy.with_changes(suspended_serve=True), reuse=demo)
    row = counted.subdistrict_row(code, Service.CHRONIC_DISEASE)
    assert row["r1_ok"] and row["pharmacies"] == 2 and row["suspended"] == 2
    failing = counted.subdistricts[counted.subdistricts["r1_ok"] == False]  # noqa: E712
    assert failing["code"].tolist() == [PLANTED["r1_no_chronic_street"]["code"]]
    # Terminated pharmacies never serve, whatever the policy says of suspended ones.
    terminated = counted.pharmacies.set_index("pharmacy_id").loc[PLANTED["settlement"]["terminated"]]
    assert (terminated["settlement"] == "terminated").all() and not terminated["serves"].any()


def test_r2_county_without_dual_channel(demo):
    dual = demo.counties[demo.counties["service"] == Service.DUAL_CHANNEL.value]
    assert dual.loc[dual["r2_ok"] == False, "code"].tolist() == [PLANTED["r2_no_dual_channel_county"]["code"]]  # noqa: E712


def test_saturated_core_and_blank_town(demo):
    overall = demo.subdistricts[demo.subdistricts["service"] == Service.PERSONAL_ACCOUNT.value].set_index("code")
    core = PLANTED["saturated_core_street"]["code"]
    assert overall.loc[core, "class"] == "saturated"
    assert overall.index[overall["class"] == "saturated"].tolist() == [core]
    blank = PLANTED["blank_town"]["code"]
    assert overall.loc[blank, "class"] == "blank" and overall.loc[blank, "pharmacies"] == 0
    assert overall.loc[blank, "class_measure"] == "covered_share"


def test_fund_rules_and_designation_checks(demo):
    deficit = PLANTED["fund_deficit_county"]["code"]
    forecast = PLANTED["fund_forecast_county"]["code"]
    counties = demo.counties.drop_duplicates("code").set_index("code")
    assert counties["fund_b3"].to_dict() == {c: c == deficit for c in counties.index}
    assert counties.loc[forecast, "fund_b4"] and not counties.loc[forecast, "fund_b3"]
    # A chronic-disease pharmacy applying in the saturated core: B1 and B2, blocked.
    core = PLANTED["saturated_core_street"]["core_point"]
    check = check_location(demo, core[0], core[1], [Service.CHRONIC_DISEASE])
    verdict = check.verdicts[Service.CHRONIC_DISEASE]
    assert {"B1", "B2"} <= set(verdict.rule_ids) and verdict.verdict == "blocked"
    # Dual channel in the county that lacks it: R2 pleads, but B3 (fund deficit) blocks outright.
    town = demo.region.subdistricts.set_index("code").loc[PLANTED["blank_town"]["code"], "geometry"]
    point = town.representative_point()
    check = check_location(demo, point.x, point.y, [Service.DUAL_CHANNEL])
    verdict = check.verdicts[Service.DUAL_CHANNEL]
    assert {"R2", "B3"} <= set(verdict.rule_ids) and verdict.verdict == "blocked"


def test_work_area_is_an_r3_priority_only_when_workers_count(demo):
    """临溪物流园 in 车站街道: 10,000 workers beyond 15 minutes of every pharmacy, few residents. Residents
    alone leave the street office above the 80 % share (no R3); with workers_weight 0.5 it falls below for
    personal account and outpatient pooling, the park becomes a priority zone and the click says so; no
    other sub-district changes."""
    from planning.assess import assess

    planted = PLANTED["work_area"]
    code, park = planted["subdistrict_code"], shapely.Polygon(planted["polygon"])
    assert demo.region.workers is not None and demo.region.workers.total > planted["workers"]
    weighted = assess(demo.region, demo.network, demo.policy.with_changes(
        workers_weight={s: 0.5 for s in Service}), reuse=demo)
    res = demo.residents
    lonlat = np.column_stack(demo.network.to_lonlat.transform(res.xy[:, 0], res.xy[:, 1]))
    assert res.persons[shapely.contains_xy(park, lonlat[:, 0], lonlat[:, 1])].sum() < planted["workers"] / 5
    changed = []
    for service in (Service.PERSONAL_ACCOUNT, Service.OUTPATIENT_POOLING, Service.CHRONIC_DISEASE):
        for sd in demo.region.subdistricts["code"]:
            if demo.subdistrict_row(sd, service)["r3_ok"] != weighted.subdistrict_row(sd, service)["r3_ok"]:
                changed.append((sd, service))
    assert changed == [(code, Service.PERSONAL_ACCOUNT), (code, Service.OUTPATIENT_POOLING)]
    for service in (Service.PERSONAL_ACCOUNT, Service.OUTPATIENT_POOLING):
        before, after = demo.subdistrict_row(code, service), weighted.subdistrict_row(code, service)
        assert before["r3_ok"] and not after["r3_ok"] and after["demand"] == before["demand"] + 0.5 * planted["workers"]
        point = planted["point"]
        assert check_location(demo, point[0], point[1], [service]).verdicts[service].verdict == "allowed"
        verdict = check_location(weighted, point[0], point[1], [service]).verdicts[service]
        assert verdict.verdict == "priority" and "R3" in verdict.rule_ids
        zones = weighted.zones_for(service)
        assert zones[zones["zone"] == "priority"].geometry.contains(shapely.Point(point)).any()
