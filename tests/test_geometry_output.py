"""Polygons from raster masks, their GeoJSON and the polygon holding a point, against independent oracles
(cell boxes, GEOS's writer, one GEOS predicate per polygon)."""

from __future__ import annotations

import gc
import json

import numpy as np
import shapely
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from planning.bulk import collector_paused
from planning.geometry import first_containing, geojson_geometry
from planning.isochrones import polygonize_mask

CELL_M = 20.0
TRANSFORM = Affine.translation(545_200.0, 3_028_340.0) @ Affine.scale(CELL_M, -CELL_M)


def cell_boxes(mask: np.ndarray) -> shapely.Geometry:
    """Oracle: the union of one square per true cell (same transform as TRANSFORM)."""
    rows, cols = np.nonzero(mask)
    x0, y0 = TRANSFORM.c + cols * CELL_M, TRANSFORM.f - rows * CELL_M
    return shapely.union_all(shapely.box(x0, y0 - CELL_M, x0 + CELL_M, y0))


@settings(max_examples=60, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 9), st.integers(1, 9))))
def test_polygon_of_a_mask_is_the_union_of_its_cells(mask):
    polygon = polygonize_mask(mask, TRANSFORM)
    assert polygon.geom_type == "MultiPolygon" and polygon.is_valid
    if not mask.any():
        assert polygon.is_empty
        return
    oracle = cell_boxes(mask)
    assert polygon.symmetric_difference(oracle).area == 0
    assert polygon.area == mask.sum() * CELL_M**2
    # The window traced is cropped to the true cells: the vertices stay on the full grid's cell corners.
    xy = shapely.get_coordinates(polygon)
    assert np.all((xy[:, 0] - TRANSFORM.c) % CELL_M == 0) and np.all((TRANSFORM.f - xy[:, 1]) % CELL_M == 0)


@settings(max_examples=150, deadline=None)
@given(st.integers(2, 24), st.integers(2, 24), st.floats(0.2, 0.8), st.integers(0, 2**32 - 1))
def test_polygons_of_masks_full_of_corner_touches_are_valid(n_rows, n_cols, density, seed):
    """Random masks (many cells touching only at a corner, holes pinched at corners): the polygon is
    valid by GEOS's full check (polygonize_mask skips that check where no ring passes a vertex twice)."""
    mask = np.random.default_rng(seed).random((n_rows, n_cols)) < density
    polygon = polygonize_mask(mask, TRANSFORM)
    assert polygon.is_valid, shapely.is_valid_reason(polygon)
    assert polygon.symmetric_difference(cell_boxes(mask)).area == 0


def test_ring_with_a_hole_and_cells_touching_at_a_corner():
    mask = np.zeros((6, 7), dtype=bool)
    mask[1:5, 1:5] = True
    mask[2:4, 2:4] = False  # a hole of four cells
    mask[5, 5] = True  # touches the square only at its corner
    polygon = polygonize_mask(mask, TRANSFORM)
    assert polygon.is_valid and len(polygon.geoms) == 2
    square = max(polygon.geoms, key=lambda p: p.area)
    assert len(square.interiors) == 1 and shapely.Polygon(square.interiors[0]).area == 4 * CELL_M**2
    assert polygon.equals(cell_boxes(mask))


@settings(max_examples=60, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 8), st.integers(1, 8))))
def test_geojson_of_polygons_equals_geos_writer(mask):
    polygon = polygonize_mask(mask, TRANSFORM)
    if polygon.is_empty:
        assert geojson_geometry(polygon) is None
        return
    assert geojson_geometry(polygon) == json.loads(shapely.to_geojson(polygon))
    first = shapely.get_parts(polygon)[0]  # a single Polygon
    assert geojson_geometry(first) == json.loads(shapely.to_geojson(first))


def test_geojson_of_other_geometries_and_empty():
    for geometry in (shapely.Point(113.1234567, 28.7654321), shapely.LineString([(0, 0), (1.5, 2)]),
                     shapely.Polygon([(0, 0), (2, 0), (2, 2), (0, 2)], [[(0.5, 0.5), (1, 0.5), (1, 1)]])):
        assert geojson_geometry(geometry) == json.loads(shapely.to_geojson(geometry))
    assert geojson_geometry(shapely.MultiPolygon()) is None
    assert geojson_geometry(None) is None


def test_collector_is_paused_only_inside_and_never_left_off():
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block found it paused and leaves it paused
    assert gc.isenabled()
    try:
        with collector_paused():
            raise ValueError
    except ValueError:
        pass
    assert gc.isenabled()


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 140), st.integers(0, 2**32 - 1))
def test_first_containing_equals_one_predicate_per_polygon(n_polygons, seed):
    """Overlapping discs and boxes (some missing or empty), points inside, on edges, outside, NaN and
    infinite: the first polygon in order holding each point, boundary included, as GEOS says per polygon.
    Over 64 polygons the bucketed search runs (with buckets the polygons cover whole)."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 1_000, (n_polygons, 2))
    shapes = [shapely.buffer(shapely.Point(*c), rng.uniform(5, 150)) if k % 3 else
              shapely.box(*(c - rng.uniform(5, 150)), *(c + rng.uniform(5, 150))) for k, c in enumerate(centres)]
    for k in rng.integers(0, n_polygons, 3):
        shapes[k] = None if k % 2 else shapely.Polygon()
    points = rng.uniform(-100, 1_100, (4_000, 2))
    boxes = [p for p in shapes if p is not None and p.geom_type == "Polygon" and len(p.exterior.coords) == 5]
    if boxes:  # points exactly on a box's corner and edge
        x0, y0, x1, y1 = boxes[0].bounds
        points[:2] = [[x0, y0], [x0, (y0 + y1) / 2]]
    points[2:4] = np.nan
    points[4] = [np.inf, 500.0]
    oracle = np.full(len(points), -1)
    for i, polygon in enumerate(shapes):
        if polygon is None or polygon.is_empty:
            continue
        oracle[(oracle < 0) & shapely.intersects_xy(polygon, points[:, 0], points[:, 1])] = i
    assert np.array_equal(first_containing(np.array(shapes, dtype=object), points), oracle)
