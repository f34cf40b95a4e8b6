"""Service circles: every cell holds the walk time of the place at its centre, by the rule the point query
(the designation check's click, residents, candidates) uses; checked against networkx and a brute-force
tiered snap, and against the point query itself on a real extract."""

from __future__ import annotations

import warnings

import networkx as nx
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import nearest_site_distances

from planning.access import service_access
from planning.errors import ParameterError
from planning.isochrones import RasterGrid, points_mask, service_circles, site_circle, walk_surface
from planning.network import SMALL_PIECE_M, Snap, WalkNetwork, load_network
from planning.synthetic import street_grid

CELL = 20.0


def cell_centres(surface) -> np.ndarray:
    grid = surface.grid
    flat = np.arange(grid.n_rows * grid.n_cols)
    return np.column_stack([grid.x0 + (flat % grid.n_cols + 0.5) * grid.cell_m,
                            grid.y_top - (flat // grid.n_cols + 0.5) * grid.cell_m])


def cell_snap_slack(cell_m: float) -> float:
    """How much farther than the nearest street the cell snap may take a cell centre's street, metres
    (documented in :meth:`WalkNetwork.snap_cells`: half the sample spacing plus one cell diagonal)."""
    return cell_m / 4 + np.sqrt(2) * cell_m


def oracle_place_distances(network: WalkNetwork, sites: Snap, xy: np.ndarray, max_snap_m: float,
                           horizon_m: float, slack_m: float = 1e-9) -> list[set[float]]:
    """Per place, the walk distances (metres) the rule allows, found without the code under test: snap
    classes from networkx pieces (ground / off-ground, large / small piece), the edges of the best class
    within ``max_snap_m`` that are at most ``slack_m`` farther than the nearest (brute force), node
    distances by networkx Dijkstra."""
    graph = nx.Graph()
    graph.add_nodes_from(range(network.n_nodes))
    graph.add_weighted_edges_from(zip(network.edge_u.tolist(), network.edge_v.tolist(), network.edge_length))
    pieces = sorted(nx.connected_components(graph), key=len, reverse=True)
    piece_of = np.zeros(network.n_nodes, dtype=int)
    for i, nodes in enumerate(pieces):
        piece_of[list(nodes)] = i
    street = np.bincount(piece_of[network.edge_u], weights=network.edge_length, minlength=len(pieces))
    small = (street[piece_of[network.edge_u]] < SMALL_PIECE_M) & (piece_of[network.edge_u] != 0)
    tier = network.edge_off_ground.astype(int) * 2 + small
    node_d, _, _ = nearest_site_distances(network, sites, network.snap(np.zeros((0, 2))))
    lines = network.edge_lines
    points = shapely.points(xy)
    distance = shapely.distance(lines[None, :], points[:, None])
    answers = []
    for i in range(len(xy)):
        allowed = set()
        for level in range(4):
            near = np.flatnonzero((tier == level) & (distance[i] <= max_snap_m))
            if len(near) == 0:
                continue
            best = near[distance[i, near] <= distance[i, near].min() + slack_m]
            for e in best:
                t = shapely.line_locate_point(lines[e], points[i])
                length = network.edge_length[e]
                walk = min(node_d[network.edge_u[e]] + t, node_d[network.edge_v[e]] + length - t)
                for s in np.flatnonzero(sites.on_network & (sites.edge == e)):
                    walk = min(walk, abs(t - sites.offset_m[s]) + sites.access_m[s])
                total = distance[i, e] + walk
                allowed.add(total if total <= horizon_m else np.inf)
            break
        answers.append(allowed or {np.inf})
    return answers


@settings(max_examples=12, deadline=None)
@given(side=st.integers(3, 9), n_sites=st.integers(1, 3), seed=st.integers(0, 10_000),
       cell=st.sampled_from([10.0, 20.0, 25.0]), max_snap=st.sampled_from([40.0, 120.0, 250.0]))
def test_each_cell_holds_the_walk_time_of_its_centre(side, n_sites, seed, cell, max_snap):
    network = street_grid(side, spacing_m=90, jitter_m=25, drop_fraction=0.2, seed=seed)
    rng = np.random.default_rng(seed)
    lo, hi = network.node_xy.min(axis=0), network.node_xy.max(axis=0)
    sites = network.snap(rng.uniform(lo, hi, (n_sites, 2)), max_snap_m=1e6)
    access = service_access(network, sites, max_minutes=8)
    surface = walk_surface(access, cell_m=cell, max_snap_m=max_snap)
    centres = cell_centres(surface)
    chosen = rng.choice(len(centres), size=min(300, len(centres)), replace=False)
    expected = oracle_place_distances(network, sites, centres[chosen], max_snap, access.max_distance_m,
                                      cell_snap_slack(cell))
    got = surface.distance_m.ravel()[chosen]
    for value, allowed in zip(got, expected):
        assert any(value == a if np.isinf(a) else abs(value - a) <= 1e-3 for a in allowed), (value, allowed)


def test_off_ground_and_stranded_streets_follow_the_snap_classes():
    # A ground street, a tunnel 30 m beside it in plan view, and a stranded 60 m footway 90 m away.
    nodes = np.array([[0, 0], [1000, 0], [0, 30], [1000, 30], [400, 120], [460, 120]], dtype=float)
    network = WalkNetwork.from_arrays(nodes, [0, 2, 4], [1, 3, 5], crs="EPSG:32650",
                                      edge_off_ground=np.array([False, True, False]))
    sites = network.snap(np.array([[0.0, 0.0]]))
    access = service_access(network, sites, max_minutes=20)
    surface = walk_surface(access, cell_m=10.0, max_snap_m=250.0)
    centres = cell_centres(surface)
    chosen = np.random.default_rng(0).choice(len(centres), 400, replace=False)
    expected = oracle_place_distances(network, sites, centres[chosen], 250.0, access.max_distance_m,
                                      cell_snap_slack(10.0))
    got = surface.distance_m.ravel()[chosen]
    for value, allowed in zip(got, expected):
        assert any(value == a if np.isinf(a) else abs(value - a) <= 1e-3 for a in allowed), (value, allowed)
    # Standing right over the tunnel, the walk starts on the ground street 30 m away, not in the tunnel.
    grid = surface.grid
    rows, cols = grid.cells(np.array([[505.0, 31.0]]))
    x, y = grid.x0 + (cols[0] + 0.5) * 10.0, grid.y_top - (rows[0] + 0.5) * 10.0
    assert surface.at(np.array([[505.0, 31.0]]))[0] == pytest.approx(y + x, abs=1e-3)


@pytest.fixture(scope="module")
def nanjing_case():
    from conftest import OSM_DIR

    path = OSM_DIR / "nanjing_xuanwu.osm"
    if not path.is_file():
        pytest.skip(f"real OSM extract {path} is absent (../shared/data/osm beside the repo)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        network = load_network(path)
    rng = np.random.default_rng(3)
    edges = rng.integers(0, network.n_edges, 15)
    spots = shapely.line_interpolate_point(network.edge_lines[edges], rng.uniform(0, 1, 15), normalized=True)
    sites = network.snap(shapely.get_coordinates(spots) + rng.normal(0, 20, (15, 2)))
    access = service_access(network, sites, max_minutes=15)
    surface = walk_surface(access, cell_m=CELL)
    return network, access, surface


@pytest.mark.osm
def test_cells_equal_the_point_query_at_their_centres_on_a_real_extract(nanjing_case):
    """With tunnels, bridges, levels and stranded pieces: a cell's street is the point snap's street or one
    at most the documented slack farther, and the cell value is the point query of the cell's snap."""
    network, access, surface = nanjing_case
    grid = surface.grid
    cells, cell_snap = network.snap_cells(grid.x0, grid.y_top, grid.n_rows, grid.n_cols, grid.cell_m,
                                          max_snap_m=surface.max_snap_m)
    centres = cell_centres(surface)
    snap = network.snap(centres, max_snap_m=surface.max_snap_m)
    assert np.array_equal(cells, np.flatnonzero(snap.on_network))
    extra = cell_snap.access_m - snap.access_m[cells]
    assert extra.min() >= -1e-6 and extra.max() <= cell_snap_slack(grid.cell_m)
    assert (extra <= 1e-6).mean() >= 0.98, (extra <= 1e-6).mean()
    value, _ = access.point_distance(cell_snap)
    np.testing.assert_array_equal(surface.distance_m.ravel()[cells], value.astype(np.float32))
    point, _ = access.point_distance(snap)
    same = np.isclose(surface.distance_m.ravel(), np.where(np.isnan(point), np.inf, point), atol=1e-3)
    assert same.mean() >= 0.98, same.mean()


@pytest.mark.osm
def test_budgets_nest_exactly_and_single_site_lies_inside(nanjing_case):
    network, access, surface = nanjing_case
    p5, p10, p15 = (surface.polygon(m) for m in (5, 10, 15))
    assert p5.difference(p10).area == 0 and p10.difference(p15).area == 0
    assert p5.area < p10.area < p15.area
    one = site_circle(network, access.sites.subset(np.array([0])), 15, cell_m=CELL)
    assert one.difference(p15).area == 0  # grids aligned to the cell; one site never reaches farther than all


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
    assert circle.covers(shapely.Point(500, 45))       # in the water, nearer the south bank: 550 m
    assert not circle.intersects(shapely.Point(500, 75))  # nearer the north bank: 3.5 km on foot
    assert not circle.intersects(shapely.Point(0, 120))  # 120 m across the water, 4 km on foot


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
    with pytest.raises(ParameterError, match="max_snap_m"):
        walk_surface(access, max_snap_m=0)
    with pytest.raises(ParameterError, match="horizon"):
        walk_surface(access).polygon(20)
    unbounded = service_access(network, network.snap(network.node_xy[:1]), max_minutes=None)
    with pytest.raises(ParameterError, match="finite"):
        walk_surface(unbounded)


@settings(max_examples=25, deadline=None)
@given(side=st.integers(4, 14), n_sites=st.integers(1, 4), seed=st.integers(0, 10_000),
       cell=st.sampled_from([10.0, 20.0, 25.0]))
def test_property_nesting_and_cut_back_on_random_grids(side, n_sites, seed, cell):
    network = street_grid(side, spacing_m=90, jitter_m=25, drop_fraction=0.2, seed=seed)
    rng = np.random.default_rng(seed)
    lo, hi = network.node_xy.min(axis=0), network.node_xy.max(axis=0)
    sites = network.snap(rng.uniform(lo, hi, (n_sites, 2)), max_snap_m=1e6)
    access = service_access(network, sites, max_minutes=10)
    surface = walk_surface(access, cell_m=cell)
    previous = shapely.MultiPolygon()
    for minutes in (2, 5, 10):
        polygon = surface.polygon(minutes)
        assert polygon.is_valid
        assert previous.difference(polygon).area == 0
        previous = polygon
    # A surface cut back to 5 minutes is the surface of a 5-minute search on the same grid.
    small = service_access(network, sites, max_minutes=5)
    direct = walk_surface(small, cell_m=cell, grid=surface.grid)
    cut = surface.within(small.max_distance_m)
    assert np.array_equal(cut.distance_m, direct.distance_m)


def test_cells_in_small_chunks_give_the_same_snap_and_surface(monkeypatch):
    """The cell snap and the surface work through their cells in chunks (bounded memory on large grids):
    chunks of a few dozen cells give exactly what one chunk gives."""
    import planning.isochrones as isochrones
    import planning.network as network_module

    def build():
        network = street_grid(12, spacing_m=70, jitter_m=20, drop_fraction=0.15, seed=4)
        sites = network.snap(network.node_xy[[5, 70, 131]])
        access = service_access(network, sites, max_minutes=6)
        surface = walk_surface(access, cell_m=CELL, max_snap_m=120.0)
        grid = surface.grid
        return network.snap_cells(grid.x0, grid.y_top, grid.n_rows, grid.n_cols, grid.cell_m, max_snap_m=120.0), \
            surface

    (cells, snap), surface = build()
    assert len(cells) > 1000
    monkeypatch.setattr(network_module, "_CELL_CHUNK", 97)
    monkeypatch.setattr(isochrones, "_CELL_CHUNK", 89)
    (cells_small, snap_small), surface_small = build()
    np.testing.assert_array_equal(cells_small, cells)
    for name in ("edge", "offset_m", "access_m", "on_network"):
        np.testing.assert_array_equal(getattr(snap_small, name), getattr(snap, name))
    np.testing.assert_array_equal(surface_small.distance_m, surface.distance_m)


@settings(max_examples=80, deadline=None)
@given(st.sampled_from([5.0, 7.5, 20.0]), st.floats(0, 130), st.integers(1, 40), st.integers(1, 40),
       st.integers(0, 2**32 - 1))
def test_points_mask_is_every_cell_within_the_disk_of_a_point_cell(cell_m, width_m, n_rows, n_cols, seed):
    """Oracle: per point cell, every cell whose offset (rows, columns) has hypot * cell_m <= width_m,
    marked one by one (points off the grid mark nothing)."""
    rng = np.random.default_rng(seed)
    grid = RasterGrid(0.0, 1_000.0, n_rows, n_cols, cell_m)
    xy = np.column_stack([rng.uniform(-40, n_cols * cell_m + 40, 25), rng.uniform(1_000 - n_rows * cell_m - 40, 1_040, 25)])
    mask, transform = points_mask(xy, cell_m=cell_m, width_m=width_m, grid=grid)
    oracle = np.zeros(grid.shape, dtype=bool)
    reach = int(width_m // cell_m)
    for row, col in zip(*grid.cells(xy)):
        if row < 0:
            continue
        for dr in range(-reach, reach + 1):
            for dc in range(-reach, reach + 1):
                r, c = row + dr, col + dc
                if np.hypot(dc, dr) * cell_m <= width_m and 0 <= r < n_rows and 0 <= c < n_cols:
                    oracle[r, c] = True
    assert transform == grid.transform and np.array_equal(mask, oracle)
