"""Tiled assessment: a city or a province cut into tiles with a halo, one Dask task per tile, merged into
the answers one machine would give.

A :class:`Tile` owns a set of sub-districts (its *core*: one county by default, or the sub-districts of a
large county whose representative point falls in one grid square). It reads the network meeting the
core's bounding box grown by :func:`halo_m`, every pharmacy in that box (a pharmacy across the county
line still covers and blocks) and the *context*: the other sub-districts meeting the box, whose
residents there are spread on the streets as in the whole region. The halo holds every walk that
reaches a core resident or cell (walk horizon, two snap distances, the access width) and every
resident a pharmacy near the core counts in its catchment (E2SFCA's first step: two budgets, four snap
distances).

Pass 0 (:func:`measure_streets`) measures each sub-district's street length where it lies whole, so a
context sub-district cut by the box gives its residents the same weight as in the whole region.
Pass 1 (:func:`run_tile`) assesses a tile with :func:`planning.assess.assess` and keeps its core's
rows. The merge concatenates them (each row from the tile owning it) and rolls counties up from the
merged rows (R2, B3/B4 and the county classes need the whole county). A tile whose core is a whole
county draws its zones, circles, uncovered area and decision rasters, clipped to the core, in pass 1
(its core cells depend on its own rows only); the tiles of a county cut into grid squares are assessed
again in pass 2 (:func:`finish_tile`) with the merged county rows, and draw then. Every pass runs on
``dask.distributed``: one task per tile, paths and small tables in and out, nothing kept between passes
but those tables; the rasters are written to the work folder (which the workers of a multi-machine
cluster must share). A task that fails on bad data fails the run naming the tile
(:class:`TileError`); a task whose worker dies is rerun by Dask, with the same result.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from affine import Affine

from planning import assess as assessing
from planning import rules
from planning.coverage import residents_along_streets, street_length_by_subdistrict
from planning.demand import service_demand
from planning.errors import ParameterError, PlanningError
from planning.geometry import polygonal_parts
from planning.memo import Memo
from planning.memory import keep_freed_memory
from planning.model import WGS84, Region, Service
from planning.netstore import NetworkStore, is_store, store_for_file
from planning.policy import Policy, load_policy

#: Counties larger than this (km²) are cut into grid tiles of :data:`DEFAULT_GRID_M` by default.
LARGE_COUNTY_KM2 = 2_500.0
#: Side of the grid squares a large county is cut into, metres.
DEFAULT_GRID_M = 40_000.0


class TileError(PlanningError):
    """A tile's task failed: the run stops and names the tile and the reason (never a gap in the map)."""


@dataclass(frozen=True)
class Tile:
    """One tile: ``core`` (sub-district codes it owns and reports), ``context`` (the other sub-districts
    meeting its bounds, there for their residents' demand only), ``bounds`` (network CRS, metres: the
    core's bounding box grown by :func:`halo_m`; the network and pharmacies it reads) and the
    ``county_code`` of its core."""

    tile_id: str
    county_code: str
    core: tuple[str, ...]
    context: tuple[str, ...]
    bounds: tuple[float, float, float, float]


def halo_m(policy: Policy) -> float:
    """How far beyond its core's bounding box a tile reads the network and pharmacies, metres: the walk
    search's horizon with a snap distance at each end and the uncovered area's access width (every walk
    to a core place), or two budgets and four snap distances (a pharmacy within the budget of a core
    resident counts every resident within the budget of itself), whichever is longer."""
    walk = assessing.search_horizon_m(policy) + 2 * policy.max_snap_m + policy.access_width_m
    return max(walk, 2 * (policy.budget_m + 2 * policy.max_snap_m))


def plan_tiles(region: Region, crs: str, policy: Policy | None = None, *, grid_m: float | None = None,
               large_county_km2: float = LARGE_COUNTY_KM2) -> tuple[Tile, ...]:
    """Tiles of ``region`` on a network in ``crs`` (metres): one per county, except that a county larger
    than ``large_county_km2`` — or every county, when ``grid_m`` is given — is cut into grid squares of
    ``grid_m`` (default :data:`DEFAULT_GRID_M`) by each sub-district's representative point. Every
    sub-district is in exactly one core."""
    policy = policy or load_policy()
    if grid_m is not None and not grid_m > 0:
        raise ParameterError("分块边长必须大于 0 米", "the tile side must be more than 0 metres")
    subdistricts = region.subdistricts.to_crs(crs)
    counties = region.counties.to_crs(crs)
    county_area = dict(zip(counties["code"], counties.geometry.area / 1e6))
    point = subdistricts.geometry.representative_point()
    groups: dict[tuple[str, str], list[int]] = {}
    for position, (code, county) in enumerate(zip(subdistricts["code"], subdistricts["county_code"])):
        side = grid_m if grid_m is not None else (DEFAULT_GRID_M if county_area.get(county, 0) > large_county_km2
                                                  else None)
        key = "" if side is None else f"{math.floor(point.iloc[position].x / side)}_{math.floor(point.iloc[position].y / side)}"
        groups.setdefault((county, key), []).append(position)
    halo = halo_m(policy)
    tree = shapely.STRtree(subdistricts.geometry.to_numpy())
    tiles = []
    for (county, key), positions in groups.items():
        xmin, ymin, xmax, ymax = subdistricts.geometry.iloc[positions].total_bounds
        bounds = (xmin - halo, ymin - halo, xmax + halo, ymax + halo)
        context = sorted(set(tree.query(shapely.box(*bounds), predicate="intersects").tolist()) - set(positions))
        tiles.append(Tile(tile_id=county if not key else f"{county}/{key}", county_code=county,
                          core=tuple(subdistricts["code"].iloc[positions]),
                          context=tuple(subdistricts["code"].iloc[context]), bounds=bounds))
    return tuple(tiles)


def tile_region(region: Region, tile: Tile, crs: str) -> Region:
    """The part of ``region`` a tile assesses: its core and context sub-districts (in the region's order),
    their counties, and every pharmacy inside the tile's bounds."""
    keep = set(tile.core) | set(tile.context)
    subdistricts = region.subdistricts[region.subdistricts["code"].isin(keep)]
    counties = region.counties[region.counties["code"].isin(set(subdistricts["county_code"]))]
    xy = region.pharmacies.to_crs(crs).geometry
    xmin, ymin, xmax, ymax = tile.bounds
    inside = (xy.x >= xmin) & (xy.x <= xmax) & (xy.y >= ymin) & (xy.y <= ymax)
    return replace(region, name=f"{region.name} [{tile.tile_id}]", subdistricts=subdistricts, counties=counties,
                   pharmacies=region.pharmacies[inside.to_numpy()])


@dataclass(frozen=True)
class TileLayers:
    """Pass 2 of one tile, clipped to its core: zones, circles and uncovered area (network CRS, metres)
    and the paths of its rasters (:func:`raster_paths`)."""

    tile_id: str
    zones: gpd.GeoDataFrame
    circles: gpd.GeoDataFrame
    uncovered: gpd.GeoDataFrame
    rasters: dict
    zone_km2: dict  # service value -> zone kind -> km² of the core's cells in that kind's zones
    seconds: float


@dataclass(frozen=True)
class TileResult:
    """Pass 1 of one tile: its core's rows (sub-districts, coverage; pharmacies it owns), its layers when
    its core is a whole county (else None: pass 2 draws them), its network's node count. ``seconds``:
    the task's wall time; ``peak_mb``: the worker's peak resident memory after it (MB)."""

    tile: Tile
    subdistricts: pd.DataFrame
    coverage: pd.DataFrame
    pharmacies: pd.DataFrame
    layers: TileLayers | None
    nodes: int
    seconds: float
    peak_mb: float


def measure_streets(tile: Tile, store_path: str, core: gpd.GeoDataFrame) -> dict[str, float]:
    """Pass 0 (a Dask task): the street length (metres) of each core sub-district (``core``: their rows),
    on the network meeting the core's bounding box (:func:`planning.coverage.street_length_by_subdistrict`)."""
    keep_freed_memory()  # in the Dask worker's process (planning.memory)
    try:
        store = NetworkStore.open(store_path)
        network = store.read(tuple(core.to_crs(store.crs).total_bounds))
        lengths = street_length_by_subdistrict(network, core)
    except Exception as exc:  # noqa: BLE001 (named and re-raised: the run stops with the tile's name)
        raise TileError(f"分块 {tile.tile_id} 道路长度计算失败：{exc}",
                        f"tile {tile.tile_id} failed measuring its streets: {exc}") from exc
    return dict(zip(core["code"], lengths.tolist()))


def assess_tile(tile: Tile, store_path: str, region: Region, policy: Policy, street_m: Sequence[float]
                ) -> assessing.Assessment:
    """One tile's own assessment (its core exact, its context partial) on the store's network: ``region``
    is the tile's part (:func:`tile_region`), ``street_m`` the street length (metres) of each of its
    sub-districts from pass 0. Deterministic: pass 1, pass 2 and :meth:`TiledAssessment.detail` each
    compute it and get the same."""
    network = NetworkStore.open(store_path).read(tile.bounds)
    residents = residents_along_streets(network, region.subdistricts, max_snap_m=policy.max_snap_m,
                                        street_m=np.asarray(street_m, dtype=float))
    return assessing.assess(region, network, policy, residents=residents)


def run_tile(tile: Tile, store_path: str, region: Region, policy: Policy, work_dir: str, owned: Sequence[str],
             street_m: Sequence[float], *, whole_county: bool) -> TileResult:
    """Pass 1 (a Dask task): assess one tile (:func:`assess_tile`) and keep its core's rows and the
    pharmacies ``owned`` (ids) it reports. A tile whose core is its whole county (``whole_county``)
    also draws its layers here: its core cells depend on its own sub-districts' and county's rows only,
    and both are complete in it; a cut county's tiles draw in pass 2 with the merged county rows."""
    keep_freed_memory()  # in the Dask worker's process (planning.memory)
    started = time.perf_counter()
    try:
        found = assess_tile(tile, store_path, region, policy, street_m)
        layers = draw_tile(found, tile, Path(work_dir)) if whole_county else None
    except Exception as exc:  # noqa: BLE001 (named and re-raised: the run stops with the tile's name)
        raise TileError(f"分块 {tile.tile_id} 评估失败：{exc}", f"tile {tile.tile_id} failed: {exc}") from exc
    core = set(tile.core)
    rows = lambda table: pd.DataFrame(table[table["code"].isin(core)].drop(columns="geometry", errors="ignore"))
    owned_rows = found.pharmacies[found.pharmacies["pharmacy_id"].astype(str).isin(set(map(str, owned)))]
    return TileResult(tile=tile, subdistricts=rows(found.subdistricts), coverage=rows(found.coverage),
                      pharmacies=pd.DataFrame(owned_rows), layers=layers, nodes=found.network.n_nodes,
                      seconds=time.perf_counter() - started, peak_mb=_peak_mb())


def finish_tile(tile: Tile, store_path: str, region: Region, policy: Policy, street_m: Sequence[float],
                subdistricts: pd.DataFrame, counties: pd.DataFrame, work_dir: str) -> TileLayers:
    """Pass 2 (a Dask task, for a tile of a cut county): the tile assessed again with the merged rows of
    its areas (``subdistricts``, ``counties``: machine columns, no geometry), and its layers drawn."""
    keep_freed_memory()  # in the Dask worker's process (planning.memory)
    try:
        found = with_rows(assess_tile(tile, store_path, region, policy, street_m), subdistricts, counties)
        return draw_tile(found, tile, Path(work_dir))
    except Exception as exc:  # noqa: BLE001
        raise TileError(f"分块 {tile.tile_id} 出图失败：{exc}", f"tile {tile.tile_id} failed drawing its layers: {exc}") from exc


def draw_tile(found: assessing.Assessment, tile: Tile, work_dir: Path) -> TileLayers:
    """A tile's layers clipped to its core (network CRS) and its rasters written under ``work_dir``."""
    started = time.perf_counter()
    rasters = write_tile_rasters(found, tile, work_dir)
    core = core_cells(found, tile)
    zone_km2 = {s.value: found.zone_areas_km2(s, within=core) for s in Service}
    geometry = found.region.subdistricts.set_index("code").geometry.to_crs(found.network.crs)
    outline = shapely.union_all(geometry.loc[list(tile.core)].to_numpy())
    clip = lambda layer: _clipped(layer, outline, found.network.crs)
    return TileLayers(tile_id=tile.tile_id, zones=clip(found.zones), circles=clip(found.circles),
                      uncovered=clip(found.uncovered), rasters=rasters, zone_km2=zone_km2,
                      seconds=time.perf_counter() - started)


def core_cells(found: assessing.Assessment, tile: Tile) -> np.ndarray:
    """Bool raster on the tile's grid: the cells of its core sub-districts."""
    rasters = found.rasters
    return np.isin(rasters.subdistrict_labels - 1, np.flatnonzero(np.isin(rasters.subdistrict_codes, list(tile.core))))


def with_rows(found: assessing.Assessment, subdistricts: pd.DataFrame, counties: pd.DataFrame
              ) -> assessing.Assessment:
    """A tile's assessment with the merged rows of its own sub-districts and counties in place of its own
    (the context's and a cut county's rows are the whole region's, not the tile's partial view)."""
    def take(mine: gpd.GeoDataFrame, merged: pd.DataFrame) -> gpd.GeoDataFrame:
        keys = mine[["code", "service"]]
        rows = merged.merge(keys, on=["code", "service"], how="right")
        return gpd.GeoDataFrame(rows, geometry=mine.geometry.to_numpy(), crs=WGS84)

    return replace(found, subdistricts=take(found.subdistricts, subdistricts),
                   counties=take(found.counties, counties), memo=Memo())


@dataclass(frozen=True, eq=False)
class TiledAssessment:
    """A merged tiled assessment: the tables of :class:`planning.assess.Assessment` for the whole region
    (``subdistricts``, ``counties``, ``coverage``, ``pharmacies``), the province layers (``zones``,
    ``circles``, ``uncovered``, EPSG:4326, clipped per core and joined) and per tile its result and
    raster files. :meth:`detail` opens one tile as an ordinary assessment."""

    region: Region
    policy: Policy
    crs: str
    tiles: tuple[Tile, ...]
    subdistricts: gpd.GeoDataFrame
    counties: gpd.GeoDataFrame
    coverage: pd.DataFrame
    pharmacies: gpd.GeoDataFrame
    zones: gpd.GeoDataFrame
    circles: gpd.GeoDataFrame
    uncovered: gpd.GeoDataFrame
    results: dict[str, TileResult]
    layers: dict[str, TileLayers]
    store_path: Path
    street_m: dict[str, float]  # per sub-district code, its street length (metres), from pass 0
    work_dir: Path
    seconds: float
    memo: Memo = field(default_factory=Memo, repr=False)

    @property
    def metric_crs(self) -> str:
        """The projected CRS (metres) of the network store, the rasters and every area figure."""
        return self.crs

    def unjudged(self, service: Service | str) -> dict[str, tuple[str, ...]]:
        """As :meth:`planning.assess.Assessment.unjudged` (the region's missing inputs decide it)."""
        missing = self.region.completeness.missing if self.region.completeness is not None else ()
        return rules.unjudged_rules(missing, Service(service), self.policy)

    def zone_areas_km2(self, service: Service | str) -> dict[str, float]:
        """As :meth:`planning.assess.Assessment.zone_areas_km2`, summed over the tiles' cores."""
        total: dict[str, float] = {}
        for layers in self.layers.values():
            for zone, km2 in layers.zone_km2[Service(service).value].items():
                total[zone] = total.get(zone, 0.0) + km2
        return {zone: km2 for zone, km2 in total.items() if km2 > 0}

    @property
    def demand(self) -> dict:
        """Per service, whom it is for (:class:`planning.demand.ServiceDemand`), read from the whole
        region's sub-districts as :func:`planning.assess.assess` reads it."""
        return self.memo.get("demand", lambda: {
            s: service_demand(self.region.subdistricts, s, self.policy.demand[s]) for s in Service})

    def tile_of(self, code: str) -> Tile:
        """The tile owning a sub-district code, or holding a county's first sub-district."""
        for tile in self.tiles:
            if code in tile.core or tile.county_code == code:
                return tile
        raise ParameterError(f"没有包含 {code} 的分块", f"no tile holds {code}")

    def detail(self, code: str) -> assessing.Assessment:
        """One tile (owning sub-district ``code``, or the first tile of county ``code``) assessed again in
        this process as an ordinary assessment, with the merged rows: its core is exact; its context
        (the sub-districts around the core it read) is there for the map's surroundings only."""
        tile = self.tile_of(code)
        if not is_store(self.store_path):
            raise ParameterError(f"找不到该分块结果的路网存储 {self.store_path}：县区详情需要重新读取路网（概览和表格不受影响）",
                                 f"the network store of this tiled result is not at {self.store_path}: a county's "
                                 "detail reads the network again (the overview and the tables do not need it)")

        def build():
            part = tile_region(self.region, tile, self.crs)
            street_m = [self.street_m[c] for c in part.subdistricts["code"]]
            return with_rows(assess_tile(tile, str(self.store_path), part, self.policy, street_m),
                             _plain(self.subdistricts), _plain(self.counties))

        return self.memo.get(("detail", tile.tile_id), build)


def assess_tiled(region: Region, network_source, policy: Policy | None = None, *, client=None,
                 workers: int | None = None, scheduler: str | None = None, grid_m: float | None = None,
                 tiles: Sequence[Tile] | None = None, work_dir: str | os.PathLike | None = None,
                 progress: Callable[[str, str, int, int], None] | None = None,
                 dashboard: str | None = None) -> TiledAssessment:
    """Assess ``region`` tile by tile on Dask and merge (see the module docstring).

    ``network_source``: a :class:`NetworkStore`, a store folder, or a network file (written into a store
    once per file content, :func:`planning.netstore.store_for_file`). ``client``: a
    ``dask.distributed.Client``; else ``scheduler`` (``tcp://host:8786``) is connected to, else a
    ``LocalCluster`` of ``workers`` processes (default: one per core) is started and closed. ``tiles``
    default to :func:`plan_tiles` (``grid_m`` as there). ``work_dir`` receives the tiles' rasters (default: a
    temporary folder); ``progress(pass, tile_id, done, total)`` is called as tiles finish
    (pass: ``streets``, ``assess``, ``draw``). ``dashboard`` (e.g. ``127.0.0.1:8787``) serves the own
    LocalCluster's Dask dashboard there (its pages need the ``bokeh`` package); the cluster listens on
    127.0.0.1 only.
    """
    from dask.distributed import Client, LocalCluster, as_completed

    policy = policy or load_policy()
    if policy.weighs_workers and region.workers is not None:
        raise ParameterError("分块评估暂不计入就业人员图层（workers_weight > 0）：请整体评估，或把 workers_weight 设为 0",
                             "a tiled assessment does not count a worker layer yet (workers_weight > 0): assess the "
                             "region whole, or set workers_weight to 0")
    started = time.perf_counter()
    store = _store(network_source)
    tiles = tuple(tiles) if tiles is not None else plan_tiles(region, store.crs, policy, grid_m=grid_m)
    _check_partition(region, tiles)
    work = Path(work_dir) if work_dir is not None else Path(_temporary_folder())
    work.mkdir(parents=True, exist_ok=True)
    owner = pharmacy_owners(region, tiles, store.crs)
    own_cluster = own_client = None
    if client is None:
        if not scheduler:
            # loopback only; without --dashboard the scheduler's HTTP routes take a free port, not 8787
            own_cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                                       processes=True, host="127.0.0.1", dashboard_address=dashboard or "127.0.0.1:0",
                                       silence_logs=logging.CRITICAL)  # a task's failure reaches us as TileError
        client = own_client = Client(scheduler or own_cluster)
    try:
        position = {code: i for i, code in enumerate(region.subdistricts["code"])}
        measuring = {client.submit(measure_streets, tile, str(store.path),
                                   region.subdistricts.iloc[[position[c] for c in tile.core]],
                                   key=f"streets-{tile.tile_id}", pure=False): tile for tile in tiles}
        street_m = {code: m for found in _gather(measuring, as_completed, progress, "streets").values()
                    for code, m in found.items()}
        parts = {tile.tile_id: tile_region(region, tile, store.crs) for tile in tiles}
        lengths = {tile.tile_id: [street_m[c] for c in parts[tile.tile_id].subdistricts["code"]] for tile in tiles}
        whole = whole_county_tiles(region, tiles)
        futures = {client.submit(run_tile, tile, str(store.path), parts[tile.tile_id], policy, str(work),
                                 tuple(owner.get(tile.tile_id, ())), lengths[tile.tile_id],
                                 whole_county=tile.tile_id in whole, key=f"tile-{tile.tile_id}", pure=False): tile
                   for tile in tiles}
        results = _gather(futures, as_completed, progress, "assess")
        merged = merge_tables(region, policy, [results[t.tile_id] for t in tiles])
        layers = {t.tile_id: results[t.tile_id].layers for t in tiles if t.tile_id in whole}
        cut = [t for t in tiles if t.tile_id not in whole]
        if cut:
            rows = [client.scatter(_plain(merged[name]), broadcast=True) for name in ("subdistricts", "counties")]
            finishing = {client.submit(finish_tile, t, str(store.path), parts[t.tile_id], policy, lengths[t.tile_id],
                                       *rows, str(work), key=f"layers-{t.tile_id}", pure=False): t for t in cut}
            layers.update(_gather(finishing, as_completed, progress, "draw"))
    finally:
        with _quiet("distributed", "tornado"):  # closing our own cluster logs its dropped connections
            if own_client is not None:
                own_client.close()
            if own_cluster is not None:
                own_cluster.close()
    joined = {name: _joined([getattr(layers[t.tile_id], name) for t in tiles], name, store.crs) for name in
              ("zones", "circles", "uncovered")}
    return TiledAssessment(region=region, policy=policy, crs=store.crs, tiles=tiles, results=results, layers=layers,
                           store_path=store.path, street_m=street_m, work_dir=work,
                           seconds=time.perf_counter() - started, **merged, **joined)


def whole_county_tiles(region: Region, tiles: Sequence[Tile]) -> set[str]:
    """Ids of the tiles whose core is every sub-district of their county."""
    per_county = region.subdistricts.groupby("county_code")["code"].apply(frozenset).to_dict()
    return {t.tile_id for t in tiles if frozenset(t.core) == per_county.get(t.county_code)}


def merge_tables(region: Region, policy: Policy, results: Sequence[TileResult]) -> dict:
    """The whole region's tables from the tiles' core rows, in the region's order; counties rolled up
    from the merged rows (:func:`planning.assess.classify_counties`)."""
    order = {code: i for i, code in enumerate(region.subdistricts["code"])}
    service_order = {s.value: i for i, s in enumerate(Service)}

    def ordered(frames, *, service_first: bool):
        # infer_objects: a tile whose column held only None (no urban street there) joins others' numbers
        # as one column, as the whole's table built from all rows at once would hold it
        table = pd.concat(frames, ignore_index=True).infer_objects()
        area, service = table["code"].map(order).to_numpy(), table["service"].map(service_order).to_numpy()
        key = service * len(order) + area if service_first else area * len(service_order) + service
        return table.iloc[np.argsort(key, kind="stable")].reset_index(drop=True)

    coverage = ordered([r.coverage for r in results], service_first=True)  # as coverage_table orders it
    rows = ordered([r.subdistricts for r in results], service_first=False)
    geometry = region.subdistricts.set_index("code").geometry
    subdistricts = gpd.GeoDataFrame(rows, geometry=geometry.reindex(rows["code"]).to_numpy(), crs=WGS84)
    position = {pid: i for i, pid in enumerate(region.pharmacies["pharmacy_id"].astype(str))}
    located = pd.concat([r.pharmacies for r in results], ignore_index=True)
    missing = sorted(set(position) - set(located["pharmacy_id"].astype(str)))
    if missing:  # a pharmacy far outside every sub-district lies in no tile: said, never dropped
        raise TileError(f"{len(missing)} 家药店不在任何分块范围内（如 {missing[:5]}）",
                        f"{len(missing)} pharmacies lie in no tile's bounds (e.g. {missing[:5]})")
    located = located.iloc[np.argsort(located["pharmacy_id"].astype(str).map(position).to_numpy(), kind="stable")]
    pharmacies = gpd.GeoDataFrame(located.reset_index(drop=True), geometry="geometry", crs=WGS84)
    counties = assessing.classify_counties(region, pharmacies, coverage, policy, subdistricts)
    return {"subdistricts": subdistricts, "counties": counties, "coverage": coverage, "pharmacies": pharmacies}


def pharmacy_owners(region: Region, tiles: Sequence[Tile], crs: str) -> dict[str, list[str]]:
    """Pharmacy ids per tile id: each pharmacy is reported by the tile owning the first sub-district that
    holds it, one outside every sub-district by the tile owning the nearest one."""
    tile_of = {code: tile.tile_id for tile in tiles for code in tile.core}
    subdistricts = region.subdistricts.to_crs(crs)
    points = region.pharmacies.to_crs(crs).geometry
    tree = shapely.STRtree(subdistricts.geometry.to_numpy())
    where = np.full(len(points), -1, dtype=np.int64)
    point_at, polygon_at = tree.query(points.to_numpy(), predicate="intersects")
    first = pd.Series(polygon_at).groupby(point_at).min()
    where[first.index.to_numpy()] = first.to_numpy()
    outside = np.flatnonzero(where < 0)
    if len(outside):
        where[outside] = tree.query_nearest(points.to_numpy()[outside], return_distance=False, all_matches=False)[1]
    owners: dict[str, list[str]] = {}
    for pid, position in zip(region.pharmacies["pharmacy_id"].astype(str), where):
        owners.setdefault(tile_of[subdistricts["code"].iloc[position]], []).append(pid)
    return owners


def raster_paths(work_dir: Path, tile_id: str) -> dict:
    """Per service value, the tile's GeoTIFFs: ``walk_minutes`` (float32, NaN outside the core and
    beyond the horizon) and ``decisions`` (uint8 bands: decision code, circle 0/1, uncovered 0/1; 0
    outside the core)."""
    name = _file_name(tile_id)
    return {s.value: {"walk_minutes": work_dir / "rasters" / f"walk_minutes_{s.value}_{name}.tif",
                      "decisions": work_dir / "rasters" / f"decisions_{s.value}_{name}.tif"} for s in Service}


def write_tile_rasters(found: assessing.Assessment, tile: Tile, work_dir: Path) -> dict:
    """Write one tile's rasters (:func:`raster_paths`), cut to the core's cells: walk minutes, decision
    codes, circle and uncovered masks. Returns the paths (str) per service."""
    import rasterio

    grid = found.rasters.grid
    core = core_cells(found, tile)
    rows, cols = np.flatnonzero(core.any(axis=1)), np.flatnonzero(core.any(axis=0))
    window = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)) if len(rows) else (slice(0, 0), slice(0, 0))
    inside = core[window]
    transform = grid.transform @ Affine.translation(window[1].start, window[0].start)
    paths = raster_paths(work_dir, tile.tile_id)
    (work_dir / "rasters").mkdir(parents=True, exist_ok=True)
    profile = {"driver": "GTiff", "height": inside.shape[0], "width": inside.shape[1], "crs": found.network.crs,
               "transform": transform, "compress": "deflate", "tiled": inside.shape[0] >= 256 and inside.shape[1] >= 256}
    for service in Service:
        minutes = found.surfaces[service].minutes[window].astype(np.float32)
        minutes[~inside | ~np.isfinite(minutes)] = np.nan
        with rasterio.open(paths[service.value]["walk_minutes"], "w", count=1, dtype="float32", nodata=np.nan,
                           **profile) as target:
            target.write(minutes, 1)
        bands = [found.decisions(service)[window], found.rasters.circle_mask(service)[window],
                 found.rasters.uncovered_mask(service)[window]]
        with rasterio.open(paths[service.value]["decisions"], "w", count=3, dtype="uint8", nodata=0,
                           **profile) as target:
            for band, values in enumerate(bands, start=1):
                target.write(np.where(inside, values, 0).astype(np.uint8), band)
    return {s: {k: str(v) for k, v in p.items()} for s, p in paths.items()}


def _gather(futures: dict, as_completed, progress, stage: str) -> dict:
    """Results by tile id as tasks finish; a failed task stops the run with its tile's name."""
    out = {}
    for future in as_completed(list(futures)):
        tile = futures[future]
        try:
            out[tile.tile_id] = future.result()
        except TileError:
            for other in futures:
                other.cancel()
            raise
        except Exception as exc:  # a task lost beyond Dask's retries, or a transport failure
            for other in futures:
                other.cancel()
            raise TileError(f"分块 {tile.tile_id} 未完成：{exc}", f"tile {tile.tile_id} did not finish: {exc}") from exc
        if progress is not None:
            progress(stage, tile.tile_id, len(out), len(futures))
    return out


def _check_partition(region: Region, tiles: Sequence[Tile]) -> None:
    """Every sub-district in exactly one core (else a gap or a double count would follow)."""
    cores = [code for tile in tiles for code in tile.core]
    codes = set(region.subdistricts["code"])
    twice = sorted({c for c in cores if cores.count(c) > 1}) if len(cores) != len(set(cores)) else []
    missing = sorted(codes - set(cores))
    if twice or missing or set(cores) - codes:
        raise ParameterError(f"分块与街道/乡镇不对应：重复 {twice[:5]}，遗漏 {missing[:5]}",
                             f"the tiles do not partition the sub-districts: twice {twice[:5]}, missing {missing[:5]}")


def _store(source) -> NetworkStore:
    if isinstance(source, NetworkStore):
        return source
    path = Path(source)
    if path.is_dir():
        return NetworkStore.open(path)
    return store_for_file(path)


def _joined(frames: list[gpd.GeoDataFrame], name: str, crs: str) -> gpd.GeoDataFrame:
    """One layer (EPSG:4326) from the tiles' clipped pieces (``crs``, metres): each feature's pieces (same
    key columns) unioned, area figures summed."""
    keys = {"zones": ["service", "zone", "rule_ids"], "circles": ["service"], "uncovered": ["service"]}[name]
    table = pd.concat(frames, ignore_index=True)
    if table.empty:
        return gpd.GeoDataFrame(table, geometry="geometry", crs=WGS84)
    rows = []
    for key, group in table.groupby(keys, sort=False):
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        for column in group.columns:
            if column not in keys and column != "geometry" and pd.api.types.is_numeric_dtype(group[column]):
                row[column] = group[column].sum(min_count=1)
        row["geometry"] = polygonal_parts(shapely.union_all(group.geometry.to_numpy()))
        rows.append(row)
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=crs).to_crs(WGS84)


def _clipped(layer: gpd.GeoDataFrame, outline, crs: str) -> gpd.GeoDataFrame:
    """A layer (EPSG:4326) clipped to a core outline, in the network CRS ``crs`` (metres): joined there,
    then projected once (pieces projected apart may not meet exactly)."""
    metric = layer.to_crs(crs)
    metric["geometry"] = [polygonal_parts(shapely.intersection(shapely.make_valid(g), outline))
                          for g in metric.geometry.to_numpy()]
    if "area_km2" in metric.columns:
        metric["area_km2"] = metric.geometry.area / 1e6
    if "persons" in metric.columns:  # the persons beyond the budget are the core's own (the tables hold them)
        metric = metric.drop(columns="persons")
    return metric


def _plain(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(table.drop(columns="geometry", errors="ignore"))


def _file_name(tile_id: str) -> str:
    return tile_id.replace("/", "-")


@contextlib.contextmanager
def _quiet(*names: str):
    """The named loggers silenced below CRITICAL for the block (the levels they had come back)."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _temporary_folder() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="pharmacy-tiles-")
