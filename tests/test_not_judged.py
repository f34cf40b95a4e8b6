"""What the data cannot decide is never "allowed": a click far from every street, outside every
sub-district, or on a street not joined to any of the service's pharmacies is "not judged", with why."""

from __future__ import annotations

import numpy as np

from planning import rules
from planning.model import Service
from planning.screening import check_location


def test_a_click_far_from_every_street_is_not_judged(demo):
    bounds = demo.region.subdistricts.total_bounds
    lon, lat = bounds[2] + 0.03, bounds[3] + 0.03  # about 3 km beyond the region's corner
    check = check_location(demo, lon, lat, list(Service))
    assert not check.on_network and check.subdistrict_code is None
    for verdict in check.verdicts.values():
        assert verdict.verdict == "not_judged"
        finding = next(f for f in verdict.findings if f.outcome == "not_judged")
        assert finding.numbers["reason"] == "off_network"
        assert "无法判定" in finding.message("zh") and "cannot judge" in finding.message("en")


def test_a_street_point_outside_every_sub_district_is_not_judged(demo):
    network = demo.network
    lon, lat = network.to_lonlat.transform(network.node_xy[:, 0], network.node_xy[:, 1])
    subdistrict, _ = demo.areas_at(lon, lat)
    outside = np.flatnonzero(subdistrict < 0)
    if len(outside) == 0:  # the demo's streets all lie inside: move one sub-district's worth away
        return
    i = int(outside[0])
    check = check_location(demo, float(lon[i]), float(lat[i]), [Service.OUTPATIENT_POOLING])
    verdict = check.verdicts[Service.OUTPATIENT_POOLING]
    assert verdict.verdict == "not_judged"
    assert [f.numbers["reason"] for f in verdict.findings if f.outcome == "not_judged"] == ["outside_region"]


def test_a_point_on_a_piece_without_the_service_is_not_judged():
    """Two pieces: a west grid with the only dual-channel pharmacy, an east grid not joined to it."""
    import geopandas as gpd
    import shapely

    from planning.assess import assess
    from planning.model import SERVICE_COLUMNS, Region, validate_region
    from planning.network import WalkNetwork
    from planning.synthetic import street_grid

    grid = street_grid(21, spacing_m=60.0, jitter_m=0.0, drop_fraction=0.0)
    x = grid.node_xy[:, 0]
    cut = x.min() + 10.5 * 60.0
    keep = (x[grid.edge_u] < cut) == (x[grid.edge_v] < cut)  # drop the edges crossing the cut
    network = WalkNetwork.from_arrays(grid.node_xy, grid.edge_u[keep], grid.edge_v[keep], crs=grid.crs)
    assert network.n_components == 2
    (x0, y0), (x1, y1) = network.node_xy.min(axis=0) - 30, network.node_xy.max(axis=0) + 30
    box = shapely.box(x0, y0, x1, y1)
    counties = gpd.GeoDataFrame([{"code": "980100", "name": "县", "fund_deficit_last_year": False,
                                  "fund_deficit_forecast": False, "fund_warning_letter": False, "geometry": box}],
                                crs=grid.crs).to_crs("EPSG:4326")
    subdistricts = gpd.GeoDataFrame([{"code": "980100001", "name": "街道", "kind": "street", "county_code": "980100",
                                      "population": 10_000, "geometry": box}], crs=grid.crs).to_crs("EPSG:4326")
    west = network.node_xy[np.argmin(network.node_xy[:, 0] + network.node_xy[:, 1])]
    pharmacies = gpd.GeoDataFrame([{"pharmacy_id": "W1", "name": "西药店", "address": "西路1号",
                                    **{c: True for c in SERVICE_COLUMNS}, "chain": True, "info_system_ready": True,
                                    "cross_region_settlement": True, "geometry": shapely.Point(*west)}],
                                  crs=grid.crs).to_crs("EPSG:4326")
    region = validate_region(Region("两片", counties, subdistricts, pharmacies, fictional=True))
    result = assess(region, network)
    east = network.node_xy[np.argmax(network.node_xy[:, 0] + network.node_xy[:, 1])]
    lon, lat = network.to_lonlat.transform(*east)
    verdict = check_location(result, lon, lat, [Service.DUAL_CHANNEL]).verdicts[Service.DUAL_CHANNEL]
    assert verdict.verdict == "not_judged"
    assert [f.numbers["reason"] for f in verdict.findings if f.outcome == "not_judged"] == ["no_site_on_piece"]
    lon, lat = network.to_lonlat.transform(*(west + 60.0))
    assert check_location(result, lon, lat, [Service.DUAL_CHANNEL]).verdicts[Service.DUAL_CHANNEL].verdict != "not_judged"


def test_not_judged_overrides_every_flag():
    flags = {rule: np.array([True, False]) for rule in (*rules.BLOCK_RULES, *rules.GAP_RULES)}
    verdict = rules.verdicts(flags, np.array(["off_network", None], dtype=object))
    assert verdict.tolist() == ["not_judged", "allowed"]


def _with_missing(demo, *missing: str):
    from dataclasses import replace

    from planning.assess import assess
    from planning.completeness import DataCompleteness, LayerStatus

    completeness = DataCompleteness(layers=(LayerStatus("inputs", missing=missing),),
                                    has_fund_status="fund_status" not in missing)
    return assess(replace(demo.region, completeness=completeness), demo.network, demo.policy, reuse=demo)


def test_without_a_fund_table_b3_and_b4_are_not_judged_anywhere(demo):
    result = _with_missing(demo, "fund_status")
    counties = result.counties
    assert counties["fund_b3"].isna().all() and counties["fund_b4"].isna().all()
    assert (counties["not_judged"] == "B3,B4").all()
    assert not any(p.rule_ids in ("B3", "B4") for p in result.zone_parts(Service.OUTPATIENT_POOLING))
    core = demo.region.subdistricts.geometry.iloc[0].representative_point()
    verdict = check_location(result, core.x, core.y, [Service.OUTPATIENT_POOLING]).verdicts[Service.OUTPATIENT_POOLING]
    assert verdict.verdict in ("not_judged", "blocked")  # only a hard block stands without the fund table
    unknown = {f.rule_id: f for f in verdict.findings if f.outcome == "not_judged" and f.rule_id != "—"}
    assert set(unknown) == {"B3", "B4"}
    assert "基金运行情况表" in unknown["B3"].message("zh") and "fund-status table" in unknown["B3"].message("en")
    # and the baseline (nothing missing) still judges every click
    assert check_location(demo, core.x, core.y, [Service.OUTPATIENT_POOLING]).verdicts[
        Service.OUTPATIENT_POOLING].verdict != "not_judged"


def test_a_missing_service_column_leaves_that_service_unclassed_and_unjudged(demo):
    result = _with_missing(demo, "service:chronic_disease")
    chronic = result.subdistricts[result.subdistricts["service"] == Service.CHRONIC_DISEASE.value]
    pooling = result.subdistricts[result.subdistricts["service"] == Service.OUTPATIENT_POOLING.value]
    assert chronic["class"].isna().all() and chronic["r1_ok"].isna().all()
    assert set(chronic["not_judged"].iloc[0].split(",")) >= {"R1", "S", "B1", "B2", "R3"}
    assert pooling["class"].notna().all() and (pooling["not_judged"] == "").all()
    assert pooling["r1_ok"].notna().any()
