"""The access engine against networkx Dijkstra with sites and points inserted as nodes (to 1e-6 m)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oracle import nearest_site_distances
from planning.access import service_access
from planning.errors import ParameterError
from planning.network import Snap, WalkNetwork

TOLERANCE_M = 1e-6


def check_against_oracle(network: WalkNetwork, sites: Snap, points: Snap, max_minutes=None, speed=75.0):
    access = service_access(network, sites, speed_m_per_min=speed, max_minutes=max_minutes)
    node_ref, point_ref, per_site = nearest_site_distances(network, sites, points)
    limit = access.max_distance_m
    node_ref = np.where(node_ref <= limit, node_ref, np.inf)
    finite = np.isfinite(node_ref)
    assert np.array_equal(np.isfinite(access.node_distance_m), finite)
    np.testing.assert_allclose(access.node_distance_m[finite], node_ref[finite], atol=TOLERANCE_M, rtol=0)
    # The reported site is one whose own distance equals the nearest distance (ties allowed).
    for node in np.flatnonzero(finite):
        site = access.node_site[node]
        assert abs(per_site[site][int(node)] - node_ref[node]) <= TOLERANCE_M
    assert (access.node_site[~finite] == -1).all()

    point_d, point_site = access.point_distance(points)
    off = ~points.on_network
    assert np.isnan(point_d[off]).all() and (point_site[off] == -1).all()
    on = points.on_network
    ref = np.where(point_ref[on] <= limit, point_ref[on], np.inf)
    got = point_d[on]
    assert np.array_equal(np.isfinite(got), np.isfinite(ref))
    np.testing.assert_allclose(got[np.isfinite(ref)], ref[np.isfinite(ref)], atol=TOLERANCE_M, rtol=0)
    for i in np.flatnonzero(on & np.isfinite(point_d)):
        assert abs(per_site[point_site[i]][("pt", int(i))] - point_d[i]) <= TOLERANCE_M
    return access


@st.composite
def graphs_with_sites(draw):
    """Random multigraphs (parallel edges, self-loops, bends, zero-length edges, several pieces) and
    random site and point positions on their edges."""
    n = draw(st.integers(2, 25))
    coordinate = st.floats(0, 1000, allow_nan=False, allow_infinity=False)
    node_xy = np.array([[draw(coordinate), draw(coordinate)] for _ in range(n)])
    m = draw(st.integers(1, 45))
    us, vs, lines = [], [], []
    for _ in range(m):
        u, v = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
        bends = [[draw(coordinate), draw(coordinate)] for _ in range(draw(st.integers(0, 2)))]
        if u == v and not bends:
            bends = [[draw(coordinate), draw(coordinate)]]
        us.append(u), vs.append(v)
        lines.append(np.array([node_xy[u], *bends, node_xy[v]]))
    network = WalkNetwork.from_arrays(node_xy, us, vs, crs="EPSG:32650", edge_coords=lines)

    def positions(k):
        edge = np.array([draw(st.integers(0, m - 1)) for _ in range(k)], dtype=np.int64)
        fraction = np.array([draw(st.sampled_from([0.0, 1.0]) | st.floats(0, 1)) for _ in range(k)])
        offset = fraction * network.edge_length[edge]
        access = np.array([draw(st.sampled_from([0.0]) | st.floats(0, 80)) for _ in range(k)])
        on = np.array([draw(st.booleans()) or i == 0 for i in range(k)])
        return Snap(edge=edge, offset_m=offset, access_m=access, snapped_xy=np.zeros((k, 2)),
                    on_network=on, max_snap_m=250.0)

    sites = positions(draw(st.integers(1, 6)))
    points = positions(draw(st.integers(1, 12)))
    max_minutes = draw(st.sampled_from([None, 3.0, 10.0]))
    return network, sites, points, max_minutes


@settings(max_examples=150, deadline=None)
@given(graphs_with_sites())
def test_random_graphs_match_networkx(case):
    network, sites, points, max_minutes = case
    check_against_oracle(network, sites, points, max_minutes=max_minutes)


def points_near_edges(network: WalkNetwork, k: int, rng) -> np.ndarray:
    """k points (metres) scattered up to 200 m around random positions on random edges; some end off network."""
    import shapely

    edges = rng.integers(0, network.n_edges, k)
    along = shapely.line_interpolate_point(network.edge_lines[edges], rng.uniform(0, 1, k), normalized=True)
    return shapely.get_coordinates(along) + rng.normal(0, 70, size=(k, 2))


@pytest.mark.osm
@pytest.mark.parametrize("extract", ["nanjing_xuanwu", "shenzhen_longgang"])
def test_real_extracts_match_networkx(osm_path, extract):
    from planning.network import load_network

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        network = load_network(osm_path(extract), use_cache=False)
    rng = np.random.default_rng(7)
    sites = network.snap(points_near_edges(network, 40, rng), max_snap_m=150)
    points = network.snap(points_near_edges(network, 300, rng), max_snap_m=150)
    assert sites.on_network.sum() >= 30 and points.on_network.sum() >= 200
    access = check_against_oracle(network, sites, points, max_minutes=15)
    assert np.isfinite(access.node_distance_m).sum() > network.n_nodes // 4
    check_against_oracle(network, sites, points, max_minutes=None)


def test_site_exactly_at_a_node_and_between_two_sites_on_one_edge():
    # 0 --- 1000 m --- 1 ; sites at 100 m and 900 m on the same edge, a point at 500 m.
    network = WalkNetwork.from_arrays([[0, 0], [1000, 0], [1000, 500]], [0, 1], [1, 2], crs="EPSG:32650")
    sites = network.snap(np.array([[100.0, 10.0], [900.0, 0.0], [1000.0, 500.0]]))
    points = network.snap(np.array([[500.0, 0.0], [1000.0, 250.0]]))
    access = service_access(network, sites, max_minutes=None)
    np.testing.assert_allclose(access.node_distance_m, [110.0, 100.0, 0.0])
    d, s = access.point_distance(points)
    np.testing.assert_allclose(d, [400.0, 250.0])
    assert s[0] == 1 and s[1] in (1, 2)


def test_off_network_sites_are_listed_not_used():
    network = WalkNetwork.from_arrays([[0, 0], [1000, 0]], [0], [1], crs="EPSG:32650")
    sites = network.snap(np.array([[0.0, 5000.0], [1000.0, 0.0]]), max_snap_m=250)
    assert sites.on_network.tolist() == [False, True]
    assert sites.access_m[0] == pytest.approx(5000.0)
    access = service_access(network, sites, max_minutes=None)
    assert access.used_sites.tolist() == [False, True]
    assert set(access.node_site.tolist()) == {1}


def test_bad_parameters_are_named():
    network = WalkNetwork.from_arrays([[0, 0], [1000, 0]], [0], [1], crs="EPSG:32650")
    sites = network.snap(np.array([[0.0, 0.0]]))
    with pytest.raises(ParameterError, match="speed_m_per_min"):
        service_access(network, sites, speed_m_per_min=0)
    with pytest.raises(ParameterError, match="max_minutes"):
        service_access(network, sites, max_minutes=-1)
