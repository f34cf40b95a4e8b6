"""Where people work (MDJ-2025 art. 14): an optional worker layer weighed into the demand points.

Art. 14 gives priority to blank or underserved **residential and work areas** (居住区域和工作区域). The
resident points of :mod:`planning.coverage` say where people live; a :class:`WorkerLayer` says where
people work, as places with a number of workers (persons):

- ``points``: workplaces given as points (a GeoJSON / CSV with lon/lat and a workers column);
- ``subdistricts``: a table of workers per sub-district (就业人数, 从业人员, ...), each spread over its
  streets like its residents;
- ``osm_estimate``: an **estimate** from the network file's tags (:func:`estimate_workers_from_osm`):
  buildings tagged office / commercial / retail / industrial (floor area x :data:`WORKERS_PER_FLOOR_M2`)
  and land use commercial / retail / industrial without such buildings (land area x
  :data:`WORKERS_PER_LAND_M2`). The densities are this module's planning assumptions, not measurements;
  every output built on them says so (:meth:`WorkerLayer.note`). A bureau's own employment figures
  should replace them.

A policy's ``[demand] workers_weight`` (:attr:`planning.policy.Policy.workers_weight`, 0 by default,
per service) says how much a worker counts against a resident. With a weight > 0 the assessment
appends one demand point per workplace (:func:`place_workers`): a point place is snapped to the
network; an areal place (a sub-district, a land-use polygon) is spread over the street points inside
it by street length. Each such point weighs ``workers x weight`` persons in the service's demand, so
coverage, persons beyond the walk time, R3 priorities, classes measured on demand, E2SFCA, siting and
the click all read the same demand points. With weight 0 (the default) nothing changes.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planning.coverage import Residents
from planning.errors import SchemaError
from planning.geometry import first_containing
from planning.model import WGS84, Region
from planning.network import Snap, WalkNetwork
from planning.text import Text

#: Workers per m² of floor area of a building by its ``building`` (or ``office=*``: "office") tag: one
#: worker per 15 m² of office, 40 m² of shop or commercial floor, 60 m² of industrial floor (planning
#: assumptions of this module, not measured figures).
WORKERS_PER_FLOOR_M2: dict[str, float] = {"office": 1 / 15, "commercial": 1 / 40, "retail": 1 / 40,
                                          "industrial": 1 / 60}
#: Workers per m² of land of a ``landuse`` polygon holding none of those buildings: 100 per hectare of
#: commercial or retail land, 40 per hectare of industrial land (planning assumptions, not measured).
WORKERS_PER_LAND_M2: dict[str, float] = {"commercial": 0.01, "retail": 0.01, "industrial": 0.004}
#: The OSM tag values above in Chinese (the estimate's note).
_TAG_ZH = {"office": "办公", "commercial": "商业", "retail": "零售", "industrial": "工业"}
#: Floors of a building without a ``building:levels`` tag.
DEFAULT_FLOORS = 1.0

#: What each basis of a worker layer is, in words.
BASES: dict[str, Text] = {
    "points": Text("就业地点", "workplace points"),
    "subdistricts": Text("各街道/乡镇就业人数", "workers per sub-district"),
    "osm_estimate": Text("按路网文件土地利用和建筑估算", "estimated from the network file's land use and buildings"),
}


@dataclass(frozen=True, eq=False)
class WorkerLayer:
    """Where people work: ``places`` (GeoDataFrame, EPSG:4326) with ``workers`` (float persons >= 0),
    ``kind`` (text: "workplace", "subdistrict", an OSM tag value), optionally ``name``, and a Point or
    (Multi)Polygon geometry;
    ``basis`` one of :data:`BASES`; ``source`` the file it came from ("" when built in code);
    ``unmatched`` the rows of a per-sub-district table that named no sub-district; ``rows_rejected`` the
    rows the reader rejected."""

    places: gpd.GeoDataFrame
    basis: str
    source: str = ""
    unmatched: tuple[str, ...] = ()
    rows_rejected: int = 0  # rows of the file the reader rejected (blank workers, bad coordinates)

    def __post_init__(self):
        if self.basis not in BASES:
            raise SchemaError(f"就业人员图层的来源应为 {list(BASES)} 之一", f"a worker layer's basis must be one of {list(BASES)}")
        places = self.places
        if not isinstance(places, gpd.GeoDataFrame) or places.crs is None or "workers" not in places.columns:
            raise SchemaError("就业人员图层必须是带坐标系和“workers”列的 GeoDataFrame",
                              "a worker layer must be a GeoDataFrame with a CRS and a 'workers' column")
        workers = pd.to_numeric(places["workers"], errors="coerce").to_numpy(dtype=float)
        if not (np.isfinite(workers) & (workers >= 0)).all():
            raise SchemaError("就业人数必须是非负数", "workers must be numbers >= 0")
        kinds = set(shapely.get_type_id(places.geometry.to_numpy()).tolist())
        if not kinds <= {0, 3, 6}:
            raise SchemaError("就业地点应为点或面", "workplaces must be points or polygons")
        places = places.to_crs(WGS84) if places.crs != WGS84 else places
        if "kind" not in places.columns:
            places = places.assign(kind="workplace")
        object.__setattr__(self, "places", places.assign(workers=workers).reset_index(drop=True))

    @property
    def total(self) -> float:
        """Workers in the layer, persons."""
        return float(self.places["workers"].sum())

    def note(self) -> Text:
        """One line for outputs: the basis, places and total; for an OSM estimate the assumptions."""
        words = BASES[self.basis]
        head = Text(f"{words.zh}：{len(self.places):,} 处，合计 {self.total:,.0f} 人",
                    f"{words.en}: {len(self.places):,} places, {self.total:,.0f} workers in all")
        if self.basis == "osm_estimate":
            floor = "、".join(f"{_TAG_ZH[k]}每 {1 / v:g} 平方米建筑面积 1 人" for k, v in WORKERS_PER_FLOOR_M2.items())
            land = "、".join(f"{_TAG_ZH[k]}每公顷 {v * 10_000:g} 人" for k, v in WORKERS_PER_LAND_M2.items())
            floor_en = ", ".join(f"{k} 1 per {1 / v:g} m² of floor" for k, v in WORKERS_PER_FLOOR_M2.items())
            land_en = ", ".join(f"{k} {v * 10_000:g} per ha" for k, v in WORKERS_PER_LAND_M2.items())
            head = Text(f"{head.zh}（估算值，假设：建筑 {floor}；无此类建筑的用地 {land}；无层数按 {DEFAULT_FLOORS:g} 层）",
                        f"{head.en} (an estimate; assumed: buildings {floor_en}; land use without such buildings "
                        f"{land_en}; {DEFAULT_FLOORS:g} floor without a levels tag)")
        if self.unmatched:
            head = Text(f"{head.zh}；{len(self.unmatched)} 行未匹配到街道/乡镇：{list(self.unmatched)[:5]}",
                        f"{head.en}; {len(self.unmatched)} rows matched no sub-district: {list(self.unmatched)[:5]}")
        return head


def worker_points(places: gpd.GeoDataFrame, *, column: str = "workers", source: str = "") -> WorkerLayer:
    """Workplaces as points or polygons with their workers in ``column`` (persons; any CRS)."""
    if column not in places.columns:
        raise SchemaError(f"就业地点缺少“{column}”列", f"the workplaces lack a '{column}' column")
    renamed = places.rename(columns={column: "workers"})
    keep = [c for c in ("workers", "kind", "name") if c in renamed.columns] + [renamed.geometry.name]
    return WorkerLayer(places=gpd.GeoDataFrame(renamed[keep], geometry=renamed.geometry.name, crs=places.crs),
                       basis="points", source=source)


def workers_per_subdistrict(table: pd.DataFrame, subdistricts: gpd.GeoDataFrame, *, source: str = "") -> WorkerLayer:
    """Workers per sub-district from a table with ``workers`` and ``code`` and/or ``name`` (code first,
    then name); each matched sub-district becomes one areal place (its outline). Rows matching none
    are listed in :attr:`WorkerLayer.unmatched`; rows matching one already matched add to it."""
    codes = subdistricts["code"].astype(str).tolist()
    by_name = {name: code for name, code in zip(subdistricts["name"], codes)
               if (subdistricts["name"] == name).sum() == 1}
    found: dict[str, float] = {}
    unmatched = []
    for row in table.itertuples(index=False):
        code = str(getattr(row, "code", "") or "")
        name = str(getattr(row, "name", "") or "")
        target = code if code in codes else by_name.get(name)
        if target is None:
            unmatched.append(code or name)
            continue
        found[target] = found.get(target, 0.0) + float(row.workers)
    outlines = subdistricts.set_index(subdistricts["code"].astype(str)).geometry
    places = gpd.GeoDataFrame({"workers": list(found.values()), "kind": "subdistrict",
                               "code": list(found)}, geometry=[outlines[c] for c in found], crs=subdistricts.crs)
    return WorkerLayer(places=places, basis="subdistricts", source=source, unmatched=tuple(unmatched))


def estimate_workers_from_osm(path: str | os.PathLike) -> WorkerLayer:
    """An estimate of where people work from an OSM XML/PBF file's closed ways (module docstring):
    buildings tagged building=office|commercial|retail|industrial or office=* (floor area in a local UTM
    zone x ``building:levels``, default :data:`DEFAULT_FLOORS`, x :data:`WORKERS_PER_FLOOR_M2`), and
    landuse=commercial|retail|industrial polygons holding none of those buildings (land area x
    :data:`WORKERS_PER_LAND_M2`). Read with pyosmium."""
    import osmium

    buildings, land = [], []
    processor = osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY).with_locations()
    for way in processor:
        if not way.is_way():
            continue
        tags = way.tags
        kind = "office" if "office" in tags and "building" in tags else tags.get("building")
        use = tags.get("landuse")
        if kind not in WORKERS_PER_FLOOR_M2 and use not in WORKERS_PER_LAND_M2:
            continue
        xy = [(n.location.lon, n.location.lat) for n in way.nodes if n.location.valid()]
        if len(xy) < 4 or xy[0] != xy[-1]:
            continue
        shape = shapely.make_valid(shapely.Polygon(xy))
        if shape.is_empty or shape.area == 0:
            continue
        if kind in WORKERS_PER_FLOOR_M2:
            buildings.append((kind, _levels(tags.get("building:levels")), shape))
        else:
            land.append((use, shape))
    frames = []
    if buildings:
        b = gpd.GeoDataFrame({"kind": [k for k, _, _ in buildings], "floors": [f for _, f, _ in buildings]},
                             geometry=[s for _, _, s in buildings], crs=WGS84)
        area = b.to_crs(b.estimate_utm_crs()).area.to_numpy()
        b["workers"] = area * b["floors"].to_numpy() * b["kind"].map(WORKERS_PER_FLOOR_M2).to_numpy()
        frames.append(b.assign(geometry=b.geometry.representative_point())[["kind", "workers", "geometry"]])
    if land:
        u = gpd.GeoDataFrame({"kind": [k for k, _ in land]}, geometry=[s for _, s in land], crs=WGS84)
        if buildings:  # land holding a counted building is counted by its buildings
            held = first_containing(u.geometry, shapely.get_coordinates(frames[0].geometry.to_numpy()))
            u = u[~np.isin(np.arange(len(u)), held[held >= 0])]
        area = u.to_crs(u.estimate_utm_crs()).area.to_numpy() if len(u) else np.zeros(0)
        u = u.assign(workers=area * u["kind"].map(WORKERS_PER_LAND_M2).to_numpy())
        frames.append(u[["kind", "workers", "geometry"]])
    places = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=WGS84) if frames else \
        gpd.GeoDataFrame({"kind": [], "workers": []}, geometry=[], crs=WGS84)
    return WorkerLayer(places=places, basis="osm_estimate", source=os.path.basename(str(path)))


def _levels(text) -> float:
    try:
        value = float(str(text).strip())
    except (TypeError, ValueError):
        return DEFAULT_FLOORS
    return value if np.isfinite(value) and value >= 1 else DEFAULT_FLOORS


def place_workers(residents: Residents, network: WalkNetwork, subdistricts: gpd.GeoDataFrame,
                  layer: WorkerLayer | None, *, max_snap_m: float) -> Residents:
    """``residents`` (their resident points only) followed by one point per workplace of ``layer``
    (module docstring): ``persons`` 0, ``street_m`` 0, ``workers`` the persons working there, placed in
    the sub-district holding it (-1 outside every one: it then weighs nothing). A point place is snapped
    within ``max_snap_m`` metres; an areal place is spread over the resident points inside it (by their
    street length, evenly when they stand for none), or put at its representative point when none lies
    inside. Places with no worker are left out."""
    base = residents.residents_only()
    if layer is None:
        return base
    places = layer.places[layer.places["workers"] > 0].to_crs(network.crs)
    if not len(places):
        return base
    geoms = places.geometry.to_numpy()
    workers = places["workers"].to_numpy(dtype=float)
    areal = np.isin(shapely.get_type_id(geoms), [3, 6])
    owner = first_containing(geoms[areal], base.xy) if areal.any() else np.full(len(base), -1)
    inside = np.flatnonzero(owner >= 0)
    n_areal = int(areal.sum())
    length = np.bincount(owner[inside], weights=base.street_m[inside], minlength=n_areal)
    count = np.bincount(owner[inside], minlength=n_areal)
    mine = owner[inside]
    share = np.where(length[mine] > 0, base.street_m[inside] / np.where(length[mine] > 0, length[mine], 1),
                     1 / np.maximum(count[mine], 1))
    spread_workers = workers[areal][mine] * share
    inside, spread_workers = inside[spread_workers > 0], spread_workers[spread_workers > 0]  # a point of no street
    lone = np.concatenate([np.flatnonzero(~areal), np.flatnonzero(areal)[count == 0]])
    lone_xy = shapely.get_coordinates(shapely.point_on_surface(geoms[lone])).reshape(-1, 2)
    lone_snap = network.snap(lone_xy, max_snap_m=max_snap_m)
    polygons = subdistricts.to_crs(network.crs).geometry.to_numpy()
    snap = Snap.joined(Snap.joined(base.snap, base.snap.subset(inside)), lone_snap)
    return Residents(
        snap=snap,
        persons=np.concatenate([base.persons, np.zeros(len(inside) + len(lone))]),
        subdistrict=np.concatenate([base.subdistrict, base.subdistrict[inside], first_containing(polygons, lone_xy)]),
        xy=np.concatenate([base.xy, base.xy[inside], lone_xy]),
        street_m=np.concatenate([base.street_m, np.zeros(len(inside) + len(lone))]),
        workers=np.concatenate([np.zeros(len(base)), spread_workers, workers[lone]]),
    )


def attach_workers(region: Region, layer: WorkerLayer) -> Region:
    """``region`` with ``layer`` as its worker layer; a region built from files also lists it in its
    data-completeness table (source, places, the estimate's assumptions)."""
    region = dataclasses.replace(region, workers=layer)
    if region.completeness is None:
        return region
    from planning.completeness import LayerStatus

    rejected = len(layer.unmatched) + layer.rows_rejected
    status = LayerStatus(layer="workers", source=layer.source, rows_read=len(layer.places) + rejected,
                         clean=len(layer.places), rejected=rejected, notes=(layer.note().both(),))
    layers = tuple(s for s in region.completeness.layers if s.layer != "workers") + (status,)
    return dataclasses.replace(region, completeness=dataclasses.replace(region.completeness, layers=layers))


#: The data-completeness note of a policy that weighs workers when the region has no worker layer.
NO_WORKER_LAYER = Text("策略计入就业人员（workers_weight > 0），但没有就业人员图层：需求只按居民计算，工作区域未计入 R3 优先区",
                       "the policy weighs workers (workers_weight > 0) but there is no worker layer: demand counts "
                       "residents only, and no work area enters the R3 priorities")


def worker_status(region: Region, policy) -> tuple[Region, tuple[str, ...]]:
    """What the outputs say of the worker layer under ``policy``: the region (its data-completeness table
    gains a "workers" row marked missing when the policy weighs workers and the region has no layer) and
    the assessment notes ("中文 / English" lines: the layer counted, or missing, or given but weighed 0)."""
    if region.workers is not None:
        if not policy.weighs_workers:
            return region, (Text("就业人员图层已提供，但策略的 workers_weight 为 0：未计入需求",
                                 "a worker layer is given, but the policy's workers_weight is 0: not counted").both(),)
        weights = "、".join(f"{s.label('zh')} {w:g}" for s, w in policy.workers_weight.items())
        weights_en = ", ".join(f"{s.label('en')} {w:g}" for s, w in policy.workers_weight.items())
        return region, (Text(f"{region.workers.note().zh}；计入需求的权重：{weights}",
                             f"{region.workers.note().en}; weight in the demand: {weights_en}").both(),)
    if not policy.weighs_workers:
        return region, ()
    if region.completeness is not None and region.completeness.layer("workers") is None:
        from planning.completeness import LayerStatus

        status = LayerStatus(layer="workers", missing=("workers",), notes=(NO_WORKER_LAYER.both(),))
        region = dataclasses.replace(region, completeness=dataclasses.replace(
            region.completeness, layers=region.completeness.layers + (status,)))
    return region, (NO_WORKER_LAYER.both(),)


#: What the outputs say when there is no worker layer and the policy weighs none.
NOT_GIVEN = Text("未提供就业人员图层：需求只按居民计算", "no worker layer given: demand counts residents only")


def worker_summary(region: Region, policy) -> Text:
    """One text for a report's data section: the notes of :func:`worker_status` (the layer counted with
    its weight per service, given but weighed 0, or asked for but missing), else :data:`NOT_GIVEN`."""
    notes = [Text.parse(note) for note in worker_status(region, policy)[1]]
    if not notes:
        return NOT_GIVEN
    return Text("；".join(n.zh for n in notes), "; ".join(n.en for n in notes))


#: ``load_workers(OSM_ESTIMATE, region)``: estimate the worker layer from the region's network file.
OSM_ESTIMATE = "osm"


def load_workers(source, region: Region, *, crs: str = "wgs84") -> Region:
    """The notebook's and the CLI's one call: ``region`` with its worker layer read from ``source`` and
    attached (:func:`attach_workers`), the rejected rows of the file appended to ``region.rejected``.

    ``source`` is :data:`OSM_ESTIMATE` (estimate from ``region.network_path``,
    :func:`estimate_workers_from_osm`) or a file read by :func:`planning.ingest.read_workers`:
    workplaces as points or polygons, or a table of workers per sub-district (matched by code, then
    name). ``crs`` declares a GCJ-02/BD-09 offset of the coordinates."""
    from planning.ingest import read_workers, rejected_table

    if str(source) == OSM_ESTIMATE and not os.path.exists(str(source)):
        if region.network_path is None:
            raise SchemaError("没有路网文件，无法估算就业人员", "no network file to estimate the workers from")
        return attach_workers(region, estimate_workers_from_osm(region.network_path))
    result = read_workers(source, crs=crs)
    if isinstance(result.clean, gpd.GeoDataFrame):
        layer = worker_points(result.clean, source=result.source)
    else:
        layer = workers_per_subdistrict(result.clean, region.subdistricts, source=result.source)
    rejected = rejected_table(result)
    if len(rejected):
        region = dataclasses.replace(region, rejected=pd.concat([region.rejected, rejected], ignore_index=True)
                                     if len(region.rejected) else rejected)
    return attach_workers(region, dataclasses.replace(layer, rows_rejected=result.n_rejected))
