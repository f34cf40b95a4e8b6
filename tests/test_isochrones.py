"""Service-circle polygons against an exact vector reference of the reached street pieces."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.ops import substring

from planning.access import service_access
from planning.errors import ParameterError
from planning.isochrones import service_circles, site_circle, walk_surface
from planning.network import WalkNetwork, load_network
from planning.synthetic import street_grid

CELL, WIDTH = 20.0, 50.0
OUTER_SLACK = WIDTH + math.sqrt(2) * CELL  # documented outer bound: width + one cell diagonal


def reached_pieces(access, budget_m: float) -> shapely.MultiLineString:
    """Exactly the network points within ``budget_m`` of a site, as line pieces (network CRS)."""
    net = access.network
    d = access.node_distance_m
    sites = access.sites
    pieces = []
    for e in range(net.n_edges):
        length = net.edge_length[e]
        intervals = []
        if d[net.edge_u[e]] <= budget_m:
            intervals.append((0.0, min(length, budget_m - d[net.edge_u[e]])))
        if d[net.edge_v[e]] <= budget_m:
            intervals.append((max(0.0, length - (budget_m - d[net.edge_v[e]])), length))
        for s in np.flatnonzero(sites.on_network & (sites.edge == e)):
            spare = budget_m - sites.access_m[s]
            if spare >= 0:
                intervals.append((max(0.0, sites.offset_m[s] - spare), min(length, sites.offset_m[s] + spare)))
        for start, end in intervals:
            piece = substring(net.edge_lines[e], start, end)
            pieces.append(piece if piece.geom_type == "LineString" else shapely.LineString([piece, piece]))
    return shapely.MultiLineString(pieces)


def random_points_on(lines, k: int, rng) -> np.ndarray:
    parts = np.asarray(shapely.get_parts(lines))
    parts = parts[shapely.length(parts) > 0]
    weights = shapely.length(parts) / shapely.length(parts).sum()
    chosen = rng.choice(len(parts), size=k, p=weights)
    return shapely.line_interpolate_point(parts[chosen], rng.uniform(0, 1, k), normalized=True)


@pytest.fixture(scope="module")
def nanjing_case(request):
    from conftest import OSM_DIR

    path = OSM_DIR / "nanjing_xuanwu.osm"
    if not path.is_file():
        pytest.skip(f"real OSM extract {path} is absent (../shared/data/osm beside the repo)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        network = load_network(path, use_cache=False)
    rng = np.random.default_rng(3)
    edges = rng.integers(0, network.n_edges, 15)
    spots = shapely.line_interpolate_point(network.edge_lines[edges], rng.uniform(0, 1, 15), normalized=True)
    sites = network.snap(shapely.get_coordinates(spots) + rng.normal(0, 20, (15, 2)))
    access = service_access(network, sites, max_minutes=15)
    surface = walk_surface(access, cell_m=CELL, access_width_m=WIDTH)
    return network, access, surface


@pytest.mark.osm
@pytest.mark.parametrize("minutes", [5, 10, 15])
def test_reached_points_inside_far_points_outside(nanjing_case, minutes):
    network, access, surface = nanjing_case
    polygon = surface.polygon(minutes)
    assert polygon.is_valid and not polygon.is_empty
    budget = minutes * access.speed_m_per_min
    reached = reached_pieces(access, budget)
    rng = np.random.default_rng(minutes)
    inside = random_points_on(reached, 3000, rng)
    assert shapely.covers(polygon, inside).all()
    everywhere = random_points_on(shapely.MultiLineString(list(network.edge_lines)), 6000, rng)
    far = everywhere[shapely.distance(everywhere, reached) > OUTER_SLACK + 1e-6]
    assert len(far) > 100
    assert not shapely.intersects(polygon, far).any()


@pytest.mark.osm
def test_budgets_nest_exactly_and_single_site_lies_inside(nanjing_case):
    network, access, surface = nanjing_case
    p5, p10, p15 = (surface.polygon(m) for m in (5, 10, 15))
    assert p5.difference(p10).area == 0 and p10.difference(p15).area == 0
    assert p5.area < p10.area < p15.area
    one = site_circle(network, access.sites.subset(np.array([0])), 15, cell_m=CELL, access_width_m=WIDTH)
    assert one.difference(p15).area == 0  # same global grid; one site never reaches farther than all


def test_river_is_not_swallowed():
    # Two parallel streets 120 m apart (a river between) joined only by a bridge 2 km away.
    xs = np.arange(0, 2001, 100.0)
    south = np.column_stack([xs, np.zeros_like(xs)])
    north = np.column_stack([xs, np.full_like(xs, 120.0)])
    nodes = np.vstack([south, north])
    k = len(xs)
    u = [*range(k - 1), *range(k, 2 * k - 1), k - 1]
    v = [*range(1, k), *range(k + 1, 2 * k), 2 * k - 1]
    network = WalkNetwork.from_arrays(nodes, u, v, crs="EPSG:32650")
    site = network.snap(np.array([[0.0, -5.0]]))
    circle = site_circle(network, site, 15)
    assert circle.covers(shapely.Point(1000, 0))       # 1,005 m along the south bank: reached
    assert not circle.intersects(shapely.Point(0, 120))  # 120 m across the water, 4 km on foot
    hull = shapely.convex_hull(shapely.MultiPoint([[0, 0], [1000, 0]]).buffer(50))
    assert hull.area < circle.area * 1.5  # sanity: the polygon is a band along the bank


def test_service_circles_table_is_wgs84():
    network = street_grid(30, spacing_m=80, seed=1)
    sites = network.snap(network.node_xy[[100, 500]])
    access = service_access(network, sites, max_minutes=15)
    table = service_circles(access, (5, 10, 15))
    assert table.crs.to_epsg() == 4326
    assert list(table["minutes"]) == [5, 10, 15]
    assert table["area_km2"].is_monotonic_increasing


def test_parameters_are_checked():
    network = street_grid(10)
    access = service_access(network, network.snap(network.node_xy[:1]), max_minutes=15)
    with pytest.raises(ParameterError, match="access_width_m"):
        walk_surface(access, cell_m=50, access_width_m=50)
    with pytest.raises(ParameterError, match="horizon"):
        walk_surface(access).polygon(20)
    unbounded = service_access(network, network.snap(network.node_xy[:1]), max_minutes=None)
    with pytest.raises(ParameterError, match="finite"):
        walk_surface(unbounded)


@settings(max_examples=25, deadline=None)
@given(side=st.integers(4, 14), n_sites=st.integers(1, 4), seed=st.integers(0, 10_000),
       cell=st.sampled_from([10.0, 20.0, 25.0]))
def test_property_nesting_and_containment_on_random_grids(side, n_sites, seed, cell):
    network = street_grid(side, spacing_m=90, jitter_m=25, drop_fraction=0.2, seed=seed)
    rng = np.random.default_rng(seed)
    lo, hi = network.node_xy.min(axis=0), network.node_xy.max(axis=0)
    sites = network.snap(rng.uniform(lo, hi, (n_sites, 2)), max_snap_m=1e6)
    access = service_access(network, sites, max_minutes=10)
    surface = walk_surface(access, cell_m=cell, access_width_m=WIDTH)
    previous = shapely.MultiPolygon()
    for minutes in (2, 5, 10):
        polygon = surface.polygon(minutes)
        assert polygon.is_valid
        assert previous.difference(polygon).area == 0
        reached = reached_pieces(access, minutes * access.speed_m_per_min)
        if not reached.is_empty and shapely.length(reached) > 0:
            assert shapely.covers(polygon, random_points_on(reached, 200, rng)).all()
        previous = polygon
