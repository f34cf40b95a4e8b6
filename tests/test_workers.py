"""Where people work (MDJ-2025 art. 14, planning.workers): the worker layer weighed into the demand points.

Oracles: hand arithmetic on the residents-only assessment (a workplace of W workers beyond the walk time
adds W x weight to the demand and nothing to the covered persons; one within it adds to both), the
policy text, hand-measured areas of a hand-written OSM file, and the click / zones / siting / E2SFCA
that must all read the same demand points."""

from __future__ import annotations

import dataclasses
import gzip

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from cli_text import run_cli, write_csv
from pyproj import Transformer

from planning.assess import assess
from planning.completeness import DataCompleteness, LayerStatus
from planning.errors import ParameterError, SchemaError
from planning.model import Service
from planning.policy import load_policy, policy_from_dict
from planning.screening import check_location
from planning.synthetic import street_grid, synthetic_region
from planning.workers import (
    NO_WORKER_LAYER, WORKERS_PER_FLOOR_M2, WORKERS_PER_LAND_M2, WorkerLayer, attach_workers,
    estimate_workers_from_osm, load_workers, worker_points, workers_per_subdistrict,
)

ACCOUNT = Service.PERSONAL_ACCOUNT
PARK_WORKERS, OFFICE_WORKERS = 3000.0, 500.0


def weighing(weight: float, **changes):
    return load_policy().with_changes(workers_weight={s: weight for s in Service}, **changes)


@pytest.fixture(scope="module")
def grid_case():
    """Four equal sub-districts on a 2.4 km street grid, four pharmacies holding every service; a work
    park beyond the walk time in sub-district 3 (residents 90 % covered) and an office within it in
    sub-district 2."""
    network = street_grid(41)
    region = synthetic_region(network, counties_per_side=1, subdistricts_per_county_side=2, n_pharmacies=4,
                              service_shares=(1.0, 1.0, 1.0, 0.0), seed=3)
    base = assess(region, network, load_policy())
    minutes, _ = base.access[ACCOUNT].point_minutes(base.residents.snap)
    res = base.residents
    far = np.flatnonzero((res.subdistrict == 3) & (minutes > base.policy.walk_minutes + 3))[0]
    near = np.flatnonzero((res.subdistrict == 2) & (minutes < base.policy.walk_minutes - 10))[0]
    lon, lat = network.to_lonlat.transform(res.xy[[far, near], 0], res.xy[[far, near], 1])
    places = gpd.GeoDataFrame({"workers": [PARK_WORKERS, OFFICE_WORKERS], "name": ["park", "office"]},
                              geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")
    return {"network": network, "region": region, "base": base, "places": places,
            "with_layer": attach_workers(region, worker_points(places))}


def _rows(assessment, service=ACCOUNT):
    table = assessment.subdistricts
    return table[table["service"] == service.value].set_index("code")


def test_weight_zero_changes_nothing(grid_case):
    base = grid_case["base"]
    zero = assess(grid_case["with_layer"], grid_case["network"], load_policy())
    pd.testing.assert_frame_equal(zero.subdistricts.drop(columns="geometry"), base.subdistricts.drop(columns="geometry"))
    pd.testing.assert_frame_equal(zero.coverage, base.coverage)
    assert len(zero.residents) == len(base.residents) and not zero.residents.worker_points.any()
    assert "workers_weight 为 0" in zero.notes[0]


def test_workers_beyond_the_walk_time_make_an_r3_priority(grid_case):
    base, codes = grid_case["base"], grid_case["region"].subdistricts["code"].tolist()
    weighted = assess(grid_case["with_layer"], grid_case["network"], weighing(1.0))
    before, after = _rows(base), _rows(weighted)
    park, office = codes[3], codes[2]
    # the park: W more demand, none of it covered
    assert after.at[park, "demand"] == pytest.approx(before.at[park, "demand"] + PARK_WORKERS)
    covered_before = before.at[park, "covered_share"] * before.at[park, "demand"]
    assert after.at[park, "covered_share"] == pytest.approx(covered_before / (before.at[park, "demand"] + PARK_WORKERS))
    assert after.at[park, "uncovered"] == pytest.approx(before.at[park, "uncovered"] + PARK_WORKERS)
    assert before.at[park, "r3_ok"] and not after.at[park, "r3_ok"] and "R3" in after.at[park, "rule_ids"]
    # the office: within the walk time, covered with its workers
    covered_office = before.at[office, "covered_share"] * before.at[office, "demand"] + OFFICE_WORKERS
    assert after.at[office, "covered_share"] == pytest.approx(covered_office / (before.at[office, "demand"] + OFFICE_WORKERS))
    # the others unchanged; the residents and the per-resident densities too (art. 13)
    for code in codes[:2]:
        assert after.at[code, "covered_share"] == pytest.approx(before.at[code, "covered_share"])
    np.testing.assert_array_equal(after["per_10k"].to_numpy(), before["per_10k"].to_numpy())
    assert after["population"].tolist() == before["population"].tolist()
    # half the weight: half the workers in the demand
    half = _rows(assess(grid_case["with_layer"], grid_case["network"], weighing(0.5)))
    assert half.at[park, "demand"] == pytest.approx(before.at[park, "demand"] + PARK_WORKERS / 2)


def test_one_truth_click_zones_siting_and_e2sfca_read_the_workplaces(grid_case):
    from planning.siting import suggest_sites
    from planning.siting.candidates import uncovered_demand

    # R3 zones lie in blank or underserved sub-districts: with no density floor, only the covered share
    # (of residents, or of residents and workers) makes a sub-district underserved
    thresholds = load_policy().thresholds
    no_floor = {**thresholds, ACCOUNT: dataclasses.replace(thresholds[ACCOUNT], underserved_per_10k=0.0)}
    base = assess(grid_case["with_layer"], grid_case["network"], load_policy().with_changes(thresholds=no_floor))
    weighted = assess(grid_case["with_layer"], grid_case["network"], weighing(1.0, thresholds=no_floor))
    park = grid_case["places"].geometry.iloc[0]
    park_code = grid_case["region"].subdistricts["code"].iloc[3]
    assert _rows(base).at[park_code, "class"] == "balanced"
    assert _rows(weighted).at[park_code, "class"] == "underserved"
    assert _rows(weighted).at[park_code, "class_measure"] == "covered_share"
    assert check_location(base, park.x, park.y, [ACCOUNT]).verdicts[ACCOUNT].verdict == "allowed"
    verdict = check_location(weighted, park.x, park.y, [ACCOUNT]).verdicts[ACCOUNT]
    assert verdict.verdict == "priority" and "R3" in verdict.rule_ids
    zones = weighted.zones_for(ACCOUNT)
    priority = zones[zones["zone"] == "priority"].geometry
    assert priority.contains(park).any()
    # siting: the park's workers are uncovered demand the candidates can gain (the office's are covered)
    _, before_weights, _ = uncovered_demand(base, ACCOUNT)
    _, after_weights, rows = uncovered_demand(weighted, ACCOUNT)
    assert after_weights.sum() == pytest.approx(before_weights.sum() + PARK_WORKERS)
    assert weighted.residents.workers[rows].sum() == pytest.approx(PARK_WORKERS)
    assert suggest_sites(weighted, ACCOUNT, 1).sites.iloc[0]["gain_persons"] >= \
        suggest_sites(base, ACCOUNT, 1).sites.iloc[0]["gain_persons"]
    # E2SFCA counts the office's workers against the pharmacies near it
    office_code = grid_case["region"].subdistricts["code"].iloc[2]
    assert _rows(weighted).at[office_code, "e2sfca_per_10k"] != pytest.approx(_rows(base).at[office_code, "e2sfca_per_10k"])
    assert weighted.weights_for(ACCOUNT)[weighted.residents.worker_points].sum() == pytest.approx(PARK_WORKERS + OFFICE_WORKERS)
    assert "workers × 1" in weighted.demand[ACCOUNT].describe("en")


def test_areal_workplace_spreads_over_its_streets_by_length(grid_case):
    network, region, base = grid_case["network"], grid_case["region"], grid_case["base"]
    outline = region.subdistricts.geometry.iloc[1]
    layer = WorkerLayer(places=gpd.GeoDataFrame({"workers": [2000.0]}, geometry=[outline], crs="EPSG:4326"),
                        basis="points")
    from planning.workers import place_workers

    placed = place_workers(base.residents, network, region.subdistricts, layer, max_snap_m=250.0)
    extra = placed.worker_points
    assert placed.workers[extra].sum() == pytest.approx(2000.0)
    assert (placed.subdistrict[extra] == 1).all()
    members = base.residents.subdistrict == 1
    np.testing.assert_allclose(placed.workers[extra], 2000.0 * base.residents.street_m[members]
                               / base.residents.street_m[members].sum())
    assert placed.residents_only() is not placed and len(placed.residents_only()) == len(base.residents)


def test_a_table_per_subdistrict_with_chinese_headers(grid_case, tmp_path):
    region = grid_case["region"]
    codes, names = region.subdistricts["code"].tolist(), region.subdistricts["name"].tolist()
    path = write_csv(tmp_path / "就业.csv", ["街道名称", "街道代码", "从业人员"],
                     [[names[0], codes[0], "0.4万"], [names[1], "", "1500"], ["不存在街道", "", "99"], [names[2], "", ""]])
    loaded = load_workers(path, region)
    layer = loaded.workers
    assert layer.basis == "subdistricts" and layer.unmatched == ("不存在街道",) and layer.rows_rejected == 1
    assert dict(zip(layer.places["code"], layer.places["workers"])) == {codes[0]: 4000.0, codes[1]: 1500.0}
    assert (loaded.rejected["layer"] == "workers").sum() == 1
    weighted = _rows(assess(loaded, grid_case["network"], weighing(0.5)))
    population = region.subdistricts.set_index("code")["population"]
    assert weighted.at[codes[0], "demand"] == pytest.approx(population[codes[0]] + 2000.0)
    assert weighted.at[codes[1], "demand"] == pytest.approx(population[codes[1]] + 750.0)
    assert weighted.at[codes[3], "demand"] == pytest.approx(population[codes[3]])
    # spread like the residents: the covered share of a sub-district does not move
    base = _rows(grid_case["base"])
    assert weighted.at[codes[0], "covered_share"] == pytest.approx(base.at[codes[0], "covered_share"])
    by_code = workers_per_subdistrict(pd.DataFrame({"code": [codes[3]], "workers": [10.0]}), region.subdistricts)
    assert by_code.places["code"].tolist() == [codes[3]] and by_code.unmatched == ()


def test_workplace_points_with_lon_lat(grid_case, tmp_path):
    places = grid_case["places"]
    path = write_csv(tmp_path / "单位.csv", ["经度", "纬度", "就业人数", "类型"],
                     [[f"{p.x:.7f}", f"{p.y:.7f}", str(int(w)), "园区"] for p, w in zip(places.geometry, places["workers"])]
                     + [["abc", "27.3", "10", "x"]])
    loaded = load_workers(path, grid_case["region"])
    assert loaded.workers.basis == "points" and loaded.workers.places["workers"].tolist() == [PARK_WORKERS, OFFICE_WORKERS]
    assert loaded.workers.rows_rejected == 1


def _osm(path, ways):
    """A tiny OSM file: closed ways from local-metre squares (x0, y0, side_m, tags)."""
    to_lonlat = Transformer.from_crs("EPSG:32649", "EPSG:4326", always_xy=True)
    nodes, xml_ways, next_id = [], [], 1
    for way_id, (x0, y0, side, tags) in enumerate(ways, start=1):
        refs = []
        for x, y in ((x0, y0), (x0 + side, y0), (x0 + side, y0 + side), (x0, y0 + side)):
            lon, lat = to_lonlat.transform(500_000 + x, 3_020_000 + y)
            nodes.append(f'<node id="{next_id}" lat="{lat:.8f}" lon="{lon:.8f}" version="1"/>')
            refs.append(next_id)
            next_id += 1
        refs.append(refs[0])
        tag_xml = "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items())
        xml_ways.append(f'<way id="{way_id}" version="1">' + "".join(f'<nd ref="{r}"/>' for r in refs) + tag_xml + "</way>")
    text = '<?xml version="1.0" encoding="UTF-8"?><osm version="0.6">' + "".join(nodes) + "".join(xml_ways) + "</osm>"
    path.write_bytes(gzip.compress(text.encode("utf-8")))
    return path


def test_osm_estimate_counts_buildings_by_floor_area_and_bare_land_by_area(tmp_path):
    path = _osm(tmp_path / "net.osm.gz", [
        (0, 0, 20, {"building": "office", "building:levels": "5"}),          # 400 m² x 5 floors
        (1000, 0, 100, {"landuse": "industrial"}),                            # 1 ha, no building
        (2000, 0, 200, {"landuse": "commercial"}),                           # holds the shop: counted by it
        (2050, 50, 30, {"building": "retail"}),                              # 900 m², 1 floor
        (3000, 0, 50, {"building": "residential"}),                          # not a workplace
    ])
    layer = estimate_workers_from_osm(path)
    assert layer.basis == "osm_estimate" and sorted(layer.places["kind"]) == ["industrial", "office", "retail"]
    got = dict(zip(layer.places["kind"], layer.places["workers"]))
    assert got["office"] == pytest.approx(400 * 5 * WORKERS_PER_FLOOR_M2["office"], rel=0.01)
    assert got["retail"] == pytest.approx(900 * WORKERS_PER_FLOOR_M2["retail"], rel=0.01)
    assert got["industrial"] == pytest.approx(10_000 * WORKERS_PER_LAND_M2["industrial"], rel=0.01)
    note = layer.note()
    assert "估算" in note.zh and "estimate" in note.en and "15 m² of floor" in note.en


def test_policy_workers_weight_parses_and_is_checked():
    assert load_policy().workers_weight == {s: 0.0 for s in Service} and not load_policy().weighs_workers
    one = policy_from_dict({"demand": {"workers_weight": 0.5}})
    assert one.workers_weight == {s: 0.5 for s in Service} and one.weighs_workers
    per = policy_from_dict({"demand": {"workers_weight": {"outpatient_pooling": 1.0}}})
    assert per.workers_weight[Service.OUTPATIENT_POOLING] == 1.0 and per.workers_weight[ACCOUNT] == 0.0
    for bad in ({"workers_weight": 1.5}, {"workers_weight": -0.1}, {"workers_weight": {"nope": 0.5}}):
        with pytest.raises(ParameterError):
            policy_from_dict({"demand": bad})


def test_asked_for_but_missing_is_in_the_completeness_table(grid_case):
    region = dataclasses.replace(grid_case["region"], completeness=DataCompleteness(
        layers=(LayerStatus(layer="pharmacies", source="p.csv", rows_read=4, clean=4, rejected=0),)))
    without = assess(region, grid_case["network"], weighing(0.5))
    status = without.region.completeness.layer("workers")
    assert status is not None and status.missing == ("workers",)
    table = without.region.completeness.table("en")
    assert "workers (where people work)" in table.iloc[-1]["what was missing"]
    assert NO_WORKER_LAYER.en in without.region.completeness.text("en")
    assert NO_WORKER_LAYER.both() in without.notes
    # the residents-only answer stands: the same tables as the residents-only policy
    pd.testing.assert_frame_equal(without.coverage, assess(region, grid_case["network"], load_policy()).coverage)
    # a region without a completeness table (hand-built, demo) says it in the notes
    assert NO_WORKER_LAYER.both() in assess(grid_case["region"], grid_case["network"], weighing(0.5)).notes
    # given: listed with its source and count
    given = attach_workers(region, worker_points(grid_case["places"], source="单位.csv"))
    row = given.completeness.layer("workers")
    assert row.source == "单位.csv" and row.clean == 2 and not row.missing


def test_a_worker_layer_is_checked():
    with pytest.raises(SchemaError):
        WorkerLayer(places=gpd.GeoDataFrame({"workers": [-1.0]}, geometry=[shapely.Point(111, 27)], crs=4326),
                    basis="points")
    with pytest.raises(SchemaError):
        WorkerLayer(places=gpd.GeoDataFrame({"workers": [1.0]}, geometry=[shapely.Point(111, 27)], crs=4326),
                    basis="guess")


def test_cli_passes_the_worker_layer(tmp_path):
    policy = tmp_path / "workers.toml"
    policy.write_text('id = "workers"\n[demand]\nworkers_weight = 0.5\n', encoding="utf-8")
    from planning.demo import DEMO_DIR

    out = tmp_path / "out"
    result = run_cli("assess", "--demo", "--quiet", "--policy", str(policy), "--workplaces",
                     str(DEMO_DIR / "workers.geojson"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out / "subdistricts.csv", encoding="utf-8-sig", dtype={"code": str})
    row = table[(table["code"] == "990102004") & (table["service"] == ACCOUNT.value)].iloc[0]
    assert row["demand"] == pytest.approx(52_300 + 0.5 * 10_000)
    assert str(row["r3_ok"]).lower() in ("false", "0", "0.0")


def test_scenarios_keep_the_workplaces(grid_case):
    """A what-if on a weighted assessment re-places the workplaces: a new pharmacy at the park lifts its
    R3; doubling the residents doubles them and leaves the workers as they are."""
    from planning.scenario import AddSite, Scenario, ScalePopulation

    weighted = assess(grid_case["with_layer"], grid_case["network"], weighing(1.0))
    park, code = grid_case["places"].geometry.iloc[0], grid_case["region"].subdistricts["code"].iloc[3]
    assert not _rows(weighted).at[code, "r3_ok"]
    served = Scenario(weighted).with_edits(AddSite("NEW1", park.x, park.y, ("personal_account",))).assess()
    assert _rows(served).at[code, "r3_ok"]
    assert served.residents.workers.sum() == pytest.approx(PARK_WORKERS + OFFICE_WORKERS)
    doubled = Scenario(weighted).with_edits(ScalePopulation(2.0)).assess()
    population = grid_case["region"].subdistricts.set_index("code")["population"]
    assert _rows(doubled).at[code, "demand"] == pytest.approx(2 * population[code] + PARK_WORKERS)
    assert doubled.residents.worker_points.sum() == weighted.residents.worker_points.sum()


def test_the_worker_layer_is_its_own_map_layer_with_a_legend_entry(grid_case):
    from test_maps import assert_distinct

    from planning.maps import DEFAULT_LAYERS, WORKERS_COLOUR, assessment_layers, legend_entries, with_worker_layer

    assert with_worker_layer(DEFAULT_LAYERS, grid_case["region"]) == DEFAULT_LAYERS  # no layer: not drawn
    layers = with_worker_layer(DEFAULT_LAYERS, grid_case["with_layer"])
    assert layers == ("decision", "circles", "uncovered", "workers", "pharmacies")
    for lang, words in (("zh", "就业人员（工作地）"), ("en", "where people work")):
        entries = legend_entries(ACCOUNT, lang, layers=layers)
        assert ("outline", WORKERS_COLOUR, words) in entries
        assert_distinct(entries)
    weighted = assess(grid_case["with_layer"], grid_case["network"], weighing(1.0))
    groups = assessment_layers(weighted, service=ACCOUNT, lang="en", layers=layers)
    assert [g.layer_name for g in groups].count("where people work") == 1


def test_counting_workers_is_a_what_if_against_today(grid_case):
    """ChangePolicy(workers_weight=...) compares the plan that counts work areas with today's."""
    from planning.scenario import ChangePolicy, Scenario

    base = assess(grid_case["with_layer"], grid_case["network"], load_policy())
    diff = Scenario(base).with_edits(ChangePolicy(workers_weight={s: 1.0 for s in Service})).diff()
    code = grid_case["region"].subdistricts["code"].iloc[3]
    broken = diff.requirements[diff.requirements["change"] == "broken"]
    assert ((broken["code"] == code) & (broken["rule"] == "R3") & (broken["service"] == ACCOUNT.value)).any()
