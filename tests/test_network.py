"""Loading walking networks: filter, clipped extracts, pieces, formats, cache, snapping to edges."""

from __future__ import annotations

import re
import time
import warnings

import numpy as np
import pytest
import shapely

from planning.errors import NetworkInputError, ParameterError
from planning.network import (
    ClippedExtractWarning,
    DisconnectedNetworkWarning,
    WalkNetwork,
    is_walkable,
    load_network,
)


def quiet_load(path, **kwargs) -> WalkNetwork:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_network(path, **kwargs)


@pytest.mark.parametrize(
    ("tags", "walkable"),
    [
        ({"highway": "footway"}, True),
        ({"highway": "steps"}, True),
        ({"highway": "residential", "oneway": "yes"}, True),
        ({"highway": "living_street"}, True),
        ({"highway": "motorway"}, False),
        ({"highway": "motorway_link", "foot": "yes"}, False),
        ({"highway": "primary", "foot": "no"}, False),
        ({"highway": "service", "access": "private"}, False),
        ({"highway": "service", "access": "private", "foot": "yes"}, True),
        ({"highway": "service", "service": "private"}, False),
        ({"highway": "cycleway"}, False),
        ({"highway": "cycleway", "foot": "designated"}, True),
        ({"highway": "construction"}, False),
        ({"railway": "rail"}, False),
        ({"waterway": "river"}, False),
    ],
)
def test_walking_filter(tags, walkable):
    assert is_walkable(tags) is walkable


@pytest.mark.osm
@pytest.mark.parametrize("extract", ["nanjing_xuanwu", "shenzhen_longgang"])
def test_real_extracts_load_with_footways_and_steps(osm_path, extract):
    with pytest.warns(DisconnectedNetworkWarning, match="disconnected pieces, all kept"):
        network = load_network(osm_path(extract), use_cache=False)
    classes = set(network.edge_highway.tolist())
    assert {"footway", "steps"} <= classes
    assert not classes & {"motorway", "motorway_link", "construction"}
    assert network.crs == "EPSG:32650"  # both cities lie in UTM zone 50N
    assert network.n_nodes > 500 and network.edge_length.sum() > 50_000
    # Every node is kept, including the small pieces; the labels cover them all.
    assert network.component_sizes().sum() == network.n_nodes and network.n_components > 1
    # Edge lengths agree with the polylines and with the node positions at both ends.
    lines = network.edge_lines
    np.testing.assert_allclose(shapely.length(lines), network.edge_length, rtol=1e-9)
    first = network.coords[network.coord_start[:-1]]
    last = network.coords[network.coord_start[1:] - 1]
    np.testing.assert_allclose(first, network.node_xy[network.edge_u])
    np.testing.assert_allclose(last, network.node_xy[network.edge_v])


@pytest.mark.osm
def test_clipped_extract_loads_with_a_warning(osm_path, tmp_path):
    text = osm_path("nanjing_xuanwu").read_text(encoding="utf-8")
    full = quiet_load(osm_path("nanjing_xuanwu"), use_cache=False)
    # Clip: drop every node element east of 118.785 (ways keep their references to them).
    node = re.compile(r'<node id="\d+" lat="[-\d.]+" lon="([-\d.]+)"(?:/>|>.*?</node>)', re.S)
    clipped = node.sub(lambda m: "" if float(m.group(1)) > 118.785 else m.group(0), text)
    path = tmp_path / "clipped.osm"
    path.write_text(clipped, encoding="utf-8")
    with pytest.warns(ClippedExtractWarning, match=r"\d+ walkable ways reference \d+ nodes missing"):
        network = load_network(path, use_cache=False)
    assert 0 < network.n_nodes < full.n_nodes
    lon = network.to_lonlat.transform(network.coords[:, 0], network.coords[:, 1])[0]
    assert lon.max() <= 118.785 + 1e-7


@pytest.mark.osm
def test_pbf_loads_the_same_network_as_xml(osm_path, tmp_path):
    osmium = pytest.importorskip("osmium")
    source = osm_path("shenzhen_longgang")
    target = tmp_path / "shenzhen.osm.pbf"
    writer = osmium.SimpleWriter(str(target))
    for obj in osmium.FileProcessor(str(source)):
        if obj.is_node():
            writer.add_node(obj)
        elif obj.is_way():
            writer.add_way(obj)
    writer.close()
    xml, pbf = quiet_load(source, use_cache=False), quiet_load(target, use_cache=False)
    assert np.array_equal(xml.coords, pbf.coords) and np.array_equal(xml.edge_u, pbf.edge_u)


@pytest.mark.osm
def test_graphml_from_osmnx_loads(osm_path, tmp_path):
    ox = pytest.importorskip("osmnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = ox.graph_from_xml(osm_path("nanjing_xuanwu"), retain_all=True)
    path = tmp_path / "nanjing.graphml"
    ox.save_graphml(graph, path)
    network = quiet_load(path, use_cache=False)
    reference = quiet_load(osm_path("nanjing_xuanwu"), use_cache=False)
    assert "motorway" not in set(network.edge_highway.tolist())
    # osmnx simplifies differently (and keeps non-walkable ways the filter then drops), but the
    # walkable street length must agree closely with our own reader.
    assert network.edge_length.sum() == pytest.approx(reference.edge_length.sum(), rel=0.03)


@pytest.mark.osm
def test_second_load_comes_from_the_cache(osm_path, tmp_path):
    source = osm_path("shenzhen_longgang")
    start = time.perf_counter()
    with pytest.warns(DisconnectedNetworkWarning):
        first = load_network(source, cache_dir=tmp_path)
    parse_time = time.perf_counter() - start
    assert len(list(tmp_path.glob("walk-*.npz"))) == 1
    start = time.perf_counter()
    with pytest.warns(DisconnectedNetworkWarning):  # warnings survive the cache
        second = load_network(source, cache_dir=tmp_path)
    cache_time = time.perf_counter() - start
    for field in ("node_xy", "edge_u", "edge_v", "edge_length", "coords", "coord_start", "edge_highway"):
        assert np.array_equal(getattr(first, field), getattr(second, field))
    assert second.crs == first.crs
    assert cache_time < parse_time  # informative, not a timing target: parse ~0.1 s, cache ~4 ms


def test_damaged_cache_is_ignored(tmp_path):
    osm = tmp_path / "tiny.osm"
    osm.write_text(TINY_OSM, encoding="utf-8")
    first = load_network(osm, cache_dir=tmp_path)
    for cached in tmp_path.glob("walk-*.npz"):
        cached.write_bytes(b"not a zip")
    network = load_network(osm, cache_dir=tmp_path)
    assert network.n_edges == first.n_edges == 3


TINY_OSM = """<?xml version='1.0' encoding='UTF-8'?>
<osm version="0.6">
  <node id="1" lat="32.0000" lon="118.0000"/>
  <node id="2" lat="32.0000" lon="118.0010"/>
  <node id="3" lat="32.0010" lon="118.0010"/>
  <node id="4" lat="32.0020" lon="118.0010"/>
  <node id="5" lat="32.0020" lon="118.0030"/>
  <way id="10"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="4"/><tag k="highway" v="residential"/></way>
  <way id="11"><nd ref="3"/><nd ref="5"/><tag k="highway" v="footway"/></way>
  <way id="12"><nd ref="1"/><nd ref="5"/><tag k="highway" v="motorway"/></way>
</osm>
"""


def test_simplification_keeps_curves_and_splits_at_shared_nodes(tmp_path):
    osm = tmp_path / "tiny.osm"
    osm.write_text(TINY_OSM, encoding="utf-8")
    network = load_network(osm, use_cache=False)
    # Nodes 1, 3 (shared), 4, 5 survive; node 2 is a bend inside the edge 1-3; the motorway is gone.
    assert sorted(network.node_osmid.tolist()) == [1, 3, 4, 5]
    assert network.n_edges == 3
    bend = [e for e in range(network.n_edges) if network.coord_start[e + 1] - network.coord_start[e] == 3]
    assert len(bend) == 1


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("roads.txt", "hello", "unsupported network file type"),
        ("broken.osm", "<osm><node id='1' lat='x'", "cannot parse OSM file"),
        ("empty.osm", "<osm version='0.6'></osm>", "holds no walkable street"),
    ],
)
def test_bad_network_files_give_clear_errors(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(NetworkInputError, match=message) as info:
        load_network(path, use_cache=False)
    assert info.value.message_zh  # a Chinese message for the planner, too


def test_missing_file_is_named(tmp_path):
    with pytest.raises(NetworkInputError, match="not found"):
        load_network(tmp_path / "nowhere.osm")


def test_points_snap_to_the_nearest_edge_not_the_nearest_node():
    # One long edge (0,0)-(1000,0); a point above its middle is 20 m from the edge, 500 m from nodes.
    network = WalkNetwork.from_arrays([[0, 0], [1000, 0], [1000, 1000]], [0, 1], [1, 2], crs="EPSG:32650")
    snap = network.snap(np.array([[500.0, 20.0], [1020.0, 600.0], [300.0, 900.0]]), max_snap_m=250)
    assert snap.edge.tolist() == [0, 1, 1]
    np.testing.assert_allclose(snap.offset_m, [500.0, 600.0, 900.0])
    np.testing.assert_allclose(snap.access_m, [20.0, 20.0, 700.0])
    np.testing.assert_allclose(snap.snapped_xy[0], [500.0, 0.0])
    assert snap.on_network.tolist() == [True, True, False]  # the last one is flagged off network


def test_snap_rejects_bad_distance_and_handles_nan_points():
    network = WalkNetwork.from_arrays([[0, 0], [1000, 0]], [0], [1], crs="EPSG:32650")
    with pytest.raises(ParameterError, match="max_snap_m"):
        network.snap(np.array([[0.0, 0.0]]), max_snap_m=0)
    snap = network.snap(np.array([[np.nan, 0.0], [10.0, 0.0]]))
    assert snap.edge.tolist() == [-1, 0] and snap.on_network.tolist() == [False, True]


def test_lonlat_round_trip_and_edges_gdf():
    network = WalkNetwork.from_arrays([[400000, 3500000], [401000, 3500000]], [0], [1], crs="EPSG:32650")
    lon, lat = network.to_lonlat.transform(400000.0, 3500000.0)
    np.testing.assert_allclose(network.project([lon], [lat])[0], [400000, 3500000], atol=1e-6)
    gdf = network.edges_gdf()
    assert gdf.crs.to_epsg() == 4326 and gdf["length_m"].iloc[0] == pytest.approx(1000.0)
