"""Service-circle polygons (15分钟医保定点服务圈): the cells whose centre is within the walk budget by the
one rule of a place's walk time.

A place's walk time (the designation check's click, a resident point, a siting candidate and every map
cell alike): snap it to the network by :meth:`WalkNetwork.snap`'s tiered rule (ground streets before
tunnels and bridges, the connected city before stranded pieces, nearest edge of the best class within the
maximum snap distance ``max_snap_m``), count the straight access walk from the place to that street, and
add the exact network distance to the nearest site (:meth:`ServiceAccess.point_distance`). There is no
separate access band: the maximum snap distance is the only limit on the access walk, for the map, the
click and the tables alike.

The walk surface evaluates that rule at every cell centre: the centres are snapped by
:meth:`WalkNetwork.snap_cells` (the same tiered rule, vectorised with a distance transform, kept on the
network per raster) and answered by the same :meth:`ServiceAccess.point_distance`. The polygon of a budget
B is the set of cells whose value is <= B, polygonised; every budget comes from one surface, so 5/10/15-
minute polygons nest exactly, and the surface doubles as a walk-time heatmap.

Guarantees (tested in ``tests/test_isochrones.py`` and ``tests/test_one_truth.py``):
- at every cell centre the surface holds the point query's walk distance there (the same access walk to
  1e-6 m; the same street except where two streets are equally near), so a click at a cell centre reads
  what the cell shows; a point elsewhere in the cell differs only where its walk time crosses the budget
  within the cell;
- polygons of several budgets from one surface nest exactly (a smaller budget's cells are a subset);
- :meth:`WalkSurface.within` equals a surface of the smaller search (cut-back reuse stays exact).
No convex or concave hull is involved: rivers, rail yards and unconnected blocks stay out unless a street
is within the snap distance.
All coordinates are in the network's metric CRS until :func:`service_circles` returns EPSG:4326.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

import numpy as np
import shapely
from affine import Affine
from rasterio import features
from scipy import ndimage

from planning.access import DEFAULT_BUDGET_MIN, DEFAULT_SPEED_M_PER_MIN, ServiceAccess, service_access
from planning.bulk import collector_paused
from planning.errors import ParameterError
from planning.network import DEFAULT_MAX_SNAP_M, Snap, WalkNetwork

#: Default raster cell, metres.
DEFAULT_CELL_M = 20.0
#: Default width of the uncovered residential area around a resident point beyond the budget, metres
#: (half a typical Chinese residential block depth between mapped streets is 50-100 m). The circles
#: need no width: each cell has its own walk time (module docstring).
DEFAULT_ACCESS_WIDTH_M = 50.0
#: Cells whose walk distance is computed at once (bounds the temporaries of a large surface).
_CELL_CHUNK = 1 << 18


@dataclass(frozen=True, eq=False)
class WalkSurface:
    """A raster of walk distance to the nearest site by the one rule of a place's walk time.

    ``distance_m[row, col]`` (float32, metres) is the walk distance from the cell's centre
    (:meth:`ServiceAccess.point_distance` of the centre snapped within ``max_snap_m``); ``inf`` where it
    exceeds ``horizon_m`` or no street is within ``max_snap_m``. ``transform`` maps (col, row) to ``crs``
    metres (row 0 at the top, rasterio convention). ``judgeable`` (bool, same shape; None when not
    computed) is where a click would get a walk time at all: the centre snaps to a street within
    ``max_snap_m``, on a network piece that holds a site of the service (elsewhere the click answers
    "not judged": off the network, or no site on its piece; :func:`planning.screening.read_places`).
    """

    distance_m: np.ndarray
    transform: Affine
    crs: str
    cell_m: float
    max_snap_m: float
    speed_m_per_min: float
    horizon_m: float
    judgeable: np.ndarray | None = None

    @property
    def minutes(self) -> np.ndarray:
        """Walk time surface in minutes (``inf`` beyond the horizon)."""
        return self.distance_m / np.float32(self.speed_m_per_min)

    def within(self, horizon_m: float, *, speed_m_per_min: float | None = None) -> WalkSurface:
        """This surface cut back to a smaller horizon (metres), optionally at another walking speed; the
        twin of :meth:`ServiceAccess.within`. A cell's value is its centre's point query, which the
        smaller search answers alike wherever it is at most ``horizon_m``, so those cells keep their
        value (up to float32 rounding at exactly the horizon) and the others become ``inf``.
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
        """The cells whose centre is within ``minutes`` of walk, a MultiPolygon in ``crs`` metres."""
        budget = float(minutes) * self.speed_m_per_min
        if budget > self.horizon_m * (1 + 1e-9):
            raise ParameterError(
                f"等时圈 {minutes} 分钟超过了计算时的时间上限 {self.horizon_m / self.speed_m_per_min:g} 分钟",
                f"{minutes} minutes exceeds the surface's horizon of "
                f"{self.horizon_m / self.speed_m_per_min:g} minutes; compute access with a larger max_minutes",
            )
        return polygonize_mask(self.mask(minutes), self.transform)

    def mask(self, minutes: float) -> np.ndarray:
        """The cells of :meth:`polygon` (bool raster)."""
        return self.distance_m <= np.float32(float(minutes) * self.speed_m_per_min)

    @property
    def grid(self) -> RasterGrid:
        """The raster grid of this surface."""
        return RasterGrid(self.transform.c, self.transform.f, *self.distance_m.shape, self.cell_m)

    def at(self, xy: np.ndarray) -> np.ndarray:
        """The walk distance (metres) the map shows at each point (k x 2, ``crs`` metres): the value of the
        cell holding it; ``inf`` off the raster."""
        rows, cols = self.grid.cells(np.asarray(xy, dtype=float).reshape(-1, 2))
        out = np.full(len(rows), np.inf, dtype=np.float32)
        on = rows >= 0
        out[on] = self.distance_m[rows[on], cols[on]]
        return out


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


def settled_cells(mask: np.ndarray) -> np.ndarray:
    """The cells whose 3 x 3 neighbourhood is all in or all out of ``mask`` (bool raster): a point farther
    than one cell diagonal from the edge of the mask's polygon always lies in such a cell."""
    return ndimage.minimum_filter(mask, size=3, mode="nearest") == ndimage.maximum_filter(mask, size=3, mode="nearest")


def polygonize_mask(mask: np.ndarray, transform: Affine) -> shapely.MultiPolygon:
    """The cells where ``mask`` is true as one MultiPolygon (cell edges, 4-connected), in the
    transform's CRS."""
    if not mask.any():
        return shapely.MultiPolygon()
    # Only the rows and columns holding a true cell are traced (the same rings: the transform moves with
    # the window by whole cells).
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    window = np.ascontiguousarray(mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1])
    window_transform = transform @ Affine.translation(int(cols[0]), int(rows[0]))
    with collector_paused():  # rasterio returns every vertex as a Python tuple (planning.bulk)
        polygons = [geometry["coordinates"] for geometry, _ in
                    features.shapes(window.view(np.uint8), mask=window, connectivity=4, transform=window_transform)]
        rings = [ring for polygon in polygons for ring in polygon]
        xy = np.array(list(itertools.chain.from_iterable(rings)), dtype=float)
    # One GEOS call per level (rings, polygons: the first ring of each is its shell) instead of a Python
    # Polygon per piece.
    ring_sizes = np.fromiter(map(len, rings), dtype=np.int64, count=len(rings))
    linear_rings = shapely.linearrings(xy, indices=np.repeat(np.arange(len(rings)), ring_sizes))
    polygon_of_ring = np.repeat(np.arange(len(polygons)), [len(polygon) for polygon in polygons])
    result = shapely.multipolygons(shapely.polygons(linear_rings, indices=polygon_of_ring))
    if not _simple_rings(xy, ring_sizes) and not result.is_valid:  # a ring pinched at a cell corner
        result = shapely.make_valid(result)
    return result


def _simple_rings(xy: np.ndarray, ring_sizes: np.ndarray) -> bool:
    """Whether no ring (its vertices ``xy``, ``ring_sizes`` per ring, each closed) passes through a vertex
    twice. The rings of a mask's 4-connected cells run along cell edges, so they can meet only at cell
    corners; a polygon is then invalid only where one of its rings is pinched at a corner (the interior
    of edge-connected cells is connected, different polygons meet at points), and where none is the
    polygons are valid without GEOS's full check (most of the polygon time of large masks)."""
    ring = np.repeat(np.arange(len(ring_sizes)), ring_sizes)
    own = np.ones(len(xy), dtype=bool)
    own[np.cumsum(ring_sizes) - 1] = False  # the closing vertex repeats the first
    ring, x, y = ring[own], xy[own, 0], xy[own, 1]
    order = np.lexsort((y, x, ring))
    ring, x, y = ring[order], x[order], y[order]
    return not bool(((ring[1:] == ring[:-1]) & (x[1:] == x[:-1]) & (y[1:] == y[:-1])).any())


def points_mask(xy: np.ndarray, *, cell_m: float, width_m: float, grid: RasterGrid | None = None):
    """Boolean raster of the cells within ``width_m`` of the points, and its transform: the cells whose
    offset from a point's cell (rows, columns) lies in the disk ``hypot(rows, columns) * cell_m <= width_m``.
    ``grid`` fixes the raster; by default one aligned to multiples of ``cell_m`` is fitted to the points.

    The disk is a union of row segments, so the dilation is one running maximum along the rows per segment
    width, shifted by its row offset (exact; a few passes instead of a 2-D filter per cell)."""
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    if len(xy) == 0:
        grid = grid or RasterGrid(0.0, 0.0, 1, 1, cell_m)
        return np.zeros(grid.shape, dtype=bool), grid.transform
    radius_cells = int(math.floor(width_m / cell_m))
    if grid is None:
        bounds = (xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max(), xy[:, 1].max())
        grid = RasterGrid.covering(bounds, cell_m=cell_m, pad_cells=radius_cells + 1)
    hit = np.zeros(grid.shape, dtype=np.uint8)
    for start in range(0, len(xy), _CELL_CHUNK):  # bounded temporaries (millions of resident points)
        rows, cols = grid.cells(xy[start:start + _CELL_CHUNK])
        on = rows >= 0
        hit[rows[on], cols[on]] = 1
    offsets = np.arange(-radius_cells, radius_cells + 1)
    disk = np.hypot(*np.meshgrid(offsets, offsets)) * cell_m <= width_m  # rows: row offset, columns: column offset
    out = np.zeros(grid.shape, dtype=bool)
    along_rows: dict[int, np.ndarray] = {}  # half width -> the hits spread that far along each row
    n_rows = grid.n_rows
    for row_offset, segment in zip(offsets.tolist(), disk):
        if not segment.any() or abs(row_offset) >= n_rows:
            continue
        half = int(np.abs(offsets[segment]).max())
        if half not in along_rows:
            along_rows[half] = ndimage.maximum_filter1d(hit, 2 * half + 1, axis=1, mode="constant", cval=0).view(bool)
        spread = along_rows[half]
        if row_offset >= 0:  # out[i] |= spread[i + row_offset]
            out[:n_rows - row_offset] |= spread[row_offset:]
        else:
            out[-row_offset:] |= spread[:n_rows + row_offset]
    return out, grid.transform


def walk_surface(
    access: ServiceAccess,
    *,
    cell_m: float = DEFAULT_CELL_M,
    max_snap_m: float = DEFAULT_MAX_SNAP_M,
    grid: RasterGrid | None = None,
) -> WalkSurface:
    """The walk-distance surface of a service's sites up to the access result's horizon (module doc): at
    each cell centre, :meth:`ServiceAccess.point_distance` of the centre snapped within ``max_snap_m``.

    ``grid`` fixes the raster (e.g. one grid for every service of an assessment, so their masks combine
    cell by cell); by default it covers the reached streets and the snap distance around them.

    Raises :class:`ParameterError` when the horizon is unbounded (use a finite ``max_minutes``) or
    ``cell_m`` / ``max_snap_m`` are not positive.
    """
    if not np.isfinite(access.max_distance_m):
        raise ParameterError("等时圈需要有限的时间上限", "service circles need a finite max_minutes horizon")
    if not (cell_m > 0 and max_snap_m > 0):
        raise ParameterError(f"栅格 {cell_m} 米和最大吸附距离 {max_snap_m} 米必须为正数",
                             f"cell_m ({cell_m}) and max_snap_m ({max_snap_m}) must be positive (metres)")
    net = access.network
    grid = grid or _reached_grid(access, cell_m=float(cell_m), max_snap_m=float(max_snap_m))
    distance = np.full(grid.n_rows * grid.n_cols, np.inf, dtype=np.float32)
    judgeable = np.zeros(grid.n_rows * grid.n_cols, dtype=bool)
    if net.n_edges:
        cells, centres = net.snap_cells(grid.x0, grid.y_top, grid.n_rows, grid.n_cols, grid.cell_m,
                                        max_snap_m=max_snap_m)
        # per edge: its piece holds a site (elsewhere every click reads "beyond the walk time", as the
        # surface does); with no site at all, every click reads that, and every centre on the network is judged
        site_pieces = net.components[net.edge_u[access.sites.edge[access.sites.on_network]]]
        piece_has_site = np.full(net.n_components, len(site_pieces) == 0)
        piece_has_site[site_pieces] = True
        edge_on_site_piece = piece_has_site[net.components[net.edge_u]]
        for start in range(0, len(cells), _CELL_CHUNK):  # bounded temporaries (millions of cells)
            part = slice(start, start + _CELL_CHUNK)
            chunk = centres.subset(part)
            value = access.nearest_distance(chunk)
            distance[cells[part]] = np.where(np.isnan(value), np.inf, value)
            judgeable[cells[part]] = chunk.on_network & edge_on_site_piece[chunk.edge]
    return WalkSurface(distance.reshape(grid.shape), grid.transform, net.crs, float(grid.cell_m), float(max_snap_m),
                       access.speed_m_per_min, access.max_distance_m, judgeable.reshape(grid.shape))


def _reached_grid(access: ServiceAccess, *, cell_m: float, max_snap_m: float) -> RasterGrid:
    """The grid covering every edge with a reached end or a site, plus ``max_snap_m``: every cell with a
    finite walk time lies in it."""
    net = access.network
    reached = np.isfinite(access.node_distance_m)
    edges = reached[net.edge_u] | reached[net.edge_v]
    edges[access.sites.edge[access.sites.on_network]] = True
    if not edges.any():
        return RasterGrid(0.0, 0.0, 1, 1, cell_m)
    vertex_edge = np.repeat(np.arange(net.n_edges), np.diff(net.coord_start))
    xy = net.coords[edges[vertex_edge]]
    bounds = (xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max(), xy[:, 1].max())
    return RasterGrid.covering(bounds, cell_m=cell_m, pad_cells=int(math.ceil(max_snap_m / cell_m)) + 1)


def service_circles(
    access: ServiceAccess,
    minutes: tuple[float, ...] = (DEFAULT_BUDGET_MIN,),
    *,
    cell_m: float = DEFAULT_CELL_M,
    max_snap_m: float = DEFAULT_MAX_SNAP_M,
):
    """Service-circle polygons of all sites of one service, one row per budget, EPSG:4326.

    Returns a GeoDataFrame with columns ``minutes``, ``area_km2`` and ``geometry`` (MultiPolygon).
    """
    import geopandas as gpd

    surface = walk_surface(access, cell_m=cell_m, max_snap_m=max_snap_m)
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
    max_snap_m: float = DEFAULT_MAX_SNAP_M,
) -> shapely.MultiPolygon:
    """The service circle of a single site (a one-row :class:`Snap`), in the network CRS (metres)."""
    if len(site) != 1:
        raise ParameterError("只能传入一个站点", "site must hold exactly one snapped site")
    access = service_access(network, site, speed_m_per_min=speed_m_per_min, max_minutes=minutes)
    return walk_surface(access, cell_m=cell_m, max_snap_m=max_snap_m).polygon(minutes)
