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

from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cached_property

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
#: Points answered at once by :meth:`ServiceAccess.point_distance` (bounds its temporaries).
POINT_CHUNK = 1 << 16


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
        return self._point_query(points, with_site=True)

    def nearest_distance(self, points: Snap) -> np.ndarray:
        """The walk distance (metres) of :meth:`point_distance` alone, without finding the site (what the
        resident minutes and the walk surfaces read; the same values)."""
        return self._point_query(points, with_site=False)[0]

    def point_minutes(self, points: Snap) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`point_distance` in minutes."""
        distance, site = self.point_distance(points)
        return distance / self.speed_m_per_min, site

    def _point_query(self, points: Snap, *, with_site: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`point_distance`, :data:`POINT_CHUNK` points at a time (the temporaries of millions of
        resident points or cells stay bounded, and each chunk's gathers stay in cache); the site is left
        out (None) unless ``with_site``."""
        ok = points.on_network
        distance = np.full(len(points), np.nan)
        site = np.full(len(points), -1, dtype=np.int64) if with_site else None
        every = bool(ok.all())
        rows = None if every else np.flatnonzero(ok)
        n = len(points) if every else len(rows)
        for start in range(0, n, POINT_CHUNK):
            part = slice(start, min(start + POINT_CHUNK, n)) if every else rows[start:start + POINT_CHUNK]
            d, s = self._on_network_query(points.edge[part], points.offset_m[part], points.access_m[part], with_site)
            distance[part] = d
            if with_site:
                site[part] = s
        return distance, site

    def _on_network_query(self, e: np.ndarray, t: np.ndarray, access: np.ndarray, with_site: bool):
        """The point query of points on the network standing ``t`` metres along edges ``e`` with access
        walks ``access`` (metres): distance (``inf`` beyond the horizon) and site (-1 there; None unless
        ``with_site``)."""
        net = self.network
        u, v = net.edge_u[e], net.edge_v[e]
        via_u = self.node_distance_m[u] + t
        via_v = self.node_distance_m[v] + (net.edge_length[e] - t)
        best = np.minimum(via_u, via_v)
        best_site = np.where(via_u <= via_v, self.node_site[u], self.node_site[v]) if with_site else None
        # Sites on the same edge as the point: walk along the edge without passing a node.
        same = np.flatnonzero(self._edge_has_site[e])
        if len(same):
            same_edge_d, same_edge_site = self.same_edge_distance(e[same], t[same])
            closer = same_edge_d < best[same]
            best[same[closer]] = same_edge_d[closer]
            if with_site:
                best_site[same[closer]] = same_edge_site[closer]
        total = best + access
        beyond = ~(total <= self.max_distance_m)
        total[beyond] = np.inf
        if with_site:
            best_site[beyond] = -1
        return total, best_site

    @cached_property
    def _edge_has_site(self) -> np.ndarray:
        """Bool per network edge: an on-network site stands on it (only those points look for a site on
        their own edge)."""
        has = np.zeros(self.network.n_edges, dtype=bool)
        has[self.sites.edge[self.sites.on_network]] = True
        return has

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
            d = along_same_edge_m(self.sites.offset_m[s], self.sites.access_m[s], offset[rows], 0.0)
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


def along_same_edge_m(offset_a, access_a, offset_b, access_b):
    """The walk between two points standing on the same edge without passing a node, metres: both
    access walks plus the distance between their offsets along the edge. The one same-edge rule of the
    point queries, the pair search and the walk surfaces."""
    return np.abs(np.asarray(offset_a) - np.asarray(offset_b)) + access_a + access_b


def with_virtual_sources(adjacency: sp.csr_matrix, network: WalkNetwork, sites: Snap, rows: np.ndarray,
                         node_index: np.ndarray | None = None) -> sp.csr_matrix:
    """``adjacency`` (a graph of m nodes) plus one virtual source node per site ``rows`` (appended as nodes
    m..m+k-1, in that order) with one-way arcs to the two ends of the site's edge: access + t to u and
    access + (L - t) to v, one arc of access + min(t, L - t) on a self-loop.

    ``node_index`` maps network nodes to ``adjacency``'s nodes (-1: not in it, and the arc is left out:
    on a subgraph holding every node within the search limit, such an end lies beyond it); None when
    ``adjacency`` is the whole network's. Distances are metres.
    """
    m, k = adjacency.shape[0], len(rows)
    e = sites.edge[rows]
    t = sites.offset_m[rows]
    a = sites.access_m[rows]
    length = network.edge_length[e]
    u, v = network.edge_u[e], network.edge_v[e]
    loop = u == v
    if node_index is not None:
        u, v = node_index[u], node_index[v]
    arc_row = np.concatenate([np.arange(k), np.arange(k)])
    arc_col = np.concatenate([u, np.where(loop, -1, v)])
    arc_w = np.concatenate([a + np.where(loop, np.minimum(t, length - t), t), a + (length - t)])
    keep = arc_col >= 0
    arc_row, arc_col, arc_w = arc_row[keep], arc_col[keep], arc_w[keep]
    order = np.argsort(arc_row, kind="stable")
    counts = np.bincount(arc_row, minlength=k)
    indptr = np.concatenate([adjacency.indptr, adjacency.indptr[-1] + np.cumsum(counts)])
    return sp.csr_matrix((np.concatenate([adjacency.data, arc_w[order]]),
                          np.concatenate([adjacency.indices, arc_col[order]]), indptr), shape=(m + k, m + k))


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
    k = len(used)
    augmented = with_virtual_sources(network.adjacency, network, sites, used)
    dist, _, source = dijkstra(augmented, directed=True, indices=np.arange(n, n + k), min_only=True,
                               return_predecessors=True, limit=limit)
    node_distance = dist[:n]
    node_site = np.where(source[:n] >= n, used[np.clip(source[:n] - n, 0, k - 1)], -1)
    node_site = np.where(np.isfinite(node_distance), node_site, -1)
    return node_distance, node_site.astype(np.int64)


# ---------------------------------------------------------------------- pairs within a walk budget
#: Sources per bounded Dijkstra call of :func:`pairs_within` (bounds its dense distance block to
#: sources x subgraph nodes).
PAIR_CHUNK = 256
#: Squares per block side of :func:`nodes_within` (sources are grouped 4 x 4 squares at a time: a pharmacy
#: network's sources are sparse, and slicing one subgraph per square cost more than the searches).
NODE_SEARCH_BLOCK = 4


def pairs_within(network: WalkNetwork, sources: Snap, targets: Snap, limit_m: float
                 ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Every (source, target) pair whose walk distance is within ``limit_m`` metres, tile by tile.

    The plane is cut into squares of side ``limit_m``; for the sources of one square, a bounded Dijkstra
    (``dijkstra(indices=..., limit=limit_m)``) runs on the subgraph of the nodes in the 3 x 3 squares
    around it, each source a virtual node joined to its edge's ends (:func:`with_virtual_sources`). That
    subgraph holds every node within the limit of the sources (a walk is never shorter than the straight
    line), so distances are exact while each search touches a few thousand nodes. Targets on an edge are
    reached through its ends or along the source's own edge (:func:`along_same_edge_m`).

    Yields ``(source_index, target_index, distance_m)`` arrays (indices into ``sources`` and
    ``targets``); each pair is yielded once. Sources or targets off the network never pair. The
    walk is exact on the network (see :func:`pairs_within`): ``access_s + path + access_t``.
    """
    limit_m = float(limit_m)
    if not limit_m >= 0:
        raise ParameterError("步行距离上限不能为负数", "limit_m must be >= 0 (metres)")
    src = np.flatnonzero(sources.on_network)
    tgt = np.flatnonzero(targets.on_network)
    if len(src) == 0 or len(tgt) == 0 or network.n_edges == 0:
        return
    tiling = _tiling(network, max(limit_m, 1.0))
    tgt_key = tiling.key(targets.snapped_xy[tgt])
    tgt_order = np.argsort(tgt_key, kind="stable")
    tgt_sorted = tgt_key[tgt_order]
    src_key = tiling.key(sources.snapped_xy[src])

    def near_targets(tile: int) -> np.ndarray:
        return tgt[tiling.around(tile, tgt_order, tgt_sorted)]

    for tile, sub, local, _nodes, chunk in _tile_subgraphs(network, src, src_key, tiling, wanted=near_targets):
        s, t, d = _tile_pairs(network, sub, local, sources, chunk, targets, near_targets(tile), limit_m)
        if len(s):
            yield s, t, d


def nodes_within(network: WalkNetwork, sources: Snap, limit_m: float
                 ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Every (source, network node) pair whose walk distance is within ``limit_m`` metres: the searches of
    :func:`pairs_within` (exact, tile by tile), read at the nodes. Yields ``(source_index, node_index,
    distance_m)`` arrays; each pair once; sources off the network reach nothing."""
    limit_m = float(limit_m)
    if not limit_m >= 0:
        raise ParameterError("步行距离上限不能为负数", "limit_m must be >= 0 (metres)")
    src = np.flatnonzero(sources.on_network)
    if len(src) == 0 or network.n_edges == 0:
        return
    tiling = _tiling(network, max(limit_m, 1.0))
    keys = tiling.key(sources.snapped_xy[src])
    for _tile, sub, local, nodes, chunk in _tile_subgraphs(network, src, keys, tiling, block=NODE_SEARCH_BLOCK):
        n_sub = sub.shape[0]
        augmented = with_virtual_sources(sub, network, sources, chunk, node_index=local)
        dist = dijkstra(augmented, directed=True, indices=np.arange(n_sub, n_sub + len(chunk)),
                        limit=limit_m)[:, :n_sub]
        r, c = np.nonzero(dist <= limit_m)
        yield chunk[r], nodes[c], dist[r, c]


def _tile_subgraphs(network: WalkNetwork, src: np.ndarray, src_key: np.ndarray, tiling: _Tiling, *,
                    wanted=None, block: int = 1) -> Iterator[tuple[int, sp.csr_matrix, np.ndarray, np.ndarray, np.ndarray]]:
    """For each block of ``block`` x ``block`` squares holding sources: the subgraph of the nodes in it and
    the ring of squares around it (every node within the squares' side of its sources) and the sources in
    chunks of :data:`PAIR_CHUNK`, as ``(tile, subgraph, local, nodes, chunk)``; ``local`` maps network
    nodes to subgraph positions (-1 outside) while the chunk is used, ``nodes`` the other way.
    ``wanted(tile)`` (optional) returning nothing skips the block. Larger blocks cut fewer, larger
    subgraphs: less slicing of the adjacency where sources are sparse, longer searches' setup."""
    local = np.full(network.n_nodes, -1, dtype=np.int64)
    adjacency = network.adjacency
    src_key = tiling.block_of(src_key, block) if block > 1 else src_key
    for tile in np.unique(src_key):
        if wanted is not None and len(wanted(int(tile))) == 0:
            continue
        nodes = tiling.around(int(tile), tiling.node_order, tiling.node_sorted, block)
        local[nodes] = np.arange(len(nodes))
        sub = adjacency[nodes][:, nodes].tocsr()
        members = src[src_key == tile]
        for start in range(0, len(members), PAIR_CHUNK):
            yield int(tile), sub, local, nodes, members[start:start + PAIR_CHUNK]
        local[nodes] = -1


@dataclass(frozen=True, eq=False)
class _Tiling:
    """Squares of side ``side`` metres over a network, and its nodes sorted by square (kept per network)."""

    origin: np.ndarray
    side: float
    n_rows: int
    node_order: np.ndarray
    node_sorted: np.ndarray

    def key(self, xy: np.ndarray) -> np.ndarray:
        ij = np.floor((xy - self.origin) / self.side).astype(np.int64)
        return ij[:, 0] * self.n_rows + ij[:, 1]

    def block_of(self, keys: np.ndarray, block: int) -> np.ndarray:
        """The key of the block of ``block`` x ``block`` squares holding each square (its first square)."""
        i, j = np.divmod(np.asarray(keys, dtype=np.int64), self.n_rows)
        return (i // block) * block * self.n_rows + (j // block) * block

    def around(self, tile: int, order: np.ndarray, sorted_keys: np.ndarray, block: int = 1) -> np.ndarray:
        """The items (``order``: item indices sorted by square, ``sorted_keys`` their squares) in the squares
        of ``tile``'s block of ``block`` x ``block`` squares (see :meth:`block_of`) and the ring of squares
        around it: 3 x 3 squares for ``block`` 1."""
        i, j = divmod(int(tile), self.n_rows)
        i0, j0 = (i // block) * block, (j // block) * block
        rows = np.arange(i0 - 1, i0 + block + 1)
        cols = np.arange(j0 - 1, j0 + block + 1)
        keys = (rows[:, None] * self.n_rows + cols[None, :]).ravel()
        a = np.searchsorted(sorted_keys, keys, side="left")
        b = np.searchsorted(sorted_keys, keys, side="right")
        return np.concatenate([order[i:j] for i, j in zip(a, b)])


def _tiling(network: WalkNetwork, side: float) -> _Tiling:
    """The squares of side ``side`` over ``network``, built once per network (kept in its memo)."""
    def build() -> _Tiling:
        lo = np.minimum(network.coords.min(axis=0), network.node_xy.min(axis=0)) - side
        hi = np.maximum(network.coords.max(axis=0), network.node_xy.max(axis=0)) + side
        n_rows = int((hi[1] - lo[1]) // side) + 3
        ij = np.floor((network.node_xy - lo) / side).astype(np.int64)
        node_key = ij[:, 0] * n_rows + ij[:, 1]
        order = np.argsort(node_key, kind="stable")
        return _Tiling(lo, side, n_rows, order, node_key[order])

    return network.memo.get(("access.tiling", float(side)), build)


def _tile_pairs(network: WalkNetwork, sub: sp.csr_matrix, local: np.ndarray, sources: Snap, chunk: np.ndarray,
                targets: Snap, near: np.ndarray, limit_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs within ``limit_m`` between the sources ``chunk`` and the targets ``near`` on one subgraph."""
    n_sub, k = sub.shape[0], len(chunk)
    e = sources.edge[chunk]
    t = sources.offset_m[chunk]
    a = sources.access_m[chunk]
    lu, lv = local[network.edge_u[e]], local[network.edge_v[e]]
    augmented = with_virtual_sources(sub, network, sources, chunk, node_index=local)
    dist = dijkstra(augmented, directed=True, indices=np.arange(n_sub, n_sub + k), limit=limit_m)[:, :n_sub]

    # Through the edge ends: targets whose edge has an end reached by the source.
    te = targets.edge[near]
    ts = targets.offset_m[near]
    ta = targets.access_m[near]
    tl = network.edge_length[te]
    pu, pv = local[network.edge_u[te]], local[network.edge_v[te]]
    reached = sp.csr_matrix(np.isfinite(dist))
    cols = np.concatenate([np.flatnonzero(pu >= 0), np.flatnonzero(pv >= 0)])
    rows = np.concatenate([pu[pu >= 0], pv[pv >= 0]])
    incidence = sp.csr_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n_sub, len(near)))
    pairs = (reached @ incidence).tocoo()
    r, c = pairs.row.astype(np.int64), pairs.col.astype(np.int64)
    flat = dist.ravel()
    pu_c, pv_c = pu[c], pv[c]
    via_u = np.where(pu_c >= 0, np.take(flat, r * n_sub + np.maximum(pu_c, 0)) + ts[c], np.inf)
    via_v = np.where(pv_c >= 0, np.take(flat, r * n_sub + np.maximum(pv_c, 0)) + (tl[c] - ts[c]), np.inf)
    d = np.minimum(via_u, via_v) + ta[c]
    # Along the shared edge, without passing a node: shorten the pairs found above ...
    same = e[r] == te[c]
    if same.any():
        d[same] = np.minimum(d[same], along_same_edge_m(t[r[same]], a[r[same]], ts[c[same]], ta[c[same]]))
    # ... and add those of sources that reach neither end of their own edge within the limit (long edges).
    stranded = np.flatnonzero(~(np.isfinite(dist[np.arange(k), np.maximum(lu, 0)]) & (lu >= 0))
                              & ~(np.isfinite(dist[np.arange(k), np.maximum(lv, 0)]) & (lv >= 0)))
    if len(stranded):
        by_edge = np.argsort(te, kind="stable")
        first = np.searchsorted(te[by_edge], e[stranded], side="left")
        n_same = np.searchsorted(te[by_edge], e[stranded], side="right") - first
        sr = np.repeat(stranded, n_same)
        rank = np.arange(n_same.sum()) - np.repeat(np.cumsum(n_same) - n_same, n_same)
        sc = by_edge[np.repeat(first, n_same) + rank]
        r, c = np.concatenate([r, sr]), np.concatenate([c, sc])
        d = np.concatenate([d, along_same_edge_m(t[sr], a[sr], ts[sc], ta[sc])])
    ok = d <= limit_m
    return chunk[r[ok]], near[c[ok]], d[ok]
