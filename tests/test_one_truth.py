"""One truth on real streets: what the map draws (service circles, zones B1 and R3) is what the point query
(the designation check's click) answers, at random places over the region and near the streets.

A place is compared when the 3 x 3 cells around its cell are all in or all out of the drawn polygon
(:func:`planning.isochrones.settled_cells`): every place farther than one cell diagonal from the polygon's
edge is, so this compares at least those places. At >= 99.9 % of them the drawn answer must equal the
point's, for every service and for 5, 10 and 15 minutes: 20,000 uniform places over the region and 20,000
within 60 m of a street, on the demo and on both real extracts.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from planning.access import service_access
from planning.assess import assess
from planning.isochrones import settled_cells, walk_surface
from planning.model import Service
from planning.network import load_network
from planning.screening import read_places

N_UNIFORM = N_NEAR = 20_000
NEAR_M = 60.0
BUDGETS = (5.0, 10.0, 15.0)
AGREEMENT = 0.999


def random_places(network, bounds, seed: int) -> np.ndarray:
    """``N_UNIFORM`` places uniform over ``bounds`` (metres) and ``N_NEAR`` within ``NEAR_M`` of a street
    (a uniform street point moved uniformly within a disk), network CRS."""
    rng = np.random.default_rng(seed)
    uniform = rng.uniform(bounds[:2], bounds[2:], (N_UNIFORM, 2))
    edge = rng.choice(network.n_edges, N_NEAR, p=network.edge_length / network.edge_length.sum())
    on_street = network.points_at(edge, rng.uniform(0, 1, N_NEAR) * network.edge_length[edge])
    angle, radius = rng.uniform(0, 2 * np.pi, N_NEAR), NEAR_M * np.sqrt(rng.uniform(0, 1, N_NEAR))
    return np.vstack([uniform, on_street + np.column_stack([np.cos(angle), np.sin(angle)]) * radius[:, None]])


def drawn_at(mask: np.ndarray, grid, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whether each place lies in the mask's cells, and whether its 3 x 3 neighbourhood is settled."""
    rows, cols = grid.cells(xy)
    on = rows >= 0
    inside, settled = np.zeros(len(xy), dtype=bool), np.zeros(len(xy), dtype=bool)
    steady = settled_cells(mask)
    inside[on], settled[on] = mask[rows[on], cols[on]], steady[rows[on], cols[on]]
    return inside, settled


def decisions_at(codes: np.ndarray, grid, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The decision map's verdict at each place (one of rules.VERDICTS, "outside" for code 0) and whether
    its cell's 3 x 3 neighbourhood holds one code only."""
    from scipy import ndimage

    from planning.rules import VERDICTS

    rows, cols = grid.cells(xy)
    on = rows >= 0
    names = np.array(("outside", *VERDICTS), dtype=object)
    verdict = np.full(len(xy), "outside", dtype=object)
    settled = np.zeros(len(xy), dtype=bool)
    same = ndimage.minimum_filter(codes, size=3) == ndimage.maximum_filter(codes, size=3)
    verdict[on], settled[on] = names[codes[rows[on], cols[on]]], same[rows[on], cols[on]]
    return verdict, settled


def assert_same_verdicts(codes: np.ndarray, grid, xy: np.ndarray, reading, what: str) -> None:
    """The decision map's colour equals the click's verdict at >= 99.9 % of the settled places inside
    the region (outside every sub-district the map draws nothing and the click says "not judged")."""
    drawn, settled = decisions_at(codes, grid, xy)
    clicked = np.asarray(reading.verdict, dtype=object)
    inside = drawn != "outside"
    assert_agree(np.where(inside, drawn, "not_judged"), clicked, settled, what)


def assert_agree(drawn: np.ndarray, point: np.ndarray, settled: np.ndarray, what: str) -> None:
    for name, part in (("uniform", slice(0, N_UNIFORM)), ("near streets", slice(N_UNIFORM, None))):
        compared = settled[part]
        assert compared.sum() >= 0.5 * compared.size, (what, name, compared.sum())
        agree = (drawn[part] == point[part])[compared].mean()
        assert agree >= AGREEMENT, f"{what}, {name}: drawn and clicked agree at {agree:.5f}"


@pytest.fixture(scope="module")
def demo_places(demo):
    xy = random_places(demo.network, demo.region.subdistricts.to_crs(demo.network.crs).total_bounds, seed=13)
    return xy, demo.network.snap(xy, max_snap_m=demo.policy.max_snap_m)


@pytest.mark.parametrize("minutes", BUDGETS)
def test_demo_circles_and_zones_are_what_the_click_reads(demo, demo_places, minutes):
    xy, snap = demo_places
    assessment = assess(demo.region, demo.network, demo.policy.with_changes(walk_minutes=minutes), reuse=demo)
    lon, lat = demo.network.to_lonlat.transform(xy[:, 0], xy[:, 1])
    grid = assessment.rasters.grid
    for service in Service:
        reading = read_places(assessment, service, snap, lon, lat)
        drawn, settled = drawn_at(assessment.rasters.circle_mask(service), grid, xy)
        clicked = np.isfinite(reading.walk_minutes) & (reading.walk_minutes <= minutes)
        assert_agree(drawn, clicked, settled, f"{service.value} circle, {minutes:g} min")
        parts = {part.rule_ids: part.mask for part in assessment.zone_parts(service)}
        for rule in ("B1", "R3"):
            mask = parts.get(rule, np.zeros(grid.shape, dtype=bool))
            drawn, settled = drawn_at(mask, grid, xy)
            assert_agree(drawn, reading.flags[rule], settled, f"{service.value} zone {rule}, {minutes:g} min")
        assert_same_verdicts(assessment.decisions(service), grid, xy, reading,
                             f"{service.value} decision map, {minutes:g} min")


@pytest.mark.osm
@pytest.mark.parametrize("extract", ["nanjing_xuanwu", "shenzhen_longgang"])
def test_real_extract_circles_are_what_the_point_query_reads(osm_path, extract):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        network = load_network(osm_path(extract))
    rng = np.random.default_rng(7)
    edges = rng.choice(network.n_edges, 25, p=network.edge_length / network.edge_length.sum())
    sites = network.snap(network.points_at(edges, rng.uniform(0, 1, 25) * network.edge_length[edges])
                         + rng.normal(0, 20, (25, 2)))
    access = service_access(network, sites, max_minutes=max(BUDGETS))
    surface = walk_surface(access)
    lo, hi = network.coords.min(axis=0), network.coords.max(axis=0)
    xy = random_places(network, np.concatenate([lo, hi]), seed=17)
    point, _ = access.point_minutes(network.snap(xy, max_snap_m=surface.max_snap_m))
    for minutes in BUDGETS:
        drawn, settled = drawn_at(surface.mask(minutes), surface.grid, xy)
        clicked = np.isfinite(point) & (point <= minutes)
        assert_agree(drawn, clicked, settled, f"{extract}, {minutes:g} min")
        assert clicked.any()


@pytest.mark.osm
@pytest.mark.parametrize("extract", ["nanjing_xuanwu", "shenzhen_longgang"])
def test_real_extract_zones_are_what_the_click_reads(osm_path, extract, tmp_path):
    """Zones B1 and R3 on real streets: a region built from a pharmacy sheet (25 pharmacies near random
    streets) and one sub-district over the extract, as a bureau's files would give it."""
    import geopandas as gpd
    import shapely
    from cli_text import write_csv

    from planning import ingest
    from planning.policy import load_policy

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        network = load_network(osm_path(extract))
    rng = np.random.default_rng(11)
    edges = rng.choice(network.n_edges, 25, p=network.edge_length / network.edge_length.sum())
    at = network.points_at(edges, rng.uniform(0, 1, 25) * network.edge_length[edges]) + rng.normal(0, 20, (25, 2))
    lon, lat = network.to_lonlat.transform(at[:, 0], at[:, 1])
    sheet = write_csv(tmp_path / "p.csv", ["名称", "地址", "经度", "纬度", "个人账户", "门诊统筹", "门诊慢特病", "双通道"],
                      [[f"药店{i}", f"路{i}号", repr(float(x)), repr(float(y)), "是", "是", "是", "是"]
                       for i, (x, y) in enumerate(zip(lon, lat))])
    lo, hi = network.coords.min(axis=0), network.coords.max(axis=0)
    corners = np.array(network.to_lonlat.transform([lo[0], hi[0]], [lo[1], hi[1]])).T
    gpd.GeoDataFrame({"code": ["990102001"], "name": ["测试街道"], "kind": ["street"], "population": [400_000]},
                     geometry=[shapely.box(*(corners.min(axis=0) - 0.01), *(corners.max(axis=0) + 0.01))],
                     crs="EPSG:4326").to_file(tmp_path / "sd.geojson", driver="GeoJSON")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        region = ingest.build_region(pharmacies=sheet, subdistricts=tmp_path / "sd.geojson", network=network,
                                     crs="wgs84")
    xy = random_places(network, np.concatenate([lo, hi]), seed=19)
    snap = network.snap(xy, max_snap_m=load_policy().max_snap_m)
    place_lon, place_lat = network.to_lonlat.transform(xy[:, 0], xy[:, 1])
    widest = assess(region, network, load_policy().with_changes(walk_minutes=max(BUDGETS)))
    r3_seen = False
    for minutes in BUDGETS:
        assessment = assess(region, network, widest.policy.with_changes(walk_minutes=minutes), reuse=widest)
        grid = assessment.rasters.grid
        for service in (Service.OUTPATIENT_POOLING, Service.CHRONIC_DISEASE):
            reading = read_places(assessment, service, snap, place_lon, place_lat)
            parts = {part.rule_ids: part.mask for part in assessment.zone_parts(service)}
            for rule in ("B1", "R3"):
                mask = parts.get(rule, np.zeros(grid.shape, dtype=bool))
                r3_seen |= rule == "R3" and bool(mask.any())
                drawn, settled = drawn_at(mask, grid, xy)
                assert_agree(drawn, reading.flags[rule], settled, f"{extract} {service.value} zone {rule}, {minutes:g} min")
            assert_same_verdicts(assessment.decisions(service), grid, xy, reading,
                                 f"{extract} {service.value} decision map, {minutes:g} min")
    assert r3_seen  # the sub-district is underserved: the R3 zone is drawn and compared
