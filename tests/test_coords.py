"""GCJ-02 / BD-09 conversions against an independent implementation (eviltransform), round trips,
the China test, and the datum-offset check on a synthetic street grid."""

from __future__ import annotations


import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planning import coords
from planning.errors import ParameterError

# Points across China: the big cities of every region, plus a random spread inside the mainland box.
CITIES = np.array([
    (116.397, 39.909), (121.474, 31.230), (113.264, 23.129), (104.066, 30.573), (87.617, 43.826),
    (91.117, 29.647), (126.642, 45.756), (112.938, 28.228), (129.633, 44.552), (101.528, 25.045),
    (122.121, 37.513), (110.349, 20.017), (75.989, 39.470), (134.28, 47.72), (108.94, 34.34),
])


def _points(n: int = 400, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    lon = np.concatenate([CITIES[:, 0], rng.uniform(76.0, 134.0, n)])
    lat = np.concatenate([CITIES[:, 1], rng.uniform(18.5, 53.0, n)])
    return lon, lat


def _metres(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Great-circle distance, metres (haversine on a 6,371,008.8 m sphere: plenty at sub-metre offsets)."""
    lon1, lat1, lon2, lat2 = (np.radians(np.asarray(a, dtype=float)) for a in (lon1, lat1, lon2, lat2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6_371_008.8 * np.arcsin(np.sqrt(a))


@pytest.fixture(scope="module")
def oracle():
    return pytest.importorskip("eviltransform", reason="the oracle package eviltransform is not installed")


def test_wgs84_to_gcj02_agrees_with_oracle(oracle):
    lon, lat = _points()
    got = coords.wgs84_to_gcj02(lon, lat)
    ref = np.array([oracle.wgs2gcj(b, a) for a, b in zip(lon, lat)])  # oracle works in (lat, lon)
    assert _metres(got[0], got[1], ref[:, 1], ref[:, 0]).max() < 0.5
    assert _metres(lon, lat, *got).min() > 50  # the offset is real everywhere in China


def test_gcj02_to_wgs84_agrees_with_oracle_exact_inverse(oracle):
    lon, lat = coords.wgs84_to_gcj02(*_points())
    got = coords.gcj02_to_wgs84(lon, lat)
    ref = np.array([oracle.gcj2wgs_exact(b, a) for a, b in zip(lon, lat)])
    assert _metres(got[0], got[1], ref[:, 1], ref[:, 0]).max() < 0.5


def test_bd09_forward_agrees_and_inverse_is_consistent_with_oracle(oracle):
    lon, lat = _points()
    got = coords.wgs84_to_bd09(lon, lat)
    ref = np.array([oracle.wgs2bd(b, a) for a, b in zip(lon, lat)])
    assert _metres(got[0], got[1], ref[:, 1], ref[:, 0]).max() < 0.5
    gcj = coords.gcj02_to_bd09(*coords.wgs84_to_gcj02(lon, lat))
    ref = np.array([oracle.gcj2bd(b, a) for a, b in zip(*coords.wgs84_to_gcj02(lon, lat))])
    assert _metres(gcj[0], gcj[1], ref[:, 1], ref[:, 0]).max() < 0.5
    # inverse: the oracle's own forward transform takes our BD-09 -> WGS84 answer back to the input
    back = coords.bd09_to_wgs84(*got)
    again = np.array([oracle.wgs2bd(b, a) for a, b in zip(*back)])
    assert _metres(again[:, 1], again[:, 0], got[0], got[1]).max() < 0.5
    # and the oracle's closed-form BD-09 -> GCJ-02 lands within 0.5 m of our exact one
    gcj_back = coords.bd09_to_gcj02(*got)
    ref = np.array([oracle.bd2gcj(b, a) for a, b in zip(*got)])
    assert _metres(gcj_back[0], gcj_back[1], ref[:, 1], ref[:, 0]).max() < 0.5


@settings(max_examples=200, deadline=None)
@given(lon=st.floats(73.5, 134.8), lat=st.floats(18.0, 53.5))
def test_round_trips_within_a_centimetre(lon, lat):
    for forward, inverse in ((coords.wgs84_to_gcj02, coords.gcj02_to_wgs84),
                             (coords.wgs84_to_bd09, coords.bd09_to_wgs84)):
        back = inverse(*forward(lon, lat))
        assert _metres(lon, lat, *back) < 0.01  # brief asks < 1 m; the iteration gives far better
    back = coords.gcj02_to_wgs84(*coords.wgs84_to_gcj02(lon, lat))
    assert _metres(lon, lat, *back) < 0.01


def test_identity_outside_china_and_nan_passes_through():
    lon = np.array([2.35, -74.0, 151.2, np.nan])
    lat = np.array([48.85, 40.7, -33.9, 30.0])
    for convert in (coords.wgs84_to_gcj02, coords.gcj02_to_wgs84, coords.wgs84_to_bd09, coords.bd09_to_wgs84):
        out_lon, out_lat = convert(lon, lat)
        np.testing.assert_array_equal(out_lon[:3], lon[:3])
        np.testing.assert_array_equal(out_lat[:3], lat[:3])
    assert not coords.in_china(2.35, 48.85)
    assert coords.in_china(116.4, 39.9)


def test_scalars_and_datum_names():
    lon, lat = coords.gcj02_to_wgs84(116.404, 39.915)
    assert lon.shape == () and 116.39 < float(lon) < 116.40
    assert coords.parse_datum("CGCS2000") is coords.Datum.WGS84
    assert coords.parse_datum("高德") is coords.Datum.GCJ02
    assert coords.parse_datum("BD-09") is coords.Datum.BD09
    with pytest.raises(ParameterError, match="unknown coordinate system"):
        coords.parse_datum("utm50")
    w = np.array([112.9, 113.0]), np.array([28.2, 28.3])
    for datum in coords.Datum:
        back = coords.to_wgs84(*coords.from_wgs84(*w, datum), datum)
        assert _metres(*w, *back).max() < 0.01
