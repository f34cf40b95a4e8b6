"""Small geometry operations shared by several modules: polygon parts, the polygon holding a point, unions.

Coordinates are whatever CRS the caller's geometries share; nothing here reprojects.
"""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import shapely


def polygonal_parts(geometry, *, min_area: float = 0.0) -> shapely.MultiPolygon:
    """The polygons of ``geometry`` (nested collections included) of at least ``min_area`` (square units
    of its CRS) as one MultiPolygon: drops the stray lines and points an overlay or repair leaves."""
    polygons: list[shapely.Polygon] = []

    def collect(part) -> None:
        if part.geom_type == "Polygon":
            if not part.is_empty and part.area >= min_area:
                polygons.append(part)
        elif part.geom_type in ("MultiPolygon", "GeometryCollection"):
            for inner in shapely.get_parts(part):
                collect(inner)

    if geometry is not None:
        for part in shapely.get_parts(geometry):
            collect(part)
    return shapely.MultiPolygon(polygons)


_FEW_POLYGONS = 64
#: Most buckets per side of :func:`first_containing`'s grid (keys fit 16 bits: a radix sort).
_MAX_BUCKETS_PER_SIDE = 256


def first_containing(polygons, points) -> np.ndarray:
    """Row position of the first polygon (in ``polygons``' order) holding each point (boundary included);
    -1 where none does. ``polygons``: a GeoSeries / GeoDataFrame / array of geometries (None or empty
    allowed); ``points``: an (n, 2) array of coordinates or shapely points, in the polygons' CRS.

    Each polygon tests only the points inside its bounding box, with
    ``shapely.intersects_xy`` on the prepared polygon (no Point objects for coordinate input). With many
    polygons the points are first sorted into a grid of buckets, so a polygon reads only the buckets its
    bounding box touches.
    """
    if isinstance(polygons, gpd.GeoDataFrame):
        polygons = polygons.geometry
    polygons = np.asarray(polygons.to_numpy() if hasattr(polygons, "to_numpy") else polygons, dtype=object)
    points = np.asarray(points)
    xy = shapely.get_coordinates(points) if points.dtype == object else points.reshape(-1, 2).astype(float)
    found = np.full(len(xy), -1, dtype=np.int64)
    if len(xy) == 0:
        return found
    few = len(polygons) <= _FEW_POLYGONS  # buckets pay off only when many polygons each test a few points
    buckets = None if few else _PointBuckets(xy, int(min(_MAX_BUCKETS_PER_SIDE, 16 * np.sqrt(len(polygons)))))
    for i, polygon in enumerate(polygons):
        if polygon is None or polygon.is_empty:
            continue
        x0, y0, x1, y1 = polygon.bounds
        shapely.prepare(polygon)
        if few:
            span = np.flatnonzero((found < 0) & (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1))
            inside = np.zeros(len(span), dtype=bool)
        else:  # points of a bucket the polygon covers are inside it without a test of their own
            span, covered = buckets.within(polygon)
            keep = (found[span] < 0) & (xy[span, 0] >= x0) & (xy[span, 0] <= x1) & (xy[span, 1] >= y0) & (xy[span, 1] <= y1)
            span, inside = span[keep], covered[keep]
        test = np.flatnonzero(~inside)
        if len(test):
            inside[test] = shapely.intersects_xy(polygon, xy[span[test], 0], xy[span[test], 1])
        found[span[inside]] = i
    return found


class _PointBuckets:
    """Points sorted into a grid of ``side`` x ``side`` buckets over their (finite) extent, to list the
    points of the buckets a polygon's bounding box touches and which of them lie in buckets the polygon
    covers (a bucket's box is grown by a margin far above the rounding of the bucket arithmetic)."""

    def __init__(self, xy: np.ndarray, side: int) -> None:
        self.side = max(int(side), 1)
        columns = [xy[:, axis] for axis in (0, 1)]
        finite = [c[np.isfinite(c)] for c in columns]  # a point with a NaN coordinate is in no box
        self.origin = np.array([f.min() if len(f) else 0.0 for f in finite])
        extent = np.array([f.max() - o if len(f) else 0.0 for f, o in zip(finite, self.origin)])
        self.size = np.where(extent > 0, extent / self.side, 1.0)
        self.margin = 1e-9 * (float(np.abs(self.origin).max()) + float(extent.max()) + 1.0)
        col, row = self._bucket(columns[0], 0), self._bucket(columns[1], 1)
        key = (col * self.side + row).astype(np.uint16 if self.side <= 256 else np.int64)
        self.order = np.argsort(key, kind="stable")
        self.start = np.concatenate([[0], np.cumsum(np.bincount(key, minlength=self.side * self.side))])

    def _bucket(self, value, axis: int) -> np.ndarray:
        """Bucket of each coordinate along one axis: monotonic in the coordinate, clipped to the grid."""
        value = np.nan_to_num(np.asarray(value, dtype=float), nan=self.origin[axis])
        with np.errstate(over="ignore"):  # an infinite coordinate goes to the last bucket
            return np.clip(np.floor((value - self.origin[axis]) / self.size[axis]), 0, self.side - 1).astype(np.int64)

    def within(self, polygon) -> tuple[np.ndarray, np.ndarray]:
        """The points (indices) of every bucket the polygon's bounding box touches, and per point whether
        the polygon covers its whole bucket (then the point lies in the polygon)."""
        x0, y0, x1, y1 = polygon.bounds
        c0, c1 = self._bucket([x0, x1], 0)
        r0, r1 = self._bucket([y0, y1], 1)
        cols, rows = np.meshgrid(np.arange(c0, c1 + 1), np.arange(r0, r1 + 1), indexing="ij")
        keys = (cols * self.side + rows).ravel()
        boxes = shapely.box(self.origin[0] + cols.ravel() * self.size[0] - self.margin,
                            self.origin[1] + rows.ravel() * self.size[1] - self.margin,
                            self.origin[0] + (cols.ravel() + 1) * self.size[0] + self.margin,
                            self.origin[1] + (rows.ravel() + 1) * self.size[1] + self.margin)
        covered = shapely.covers(polygon, boxes)
        counts = self.start[keys + 1] - self.start[keys]
        points = np.concatenate([self.order[a:b] for a, b in zip(self.start[keys].tolist(), self.start[keys + 1].tolist())])
        return points, np.repeat(covered, counts)


class PolygonIndex:
    """The polygons of one layer, ready for repeated :func:`first_containing` questions: an STR-tree for a
    few points (a click), the bounding-box sweep for many (residents). Build it once per layer."""

    #: Below this many points the tree answers (tens of microseconds per point).
    TREE_POINTS = 64

    def __init__(self, polygons) -> None:
        if isinstance(polygons, gpd.GeoDataFrame):
            polygons = polygons.geometry
        self.polygons = np.asarray(polygons.to_numpy() if hasattr(polygons, "to_numpy") else polygons, dtype=object)
        self._tree = shapely.STRtree(self.polygons)

    def first_containing(self, points) -> np.ndarray:
        """As :func:`first_containing` on this index's polygons."""
        points = np.asarray(points)
        if len(points) >= self.TREE_POINTS:
            return first_containing(self.polygons, points)
        if points.dtype != object:
            points = shapely.points(points.reshape(-1, 2))
        found = np.full(len(points), -1, dtype=np.int64)
        point_i, poly_i = self._tree.query(points, predicate="intersects")
        for p, q in zip(point_i.tolist(), poly_i.tolist()):
            if found[p] < 0 or q < found[p]:
                found[p] = q
        return found


def union_of(geometry: gpd.GeoSeries, codes) -> shapely.MultiPolygon:
    """The union of the geometries indexed by ``codes`` (an empty MultiPolygon for no code)."""
    codes = list(codes)
    return shapely.union_all(geometry.reindex(codes).to_numpy()) if codes else shapely.MultiPolygon()


def geojson_geometry(geometry) -> dict | None:
    """``geometry`` as a GeoJSON geometry dict (None when empty), coordinates as Python floats.

    Polygons and multipolygons are built from one ``shapely.get_coordinates`` array (one C call, then list
    slicing per ring): for the demo's gap report a tenth of the time of parsing ``shapely.to_geojson`` text
    back with ``json.loads``, and the same numbers (the doubles themselves, which ``json.dumps`` writes
    exactly). Other types go through ``shapely.to_geojson``."""
    if geometry is None or geometry.is_empty:
        return None
    kind = geometry.geom_type
    if kind not in ("Polygon", "MultiPolygon"):
        return json.loads(shapely.to_geojson(geometry))
    polygons = shapely.get_parts(geometry) if kind == "MultiPolygon" else np.array([geometry], dtype=object)
    rings, ring_polygon = shapely.get_rings(polygons, return_index=True)
    coordinates = shapely.get_coordinates(rings).tolist()
    ends = np.cumsum(shapely.get_num_coordinates(rings)).tolist()
    starts = [0, *ends[:-1]]
    per_polygon: list[list] = [[] for _ in range(len(polygons))]
    for polygon, start, end in zip(ring_polygon.tolist(), starts, ends):
        per_polygon[polygon].append(coordinates[start:end])
    if kind == "Polygon":
        return {"type": "Polygon", "coordinates": per_polygon[0]}
    return {"type": "MultiPolygon", "coordinates": per_polygon}
