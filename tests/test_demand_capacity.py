"""Per-service demand (MDJ-2025 art. 13-14) and capacity-aware access (E2SFCA).

Oracles: hand computations (the two E2SFCA steps on 3 sites and 4 zones; demand read back from the
columns), PySAL ``access`` (its enhanced_two_stage_fca on a random cost table), the exact point-level
E2SFCA for the node-level one the assessment uses, and the full demo assessment."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest
from cli_text import write_csv
from hypothesis import given, settings
from hypothesis import strategies as st

from planning import ingest
from planning.assess import assess, service_sites
from planning.capacity import (
    E2SFCA_WEIGHTS, area_access_per_10k, decay_weights, e2sfca, e2sfca_at_nodes, e2sfca_from_pairs, site_capacity,
)
from planning.demand import DEFAULT_DEMAND, point_weights, service_demand
from planning.errors import ParameterError
from planning.model import Service
from planning.policy import load_policy, policy_from_dict
from planning.synthetic import street_grid, synthetic_region


# ---------------------------------------------------------------------------------------- E2SFCA
def test_e2sfca_by_hand_three_sites_four_zones():
    """Catchment 30 m: zones (0, 10], (10, 20], (20, 30] weigh 1, 0.68, 0.22."""
    site = np.array([0, 0, 1, 1, 1, 2])
    point = np.array([0, 1, 1, 2, 3, 3])
    distance = np.array([5.0, 15.0, 10.0, 25.0, 31.0, 20.0])  # 31 is beyond the catchment
    capacity = np.array([1.0, 2.0, 1.0])
    demand = np.array([100.0, 200.0, 300.0, 400.0])
    found = e2sfca_from_pairs(site, point, distance, capacity, demand, catchment_m=30.0)
    r0 = 1.0 / (100 * 1.0 + 200 * 0.68)
    r1 = 2.0 / (200 * 1.0 + 300 * 0.22)           # point 3 at 31 m is out
    r2 = 1.0 / (400 * 0.68)
    np.testing.assert_allclose(found.site_ratio, [r0, r1, r2])
    np.testing.assert_allclose(found.point_access, [r0 * 1.0, r0 * 0.68 + r1 * 1.0, r1 * 0.22, r2 * 0.68])
    # capacity doubled at one site moves only its catchment's ratio and the points it reaches
    doubled = e2sfca_from_pairs(site, point, distance, capacity * np.array([1, 1, 2]), demand, catchment_m=30.0)
    np.testing.assert_allclose(doubled.site_ratio, [r0, r1, 2 * r2])
    np.testing.assert_allclose(doubled.point_access[:3], found.point_access[:3])
    assert doubled.point_access[3] == pytest.approx(2 * found.point_access[3])


def test_decay_weights_include_each_zones_upper_bound():
    assert decay_weights(np.array([0.0, 10.0, 10.01, 20.0, 30.0, 30.01]), 30.0).tolist() == \
        [1.0, 1.0, 0.68, 0.68, 0.22, 0.0]


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=0, max_value=10_000))
def test_e2sfca_agrees_with_pysal_access(seed):
    from access import Access, weights

    rng = np.random.default_rng(seed)
    n_sites, n_zones = int(rng.integers(1, 8)), int(rng.integers(1, 12))
    site, zone = np.meshgrid(np.arange(n_sites), np.arange(n_zones), indexing="ij")
    cost = rng.uniform(0.0, 40.0, site.shape).round(1)
    capacity = rng.integers(1, 5, n_sites).astype(float)
    demand = rng.integers(1, 5000, n_zones).astype(float)
    ours = e2sfca_from_pairs(site.ravel(), zone.ravel(), cost.ravel(), capacity, demand, catchment_m=30.0)
    table = pd.DataFrame({"origin": zone.ravel(), "dest": site.ravel(), "cost": cost.ravel()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Access(demand_df=pd.DataFrame({"zone": np.arange(n_zones), "pop": demand}), demand_index="zone",
                       demand_value="pop", supply_df=pd.DataFrame({"site": np.arange(n_sites), "supply": capacity}),
                       supply_index="site", supply_value="supply", cost_df=table, cost_origin="origin",
                       cost_dest="dest", cost_name="cost")
        theirs = model.enhanced_two_stage_fca(weight_fn=weights.step_fn({10: 1.0, 20: 0.68, 30: 0.22}),
                                              max_cost=30.0)
    got = pd.Series(ours.point_access, index=np.arange(n_zones))
    want = theirs.iloc[:, 0].reindex(got.index).fillna(0.0)
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-9, atol=1e-15)


def test_node_level_e2sfca_is_close_to_the_exact_point_level_one(demo):
    """What the assessment uses (demand moved to the nearer end of its segment) against every exact
    pharmacy-to-resident walk, per sub-district on the demo."""
    network, policy = demo.network, demo.policy
    for service in (Service.PERSONAL_ACCOUNT, Service.OUTPATIENT_POOLING, Service.CHRONIC_DISEASE):
        sites, ids = service_sites(network, demo.pharmacies, service, policy)
        weights = demo.weights_for(service)
        args = (network, sites, np.ones(len(ids)), demo.residents.snap, weights)
        exact = e2sfca(*args, catchment_m=policy.budget_m)
        fast = e2sfca_at_nodes(*args, catchment_m=policy.budget_m)
        n = len(demo.region.subdistricts)
        a = area_access_per_10k(exact.point_access, weights, demo.residents.subdistrict, n)
        b = area_access_per_10k(fast.point_access, weights, demo.residents.subdistrict, n)
        ok = a > 0
        assert np.nanmax(np.abs(b[ok] - a[ok]) / a[ok]) < 0.03, service  # measured: 0.4-1.1 % at most
        table = demo.subdistricts[demo.subdistricts["service"] == service.value]
        np.testing.assert_allclose(table["e2sfca_per_10k"].to_numpy(), b)


def test_site_capacity_from_a_column_or_equal():
    table = pd.DataFrame({"volume": [100.0, 300.0, np.nan, -5.0]})
    capacity, defaulted = site_capacity(table, "volume")
    np.testing.assert_allclose(capacity, [0.5, 1.5, 1.0, 1.0]) and None
    assert defaulted == 2
    assert site_capacity(table, None)[0].tolist() == [1.0] * 4


# ---------------------------------------------------------------------------------------- demand
@pytest.fixture(scope="module")
def twin_region():
    """Four sub-districts of equal size and residents; employees differ; no outpatient-pooling pharmacy."""
    network = street_grid(41)
    region = synthetic_region(network, counties_per_side=1, subdistricts_per_county_side=2, n_pharmacies=4,
                              service_shares=(1.0, 0.0, 0.0, 0.0), seed=3)
    subs = region.subdistricts.assign(employees=[10_000.0, 30_000.0, np.nan, 20_000.0])
    return dataclasses.replace(region, subdistricts=subs), network


def test_equal_residents_different_employees_rank_differently_for_outpatient_pooling(twin_region):
    region, network = twin_region
    result = assess(region, network, load_policy())
    table = result.subdistricts.set_index(["service", "code"])
    pooling = table.loc[Service.OUTPATIENT_POOLING.value]
    account = table.loc[Service.PERSONAL_ACCOUNT.value]
    residents = region.subdistricts.set_index("code")["population"]
    # no pooling pharmacy: everyone it is for is beyond the walk time, counted in its own demand
    want = region.subdistricts.set_index("code")["employees"].fillna(residents)
    np.testing.assert_allclose(pooling["demand"].to_numpy(), want.reindex(pooling.index).to_numpy())
    np.testing.assert_allclose(pooling["uncovered"].to_numpy(), pooling["demand"].to_numpy(), rtol=1e-9)
    assert pooling["demand_basis"].eq("employees").all()
    assert list(pooling["uncovered"].rank(method="first")) != [1.0, 1.0, 1.0, 1.0]
    assert pooling["uncovered"].idxmax() == region.subdistricts["code"].iloc[1]  # the 30,000 employees
    # personal account weighs residents: equal demand, and the densities stay per resident (art. 13)
    np.testing.assert_allclose(account["demand"].to_numpy(), residents.reindex(account.index).to_numpy())
    np.testing.assert_allclose(pooling["per_10k"].to_numpy(), account["per_10k"].to_numpy() * 0)  # none held
    demand = result.demand[Service.OUTPATIENT_POOLING]
    assert demand.n_fallback == 1 and "1 sub-districts without a value" in demand.describe("en")
    # the siting gains and the persons beyond use the same weights
    weights = result.weights_for(Service.OUTPATIENT_POOLING)
    assert weights.sum() == pytest.approx(pooling["demand"].sum(), rel=1e-6)
    assert result.uncovered_for(Service.OUTPATIENT_POOLING)["persons"].iloc[0] == pytest.approx(
        pooling["uncovered"].sum(), rel=1e-6)


def test_a_missing_demand_column_falls_back_to_residents_and_says_so(tmp_path):
    subs = pd.DataFrame({"code": ["a", "b"], "population": [1000, 2000]})
    demand = service_demand(subs, Service.CHRONIC_DISEASE, "chronic_patients")
    assert demand.fallback.all() and demand.persons.tolist() == [1000.0, 2000.0]
    assert demand.describe("zh") == "门诊慢特病人数（无此列，按常住参保人口）"
    weights = point_weights(np.array([10.0, 10.0, 5.0]), np.array([0, 1, -1]), np.array([1000.0, 2000.0]),
                            service_demand(subs.assign(chronic_patients=[100, 400]), Service.CHRONIC_DISEASE,
                                           "chronic_patients"))
    np.testing.assert_allclose(weights, [1.0, 2.0, 0.0])


def test_population_table_demand_columns_reach_the_region(tmp_path, demo):
    region = demo.region
    subs = region.subdistricts
    subs.drop(columns=["population", "employees", "chronic_patients"]).to_file(tmp_path / "sd.geojson",
                                                                               driver="GeoJSON")
    rows = [[c, n, str(int(p)), f"{e / 10_000:.4f}万", "" if k == 0 else str(int(m))]
            for k, (c, n, p, e, m) in enumerate(zip(subs["code"], subs["name"], subs["population"],
                                                    subs["employees"], subs["chronic_patients"]))]
    table = write_csv(tmp_path / "pop.csv", ["街道代码", "街道名称", "常住参保人口", "城镇职工参保人数", "门诊慢特病人数"],
                      rows)
    ph = region.pharmacies
    sheet = write_csv(tmp_path / "p.csv", ["统一社会信用代码", "名称", "地址", "经度", "纬度", "门诊统筹"],
                      [[r.pharmacy_id, r.name, r.address, repr(r.geometry.x), repr(r.geometry.y),
                        "是" if r.outpatient_pooling else "否"] for r in ph.itertuples()])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        built = ingest.build_region(pharmacies=sheet, subdistricts=tmp_path / "sd.geojson", population=table,
                                    crs="wgs84")
    got = built.subdistricts.set_index("code")
    want = subs.set_index("code")
    np.testing.assert_allclose(got["employees"].to_numpy(), want.loc[got.index, "employees"].to_numpy(), atol=1)
    assert np.isnan(got.at[subs["code"].iloc[0], "chronic_patients"])  # a blank cell stays unknown
    assert not any("门诊慢特病人数" in note for note in built.completeness.layer("population").notes)
    without = write_csv(tmp_path / "pop2.csv", ["街道代码", "常住参保人口"], [r[:1] + r[2:3] for r in rows])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = ingest.build_region(pharmacies=sheet, subdistricts=tmp_path / "sd.geojson", population=without,
                                    crs="wgs84")
    notes = " ".join(plain.completeness.layer("population").notes)
    assert "城镇职工参保人数" in notes and "门诊慢特病人数" in notes and "weighed by residents" in notes


# ---------------------------------------------------------------------------------------- policy
def test_policy_chooses_demand_columns_and_the_class_density():
    policy = policy_from_dict({"demand": {"dual_channel": "population"},
                               "saturation": {"chronic_disease": {"density": "e2sfca"}}})
    assert policy.demand[Service.DUAL_CHANNEL] == "population"
    assert policy.demand[Service.OUTPATIENT_POOLING] == DEFAULT_DEMAND[Service.OUTPATIENT_POOLING]
    assert policy.thresholds[Service.CHRONIC_DISEASE].density == "e2sfca"
    with pytest.raises(ParameterError, match="demand column"):
        policy_from_dict({"demand": {"dual_channel": "visitors"}})
    with pytest.raises(ParameterError, match="density"):
        policy_from_dict({"saturation": {"chronic_disease": {"density": "cars"}}})


def test_a_class_decided_by_e2sfca_names_it(demo):
    policy = policy_from_dict({"saturation": {"personal_account": {"density": "e2sfca"}}})
    result = assess(demo.region, demo.network, policy)
    rows = result.subdistricts[result.subdistricts["service"] == Service.PERSONAL_ACCOUNT.value]
    measures = set(rows["class_measure"].dropna())
    assert "e2sfca_per_10k" in measures and "per_10k" not in measures
    pooling = result.subdistricts[result.subdistricts["service"] == Service.OUTPATIENT_POOLING.value]
    assert "e2sfca_per_10k" not in set(pooling["class_measure"].dropna())  # only the service it was set for


def test_growth_and_ageing_edit_scales_one_services_demand(demo):
    """+15 % chronic patients in the old city (MDJ-2025 art. 5): chronic disease and dual channel demand grow
    there, residents and outpatient pooling do not, and the E2SFCA measure falls where demand grew."""
    from planning.scenario import ScaleDemand, Scenario

    subs = demo.region.subdistricts
    old_city = tuple(subs.loc[subs["county_code"] == subs["county_code"].iloc[0], "code"])
    result = Scenario(demo).scale_demand("chronic_disease", 1.15, old_city).assess()
    before = demo.subdistricts.set_index(["service", "code"])
    after = result.subdistricts.set_index(["service", "code"])
    for service in (Service.CHRONIC_DISEASE, Service.DUAL_CHANNEL):
        grown = after.loc[service.value, "demand"].reindex(old_city)
        np.testing.assert_allclose(grown.to_numpy(), np.rint(before.loc[service.value, "demand"].reindex(old_city)
                                                              .to_numpy() * 1.15))
    chronic_before = before.loc[Service.CHRONIC_DISEASE.value]
    chronic_after = after.loc[Service.CHRONIC_DISEASE.value]
    assert (chronic_after["e2sfca_per_10k"].reindex(old_city) < chronic_before["e2sfca_per_10k"].reindex(old_city)).all()
    np.testing.assert_allclose(chronic_after["covered_share"], chronic_before["covered_share"])  # same spread
    pd.testing.assert_series_equal(after.loc[Service.OUTPATIENT_POOLING.value, "demand"],
                                   before.loc[Service.OUTPATIENT_POOLING.value, "demand"])
    assert result.region.subdistricts["population"].equals(subs["population"])
    assert ScaleDemand("chronic_disease", 1.15).describe("en") == "chronic disease demand x 1.15 in all sub-districts"
    with pytest.raises(ParameterError, match="no sub-district"):
        Scenario(demo).scale_demand("chronic_disease", 1.1, ["000"])


# ---------------------------------------------------------------------------------------- art. 13 places
def _grid_osm(path, places: list[tuple[str, str, str, float, float]]) -> None:
    """A 7 x 7 street grid 200 m apart near (118.780, 32.040) with tagged place nodes."""
    lon0, lat0, step = 118.780, 32.040, 0.002
    nodes, ways, ids = [], [], {}
    for i in range(7):
        for j in range(7):
            ids[i, j] = len(ids) + 1
            nodes.append(f'<node id="{ids[i, j]}" lat="{lat0 + j * step}" lon="{lon0 + i * step}" version="1"/>')
    wid = 100
    for i in range(7):
        for j in range(6):
            for a, b in (((i, j), (i, j + 1)), ((j, i), (j + 1, i))):
                ways.append(f'<way id="{wid}" version="1"><nd ref="{ids[a]}"/><nd ref="{ids[b]}"/>'
                            f'<tag k="highway" v="residential"/></way>')
                wid += 1
    for k, (key, value, name, lon, lat) in enumerate(places):
        nodes.append(f'<node id="{9000 + k}" lat="{lat}" lon="{lon}" version="1"><tag k="{key}" v="{value}"/>'
                     f'<tag k="name" v="{name}"/></node>')
    path.write_text('<?xml version="1.0" encoding="UTF-8"?><osm version="0.6">' + "".join(nodes) + "".join(ways)
                    + "</osm>", encoding="utf-8")


def test_candidates_at_art13_places_carry_their_kind_and_avoid_blocked_zones(tmp_path):
    import geopandas as gpd
    import shapely

    from planning.ingest.osm_places import read_osm_places
    from planning.network import load_network
    from planning.siting import candidate_sites

    places = [("amenity", "hospital", "第一医院", 118.7802, 32.0401),       # beside the pharmacy: in its circle
              ("amenity", "marketplace", "东门集市", 118.7919, 32.0519),     # the far corner
              ("shop", "mall", "中心商场", 118.7861, 32.0461),
              ("amenity", "nursing_home", "夕阳红养老院", 118.7919, 32.0401),
              ("amenity", "school", "不是第十三条的地点", 118.7881, 32.0481)]
    osm = tmp_path / "grid.osm"
    _grid_osm(osm, places)
    found = read_osm_places(osm)
    assert found["kind"].tolist() == ["hospital", "market", "commercial", "elderly_care"]
    box = shapely.box(118.779, 32.039, 118.793, 32.053)
    gpd.GeoDataFrame({"code": ["320102001"], "name": ["新街口街道"], "kind": ["street"], "population": [20000]},
                     geometry=[box], crs="EPSG:4326").to_file(tmp_path / "sd.geojson", driver="GeoJSON")
    sheet = write_csv(tmp_path / "p.csv", ["名称", "地址", "经度", "纬度", "个人账户", "门诊统筹", "门诊慢特病", "双通道"],
                      [["一号店", "中山路1号", "118.7800", "32.0402", "是", "是", "是", "是"]])
    fund = write_csv(tmp_path / "fund.csv", ["区县代码", "上年亏损", "预计亏损", "预警函"], [["320102", "否", "否", "否"]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        region = ingest.build_region(pharmacies=sheet, subdistricts=tmp_path / "sd.geojson", fund_status=fund,
                                     network=osm, crs="wgs84")
    network = load_network(osm)
    # R4 and B5 are the sheet's and the applicant's; every rule the places need is judged
    policy = load_policy().with_changes(walk_minutes=5.0, rules=frozenset({"R1", "R2", "R3", "B1", "B2", "B3", "B4", "S"}))
    result = assess(region, network, policy)
    candidates = candidate_sites(result, Service.OUTPATIENT_POOLING, source="places")
    kinds = dict(zip(candidates.table["place_name"], candidates.table["place_kind"]))
    assert kinds == {"东门集市": "market", "中心商场": "commercial", "夕阳红养老院": "elderly_care"}
    assert "第一医院" not in kinds  # in the existing pharmacy's 5-minute circle: B1
    assert (candidates.table["verdict"] != "blocked").all()
    zones = result.zones_for(Service.OUTPATIENT_POOLING)
    blocked = zones[zones["zone"] == "blocked"].union_all()
    assert not candidates.table.geometry.within(blocked).any()
    both = candidate_sites(result, Service.OUTPATIENT_POOLING, source="places+network", spacing_m=200)
    assert len(both) > len(candidates) and both.table["place_kind"].eq("").sum() == len(both) - len(candidates)
