"""``assess(..., reuse=earlier)`` gives exactly what a fresh assessment gives, and searches again only when
it must: a shorter walk or another speed cuts the earlier search back; moved sites, a longer reach or
another raster cell search again."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planning.access import service_access
from planning.assess import assess
from planning.demo import load_demo_region
from planning.errors import ParameterError
from planning.isochrones import walk_surface
from planning.model import Service
from planning.network import load_network
from planning.policy import load_policy
from planning.synthetic import street_grid, synthetic_region

POOLING = Service.OUTPATIENT_POOLING


@pytest.fixture(scope="module")
def small():
    network = street_grid(22, seed=5)
    region = synthetic_region(network, counties_per_side=1, subdistricts_per_county_side=2, n_pharmacies=10, seed=5)
    wide = assess(region, network, load_policy().with_changes(walk_minutes=30, speed_m_per_min=120))
    return region, network, wide


def assert_same_assessment(got, fresh, services=tuple(Service)) -> None:
    pd.testing.assert_frame_equal(got.coverage, fresh.coverage)
    pd.testing.assert_frame_equal(got.subdistricts, fresh.subdistricts)
    pd.testing.assert_frame_equal(got.counties, fresh.counties)
    for s in services:
        np.testing.assert_array_equal(got.access[s].node_distance_m, fresh.access[s].node_distance_m)
        assert got.access[s].max_distance_m == fresh.access[s].max_distance_m
        assert got.access[s].speed_m_per_min == fresh.access[s].speed_m_per_min
        np.testing.assert_array_equal(got.surfaces[s].distance_m, fresh.surfaces[s].distance_m)
        assert got.uncovered_for(s)["persons"].iloc[0] == fresh.uncovered_for(s)["persons"].iloc[0]
        for layer in ("zones_for", "uncovered_for", "circles_for"):
            a, b = getattr(got, layer)(s), getattr(fresh, layer)(s)
            assert list(a.drop(columns="geometry").itertuples(index=False)) == \
                list(b.drop(columns="geometry").itertuples(index=False))
            assert all(shapely.equals_exact(a.geometry.to_numpy(), b.geometry.to_numpy(), tolerance=0))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(minutes=st.integers(5, 30), speed=st.floats(30, 120).map(lambda v: round(v, 1)))
def test_any_shorter_walk_or_slower_speed_reuses_the_wide_search_and_equals_a_fresh_assessment(small, minutes, speed):
    region, network, wide = small
    policy = load_policy().with_changes(walk_minutes=minutes, speed_m_per_min=speed)
    got = assess(region, network, policy, reuse=wide)
    assert got.searched == ()
    assert got.residents is wide.residents
    fresh = assess(region, network, policy)
    assert fresh.searched == tuple(Service)
    assert_same_assessment(got, fresh, services=(POOLING, Service.DUAL_CHANNEL))


def test_demo_at_twelve_minutes_from_the_apps_wide_search_equals_a_fresh_assessment():
    region = load_demo_region()
    network = load_network(region.network_path)
    wide = assess(region, network, load_policy().with_changes(walk_minutes=30, speed_m_per_min=120))
    policy = load_policy("hunan-2025").with_changes(walk_minutes=12, speed_m_per_min=80)
    got = assess(region, network, policy, reuse=wide)
    assert got.searched == ()
    assert_same_assessment(got, assess(region, network, policy))


def test_what_changed_is_searched_again(small):
    region, network, wide = small
    policy = load_policy()
    # One pharmacy moves to another street: only its services are searched again.
    moved = region.pharmacies.copy()
    row = moved.index[moved[POOLING.value]][0]
    held = tuple(s for s in Service if moved.loc[row, s.value])
    moved.loc[row, "geometry"] = moved.geometry.iloc[-1]
    edited = replace(region, pharmacies=moved)
    got = assess(edited, network, policy, reuse=wide)
    assert set(got.searched) == set(held)
    assert_same_assessment(got, assess(edited, network, policy))
    # Farther than the earlier horizon, or another raster cell: everything again.
    assert assess(region, network, policy.with_changes(walk_minutes=30, speed_m_per_min=121), reuse=wide).searched \
        == tuple(Service)
    assert assess(region, network, policy.with_changes(cell_m=25.0), reuse=wide).searched == tuple(Service)
    # Another population: the walk searches stay, the resident weights do not.
    people = region.subdistricts.assign(population=region.subdistricts["population"] * 2)
    doubled = replace(region, subdistricts=people)
    got = assess(doubled, network, policy, reuse=wide)
    assert got.searched == () and got.residents is not wide.residents
    assert_same_assessment(got, assess(doubled, network, policy), services=(POOLING,))


def test_reuse_from_another_network_is_refused(small):
    region, _, wide = small
    with pytest.raises(ParameterError, match="same network"):
        assess(region, street_grid(22, seed=5), reuse=wide)


def test_cutting_back_a_search_or_surface_beyond_its_horizon_is_refused(small):
    _, network, wide = small
    access = wide.access[POOLING]
    with pytest.raises(ParameterError, match="exceeds"):
        access.within(access.max_distance_m + 1)
    with pytest.raises(ParameterError, match="exceeds"):
        wide.surfaces[POOLING].within(wide.surfaces[POOLING].horizon_m + 1)
    assert access.within(access.max_distance_m) is access


@pytest.mark.osm
def test_cut_back_search_and_surface_equal_new_ones_on_a_real_extract(osm_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the extract is clipped; that is tested elsewhere
        network = load_network(osm_path("nanjing_xuanwu"))
    rng = np.random.default_rng(3)
    sites = network.snap(network.node_xy[rng.choice(network.n_nodes, 30, replace=False)] + 15.0, max_snap_m=150)
    wide = service_access(network, sites, max_minutes=60)
    wide_surface = walk_surface(wide)
    for minutes, speed in ((15, 75.0), (7.5, 60.0)):
        small = service_access(network, sites, max_minutes=minutes, speed_m_per_min=speed)
        cut = wide.within(small.max_distance_m, speed_m_per_min=speed)
        np.testing.assert_array_equal(cut.node_distance_m, small.node_distance_m)
        assert cut.speed_m_per_min == speed
        surface = walk_surface(small, grid=_grid_of(wide_surface))
        cut_surface = wide_surface.within(small.max_distance_m, speed_m_per_min=speed)
        np.testing.assert_array_equal(cut_surface.distance_m, surface.distance_m)
        assert cut_surface.polygon(minutes).equals(surface.polygon(minutes))


def _grid_of(surface):
    from planning.isochrones import RasterGrid

    rows, cols = surface.distance_m.shape
    return RasterGrid(surface.transform.c, surface.transform.f, rows, cols, surface.cell_m)


def test_a_deferred_value_is_none_until_built_in_the_background_and_a_failure_is_kept():
    """The app's widest assessment is a Deferred: asked for before it is built it is None (the setting is
    then assessed directly, equal to the reused result as tested above); started once however often asked."""
    import threading

    from planning.memo import Deferred

    gate, calls = threading.Event(), []

    def build():
        calls.append(1)
        gate.wait(10)
        return "built"

    deferred = Deferred(build, name="test")
    assert deferred.ready() is None  # not started
    deferred.start().start()
    assert deferred.ready() is None  # still building
    gate.set()
    assert deferred.wait(10) == "built" and deferred.ready() == "built" and calls == [1]
    failing = Deferred(lambda: 1 / 0)
    assert failing.wait(10) is None and isinstance(failing.error, ZeroDivisionError)
