"""Passage from OSM tags: locked and open gates, walls, tunnels, bridges, stranded footways; snapping
prefers ground streets on the connected city; to_networkx keys. Walk times against networkx."""

from __future__ import annotations

import warnings

import networkx as nx
import numpy as np
import pytest

from oracle import nearest_site_distances
from planning.access import service_access
from planning.network import is_off_ground, load_network, node_blocks_passage, walk_verdict

# A 0.001 degree step is about 94 m east-west and 111 m north-south at 32 N.
PASSAGE_OSM = """<?xml version='1.0' encoding='UTF-8'?>
<osm version="0.6">
  <node id="1" lat="32.0000" lon="118.0000"/>
  <node id="2" lat="32.0000" lon="118.0010"/>
  <node id="3" lat="32.0000" lon="118.0020"/>
  <node id="4" lat="32.0000" lon="118.0030">
    <tag k="barrier" v="gate"/><tag k="access" v="private"/></node>
  <node id="5" lat="32.0000" lon="118.0040"/>
  <node id="6" lat="32.0010" lon="118.0010"><tag k="barrier" v="gate"/></node>
  <node id="7" lat="32.0020" lon="118.0010"/>
  <node id="8" lat="32.0010" lon="118.0000"/>
  <node id="9" lat="32.0010" lon="118.0020"/>
  <node id="20" lat="32.0003" lon="118.0000"/>
  <node id="21" lat="32.0003" lon="118.0040"/>
  <node id="30" lat="32.0050" lon="118.0000"/>
  <node id="31" lat="32.0050" lon="118.0005"/>
  <way id="100"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="4"/><nd ref="5"/>
    <tag k="highway" v="residential"/></way>
  <way id="101"><nd ref="2"/><nd ref="6"/><nd ref="7"/><tag k="highway" v="service"/></way>
  <way id="102"><nd ref="8"/><nd ref="6"/><nd ref="9"/><tag k="highway" v="footway"/><tag k="barrier" v="wall"/></way>
  <way id="103"><nd ref="20"/><nd ref="21"/><tag k="highway" v="service"/><tag k="tunnel" v="yes"/>
    <tag k="layer" v="-3"/><tag k="access" v="destination"/></way>
  <way id="104"><nd ref="1"/><nd ref="20"/><tag k="highway" v="footway"/><tag k="tunnel" v="yes"/>
    <tag k="layer" v="-1"/></way>
  <way id="105"><nd ref="3"/><nd ref="9"/><tag k="highway" v="footway"/><tag k="bridge" v="yes"/>
    <tag k="layer" v="1"/></way>
  <way id="106"><nd ref="30"/><nd ref="31"/><tag k="highway" v="footway"/></way>
</osm>
"""


@pytest.fixture
def passage(tmp_path):
    path = tmp_path / "passage.osm"
    path.write_text(PASSAGE_OSM, encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_network(path, use_cache=False)


def test_tag_rules():
    assert node_blocks_passage({"barrier": "gate", "access": "no"})
    assert node_blocks_passage({"barrier": "gate", "foot": "private"})
    assert not node_blocks_passage({"barrier": "gate"})
    assert not node_blocks_passage({"barrier": "gate", "access": "private", "foot": "yes"})
    assert walk_verdict({"highway": "footway", "barrier": "fence"}) == "barrier_way"
    assert walk_verdict({"highway": "service", "tunnel": "yes", "access": "destination"}) == "tunnel"
    assert walk_verdict({"highway": "service", "covered": "yes"}) == "tunnel"
    assert walk_verdict({"highway": "primary", "tunnel": "yes", "sidewalk": "both"}) == "walk"
    assert walk_verdict({"highway": "primary", "tunnel": "yes", "sidewalk": "separate"}) == "tunnel"
    assert walk_verdict({"highway": "service", "tunnel": "yes", "foot": "designated"}) == "walk"
    assert walk_verdict({"highway": "steps", "tunnel": "yes"}) == "walk"
    assert walk_verdict({"highway": "residential", "tunnel": "building_passage"}) == "walk"
    assert is_off_ground({"bridge": "yes"}) and is_off_ground({"layer": "-1"}) and is_off_ground({"level": "1"})
    assert not is_off_ground({"level": "0;1"}) and not is_off_ground({"layer": "0"})
    assert not is_off_ground({"tunnel": "building_passage"})


def test_gates_walls_tunnels_bridges(passage):
    net = passage
    counts = net.filter_counts
    assert counts["gates_cut"] == 1 and counts["barrier_ways_excluded"] == 1 and counts["tunnels_excluded"] == 1
    osm = net.node_osmid
    # The locked gate (node 4) is two network nodes, one per side; the open gate (6) is no node at all
    # (it is walked through inside the service way); the wall's nodes 8 and 9 are only reached by the bridge.
    assert (osm == 4).sum() == 2 and 6 not in osm.tolist() and 8 not in osm.tolist()
    assert set(net.edge_highway.tolist()) == {"residential", "service", "footway"}
    off = {(int(osm[u]), int(osm[v])) for u, v, f in zip(net.edge_u, net.edge_v, net.edge_off_ground) if f}
    assert off == {(1, 20), (3, 9)}  # the foot tunnel and the bridge are walked but off the ground
    # Walk times from a site at node 1 equal networkx on the same graph; node 5 lies beyond the gate.
    site = net.snap(net.node_xy[[int(np.flatnonzero(osm == 1)[0])]])
    points = net.snap(net.node_xy)
    access = service_access(net, site, max_minutes=None)
    node_ref, point_ref, _ = nearest_site_distances(net, site, points)
    np.testing.assert_allclose(access.node_distance_m, node_ref, atol=1e-6)
    five = int(np.flatnonzero(osm == 5)[0])
    assert np.isinf(access.node_distance_m[five])
    inner_gate = [i for i in np.flatnonzero(osm == 4) if np.isfinite(access.node_distance_m[i])]
    assert len(inner_gate) == 1  # one side of the gate is reached, the other is not
    graph = net.to_networkx()
    oracle = nx.single_source_dijkstra_path_length(graph, int(np.flatnonzero(osm == 1)[0]), weight="length")
    for node, d in oracle.items():
        assert access.node_distance_m[node] == pytest.approx(d, abs=1e-6)


def test_snap_prefers_ground_and_the_connected_city(passage):
    net = passage
    osm = net.node_osmid
    # A point right on the foot tunnel (plan view) but 20 m from the ground street snaps to the street.
    tunnel_mid = net.node_xy[[int(np.flatnonzero(osm == 1)[0]), int(np.flatnonzero(osm == 20)[0])]].mean(axis=0)
    snap = net.snap(tunnel_mid[None, :] + [[1.0, 0.0]])
    assert not net.edge_off_ground[snap.edge[0]] and snap.moved_to_ground[0]
    # A point on the stranded footway (about 50 m long) within reach of a city street moves there;
    # one 150 m beyond reach of the city stays on the footway.
    foot = net.node_xy[int(np.flatnonzero(osm == 30)[0])]
    seven = net.node_xy[int(np.flatnonzero(osm == 7)[0])]
    near = net.snap(foot[None, :] + [[0.0, -5.0]], max_snap_m=400)
    assert near.moved_off_small_piece[0] and not net.edge_on_small_piece[near.edge[0]]
    assert near.access_m[0] == pytest.approx(np.hypot(*(foot + [0, -5] - seven)), rel=1e-3)
    far = net.snap(foot[None, :] + [[0.0, 5.0]], max_snap_m=100)
    assert net.edge_on_small_piece[far.edge[0]] and not far.moved_off_small_piece[0]


def test_to_networkx_keys_are_edge_indices(passage):
    graph = passage.to_networkx()
    assert graph.number_of_edges() == passage.n_edges
    for i, (u, v) in enumerate(zip(passage.edge_u, passage.edge_v)):
        data = graph.edges[int(u), int(v), i]
        assert data["length"] == passage.edge_length[i]
        assert data["off_ground"] == bool(passage.edge_off_ground[i])


def test_cell_snap_equals_point_snap(passage):
    net = passage
    lo, hi = net.coords.min(axis=0) - 300, net.coords.max(axis=0) + 300
    cell = 20.0
    x0, y_top = np.floor(lo[0] / cell) * cell, np.ceil(hi[1] / cell) * cell
    n_cols, n_rows = int((hi[0] - x0) // cell) + 1, int((y_top - lo[1]) // cell) + 1
    cells, snap = net.snap_cells(x0, y_top, n_rows, n_cols, cell, max_snap_m=250)
    flat = np.arange(n_rows * n_cols)
    xy = np.column_stack([x0 + (flat % n_cols + 0.5) * cell, y_top - (flat // n_cols + 0.5) * cell])
    reference = net.snap(xy, max_snap_m=250)
    assert np.array_equal(cells, np.flatnonzero(reference.on_network))
    np.testing.assert_allclose(snap.access_m, reference.access_m[cells], atol=1e-6)
    same = snap.edge == reference.edge[cells]
    assert same.mean() > 0.99  # the rest are ties at shared nodes (same access walk)
    assert snap.snapped_xy is None  # a raster's cells keep no positions; their edge and offset give them
    np.testing.assert_allclose(net.points_at(snap.edge, snap.offset_m), reference.snapped_xy[cells], atol=1e-3)
