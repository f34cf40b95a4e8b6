"""Walk times from every network node and any point to the nearest site of a service.

One bounded multi-source Dijkstra per service (scipy.sparse.csgraph, ``min_only=True``, ``limit=``)
answers "how far is the nearest outpatient-pooling pharmacy, and which one" for every node at once.
Sites stand on edges, not only at nodes: each site becomes a virtual source node joined to the two
ends of its edge by its access walk plus the distance along the edge, so node distances are exact.
A point (resident, candidate site) is then answered from its edge's two node distances, its offset
along the edge and any site on that same edge, without a new search.

Distances are metres along the network plus the straight access walks at both ends; minutes are
distances divided by the walking speed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from planning.errors import ParameterError
from planning.network import Snap, WalkNetwork

#: Default walking speed, metres per minute (4.5 km/h). Planning practice in China uses 4.5-5 km/h
#: (75-83 m/min, POLICY.md, TD/T 1062-2021); the low end is taken because chronic-disease patients
#: are often elderly. 15 minutes at this speed is 1,125 m, inside the 800-1,100 m "comfortable
#: 15-minute walk" range once the access walk from the door to the street is added.
DEFAULT_SPEED_M_PER_MIN = 75.0
#: Default time budget of the service circle (15分钟医保定点服务圈), minutes (MDJ-2025 art. 5, 10).
DEFAULT_BUDGET_MIN = 15.0


@dataclass(frozen=True, eq=False)
class ServiceAccess:
    """Result of one multi-source search from the sites of one service.

    Attributes
    ----------
    network : WalkNetwork
    sites : Snap
        Where each site meets the network (one row per site given, in input order).
    site_ids : ndarray
        The caller's id of each site (input order).
    speed_m_per_min : float
        Walking speed, metres per minute.
    max_distance_m : float
        Search horizon, metres: nodes and points farther than this from every site get ``inf``.
    node_distance_m : float64 array (n,)
        Walk distance from each node to its nearest site, metres (``inf`` beyond the horizon or
        unreachable); includes the site's own access walk to the street.
    node_site : int64 array (n,)
        Index (into ``site_ids``) of that nearest site, -1 where none is within the horizon.
    """

    network: WalkNetwork
    sites: Snap
    site_ids: np.ndarray
    speed_m_per_min: float
    max_distance_m: float
    node_distance_m: np.ndarray
    node_site: np.ndarray

    @property
    def node_minutes(self) -> np.ndarray:
        """Walk time from each node to its nearest site, minutes."""
        return self.node_distance_m / self.speed_m_per_min

    @property
    def used_sites(self) -> np.ndarray:
        """Boolean mask of sites that entered the search (on the network); the others are listed, not used."""
        return self.sites.on_network

    def within(self, max_distance_m: float, *, speed_m_per_min: float | None = None) -> ServiceAccess:
        """This search cut back to a smaller horizon (metres), optionally at another walking speed.

        Distances are metres, independent of the speed, and a bounded Dijkstra's distances within its
        limit are exact, so the result equals a new search with ``limit=max_distance_m``: a walk-time
        slider or a speed change re-thresholds one wide search instead of searching again. Returns
        ``self`` when nothing changes.
        """
        speed = self.speed_m_per_min if speed_m_per_min is None else float(speed_m_per_min)
        if max_distance_m > self.max_distance_m:
            raise ParameterError(
                f"新的范围 {max_distance_m:g} 米超出了原搜索范围 {self.max_distance_m:g} 米",
                f"a horizon of {max_distance_m:g} m exceeds the search's {self.max_distance_m:g} m; search again")
        if max_distance_m == self.max_distance_m and speed == self.speed_m_per_min:
            return self
        beyond = ~(self.node_distance_m <= max_distance_m)
        return replace(self, speed_m_per_min=speed, max_distance_m=float(max_distance_m),
                       node_distance_m=np.where(beyond, np.inf, self.node_distance_m),
                       node_site=np.where(beyond, -1, self.node_site))

    def point_distance(self, points: Snap) -> tuple[np.ndarray, np.ndarray]:
        """Walk distance (metres) from snapped points to their nearest site, and that site's index.

        Exact on the network: ``access + min(d[u] + t, d[v] + (L - t), site on the same edge)``.
        Points farther than the horizon get ``inf`` and site -1; points off the network (see :meth:`WalkNetwork.snap`) get ``nan`` and site -1.
        """
        net = self.network
        edge = points.edge
        ok = points.on_network
        distance = np.full(len(points), np.nan)
        site = np.full(len(points), -1, dtype=np.int64)
        if not ok.any():
            return distance, site
        e = edge[ok]
        t = points.offset_m[ok]
        u, v = net.edge_u[e], net.edge_v[e]
        via_u = self.node_distance_m[u] + t
        via_v = self.node_distance_m[v] + (net.edge_length[e] - t)
        best = np.minimum(via_u, via_v)
        best_site = np.where(via_u <= via_v, self.node_site[u], self.node_site[v])
        # Sites on the same edge as the point: walk along the edge without passing a node.
        same_edge_d, same_edge_site = self.same_edge_distance(e, t)
        closer = same_edge_d < best
        best = np.where(closer, same_edge_d, best)
        best_site = np.where(closer, same_edge_site, best_site)
        total = best + points.access_m[ok]
        beyond = ~(total <= self.max_distance_m)
        distance[ok] = np.where(beyond, np.inf, total)
        site[ok] = np.where(beyond, -1, best_site)
        return distance, site

    def point_minutes(self, points: Snap) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`point_distance` in minutes."""
        distance, site = self.point_distance(points)
        return distance / self.speed_m_per_min, site

    def same_edge_distance(self, edge: np.ndarray, offset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For positions ``offset`` metres along edges ``edge``: the walk distance (metres) from the nearest
        on-network site standing on that same edge without passing a node, and that site (inf / -1 if none)."""
        best = np.full(len(edge), np.inf)
        best_site = np.full(len(edge), -1, dtype=np.int64)
        used = np.flatnonzero(self.sites.on_network)
        if len(used) == 0:
            return best, best_site
        site_edge = self.sites.edge[used]
        order = np.argsort(site_edge, kind="stable")
        sorted_edges = site_edge[order]
        lo = np.searchsorted(sorted_edges, edge, side="left")
        hi = np.searchsorted(sorted_edges, edge, side="right")
        for k in range(int((hi - lo).max(initial=0))):  # sites per edge are few; loop over rank
            has = lo + k < hi
            rows = np.flatnonzero(has)
            s = used[order[lo[rows] + k]]
            d = self.sites.access_m[s] + np.abs(self.sites.offset_m[s] - offset[rows])
            better = d < best[rows]
            best[rows[better]] = d[better]
            best_site[rows[better]] = s[better]
        return best, best_site


def service_access(
    network: WalkNetwork,
    sites: Snap,
    *,
    site_ids: np.ndarray | None = None,
    speed_m_per_min: float = DEFAULT_SPEED_M_PER_MIN,
    max_minutes: float | None = DEFAULT_BUDGET_MIN,
) -> ServiceAccess:
    """Walk distance from every node to the nearest of ``sites`` with one bounded multi-source search.

    Parameters
    ----------
    network : WalkNetwork
    sites : Snap
        The sites snapped to the network (``network.snap(...)``); off-network sites are not used as
        sources but stay listed (``ServiceAccess.used_sites``).
    site_ids : array, optional
        The caller's ids for the sites (default 0..k-1).
    speed_m_per_min : float
        Walking speed, metres per minute (default 75).
    max_minutes : float or None
        Search horizon, minutes (default 15); ``None`` searches the whole network.
    """
    if not speed_m_per_min > 0:
        raise ParameterError("步行速度必须为正数（米/分钟）", "speed_m_per_min must be positive (metres per minute)")
    if max_minutes is not None and not max_minutes >= 0:
        raise ParameterError("时间上限不能为负数（分钟）", "max_minutes must be >= 0 (minutes)")
    max_distance = np.inf if max_minutes is None else float(max_minutes) * speed_m_per_min
    ids = np.arange(len(sites)) if site_ids is None else np.asarray(site_ids)
    if len(ids) != len(sites):
        raise ParameterError("站点编号数量与站点数量不一致", "site_ids and sites differ in length")
    distance, nearest = multi_source_distances(network, sites, limit=max_distance)
    return ServiceAccess(network=network, sites=sites, site_ids=ids, speed_m_per_min=float(speed_m_per_min),
                         max_distance_m=max_distance, node_distance_m=distance, node_site=nearest)


def multi_source_distances(network: WalkNetwork, sites: Snap, *, limit: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
    """Exact node distances (metres) to the nearest on-network site, and its index, within ``limit``.

    Each site s on edge (u, v) at offset t with access walk a becomes a virtual node n + s with
    one-way arcs s -> u of a + t and s -> v of a + (L - t) (one arc of a + min(t, L - t) on a
    self-loop); one Dijkstra from all virtual nodes with ``min_only=True`` gives every node's nearest.
    """
    n = network.n_nodes
    used = np.flatnonzero(sites.on_network)
    if len(used) == 0 or n == 0:
        return np.full(n, np.inf), np.full(n, -1, dtype=np.int64)
    e = sites.edge[used]
    t = sites.offset_m[used]
    a = sites.access_m[used]
    length = network.edge_length[e]
    u, v = network.edge_u[e], network.edge_v[e]
    loop = u == v
    to_u = a + np.where(loop, np.minimum(t, length - t), t)
    to_v = a + (length - t)
    two = ~loop
    k = len(used)
    # Rows n..n+k-1 of the augmented matrix: one or two arcs per virtual site node.
    per_row = np.where(two, 2, 1)
    row_indices = np.empty(per_row.sum(), dtype=np.int32)
    row_data = np.empty(per_row.sum())
    starts = np.concatenate([[0], np.cumsum(per_row)[:-1]])
    row_indices[starts] = u
    row_data[starts] = to_u
    row_indices[starts[two] + 1] = v[two]
    row_data[starts[two] + 1] = to_v[two]
    base = network.adjacency
    indptr = np.concatenate([base.indptr, base.indptr[-1] + np.cumsum(per_row)])
    augmented = sp.csr_matrix(
        (np.concatenate([base.data, row_data]), np.concatenate([base.indices, row_indices]), indptr),
        shape=(n + k, n + k),
    )
    dist, _, source = dijkstra(augmented, directed=True, indices=np.arange(n, n + k), min_only=True,
                               return_predecessors=True, limit=limit)
    node_distance = dist[:n]
    node_site = np.where(source[:n] >= n, used[np.clip(source[:n] - n, 0, k - 1)], -1)
    node_site = np.where(np.isfinite(node_distance), node_site, -1)
    return node_distance, node_site.astype(np.int64)
