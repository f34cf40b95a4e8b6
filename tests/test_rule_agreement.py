"""One rule module, three readers: the zone map (cells), the designation check (one point) and site
suggestion (many points) give the same verdicts and rule ids, for every policy preset and for random
policies.

The zone map is compared at points whose 3 x 3 cell neighbourhood is uniform in every zone mask (a point
near a zone edge may fall in the next cell). The drawn circle is the point rule evaluated at cell centres,
so at those points it agrees with the point's own walk time at >= 99.9 % of them (tests/test_one_truth.py
checks that at 40,000 places per case); the few where they differ are left out of the rule-set comparison.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage

from planning import rules
from planning.assess import assess
from planning.isochrones import settled_cells
from planning.model import Service
from planning.policy import POLICY_DIR, RULES, SaturationThresholds, load_policy
from planning.screening import check_location
from planning.siting import location_verdicts

N_POINTS = 1_000
PRESETS = sorted(p.stem for p in Path(POLICY_DIR).glob("*.toml"))


def street_points(assessment, n: int, seed: int):
    """``n`` random points on the streets, snapped (they stand where a candidate site would)."""
    network = assessment.network
    rng = np.random.default_rng(seed)
    edge = rng.integers(0, network.n_edges, n)
    xy = network.points_at(edge, rng.uniform(0, 1, n) * network.edge_length[edge])
    return network.snap(xy, max_snap_m=assessment.policy.max_snap_m)


def zone_flags_at(assessment, service: Service, xy: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per rule, whether its zone part holds each point's cell, and whether the point's 3 x 3 neighbourhood is
    uniform in every part (blocked and priority parts are one per rule)."""
    layers = assessment.rasters
    rows, cols = layers.grid.cells(xy)
    on = rows >= 0
    flags = {rule: np.zeros(len(xy), dtype=bool) for rule in (*rules.BLOCK_RULES, *rules.GAP_RULES)}
    uniform = on.copy()
    for part in assessment.zone_parts(service):
        if part.zone == "review":
            continue
        mask = part.mask
        same = ndimage.minimum_filter(mask, size=3) == ndimage.maximum_filter(mask, size=3)
        flags[part.rule_ids][on] = mask[rows[on], cols[on]]
        uniform[on] &= same[rows[on], cols[on]]
    return flags, uniform


def assert_agreement(assessment, services, seed: int) -> None:
    snap = street_points(assessment, N_POINTS, seed)
    for service in services:
        table = location_verdicts(assessment, service, snap)
        # the designation check, point by point, at the same places
        for row in table.itertuples():
            check = check_location(assessment, row.lon, row.lat, [service]).verdicts[service]
            assert row.verdict == check.verdict, (service, row, check.findings)
            assert set(filter(None, row.rule_ids.split(","))) == {
                f.rule_id for f in check.findings if f.outcome in ("block", "priority")}, (service, row)
        # the zone map, cell by cell
        x, y = assessment.network.from_lonlat.transform(table["lon"].to_numpy(), table["lat"].to_numpy())
        xy = np.column_stack([x, y])
        cell_flags, uniform = zone_flags_at(assessment, service, xy)
        point_b1 = np.asarray(table["walk_minutes"] <= assessment.policy.walk_minutes)
        drawn_b1 = assessment.rasters.at_points(assessment.rasters.circle_mask(service), xy)
        same_circle = point_b1 == drawn_b1
        judged = table["verdict"].to_numpy() != "not_judged"
        circle_settled = assessment.rasters.at_points(settled_cells(assessment.rasters.circle_mask(service)), xy)
        if (circle_settled & judged).sum() >= 100:
            agree = same_circle[circle_settled & judged].mean()
            assert agree >= 0.999, f"{service}: drawn circle and point walk agree at {agree:.4f}"
        compared = uniform & same_circle & judged
        assert compared.sum() >= 0.5 * judged.sum(), compared.sum()
        point_rules = [set(filter(None, ids.split(","))) for ids in table["rule_ids"]]
        for i in np.flatnonzero(compared):
            on_map = {rule for rule, hit in cell_flags.items() if hit[i]}
            assert on_map == point_rules[i] - {"B5"}, (service, i, on_map, point_rules[i])
        # and the verdict drawn equals the verdict checked
        cell_verdicts = rules.verdicts({r: cell_flags[r] for r in cell_flags})
        assert (cell_verdicts[compared] == table["verdict"].to_numpy()[compared]).all()


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_agrees_on_the_demo(demo, preset):
    assessment = assess(demo.region, demo.network, load_policy(preset), reuse=demo)
    assert_agreement(assessment, list(Service), seed=PRESETS.index(preset))


POLICY_RULES = sorted(set(RULES) - {"R4"})


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chosen=st.sets(st.sampled_from(POLICY_RULES), min_size=1),
       minutes=st.sampled_from([5.0, 10.0, 15.0]),
       saturated=st.floats(0.5, 6.0), underserved=st.floats(0.0, 0.5),
       service=st.sampled_from([Service.PERSONAL_ACCOUNT, Service.OUTPATIENT_POOLING, Service.CHRONIC_DISEASE]),
       seed=st.integers(0, 10_000))
def test_random_policies_agree(demo, chosen, minutes, saturated, underserved, service, seed):
    thresholds = dict(demo.policy.thresholds)
    thresholds[service] = SaturationThresholds(saturated_per_10k=saturated, underserved_per_10k=underserved * saturated)
    policy = demo.policy.with_changes(rules=frozenset(chosen), walk_minutes=minutes, thresholds=thresholds)
    assessment = assess(demo.region, demo.network, policy, reuse=demo)
    assert_agreement(assessment, [service], seed=seed)


def test_verdict_precedence_is_one_table():
    """Hard blocks win over gaps; a soft block meeting a gap is review; the review zones are exactly where
    the verdict says review."""
    names = (*rules.BLOCK_RULES, *rules.GAP_RULES)
    combos = np.array(np.meshgrid(*[[False, True]] * len(names))).reshape(len(names), -1)
    flags = dict(zip(names, combos))
    verdict = rules.verdicts(flags)
    hard = flags["B3"] | flags["B5"]
    soft = flags["B1"] | flags["B2"] | flags["B4"]
    gap = flags["R1"] | flags["R2"] | flags["R3"]
    assert (verdict[hard] == "blocked").all()
    assert (verdict[~hard & soft & gap] == "review").all()
    assert (verdict[~hard & soft & ~gap] == "blocked").all()
    assert (verdict[~hard & ~soft & gap] == "priority").all()
    assert (verdict[~hard & ~soft & ~gap] == "allowed").all()
    review = np.zeros(combos.shape[1], dtype=bool)
    for _, _, mask in rules.review_pairs(flags):
        review |= mask
    assert np.array_equal(review, verdict == "review")
