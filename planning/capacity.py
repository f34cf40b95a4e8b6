"""Capacity-aware access: the enhanced two-step floating catchment area (E2SFCA, Luo & Qi 2009).

The walk between every pharmacy and every demand point within the catchment (the policy's walk budget)
comes from the same exact network search as everything else (:func:`planning.access.pairs_within`).

Step 1, per pharmacy j with capacity S_j: its supply ratio R_j = S_j / sum_i D_i W(d_ij) over the demand
points i within the catchment (D_i: the point's demand, persons).
Step 2, per demand point i: its access A_i = sum_j R_j W(d_ij) over the pharmacies within the catchment,
in capacity units per person. A sub-district's measure is the demand-weighted mean of its points' A_i,
times 10,000: **capacity-weighted pharmacies per 10,000 of the service's demand within reach**, which
counts a pharmacy shared by many people for less and one serving few for more.

W is the step decay of Luo & Qi (2009): the catchment cut in three equal walk-time zones weighted
:data:`E2SFCA_WEIGHTS` (1.00, 0.68, 0.22: their Gaussian with beta = 440,000 at the zones' midpoints of
a 30-minute catchment; here the zones are thirds of the walk budget). Capacity S_j is 1 per pharmacy, or
a pharmacy column divided by its mean (so the measure stays in "average pharmacies"); a pharmacy
without a value counts 1 (the caller says how many did). A sum over no pair is 0: a point reached by no
pharmacy has access 0; a pharmacy reaching no demand has ratio 0 (it serves nobody).

This module implements the two steps itself (two weighted sums over the pairs) rather than
calling PySAL ``access``, which takes a dense cost table per origin-destination pair as a DataFrame; the
tests compare both on a random case and on a hand computation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from planning.access import nodes_within, pairs_within
from planning.memo import Memo
from planning.network import Snap, WalkNetwork

#: Weights of the three walk-time zones of the catchment (Luo & Qi 2009, Health & Place 15(4):1100-1107).
E2SFCA_WEIGHTS: tuple[float, float, float] = (1.0, 0.68, 0.22)


@dataclass(frozen=True, eq=False)
class E2sfca:
    """E2SFCA results: ``site_ratio`` R_j per site (capacity per demand-person within its catchment) and
    ``point_access`` A_i per demand point (capacity per person within reach), both 0 where nothing is in
    reach; ``catchment_m`` the catchment, metres."""

    site_ratio: np.ndarray
    point_access: np.ndarray
    catchment_m: float


def decay_weights(distance_m: np.ndarray, catchment_m: float,
                  weights: tuple[float, float, float] = E2SFCA_WEIGHTS) -> np.ndarray:
    """The step weight of each walk distance (metres): ``weights[k]`` in the k-th third of the catchment,
    upper bounds included (a walk of exactly a third weighs ``weights[0]``), 0 beyond it."""
    distance_m = np.asarray(distance_m, dtype=float)
    bounds = np.array([catchment_m / 3.0, 2.0 * catchment_m / 3.0, catchment_m])
    zone = np.searchsorted(bounds, distance_m, side="left")
    return np.append(np.asarray(weights, dtype=float), 0.0)[zone]


def e2sfca(network: WalkNetwork, sites: Snap, capacity: np.ndarray, points: Snap, demand: np.ndarray, *,
           catchment_m: float, weights: tuple[float, float, float] = E2SFCA_WEIGHTS) -> E2sfca:
    """E2SFCA of ``sites`` (capacity per site) for demand ``points`` (persons per point) on ``network``,
    within ``catchment_m`` metres of walk (module docstring). Sites or points off the network reach nothing."""
    rows, cols, dists = [], [], []
    for s, t, d in pairs_within(network, sites, points, catchment_m):
        rows.append(s)
        cols.append(t)
        dists.append(d)
    site, point = (np.concatenate(x) if x else np.empty(0, dtype=np.int64) for x in (rows, cols))
    distance = np.concatenate(dists) if dists else np.empty(0)
    return e2sfca_from_pairs(site, point, distance, np.asarray(capacity, dtype=float),
                             np.asarray(demand, dtype=float), catchment_m=catchment_m, weights=weights)


@dataclass(frozen=True, eq=False)
class NodePairs:
    """Every (site, network node) pair within ``catchment_m`` metres of walk (site: index into the sites
    searched; :func:`planning.access.nodes_within`). One search serves every service whose sites are a
    subset of those searched (:func:`e2sfca_at_nodes` with ``subset``)."""

    site: np.ndarray
    node: np.ndarray
    distance_m: np.ndarray
    catchment_m: float
    memo: Memo = field(default_factory=Memo, repr=False)

    @classmethod
    def search(cls, network: WalkNetwork, sites: Snap, catchment_m: float) -> NodePairs:
        found = list(nodes_within(network, sites, catchment_m))
        site, node = (np.concatenate([f[k] for f in found]) if found else np.empty(0, dtype=np.int64) for k in (0, 1))
        distance = np.concatenate([f[2] for f in found]) if found else np.empty(0)
        return cls(site=site, node=node, distance_m=distance, catchment_m=float(catchment_m))

    def decay(self, weights: tuple[float, float, float] = E2SFCA_WEIGHTS) -> np.ndarray:
        """:func:`decay_weights` of every pair, computed once (each service reads its subset)."""
        key = tuple(float(w) for w in weights)
        return self.memo.get(("decay", key), lambda: decay_weights(self.distance_m, self.catchment_m, key))


def nearer_nodes(network: WalkNetwork, points: Snap) -> np.ndarray:
    """The end of its edge each point stands nearer to (its ``edge_u`` at or before the middle, else its
    ``edge_v``): where :func:`e2sfca_at_nodes` moves its demand. Computed once for all services."""
    edge = points.edge
    return np.where(points.offset_m <= network.edge_length[edge] / 2, network.edge_u[edge], network.edge_v[edge])


def e2sfca_at_nodes(network: WalkNetwork, sites: Snap, capacity: np.ndarray, points: Snap, demand: np.ndarray, *,
                    catchment_m: float, weights: tuple[float, float, float] = E2SFCA_WEIGHTS,
                    pairs: NodePairs | None = None, subset: np.ndarray | None = None,
                    point_node: np.ndarray | None = None) -> E2sfca:
    """:func:`e2sfca` with each demand point moved to the nearer end of its street segment: the pairs are
    (site, node) within the catchment (:class:`NodePairs`), a few times fewer than (site, point) pairs,
    and each point takes its node's access. The walk of a point differs from the exact one by at most its
    offset to that end plus its access walk (half a segment and the snap); ``site_ratio`` and
    ``point_access`` are as in :func:`e2sfca`. What the assessment uses.

    ``pairs`` searched once for a larger set of sites, with ``subset`` (the indices of these ``sites``
    in it, in order), gives the same result without a new search; ``point_node`` is
    :func:`nearer_nodes` of ``points`` when the caller already has it."""
    on = points.on_network
    every = bool(on.all())  # (residents along the streets: no copies of the masked arrays)
    node = nearer_nodes(network, points) if point_node is None else point_node
    demand = np.asarray(demand, dtype=float)
    node_demand = np.bincount(node if every else node[on], weights=demand if every else demand[on],
                              minlength=network.n_nodes)
    if pairs is None:
        pairs, subset = NodePairs.search(network, sites, catchment_m), np.arange(len(sites.edge))
    if pairs.catchment_m != float(catchment_m):
        raise ValueError("pairs were searched for another catchment")
    if len(subset) == int(pairs.site.max(initial=-1)) + 1 and np.array_equal(subset, np.arange(len(subset))):
        site = pairs.site  # every site searched, in order
        keep = node_demand[pairs.node] > 0
    else:
        position = np.full(int(max(pairs.site.max(initial=-1), subset.max(initial=-1))) + 1, -1, dtype=np.int64)
        position[subset] = np.arange(len(subset))
        site = position[pairs.site] if len(position) else pairs.site
        keep = (site >= 0) & (node_demand[pairs.node] > 0)
    ratio, node_access = _two_steps(site[keep], pairs.node[keep], pairs.decay(weights)[keep],
                                    np.asarray(capacity, dtype=float), node_demand)
    point_access = node_access[node]
    if not every:
        point_access[~on] = 0.0
    return E2sfca(site_ratio=ratio, point_access=point_access, catchment_m=float(catchment_m))


def e2sfca_from_pairs(site: np.ndarray, point: np.ndarray, distance_m: np.ndarray, capacity: np.ndarray,
                      demand: np.ndarray, *, catchment_m: float,
                      weights: tuple[float, float, float] = E2SFCA_WEIGHTS) -> E2sfca:
    """The two steps from (site, point, walk distance) pairs: the core of :func:`e2sfca`, for any cost."""
    ratio, access = _two_steps(np.asarray(site, dtype=np.int64), np.asarray(point, dtype=np.int64),
                               decay_weights(distance_m, catchment_m, weights), np.asarray(capacity, dtype=float),
                               np.asarray(demand, dtype=float))
    return E2sfca(site_ratio=ratio, point_access=access, catchment_m=float(catchment_m))


def _two_steps(site: np.ndarray, point: np.ndarray, w: np.ndarray, capacity: np.ndarray,
               demand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(R_j per site, A_i per point): R_j = S_j / sum_i D_i W_ij and A_i = sum_j R_j W_ij over the
    (site, point) pairs with decay weights ``w`` (a pair listed twice counts twice, as a sum over it)."""
    weighted_demand = np.bincount(site, weights=w * demand[point], minlength=len(capacity))
    ratio = np.divide(capacity, weighted_demand, out=np.zeros(len(capacity)), where=weighted_demand > 0)
    access = np.bincount(point, weights=w * ratio[site], minlength=len(demand))
    return ratio, access


def site_capacity(pharmacies: pd.DataFrame, column: str | None) -> tuple[np.ndarray, int]:
    """Capacity per pharmacy: 1 each without ``column``, else the column over its mean (values <= 0 or
    missing count 1). Returns the capacities and how many pharmacies took the default 1."""
    n = len(pharmacies)
    if column is None:
        return np.ones(n), 0
    values = pd.to_numeric(pharmacies[column], errors="coerce").to_numpy(dtype=float) if column in pharmacies \
        else np.full(n, np.nan)
    usable = np.isfinite(values) & (values > 0)
    if not usable.any():
        return np.ones(n), n
    return np.where(usable, values / values[usable].mean(), 1.0), int((~usable).sum())


def area_access_per_10k(point_access: np.ndarray, demand: np.ndarray, subdistrict: np.ndarray,
                        n_areas: int) -> np.ndarray:
    """Per sub-district (row positions 0..n_areas-1), the demand-weighted mean access of its points x 10,000;
    NaN where it holds no demand."""
    inside = subdistrict >= 0
    every = bool(inside.all())  # (no copies of the masked arrays)
    area = subdistrict if every else subdistrict[inside]
    total = np.bincount(area, weights=demand if every else demand[inside], minlength=n_areas)
    weighted = demand * point_access
    weighted = np.bincount(area, weights=weighted if every else weighted[inside], minlength=n_areas)
    return np.divide(weighted, total, out=np.full(n_areas, np.nan), where=total > 0) * 10_000
