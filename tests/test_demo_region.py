"""The embedded demo region 示例市（虚构）: reproducible, valid, and holding its planted situations.

The walking-time facts (the cut-off neighbourhood 澜湾花园小区 is more than 15 minutes from every
pharmacy) belong with the access engine's tests; here only what the files themselves show is checked.
"""

from __future__ import annotations

import gzip
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from geodata.demo.generate import generate
from planning.demo import CUTOFF_POINT, CUTOFF_POLYGON, DEMO_DIR, PLANTED, load_demo_region
from planning.model import SERVICE_COLUMNS

OUTPUTS = ("network.osm.gz", "counties.geojson", "subdistricts.geojson", "pharmacies.geojson", "workers.geojson",
           "planted.json")
METRIC = "EPSG:32649"  # UTM 49N holds lon 111.6
#: The walking filter the demo is built to exercise (independent of planning.network on purpose).
WALKABLE = {"primary", "secondary", "tertiary", "residential", "living_street", "service", "footway",
            "pedestrian", "steps", "path", "track", "unclassified"}


def walkable(tags: dict[str, str]) -> bool:
    return tags.get("highway") in WALKABLE and tags.get("access") not in ("private", "no") and tags.get("foot") != "no"


@pytest.fixture(scope="module")
def region():
    return load_demo_region()


@pytest.fixture(scope="module")
def joined(region):
    """Pharmacies with the sub-district (code, kind, county) they lie in."""
    subs = region.subdistricts.rename(columns={"code": "sd_code", "name": "sd_name"})
    out = gpd.sjoin(region.pharmacies, subs[["sd_code", "sd_name", "kind", "county_code", "geometry"]],
                    predicate="within", how="left")
    assert out["sd_code"].notna().all() and len(out) == len(region.pharmacies)
    return out


@pytest.fixture(scope="module")
def osm():
    """Nodes (id -> lon, lat) and ways (node ids, tags) of network.osm.gz, parsed with ElementTree."""
    nodes: dict[int, tuple[float, float]] = {}
    node_tags: dict[int, dict[str, str]] = {}
    ways: list[tuple[list[int], dict[str, str]]] = []
    with gzip.open(DEMO_DIR / "network.osm.gz") as f:
        root = ET.parse(f).getroot()
    assert root.tag == "osm" and root.get("version") == "0.6"
    for el in root:
        if el.tag == "node":
            nodes[int(el.get("id"))] = (float(el.get("lon")), float(el.get("lat")))
            tags = {t.get("k"): t.get("v") for t in el.iter("tag")}
            if tags:
                node_tags[int(el.get("id"))] = tags
        elif el.tag == "way":
            refs = [int(nd.get("ref")) for nd in el.iter("nd")]
            ways.append((refs, {t.get("k"): t.get("v") for t in el.iter("tag")}))
    return nodes, node_tags, ways


def way_line(nodes, refs) -> shapely.LineString:
    return shapely.LineString([nodes[r] for r in refs])


# ---------------------------------------------------------------------- reproducibility and schema
def test_generator_is_deterministic(tmp_path: Path):
    generate(tmp_path)
    for name in OUTPUTS:
        assert (tmp_path / name).read_bytes() == (DEMO_DIR / name).read_bytes(), f"{name} differs from a fresh run"


def test_region_loads_and_validates(region):
    assert region.name == "示例市（虚构）" and region.fictional
    assert region.network_path == DEMO_DIR / "network.osm.gz" and region.network_path.is_file()
    for layer in (region.counties, region.subdistricts, region.pharmacies):
        assert layer.crs == "EPSG:4326"
    for column in (*SERVICE_COLUMNS, "chain", "info_system_ready", "cross_region_settlement", "risk_flag"):
        assert pd.api.types.is_bool_dtype(region.pharmacies[column]), column
    assert pd.api.types.is_integer_dtype(region.subdistricts["population"])
    assert region.pharmacies["pharmacy_id"].is_unique and region.pharmacies["address"].is_unique
    # coordinates stored with 7 decimals, inside China around the fictional city
    xy = shapely.get_coordinates(region.pharmacies.geometry)
    assert np.allclose(xy, np.round(xy, 7), rtol=0, atol=1e-12)
    assert (abs(xy[:, 0] - 111.6) < 0.2).all() and (abs(xy[:, 1] - 27.3) < 0.1).all()


def test_sizes_codes_and_names(region):
    counties, subs, ph = region.counties, region.subdistricts, region.pharmacies
    assert len(counties) >= 3 and len(subs) >= 15 and len(ph) >= 150
    assert counties["code"].str.fullmatch(r"9901\d\d").all()
    assert all(code.startswith(county) and len(code) == 9 for code, county in zip(subs["code"], subs["county_code"]))
    streets, towns = subs[subs["kind"] == "street"], subs[subs["kind"] == "town"]
    assert streets["name"].str.endswith("街道").all() and towns["name"].str.endswith(("镇", "乡")).all()
    assert streets["population"].between(30_000, 120_000).all()
    assert towns["population"].between(8_000, 40_000).all()
    assert ph["personal_account"].mean() > 0.95 and 0 < ph["dual_channel"].sum() <= 0.03 * len(ph)
    assert 0 < (~ph["info_system_ready"]).sum() < 0.1 * len(ph)


def test_subdistricts_tile_counties_and_counties_tile_city(region):
    subs, counties = region.subdistricts.to_crs(METRIC), region.counties.to_crs(METRIC)
    for county in counties.itertuples():
        union = shapely.union_all(subs.loc[subs["county_code"] == county.code].geometry.values)
        assert union.symmetric_difference(county.geometry).area < 50, county.name  # m², float noise
    for layer in (subs, counties):
        geoms = layer.geometry.values
        tree = shapely.STRtree(geoms)
        left, right = tree.query(geoms, predicate="intersects")
        pairs = left < right
        overlap = shapely.area(shapely.intersection(geoms[left[pairs]], geoms[right[pairs]])).sum()
        assert overlap < 50


# ---------------------------------------------------------------------- planted situations
def test_r1_only_the_planted_street_lacks_chronic_disease(joined, region):
    code = PLANTED["r1_no_chronic_street"]["code"]
    streets = region.subdistricts.loc[region.subdistricts["kind"] == "street", "code"]
    for street in streets:
        here = joined[joined["sd_code"] == street]
        assert len(here) > 0, street
        if street == code:
            assert not here["chronic_disease"].any() and here["outpatient_pooling"].any()
        else:
            assert here["outpatient_pooling"].any() and here["chronic_disease"].any(), street
            assert (here["outpatient_pooling"] & here["chronic_disease"]).any(), street


def test_r2_only_the_planted_county_lacks_dual_channel(joined, region):
    code = PLANTED["r2_no_dual_channel_county"]["code"]
    dual = joined.groupby("county_code")["dual_channel"].sum()
    for county in region.counties["code"]:
        assert (dual.get(county, 0) == 0) == (county == code), county


def test_saturated_core_has_the_most_pharmacies_per_resident(joined, region):
    code = PLANTED["saturated_core_street"]["code"]
    counts = joined.groupby("sd_code").size().reindex(region.subdistricts["code"], fill_value=0)
    per_10k = counts / region.subdistricts.set_index("code")["population"] * 10_000
    assert per_10k.idxmax() == code
    assert per_10k[code] >= 2 * per_10k.median()
    core = joined[joined["sd_code"] == code].to_crs(METRIC)
    assert 30 <= len(core) <= 45
    assert shapely.convex_hull(shapely.union_all(core.geometry.values)).area < 2.0e6  # m²


def test_blank_town_has_residents_and_no_pharmacy_nearby(region, joined):
    code = PLANTED["blank_town"]["code"]
    town = region.subdistricts.set_index("code").loc[code]
    assert town["kind"] == "town" and town["population"] > 0
    assert not (joined["sd_code"] == code).any()
    polygon = gpd.GeoSeries([town.geometry], crs=region.subdistricts.crs).to_crs(METRIC).iloc[0]
    assert region.pharmacies.to_crs(METRIC).distance(polygon).min() > 1200


def test_fund_status(region):
    counties = region.counties.set_index("code")
    deficit, forecast = PLANTED["fund_deficit_county"]["code"], PLANTED["fund_forecast_county"]["code"]
    assert counties.loc[deficit, "fund_deficit_last_year"]
    assert not counties.loc[forecast, "fund_deficit_last_year"]
    assert counties.loc[forecast, ["fund_deficit_forecast", "fund_warning_letter"]].any()
    flags = counties[["fund_deficit_last_year", "fund_deficit_forecast", "fund_warning_letter"]].any(axis=1)
    assert sorted(flags[flags].index) == sorted({deficit, forecast})


def test_cutoff_neighbourhood_is_documented_and_sits_across_from_pharmacies(region):
    """Straight-line facts only; the walking time is the access engine's test."""
    cut = PLANTED["cutoff_neighbourhood"]
    assert CUTOFF_POLYGON.is_valid and CUTOFF_POLYGON.contains(shapely.Point(CUTOFF_POINT))
    sub = region.subdistricts.set_index("code").loc[cut["subdistrict_code"]]
    assert sub["kind"] == "street" and sub.geometry.contains(CUTOFF_POLYGON)
    ph = region.pharmacies.set_index("pharmacy_id").to_crs(METRIC)
    point = gpd.GeoSeries([shapely.Point(CUTOFF_POINT)], crs="EPSG:4326").to_crs(METRIC).iloc[0]
    across = [p["pharmacy_id"] for p in cut["across_river_pharmacies"]]
    assert len(across) >= 2
    assert ph.loc[across].distance(point).between(300, 500).all()
    # nearest pharmacies are across the river; on its own bank nothing within 1,200 m straight line
    nearest = ph.distance(point).sort_values()
    assert set(nearest.index[: len(across)]) == set(across)
    assert cut["nearest_own_bank_pharmacy"]["distance_m"] > 1200
    assert ph.distance(point).drop(across).min() > 500
    # the nearest walkable bridges are far away
    assert min(b["distance_to_cutoff_m"] for b in cut["walkable_river_bridges"]) > 2000


def test_readme_names_the_planted_situations():
    readme = (DEMO_DIR / "README.md").read_text(encoding="utf-8")
    for key in ("r1_no_chronic_street", "r2_no_dual_channel_county", "saturated_core_street", "blank_town",
                "fund_deficit_county", "fund_forecast_county"):
        assert PLANTED[key]["code"] in readme and PLANTED[key]["name"] in readme, key
    cut = PLANTED["cutoff_neighbourhood"]
    assert cut["name"] in readme and f"{cut['point'][0]}" in readme and f"{cut['point'][1]}" in readme
    for p in cut["across_river_pharmacies"]:
        assert p["pharmacy_id"] in readme


# ---------------------------------------------------------------------- the OSM network itself
def test_network_size_and_connectivity(osm):
    _, _, ways = osm
    walk = [refs for refs, tags in ways if walkable(tags)]
    assert {tags["highway"] for _, tags in ways if walkable(tags)} == WALKABLE
    pairs = {(min(a, b), max(a, b)) for refs in walk for a, b in zip(refs[:-1], refs[1:])}
    ids = np.array(sorted({n for refs in walk for n in refs}))
    index = {n: i for i, n in enumerate(ids)}
    a = np.array([index[p] for p, _ in pairs])
    b = np.array([index[q] for _, q in pairs])
    degree = np.bincount(np.r_[a, b], minlength=len(ids))
    assert 20_000 <= int((degree != 2).sum()) <= 35_000  # survives osmnx-style simplification
    assert (degree == 1).sum() > 2_000  # dead ends: cul-de-sacs, alleys, lanes
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(len(ids), len(ids)))
    assert connected_components(graph, directed=False)[0] == 1
    assert (DEMO_DIR / "network.osm.gz").stat().st_size < 3_000_000
    names = {tags.get("name", "") for _, tags in ways if tags.get("highway") in ("primary", "secondary")}
    assert {"人民路", "解放大道"} <= names


def test_river_is_crossed_only_by_few_bridges(osm):
    nodes, _, ways = osm
    rivers = [way_line(nodes, refs) for refs, tags in ways if tags.get("waterway") == "river"]
    assert len(rivers) == 1
    river = rivers[0]
    crossing = [(tags, way_line(nodes, refs)) for refs, tags in ways if walkable(tags)
                and way_line(nodes, refs).intersects(river)]
    assert all(tags.get("bridge") == "yes" for tags, _ in crossing)
    assert len(crossing) == 5  # 3 urban bridges, 2 rural ones
    walkable_bridges = [tags for _, tags in ways if walkable(tags) and tags.get("bridge") == "yes"]
    assert len(walkable_bridges) == 6  # and the footbridge over the rail


def test_rail_is_crossed_only_at_few_places(osm):
    nodes, node_tags, ways = osm
    rails = [(refs, way_line(nodes, refs)) for refs, tags in ways if tags.get("railway") == "rail"]
    assert len(rails) == 1
    refs, rail = rails[0]
    crossing = [tags for r, tags in ways if walkable(tags) and way_line(nodes, r).intersects(rail)]
    assert 2 <= len(crossing) <= 3
    level = [n for n in refs if node_tags.get(n, {}).get("railway") == "level_crossing"]
    assert len(level) == 2


def test_walking_filter_traps_are_present(osm):
    nodes, _, ways = osm
    river = next(way_line(nodes, r) for r, t in ways if t.get("waterway") == "river")
    walk_nodes = {n for r, t in ways if walkable(t) for n in r}
    motorways = [(r, t) for r, t in ways if t.get("highway") == "motorway"]
    assert len(motorways) == 1 and motorways[0][1].get("bridge") == "yes"
    assert way_line(nodes, motorways[0][0]).intersects(river)
    ramps = [r for r, t in ways if t.get("highway") == "motorway_link"]
    assert len(ramps) == 2 and all(r[-1] in walk_nodes for r in ramps)  # the trap reaches both banks
    private = [(r, t) for r, t in ways if t.get("highway") == "service" and t.get("access") == "private"]
    assert len(private) == 1 and way_line(nodes, private[0][0]).intersects(river)
    assert len([t for _, t in ways if t.get("foot") == "no" and "highway" in t]) == 1
    traps = PLANTED["traps"]
    assert ways[traps["motorway_way_id"] - 1][1]["highway"] == "motorway"
    assert ways[traps["private_service_bridge_way_id"] - 1][1]["access"] == "private"
    assert ways[traps["foot_no_way_id"] - 1][1]["foot"] == "no"


def test_pharmacies_stand_on_walkable_streets(osm, region):
    nodes, _, ways = osm
    lines = gpd.GeoSeries([way_line(nodes, r) for r, t in ways if walkable(t)], crs="EPSG:4326").to_crs(METRIC)
    tree = shapely.STRtree(lines.values)
    points = region.pharmacies.to_crs(METRIC).geometry.values
    _, distance = tree.query_nearest(points, return_distance=True)
    assert distance.max() <= 30
