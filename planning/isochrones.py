"""Service-circle polygons (15分钟医保定点服务圈) from the reached street segments, widened by an access width.

Method: a walk-distance surface, as GOAT, R5 and Valhalla contour theirs. The reached network is
sampled every half cell along every edge (plus every vertex, node and site position), each sample
carrying its exact walk distance (from the same formula as :meth:`ServiceAccess.point_distance`);
each raster cell keeps its smallest sample; a minimum filter with a disk of radius
``access_width_m`` spreads that value to the cells a pedestrian reaches from the street. The polygon
of a budget B is the set of cells whose value is <= B, polygonised. Every budget comes from the same
surface, so 5/10/15-minute polygons nest exactly, and the surface doubles as a walk-time heatmap.

Guarantees (c = ``cell_m``, w = ``access_width_m``, s = c/2 the sample spacing; w >= s + sqrt(2) c is
enforced):
- every network point reached within B, and every point within w - s - sqrt(2) c of one, is inside;
- every point farther than w + sqrt(2) c from all network points reached within B is outside.
No convex or concave hull is involved: rivers, rail yards and unconnected blocks stay out.
All coordinates are in the network's metric CRS until :func:`service_circles` returns EPSG:4326.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace

import numpy as np
import shapely
from affine import Affine
from rasterio import features
from scipy import ndimage

from planning.access import DEFAULT_BUDGET_MIN, DEFAULT_SPEED_M_PER_MIN, ServiceAccess, service_access
from planning.errors import ParameterError
from planning.network import Snap, WalkNetwork

#: Default raster cell, metres.
DEFAULT_CELL_M = 20.0
#: Default walking-access width, metres: how far from a reached street a home or shop door counts as
#: served (half a typical Chinese residential block depth between mapped streets is 50-100 m).
DEFAULT_ACCESS_WIDTH_M = 50.0


@dataclass(frozen=True, eq=False)
class WalkSurface:
    """A raster of walk distance to the nearest site, widened by the access width.

    ``distance_m[row, col]`` (float32, metres; ``inf`` where nothing within the horizon is near) is
    the smallest walk distance of any network point reached within ``horizon_m`` whose cell lies
    within ``access_width_m`` of this cell. ``transform`` maps (col, row) to ``crs`` metres
    (row 0 at the top, rasterio convention).
    """

    distance_m: np.ndarray
    transform: Affine
    crs: str
    cell_m: float
    access_width_m: float
    speed_m_per_min: float
    horizon_m: float

    @property
    def minutes(self) -> np.ndarray:
        """Walk time surface in minutes (``inf`` beyond the horizon)."""
        return self.distance_m / np.float32(self.speed_m_per_min)

    def within(self, horizon_m: float, *, speed_m_per_min: float | None = None) -> WalkSurface:
        """This surface cut back to a smaller horizon (metres), optionally at another walking speed; the
        twin of :meth:`ServiceAccess.within`. Each cell keeps the smallest distance of the samples near
        it, so the cells at most ``horizon_m`` hold what a surface of the smaller search would hold
        (up to float32 rounding at exactly the horizon) and the others become ``inf``.
        Returns ``self`` when nothing changes."""
        speed = self.speed_m_per_min if speed_m_per_min is None else float(speed_m_per_min)
        if horizon_m > self.horizon_m:
            raise ParameterError(
                f"新的范围 {horizon_m:g} 米超出了原栅格范围 {self.horizon_m:g} 米",
                f"a horizon of {horizon_m:g} m exceeds the surface's {self.horizon_m:g} m; compute it again")
        if horizon_m == self.horizon_m and speed == self.speed_m_per_min:
            return self
        distance = np.where(self.distance_m <= np.float32(horizon_m), self.distance_m, np.float32(np.inf))
        return replace(self, distance_m=distance, speed_m_per_min=speed, horizon_m=float(horizon_m))

    def polygon(self, minutes: float) -> shapely.MultiPolygon:
        """Area within ``minutes`` of walk (plus the access width), a MultiPolygon in ``crs`` metres."""
        budget = float(minutes) * self.speed_m_per_min
        if budget > self.horizon_m * (1 + 1e-9):
            raise ParameterError(
                f"等时圈 {minutes} 分钟超过了计算时的时间上限 {self.horizon_m / self.speed_m_per_min:g} 分钟",
                f"{minutes} minutes exceeds the surface's horizon of "
                f"{self.horizon_m / self.speed_m_per_min:g} minutes; compute access with a larger max_minutes",
            )
        return polygonize_mask(self.distance_m <= np.float32(budget), self.transform)


@dataclass(frozen=True)
class RasterGrid:
    """A raster aligned to multiples of ``cell_m`` in a metric CRS: ``n_rows`` x ``n_cols`` cells whose
    top-left corner is (``x0``, ``y_top``), metres. Surfaces and masks on one grid combine cell by cell."""

    x0: float
    y_top: float
    n_rows: int
    n_cols: int
    cell_m: float

    @classmethod
    def covering(cls, bounds: tuple[float, float, float, float], *, cell_m: float, pad_cells: int = 0) -> RasterGrid:
        """The aligned grid covering ``(xmin, ymin, xmax, ymax)`` (metres) plus ``pad_cells`` on each side."""
        xmin, ymin, xmax, ymax = bounds
        x0 = (math.floor(xmin / cell_m) - pad_cells) * cell_m
        y_top = (math.floor(ymax / cell_m) + 1 + pad_cells) * cell_m
        n_cols = int(math.floor((xmax - x0) / cell_m)) + 1 + pad_cells
        n_rows = int(math.floor((y_top - ymin) / cell_m)) + 1 + pad_cells
        return cls(x0, y_top, n_rows, n_cols, float(cell_m))

    @property
    def transform(self) -> Affine:
        return Affine.translation(self.x0, self.y_top) @ Affine.scale(self.cell_m, -self.cell_m)

    @property
    def shape(self) -> tuple[int, int]:
        return self.n_rows, self.n_cols

    def cells(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row and column of each point (k x 2, metres); points off the grid get row -1."""
        cols = np.floor((xy[:, 0] - self.x0) / self.cell_m).astype(np.int64)
        rows = np.floor((self.y_top - xy[:, 1]) / self.cell_m).astype(np.int64)
        off = (cols < 0) | (cols >= self.n_cols) | (rows < 0) | (rows >= self.n_rows)
        rows[off] = -1
        return rows, cols

    def rasterize(self, polygons, values) -> np.ndarray:
        """Integer raster of ``values`` (> 0) burnt from ``polygons`` (metres); 0 outside all."""
        return features.rasterize(zip(polygons, values), out_shape=self.shape, transform=self.transform,
                                  fill=0, dtype="int32")


def polygonize_mask(mask: np.ndarray, transform: Affine) -> shapely.MultiPolygon:
    """The cells where ``mask`` is true as one MultiPolygon (cell edges, 4-connected), in the
    transform's CRS."""
    if not mask.any():
        return shapely.MultiPolygon()
    rings = [geometry["coordinates"]
             for geometry, _ in features.shapes(mask.view(np.uint8), mask=mask, connectivity=4, transform=transform)]
    # One GEOS parse of all pieces is far cheaper than a Python Polygon per piece.
    result = shapely.from_geojson(json.dumps({"type": "MultiPolygon", "coordinates": rings}))
    if not result.is_valid:  # rings touching at a cell corner
        result = shapely.make_valid(result)
    return result


def points_mask(xy: np.ndarray, *, cell_m: float, width_m: float, grid: RasterGrid | None = None):
    """Boolean raster of the cells within ``width_m`` of the points, and its transform."""
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    if len(xy) == 0:
        grid = grid or RasterGrid(0.0, 0.0, 1, 1, cell_m)
        return np.zeros(grid.shape, dtype=bool), grid.transform
    spread, transform = _grid_minimum(xy, np.zeros(len(xy)), cell_m=cell_m, width_m=width_m, grid=grid)
    return spread <= 0, transform


def _grid_minimum(xy: np.ndarray, value: np.ndarray, *, cell_m: float, width_m: float,
                  grid: RasterGrid | None = None):
    """Smallest ``value`` per cell of a grid aligned to multiples of ``cell_m`` (``grid``, or one fitted
    to the points), spread by a disk of radius ``width_m`` (minimum filter); returns the float32 grid
    (inf where empty) and its transform."""
    radius_cells = int(math.floor(width_m / cell_m))
    if grid is None:
        bounds = (xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max(), xy[:, 1].max())
        grid = RasterGrid.covering(bounds, cell_m=cell_m, pad_cells=radius_cells + 1)
    rows, cols = grid.cells(xy)
    on = rows >= 0
    flat = np.full(grid.n_rows * grid.n_cols, np.inf, dtype=np.float32)
    np.minimum.at(flat, rows[on] * grid.n_cols + cols[on], value[on].astype(np.float32))
    offsets = np.arange(-radius_cells, radius_cells + 1)
    disk = np.hypot(*np.meshgrid(offsets, offsets)) * cell_m <= width_m
    spread = ndimage.minimum_filter(flat.reshape(grid.shape), footprint=disk, mode="constant", cval=np.inf)
    return spread, grid.transform


def walk_surface(
    access: ServiceAccess,
    *,
    cell_m: float = DEFAULT_CELL_M,
    access_width_m: float = DEFAULT_ACCESS_WIDTH_M,
    grid: RasterGrid | None = None,
) -> WalkSurface:
    """The walk-distance surface of a service's sites up to the access result's horizon (see module doc).

    ``grid`` fixes the raster (e.g. one grid for every service of an assessment, so their masks combine
    cell by cell); by default the grid is fitted to the reached network.

    Raises :class:`ParameterError` when the horizon is unbounded (use a finite ``max_minutes``) or
    when ``access_width_m < cell_m * (0.5 + sqrt(2))`` (the containment guarantee needs it).
    """
    if not np.isfinite(access.max_distance_m):
        raise ParameterError("等时圈需要有限的时间上限", "service circles need a finite max_minutes horizon")
    if not cell_m > 0 or access_width_m < cell_m * (0.5 + math.sqrt(2)):
        raise ParameterError(
            f"步行接入宽度 {access_width_m} 米至少应为栅格 {cell_m} 米的 1.92 倍",
            f"access_width_m ({access_width_m}) must be >= 1.92 x cell_m ({cell_m}) and cell_m > 0",
        )
    xy, distance = _reached_samples(access, spacing_m=cell_m / 2)
    horizon = access.max_distance_m
    if len(xy) == 0:
        grid = grid or RasterGrid(0.0, 0.0, 1, 1, cell_m)
        return WalkSurface(np.full(grid.shape, np.inf, dtype=np.float32), grid.transform, access.network.crs,
                           cell_m, access_width_m, access.speed_m_per_min, horizon)
    spread, transform = _grid_minimum(xy, distance, cell_m=cell_m, width_m=access_width_m, grid=grid)
    return WalkSurface(spread, transform, access.network.crs, float(cell_m), float(access_width_m),
                       access.speed_m_per_min, horizon)


def service_circles(
    access: ServiceAccess,
    minutes: tuple[float, ...] = (DEFAULT_BUDGET_MIN,),
    *,
    cell_m: float = DEFAULT_CELL_M,
    access_width_m: float = DEFAULT_ACCESS_WIDTH_M,
):
    """Service-circle polygons of all sites of one service, one row per budget, EPSG:4326.

    Returns a GeoDataFrame with columns ``minutes``, ``area_km2`` and ``geometry`` (MultiPolygon).
    """
    import geopandas as gpd

    surface = walk_surface(access, cell_m=cell_m, access_width_m=access_width_m)
    polygons = [surface.polygon(m) for m in minutes]
    gdf = gpd.GeoDataFrame(
        {"minutes": list(minutes), "area_km2": [p.area / 1e6 for p in polygons]},
        geometry=polygons, crs=access.network.crs,
    )
    return gdf.to_crs("EPSG:4326")


def site_circle(
    network: WalkNetwork,
    site: Snap,
    minutes: float = DEFAULT_BUDGET_MIN,
    *,
    speed_m_per_min: float = DEFAULT_SPEED_M_PER_MIN,
    cell_m: float = DEFAULT_CELL_M,
    access_width_m: float = DEFAULT_ACCESS_WIDTH_M,
) -> shapely.MultiPolygon:
    """The service circle of a single site (a one-row :class:`Snap`), in the network CRS (metres)."""
    if len(site) != 1:
        raise ParameterError("只能传入一个站点", "site must hold exactly one snapped site")
    access = service_access(network, site, speed_m_per_min=speed_m_per_min, max_minutes=minutes)
    return walk_surface(access, cell_m=cell_m, access_width_m=access_width_m).polygon(minutes)


def _reached_samples(access: ServiceAccess, *, spacing_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Points (k x 2, metres) on the reached network at most ``spacing_m`` apart along every edge (both
    ends included) plus every site position, with their exact walk distance (metres, <= horizon)."""
    net = access.network
    horizon = access.max_distance_m
    d = access.node_distance_m
    sites = access.sites
    edge, t, xy = net.edge_samples(spacing_m)
    value = np.minimum(d[net.edge_u[edge]] + t, d[net.edge_v[edge]] + (net.edge_length[edge] - t))

    # Sites on an edge reach its points without passing a node.
    on_sites = np.flatnonzero(sites.on_network & (sites.access_m <= horizon))
    if len(on_sites):
        edge_has_site = np.zeros(net.n_edges, dtype=bool)
        edge_has_site[sites.edge[on_sites]] = True
        rows = np.flatnonzero(edge_has_site[edge])
        value[rows] = np.minimum(value[rows], access.same_edge_distance(edge[rows], t[rows])[0])
        site_xy = net.points_at(sites.edge[on_sites], sites.offset_m[on_sites])
        xy = np.concatenate([xy, site_xy])
        value = np.concatenate([value, sites.access_m[on_sites]])

    keep = value <= horizon
    return xy[keep], value[keep]
