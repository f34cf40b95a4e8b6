"""Tiled assessment on a 2-worker Dask LocalCluster gives the answers of one machine (issue 19).

Oracle: the same region assessed whole by :func:`planning.assess.assess`. Compared: the sub-district,
county and coverage tables; every core node's and resident point's walk time; the decision code, circle
and uncovered masks cell for cell and the walk minutes to float32 rounding (each tile's GeoTIFFs against
the whole's grid).
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from scipy.spatial import cKDTree
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planning.assess import assess
from planning.demo import PLANTED, load_demo_region
from planning.errors import ParameterError
from planning.model import Service
from planning.netstore import NetworkStore, write_store
from planning.present import summary_text
from planning.network import load_network
from planning.policy import load_policy
from planning.synthetic import street_grid, synthetic_region
from planning.report_tiled import write_tiled
from planning.screening import check_location
from planning.tiled_result import TiledResultError, list_tiled_results, open_tiled
from planning.tiles import TileError, assess_tiled, plan_tiles
from planning.zones import DECISION_CODES

distributed = pytest.importorskip("dask.distributed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address="127.0.0.1:0")
    with distributed.Client(cluster) as dask_client:
        yield dask_client
    cluster.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    region = load_demo_region()
    network = load_network(region.network_path)
    store = write_store(network, tmp_path_factory.mktemp("demo") / "store", chunk_m=2_000)
    return region, network, store, assess(region, network)


def grid_case(folder, side: int, counties_per_side: int, n_pharmacies: int, seed: int, chunk_m: float):
    """A synthetic region of square counties, 2 x 2 sub-districts each, on a ``side`` x ``side`` street grid
    (60 m apart), with its network store: (region, network, store)."""
    network = street_grid(side, seed=seed)
    region = synthetic_region(network, counties_per_side=counties_per_side, subdistricts_per_county_side=2,
                              n_pharmacies=n_pharmacies, seed=seed)
    return region, network, write_store(network, folder / "store", chunk_m=chunk_m)


@pytest.fixture(scope="module")
def province(tmp_path_factory):
    """3 x 3 counties (2 x 2 sub-districts each) on a 7.2 km street grid, and its whole assessment."""
    region, network, store = grid_case(tmp_path_factory.mktemp("grid"), 120, 3, 90, seed=3, chunk_m=1_500)
    return region, network, store, assess(region, network)


@pytest.fixture(scope="module")
def small_region(tmp_path_factory):
    """2 x 2 counties of 2 x 2 sub-districts (1.2 km squares) on a 4.8 km street grid."""
    return grid_case(tmp_path_factory.mktemp("small"), 80, 2, 40, seed=7, chunk_m=1_000)


def assert_same_as_whole(whole, tiled) -> None:
    plain = lambda t: pd.DataFrame(t.drop(columns="geometry", errors="ignore")).reset_index(drop=True)
    for name in ("subdistricts", "counties", "coverage"):
        pd.testing.assert_frame_equal(plain(getattr(tiled, name)), plain(getattr(whole, name)), check_dtype=False,
                                      check_exact=False, rtol=1e-9, atol=1e-9, obj=name)
    columns = ["pharmacy_id", "subdistrict_code", "county_code", "snap_m", "on_network", "serves"]
    pd.testing.assert_frame_equal(plain(tiled.pharmacies)[columns], plain(whole.pharmacies)[columns], check_dtype=False)
    grid = whole.rasters.grid
    cells = 0
    walked = {tiled.tiles[0].tile_id, tiled.tiles[len(tiled.tiles) // 2].tile_id}  # detail() re-assesses: two tiles
    for tile in tiled.tiles:
        if tile.tile_id in walked:
            assert_same_walks(whole, tiled.detail(tile.core[0]), tile)
        for service in Service:
            paths = tiled.layers[tile.tile_id].rasters[service.value]
            with rasterio.open(paths["decisions"]) as source:
                bands, transform = source.read(), source.transform
            col0, row0 = round((transform.c - grid.x0) / grid.cell_m), round((grid.y_top - transform.f) / grid.cell_m)
            window = (slice(row0, row0 + bands.shape[1]), slice(col0, col0 + bands.shape[2]))
            inside = bands[0] > 0
            np.testing.assert_array_equal(bands[0][inside], whole.decisions(service)[window][inside])
            np.testing.assert_array_equal(bands[1][inside].astype(bool), whole.rasters.circle_mask(service)[window][inside])
            np.testing.assert_array_equal(bands[2][inside].astype(bool),
                                          whole.rasters.uncovered_mask(service)[window][inside])
            with rasterio.open(paths["walk_minutes"]) as source:
                minutes = source.read(1)
            expected = whole.surfaces[service].minutes[window].astype(np.float32)
            finite = inside & np.isfinite(expected)
            np.testing.assert_allclose(minutes[finite], expected[finite], rtol=4e-7)  # float32: a cell centre's ulps
            assert np.isnan(minutes[inside & ~np.isfinite(expected)]).all()
            if service is Service.PERSONAL_ACCOUNT:
                cells += int(inside.sum())
    assert cells == int((whole.decisions(Service.PERSONAL_ACCOUNT) > 0).sum())  # the cores tile the whole map
    for service in Service:
        assert tiled.zone_areas_km2(service) == pytest.approx(whole.zone_areas_km2(service), rel=1e-12)
    assert summary_text(tiled, "en") == summary_text(whole, "en")


def assert_same_walks(whole, part, tile) -> None:
    """One tile's core resident points and their nodes walk as in the whole assessment."""
    whole_index = {int(osmid): i for i, osmid in enumerate(whole.network.node_osmid)}
    core = np.isin(part.residents.subdistrict, np.flatnonzero(part.region.subdistricts["code"].isin(tile.core)))
    gap, same_points = cKDTree(whole.residents.xy).query(part.residents.xy[core])
    assert gap.max() < 1e-6  # the same points (positions along edges are summed in another order: ulps)
    core_nodes = np.unique(np.concatenate([part.network.edge_u[part.residents.snap.edge[core]],
                                           part.network.edge_v[part.residents.snap.edge[core]]]))
    nodes_in_whole = np.array([whole_index[int(o)] for o in part.network.node_osmid[core_nodes]])
    for service in Service:
        np.testing.assert_allclose(part.access[service].node_distance_m[core_nodes],
                                   whole.access[service].node_distance_m[nodes_in_whole], rtol=1e-12)
        mine = part.access[service].point_minutes(part.residents.snap.subset(core))[0]
        theirs = whole.access[service].point_minutes(whole.residents.snap.subset(
            np.isin(np.arange(len(whole.residents.persons)), same_points)))[0]
        np.testing.assert_allclose(mine[np.argsort(same_points)], theirs, rtol=1e-12)


def test_the_demo_cut_into_its_four_counties_equals_the_whole(client, demo, tmp_path):
    region, _, store, whole = demo
    tiled = assess_tiled(region, store, whole.policy, client=client, work_dir=tmp_path)
    assert sorted(t.tile_id for t in tiled.tiles) == sorted(region.counties["code"])
    assert_same_as_whole(whole, tiled)
    areas = shapely.union_all(region.subdistricts.geometry.to_numpy())
    for service in Service:  # the joined layers are what the whole drew inside the sub-districts
        joined = shapely.union_all(tiled.circles[tiled.circles["service"] == service.value].geometry.to_numpy())
        drawn = whole.circles_for(service).geometry.iloc[0].intersection(areas)
        assert joined.symmetric_difference(drawn).area <= 1e-6 * drawn.area


def test_a_saved_tiled_result_opens_again_with_the_same_tables_and_layers(client, demo, tmp_path):
    """write_tiled saves the result in its folder; open_tiled reads back equal tables (types included),
    layers, policy, tiles and summary, and a county's detail; a newer format, a path leaving the folder
    and a moved network store are refused with a message."""
    region, _, store, whole = demo
    tiled = assess_tiled(region, store, whole.policy, client=client, work_dir=tmp_path / "work")
    out = tmp_path / "out"
    write_tiled(tiled, out, lang="en")
    assert list_tiled_results(tmp_path) == [out]
    opened = open_tiled(out)
    for name in ("subdistricts", "counties", "coverage", "pharmacies", "zones", "circles", "uncovered"):
        pd.testing.assert_frame_equal(pd.DataFrame(getattr(opened, name)), pd.DataFrame(getattr(tiled, name)), obj=name)
    for name in ("subdistricts", "counties", "pharmacies"):
        pd.testing.assert_frame_equal(pd.DataFrame(getattr(opened.region, name)), pd.DataFrame(getattr(tiled.region, name)))
    assert (opened.policy, opened.tiles, opened.crs, opened.street_m) == (tiled.policy, tiled.tiles, tiled.crs, tiled.street_m)
    assert opened.region.workers is not None and opened.region.workers.places.equals(tiled.region.workers.places)
    for tile in tiled.tiles:
        mine, theirs = opened.layers[tile.tile_id], tiled.layers[tile.tile_id]
        assert mine.zone_km2 == theirs.zone_km2
        for name in ("zones", "circles", "uncovered"):
            pd.testing.assert_frame_equal(pd.DataFrame(getattr(mine, name)), pd.DataFrame(getattr(theirs, name)))
        assert all(Path(p).is_relative_to(out) and Path(p).is_file()
                   for kinds in mine.rasters.values() for p in kinds.values())
        assert opened.results[tile.tile_id].nodes == tiled.results[tile.tile_id].nodes
    assert summary_text(opened, "zh") == summary_text(tiled, "zh")
    code = tiled.tiles[0].core[0]
    pd.testing.assert_frame_equal(pd.DataFrame(opened.detail(code).subdistricts),
                                  pd.DataFrame(tiled.detail(code).subdistricts))
    lon, lat = PLANTED["saturated_core_street"]["core_point"]  # a designation check in a county's detail
    inside = region.subdistricts[region.subdistricts.contains(shapely.Point(lon, lat))]
    detail = opened.detail(inside["county_code"].iloc[0])
    here, there = check_location(detail, lon, lat, list(Service)), check_location(whole, lon, lat, list(Service))
    assert here.verdicts == there.verdicts and here.subdistrict_name == there.subdistrict_name

    manifest_path = out / "result" / "manifest.json"
    saved = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest_path.write_text(json.dumps({**saved, "format": saved["format"] + 1}), encoding="utf-8")
    with pytest.raises(TiledResultError, match="newer version"):
        open_tiled(out)
    first = tiled.tiles[0].tile_id
    saved["layers"][first]["rasters"]["outpatient_pooling"]["decisions"] = "../../etc/passwd"
    manifest_path.write_text(json.dumps(saved), encoding="utf-8")
    with pytest.raises(TiledResultError, match="leaves the folder"):
        open_tiled(out)
    with pytest.raises(TiledResultError, match="holds no tiled result"):
        open_tiled(tmp_path / "work")
    moved = replace(tiled, store_path=tmp_path / "gone")
    with pytest.raises(ParameterError, match="network store of this tiled result is not at"):
        moved.detail(code)


def test_a_three_by_three_county_region_cut_by_county_equals_the_whole(client, province, tmp_path):
    region, _, store, whole = province
    tiled = assess_tiled(region, store, whole.policy, client=client, work_dir=tmp_path)
    assert len(tiled.tiles) == 9
    assert_same_as_whole(whole, tiled)


@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(side_m=st.floats(min_value=1_000, max_value=2_400))
def test_random_grid_tiles_equal_the_whole(client, small_region, tmp_path_factory, side_m):
    """Counties cut into grid squares smaller than a county: their tiles draw in pass 2 with the merged
    county rows. A 6-minute walk keeps the halo (and the test) small; the property holds for any walk."""
    region, network, store = small_region
    policy = load_policy().with_changes(walk_minutes=6)
    whole = assess(region, network, policy)
    tiled = assess_tiled(region, store, policy, client=client, grid_m=side_m,
                         work_dir=tmp_path_factory.mktemp("grid-tiles"))
    assert len(tiled.tiles) > len(region.counties)  # some county is cut into several squares
    assert_same_as_whole(whole, tiled)


def test_a_pharmacy_across_the_county_line_covers_and_blocks_in_both_tiles(client, tmp_path):
    network = street_grid(120, seed=5)
    region = synthetic_region(network, counties_per_side=3, subdistricts_per_county_side=1, n_pharmacies=0, seed=5)
    metric = region.counties.to_crs(network.crs)
    west, east = metric.iloc[0], metric.iloc[3]  # counties 1 and 4 share a vertical border
    border_x = west.geometry.bounds[2]
    y = (west.geometry.bounds[1] + west.geometry.bounds[3]) / 2
    spot = gpd.GeoSeries([shapely.Point(border_x - 100, y)], crs=network.crs).to_crs("EPSG:4326")
    row = {"pharmacy_id": "P-border", "name": "边界药店", "address": "合成路1号", "personal_account": True,
           "outpatient_pooling": True, "chronic_disease": True, "dual_channel": True, "chain": False,
           "info_system_ready": True, "cross_region_settlement": True}
    region = replace(region, pharmacies=gpd.GeoDataFrame([row], geometry=spot, crs="EPSG:4326"))
    store = write_store(network, tmp_path / "store", chunk_m=1_500)
    whole = assess(region, network)
    tiled = assess_tiled(region, store, whole.policy, client=client, work_dir=tmp_path / "work")
    assert_same_as_whole(whole, tiled)
    paths = tiled.layers[east["code"]].rasters[Service.OUTPATIENT_POOLING.value]["decisions"]
    with rasterio.open(paths) as source:
        row_, col_ = source.index(border_x + 300, y)
        circle = source.read(2)[row_, col_]
        blocked = source.read(1)[row_, col_]
    assert circle == 1  # 300 m into the east county, inside the west pharmacy's circle
    assert blocked == DECISION_CODES["blocked"]  # and blocked by B1 there
    zones = tiled.zones[(tiled.zones["service"] == Service.OUTPATIENT_POOLING.value) & (tiled.zones["rule_ids"] == "B1")]
    east_outline = region.counties.set_index("code").geometry.loc[east["code"]]
    assert zones.geometry.iloc[0].intersection(east_outline).area > 0


def test_a_worker_killed_mid_run_still_gives_the_same_answer(client, province, tmp_path):
    region, _, store, whole = province
    killed = []

    def kill_a_busy_worker(stage, tile_id, done, total):
        if killed or stage != "assess":
            return
        busy = [address for address, keys in client.processing().items() if keys]
        if busy:
            pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    tiled = assess_tiled(region, store, whole.policy, client=client, work_dir=tmp_path, progress=kill_a_busy_worker)
    assert killed, "no worker was busy when the first tile finished"
    assert_same_as_whole(whole, tiled)
    client.wait_for_workers(2, timeout=60)
    assert killed[0] not in client.run(os.getpid).values()


def test_a_tile_that_fails_on_bad_data_fails_the_run_with_its_name(client, demo, tmp_path):
    region, _, store, whole = demo
    tiles = list(plan_tiles(region, store.crs, whole.policy))
    far = tiles[1].bounds[2] + 500_000
    tiles[1] = replace(tiles[1], bounds=(far, 0.0, far + 1_000, 1_000.0))
    with pytest.raises(TileError, match=tiles[1].tile_id):  # on a LocalCluster of its own, as --workers 1 starts
        assess_tiled(region, store, whole.policy, workers=1, tiles=tiles, work_dir=tmp_path)


def test_the_store_reads_back_the_network_it_was_given(tmp_path):
    network = load_network(load_demo_region().network_path)
    store = NetworkStore.open(write_store(network, tmp_path / "s", chunk_m=700).path)
    part = store.read(store.bounds)
    for name in ("node_xy", "node_osmid", "edge_u", "edge_v", "edge_length", "edge_highway", "coord_start", "coords",
                 "edge_off_ground"):
        np.testing.assert_array_equal(getattr(part, name), getattr(network, name), err_msg=name)
    np.testing.assert_array_equal(part.components, network.components)
    np.testing.assert_array_equal(part.edge_on_small_piece, network.edge_on_small_piece)
    xmin, ymin, xmax, ymax = store.bounds
    corner = (xmin, ymin, (xmin + xmax) / 2, (ymin + ymax) / 2)
    cut = store.read(corner)
    lines = network.edge_lines[shapely.intersects(network.edge_lines, shapely.box(*corner))]
    inside = {tuple(line.coords[0]) + tuple(line.coords[-1]) for line in lines}
    read = {tuple(line.coords[0]) + tuple(line.coords[-1]) for line in cut.edge_lines}
    assert len(lines) > 0 and inside <= read  # every edge meeting the box, whole (bounding boxes may add a few)
    boxes = shapely.bounds(cut.edge_lines)
    assert ((boxes[:, 2] >= xmin) & (boxes[:, 0] <= corner[2]) & (boxes[:, 3] >= ymin) & (boxes[:, 1] <= corner[3])).all()


def test_the_command_line_runs_tiled_on_a_scheduler_and_its_mosaics_read_as_the_whole(client, demo, tmp_path, capsys):
    from planning.cli import main

    region, _, _, whole = demo
    out = tmp_path / "out"
    address = client.scheduler.address  # a running cluster, as --scheduler tcp://host:8786 would name it
    assert main(["assess", "--demo", "--scheduler", address, "--out", str(out), "--lang", "en", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert summary_text(whole, "en") in printed and "4 tiles" in printed
    grid = whole.rasters.grid
    inside = whole.rasters.subdistrict_labels > 0
    for service in Service:
        with rasterio.open(out / "walk_time" / f"{service.value}.vrt") as mosaic:
            minutes, transform = mosaic.read(1), mosaic.transform
            col0, row0 = round((transform.c - grid.x0) / grid.cell_m), round((grid.y_top - transform.f) / grid.cell_m)
            window = (slice(row0, row0 + mosaic.height), slice(col0, col0 + mosaic.width))
        expected = whole.surfaces[service].minutes[window].astype(np.float32)
        here = inside[window]
        finite = here & np.isfinite(expected)
        np.testing.assert_allclose(minutes[finite], expected[finite], rtol=4e-7)  # float32: a cell centre's ulps
        assert np.isnan(minutes[here & ~np.isfinite(expected)]).all()
        with rasterio.open(out / "decisions" / f"{service.value}.vrt") as mosaic:
            codes = mosaic.read(1)
        np.testing.assert_array_equal(codes[here], whole.decisions(service)[window][here])
    layers = gpd.list_layers(out / "province.gpkg")["name"].tolist()
    assert layers == ["subdistricts", "counties", "pharmacies", "zones", "circles", "uncovered"]
    rows = gpd.read_file(out / "province.gpkg", layer="subdistricts")
    assert len(rows) == len(whole.subdistricts)
    county = json.loads((out / "counties" / f"{region.counties['code'].iloc[0]}.geojson").read_text(encoding="utf-8"))
    kinds = {f["properties"]["layer"] for f in county["features"]}
    assert kinds == {"subdistricts", "counties", "zones"}
    assert len(list((out / "rasters").glob("*.tif"))) == 2 * len(Service) * 4  # two kinds per service and tile
    assert_same_as_whole(whole, open_tiled(out))  # the saved result, opened again, is still the whole's answer


def test_a_province_generated_county_by_county_is_one_network_and_tiles_to_its_whole(client, tmp_path):
    from planning.synthetic import write_synthetic_province

    region, store = write_synthetic_province(tmp_path, counties_per_side=3, county_nodes_side=45, n_pharmacies=150,
                                             subdistricts_per_county_side=2)
    assert store.n_nodes == 135 * 135 and len(region.counties) == 9
    whole_network = store.read(store.bounds)
    assert whole_network.n_components == 1  # the counties' border edges join them (8 % of edges dropped)
    crossing = (whole_network.node_osmid[whole_network.edge_u] % 135 // 45) != (
        whole_network.node_osmid[whole_network.edge_v] % 135 // 45)
    assert crossing.sum() > 0  # edges from one county's block into the next
    whole = assess(region, whole_network)
    tiled = assess_tiled(region, store, whole.policy, client=client, work_dir=tmp_path / "work")
    assert_same_as_whole(whole, tiled)


@pytest.mark.osm
def test_a_network_store_decides_the_datum_from_a_sample_of_its_streets(osm_path, tmp_path):
    from planning import coords
    from planning.ingest import build_region

    network = load_network(osm_path("nanjing_xuanwu"))
    store = write_store(network, tmp_path / "store", chunk_m=500)
    rng = np.random.default_rng(19)
    edges = rng.choice(np.flatnonzero(network.edge_length > 20), 120, replace=False)
    on_street = shapely.line_interpolate_point(network.edge_lines[edges], 0.5, normalized=True)
    lon, lat = network.to_lonlat.transform(shapely.get_x(on_street), shapely.get_y(on_street))
    glon, glat = coords.wgs84_to_gcj02(lon, lat)
    sheet = tmp_path / "pharmacies.csv"
    pd.DataFrame({"名称": [f"药店{i}" for i in range(120)], "地址": [f"玄武区{i}号" for i in range(120)],
                  "经度": glon, "纬度": glat, "门诊统筹": ["是"] * 120}).to_csv(sheet, index=False)
    region = build_region(pharmacies=sheet, network=store.path)
    decision = region.completeness.datum
    assert decision.used is coords.Datum.GCJ02 and decision.decided_by != "undecided"
    assert decision.median_snap_m[coords.Datum.GCJ02] < 1.0 < decision.median_snap_m[coords.Datum.WGS84]
    assert any("network store" in note for layer in region.completeness.layers for note in layer.notes)
