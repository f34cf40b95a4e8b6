"""The nearest-segment index (planning.segment_index) against brute force: shapely's distance from each
point to every edge's LineString, on random polylines, a street grid and the real Nanjing extract."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from planning.network import WalkNetwork
from planning.segment_index import SegmentIndex
from planning.synthetic import street_grid


def brute_force(network: WalkNetwork, xy: np.ndarray, allowed: np.ndarray | None = None) -> np.ndarray:
    """Distance (metres) from each point to its nearest allowed edge, one shapely call per point."""
    lines = network.edge_lines if allowed is None else network.edge_lines[allowed]
    return np.array([shapely.distance(shapely.Point(p), lines).min() for p in xy])


def random_polylines(seed: int, n_edges: int, spread_m: float) -> WalkNetwork:
    """Edges of 2-5 vertices scattered in a square (zero-length steps and shared vertices included)."""
    rng = np.random.default_rng(seed)
    nodes = rng.uniform(0, spread_m, (n_edges + 1, 2))
    u = np.arange(n_edges)
    v = np.r_[np.arange(1, n_edges), 0]
    middles = [rng.uniform(0, spread_m, (int(rng.integers(0, 4)), 2)) for _ in range(n_edges)]
    if n_edges > 2:
        middles[1] = np.repeat(nodes[1:2], 2, axis=0)  # a zero-length step
    return WalkNetwork.from_arrays(nodes, u, v, crs="EPSG:32650", edge_coords=[
        np.vstack([nodes[a], m, nodes[b]]) for a, b, m in zip(u, v, middles)])


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n_edges=st.integers(1, 60), spread=st.sampled_from([50.0, 800.0, 20_000.0]),
       max_distance=st.sampled_from([5.0, 120.0, 250.0, np.inf]), bin_m=st.sampled_from([None, 3.0, 75.0]))
def test_nearest_equals_brute_force(seed, n_edges, spread, max_distance, bin_m):
    network = random_polylines(seed, n_edges, spread)
    index = SegmentIndex.build(network.coords, network.coord_start, bin_m=bin_m)
    rng = np.random.default_rng(seed + 1)
    xy = np.vstack([rng.uniform(-spread, 2 * spread, (150, 2)), network.coords[:5]])
    found = index.nearest(xy, max_distance)
    want = brute_force(network, xy)
    within = want <= max_distance
    # a point at the radius within rounding of it may go either way; none such is drawn here in practice
    clear = np.abs(want - max_distance) > 1e-6
    assert ((found.segment >= 0) == within)[clear].all()
    hit = found.segment >= 0
    np.testing.assert_allclose(found.distance_m[hit], want[hit], rtol=0, atol=1e-7)
    # the segment returned lies at that distance (position t on it reproduces the distance)
    seg, t = found.segment[hit], found.t[hit]
    on = network.coords[seg] + (network.coords[seg + 1] - network.coords[seg]) * t[:, None]
    np.testing.assert_allclose(np.hypot(*(xy[hit] - on).T), want[hit], atol=1e-7)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), share=st.floats(0.05, 0.9))
def test_allowed_edges_only(seed, share):
    network = random_polylines(seed, 40, 1_000.0)
    rng = np.random.default_rng(seed)
    allowed = rng.random(network.n_edges) < share
    if not allowed.any():
        allowed[0] = True
    xy = rng.uniform(-3_000, 4_000, (120, 2))  # some far beyond the bin rounds (the k-d tree path)
    index = SegmentIndex.build(network.coords, network.coord_start, bin_m=10.0)
    found = index.nearest(xy, edge_ok=allowed)
    assert allowed[index.edge_of(found.segment)].all()
    np.testing.assert_allclose(found.distance_m, brute_force(network, xy, allowed), atol=1e-7)


def test_ties_go_to_the_lowest_edge_and_empty_queries_are_empty():
    network = street_grid(5, jitter_m=0.0, drop_fraction=0.0)
    index = network.segment_index
    node = network.node_xy[12]  # an inner node: four edges at distance 0
    found = index.nearest(node[None, :], 10.0)
    touching = np.flatnonzero((network.edge_u == 12) | (network.edge_v == 12))
    assert found.distance_m[0] == 0.0 and index.edge_of(found.segment)[0] == touching.min()
    empty = index.nearest(np.zeros((0, 2)), 100.0)
    assert len(empty.segment) == 0
    nothing = index.nearest(node[None, :] + 10_000.0, 100.0)
    assert nothing.segment[0] == -1 and nothing.distance_m[0] == np.inf


def test_snap_on_the_real_extract_equals_brute_force(osm_path):
    from planning.network import load_network

    network = load_network(osm_path("nanjing_xuanwu"), use_cache=False)
    rng = np.random.default_rng(7)
    lo, hi = network.node_xy.min(axis=0) - 400, network.node_xy.max(axis=0) + 400
    xy = rng.uniform(lo, hi, (800, 2))
    snap = network.snap(xy, max_snap_m=250)
    # the plain nearest edge where it is of the best snap class; the access walk is its distance
    want = np.array([shapely.distance(shapely.Point(p), network.edge_lines[e]) for p, e in zip(xy, snap.edge)])
    np.testing.assert_allclose(snap.access_m, want, atol=1e-7)
    plain = brute_force(network, xy)
    unmoved = ~(snap.moved_to_ground | snap.moved_off_small_piece)
    np.testing.assert_allclose(snap.access_m[unmoved], plain[unmoved], atol=1e-7)
    assert (snap.access_m >= plain - 1e-9).all()
    # the snapped position lies on the edge, at its offset
    np.testing.assert_allclose(network.points_at(snap.edge, snap.offset_m), snap.snapped_xy, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), neighbours=st.sampled_from([1, 2, 64]),
       max_distance=st.sampled_from([40.0, 600.0, np.inf]))
def test_the_k_d_tree_path_equals_brute_force(seed, neighbours, max_distance):
    """Every point through the tree (a round budget of 0) and few neighbours asked at once (the points
    with more samples within their bound asked again for all): the same answers."""
    import planning.segment_index as module

    network = random_polylines(seed, 30, 1_500.0)
    rng = np.random.default_rng(seed)
    xy = np.vstack([rng.uniform(-2_000, 3_500, (100, 2)), network.coords[:3] + 0.5])
    allowed = rng.random(network.n_edges) < 0.6
    allowed[0] = True
    mp = pytest.MonkeyPatch()
    mp.setattr(module, "_ROUND_BUDGET", 0)
    mp.setattr(module, "_TREE_NEIGHBOURS", neighbours)
    try:
        for edge_ok in (None, allowed):
            index = SegmentIndex.build(network.coords, network.coord_start, bin_m=25.0)
            found = index.nearest(xy, max_distance, edge_ok=edge_ok)
            want = brute_force(network, xy, edge_ok)
            assert ((found.segment >= 0) == (want <= max_distance)).all()
            hit = found.segment >= 0
            np.testing.assert_allclose(found.distance_m[hit], want[hit], atol=1e-7)
    finally:
        mp.undo()
