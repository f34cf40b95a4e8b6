"""Nearest polyline segment of a walking network, for many points at once (metres, the network's CRS).

A network's edges are polylines stored as one vertex array (``coords``) cut by ``coord_start``; segment
``s`` runs from vertex ``s`` to vertex ``s + 1`` when both belong to the same edge. :class:`SegmentIndex`
answers "which segment is nearest to this point, within this distance, among the edges allowed" with
plain arrays: every segment is sampled at most ``bin_m`` apart and registered in the square bins
(``bin_m`` wide) its samples fall in, so any point of a segment lies within ``bin_m / 2`` of a bin that
lists it. A query searches the bins within ``r + bin_m / 2`` of each point for radii growing from
``bin_m / 2`` to the distance asked: a point whose nearest candidate lies within the current radius has
its exact nearest segment among the candidates (every segment within that radius was a candidate), so
most points are settled by the first round, on a few bins. Points farther than :data:`BIN_ROUNDS_CAP`
bins from every street go through a k-d tree of the samples (``scipy.spatial.cKDTree``), built only then.

Ties (a point at the same distance from several segments, such as a street node) go to the lowest
segment index, which is the lowest edge index: the answer does not depend on the order of the bins.

Replaces shapely STRtrees of the edges' LineStrings (each edge a GEOS object): on a 1,000,000-node grid
those held 730 MB (LineStrings 385 MB, the tree of all edges 130 MB, the tree of the best snap class 213 MB)
against about 40 MB of arrays here.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

#: Rounds of growing radius run on the bins up to this many bins from a point; beyond, the k-d tree.
BIN_ROUNDS_CAP = 32
#: (point, bin) pairs and (point, segment) candidates looked at per step (bounds the temporaries).
_PAIR_CHUNK = 1 << 21
#: Most (point, bin) pairs one round of growing radius may look at; the points left go to the k-d tree.
_ROUND_BUDGET = 1 << 24
#: Nearest samples asked of the k-d tree per point at once; a point with more within its bound is asked again
#: for all of them.
_TREE_NEIGHBOURS = 64


def segment_starts(coord_start: np.ndarray, n_coords: int) -> np.ndarray:
    """Vertex index of every polyline segment's first vertex (a segment joins vertices s and s + 1 of one edge)."""
    vertex_edge = np.repeat(np.arange(len(coord_start) - 1), np.diff(coord_start))
    if n_coords < 2:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(vertex_edge[:-1] == vertex_edge[1:])


def sample_segments(coords: np.ndarray, segments: np.ndarray, spacing_m: float,
                    chunk: int = 1 << 18) -> tuple[np.ndarray, np.ndarray]:
    """Points along every segment in ``segments`` at most ``spacing_m`` apart, both ends included:
    (segment of each sample, sample xy in metres). Built a chunk of segments at a time (bounded temporaries)."""
    step = coords[segments + 1] - coords[segments]
    count = np.maximum(np.ceil(np.hypot(*step.T) / spacing_m).astype(np.int64), 1) + 1
    end = np.cumsum(count)
    xy = np.empty((int(end[-1]) if len(end) else 0, 2))
    for first in range(0, len(segments), chunk):
        part = slice(first, first + chunk)
        n, stop = count[part], int(end[part][-1])
        start = stop - int(n.sum())
        rank = np.arange(stop - start) - np.repeat(np.cumsum(n) - n, n)
        fraction = (rank / np.repeat(n - 1, n))[:, None]
        xy[start:stop] = (np.repeat(coords[segments[part]], n, axis=0)
                          + np.repeat(step[part], n, axis=0) * fraction)
    return np.repeat(segments, count), xy


@dataclass(frozen=True)
class Nearest:
    """Per query point: the nearest segment (-1 without one in reach), the position along it (0 at its
    first vertex, 1 at its second) and the straight distance to it (metres; inf without one)."""

    segment: np.ndarray
    t: np.ndarray
    distance_m: np.ndarray


@dataclass(frozen=True, eq=False)
class SegmentIndex:
    """Square bins of a network's polyline segments (see the module docstring). ``coords`` and
    ``coord_start`` are the network's own arrays (not copied); ``members`` lists the segments of each
    non-empty bin (``keys``, sorted; bin key = row * ``n_cols`` + column), from ``starts[i]`` to
    ``starts[i + 1]``."""

    coords: np.ndarray
    coord_start: np.ndarray
    bin_m: float
    x0: float
    y0: float
    n_cols: int
    n_rows: int
    keys: np.ndarray
    starts: np.ndarray
    members: np.ndarray

    @classmethod
    def build(cls, coords: np.ndarray, coord_start: np.ndarray, *, bin_m: float | None = None) -> SegmentIndex:
        """Index every segment of the polylines ``coords`` / ``coord_start``. ``bin_m`` defaults to the
        median segment length held between 10 and 100 m (the answers do not depend on it, only the speed)."""
        coords = np.asarray(coords, dtype=np.float64)
        segments = segment_starts(coord_start, len(coords))
        if bin_m is None:
            lengths = np.hypot(*(coords[segments + 1] - coords[segments]).T) if len(segments) else np.zeros(1)
            bin_m = float(np.clip(np.median(lengths), 10.0, 100.0))
        if len(segments):
            x0, y0 = coords.min(axis=0) - bin_m
            x1, y1 = coords.max(axis=0) + bin_m
        else:
            x0 = y0 = x1 = y1 = 0.0
        n_cols, n_rows = math.ceil((x1 - x0) / bin_m) + 1, math.ceil((y1 - y0) / bin_m) + 1
        index_type = np.int32 if len(coords) < 2**31 else np.int64
        keys_parts, member_parts = [], []
        for first in range(0, len(segments), _PAIR_CHUNK // 4):
            seg, xy = sample_segments(coords, segments[first:first + _PAIR_CHUNK // 4], bin_m)
            key = (np.floor((xy[:, 1] - y0) / bin_m).astype(np.int64) * n_cols
                   + np.floor((xy[:, 0] - x0) / bin_m).astype(np.int64))
            again = np.r_[False, (seg[1:] == seg[:-1]) & (key[1:] == key[:-1])]  # the same bin as the sample before
            keys_parts.append(key[~again])
            member_parts.append(seg[~again].astype(index_type))
        key = np.concatenate(keys_parts) if keys_parts else np.zeros(0, dtype=np.int64)
        member = np.concatenate(member_parts) if member_parts else np.zeros(0, dtype=index_type)
        order = np.argsort(key, kind="stable")
        key, member = key[order], member[order]
        first = np.r_[True, key[1:] != key[:-1]] if len(key) else np.zeros(0, dtype=bool)
        starts = np.r_[np.flatnonzero(first), len(key)].astype(np.int64)
        return cls(coords, np.asarray(coord_start), float(bin_m), float(x0), float(y0), n_cols, n_rows,
                   key[first], starts, member)

    def edge_of(self, segment: np.ndarray) -> np.ndarray:
        """The edge each segment (vertex index of its first vertex) belongs to."""
        return np.searchsorted(self.coord_start, segment, side="right") - 1

    def nearest(self, xy: np.ndarray, max_distance_m: float = math.inf, *,
                edge_ok: np.ndarray | None = None) -> Nearest:
        """The nearest segment to each point (k x 2, finite, metres) within ``max_distance_m`` (inf: the
        nearest at any distance), among the segments of edges where ``edge_ok`` (bool per edge) is True."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        found = Nearest(np.full(len(xy), -1, dtype=np.int64), np.zeros(len(xy)), np.full(len(xy), np.inf))
        if len(xy) == 0 or len(self.keys) == 0 or not max_distance_m > 0:
            return found
        # a point farther from the network's bounding box than asked has no segment in reach; one far
        # beyond it goes straight to the k-d tree, as do the points left when a round would look at more
        # bins than _ROUND_BUDGET (many points far from every street: a sheet in the wrong CRS)
        lo, hi = self.coords.min(axis=0), self.coords.max(axis=0)
        outside = np.hypot(*np.maximum(np.maximum(lo - xy, xy - hi), 0.0).T)
        pending = np.flatnonzero(outside <= max_distance_m)
        far = pending[outside[pending] > BIN_ROUNDS_CAP * self.bin_m]
        pending = pending[outside[pending] <= BIN_ROUNDS_CAP * self.bin_m]
        radius, last = self.bin_m / 2, min(max_distance_m, BIN_ROUNDS_CAP * self.bin_m)
        while len(pending):
            radius = min(radius, last)
            side = 2 * math.ceil(radius / self.bin_m + 1) + 1
            if len(pending) * side * side > _ROUND_BUDGET:
                far = np.concatenate([far, pending])
                break
            settled = self._settle(xy, pending, radius, edge_ok, found)
            pending = pending[~settled]
            if radius >= last:
                if max_distance_m > last:
                    far = np.concatenate([far, pending])
                break
            radius *= 2
        if len(far):
            self._settle_far(xy, np.sort(far), max_distance_m, edge_ok, found)
        return found

    def _settle(self, xy, points, radius, edge_ok, found: Nearest) -> np.ndarray:
        """Search the bins within ``radius + bin_m / 2`` of ``points``; write the nearest candidate of every
        point whose nearest candidate lies within ``radius`` into ``found``. Returns which were settled."""
        reach = radius + self.bin_m / 2 + 1e-9 * max(radius, 1.0)
        lo_c, hi_c = self._bin_range(xy[points, 0] - self.x0, reach, self.n_cols)
        lo_r, hi_r = self._bin_range(xy[points, 1] - self.y0, reach, self.n_rows)
        width, height = np.maximum(hi_c - lo_c + 1, 0), np.maximum(hi_r - lo_r + 1, 0)
        n_bins = width * height
        settled = np.zeros(len(points), dtype=bool)
        bounds = np.r_[0, np.cumsum(n_bins)]
        step = max(1, int(_PAIR_CHUNK // max(1, int(n_bins.max(initial=1)))))
        for first in range(0, len(points), step):
            part = slice(first, first + step)
            count = n_bins[part]
            begin = bounds[first:first + len(count)]
            owner = np.repeat(np.arange(first, first + len(count)), count)
            rank = np.arange(int(bounds[first + len(count)] - begin[0])) - np.repeat(begin - begin[0], count)
            key = ((lo_r[owner] + rank // width[owner]) * self.n_cols + lo_c[owner] + rank % width[owner])
            at = np.minimum(np.searchsorted(self.keys, key), len(self.keys) - 1)
            present = self.keys[at] == key
            owner, at = owner[present], at[present]
            if len(at) == 0:
                continue
            size = self.starts[at + 1] - self.starts[at]
            member = np.repeat(self.starts[at] - np.r_[0, np.cumsum(size)[:-1]], size) + np.arange(int(size.sum()))
            self._keep_nearest(xy, points, np.repeat(owner, size), self.members[member].astype(np.int64),
                               radius, edge_ok, found, settled)
        return settled

    def _settle_far(self, xy, points, max_distance_m, edge_ok, found: Nearest) -> None:
        """Points farther than the bin rounds reach: their nearest sample (k-d tree of the allowed
        segments' samples) is at most ``bin_m / 2`` farther than their nearest segment, so the segments
        with a sample within that distance plus ``bin_m / 2`` hold the nearest."""
        tree, sample_segment = self._sample_tree(edge_ok)
        if tree is None:
            return
        near, _ = tree.query(xy[points], k=1)
        half = self.bin_m / 2
        keep = near - half <= max_distance_m
        points, bound = points[keep], near[keep] + half + 1e-9 * (near[keep] + 1.0)
        by_bound = np.argsort(bound, kind="stable")  # a chunk's points share one bound of the tree's query
        points, bound = points[by_bound], bound[by_bound]
        k = min(_TREE_NEIGHBOURS, tree.n)
        for first in range(0, len(points), 8192):
            part, limit = points[first:first + 8192], bound[first:first + 8192]
            distance, sample = tree.query(xy[part], k=k, distance_upper_bound=float(limit.max()))
            distance, sample = distance.reshape(len(part), k), sample.reshape(len(part), k)
            within = distance <= limit[:, None]
            crowded = within[:, -1]  # maybe more samples within its bound than asked
            owner, column = np.nonzero(within & ~crowded[:, None])
            owners, segments = [owner], [sample_segment[sample[owner, column]]]
            for row in np.flatnonzero(crowded):
                ball = tree.query_ball_point(xy[part[row]], limit[row])
                owners.append(np.full(len(ball), row))
                segments.append(sample_segment[np.asarray(ball, dtype=np.int64)])
            owner, segment = np.concatenate(owners), np.concatenate(segments)
            order = np.argsort(owner, kind="stable")
            self._keep_nearest(xy, part, owner[order], segment[order], max_distance_m, None, found,
                               np.zeros(len(part), dtype=bool))

    def _sample_tree(self, edge_ok: np.ndarray | None):
        """A k-d tree of the samples of the allowed edges' segments and the segment of each sample, built
        on first use per set of allowed edges (only points far from every street need it)."""
        key = None if edge_ok is None else hashlib.sha1(np.packbits(edge_ok).tobytes()).hexdigest()
        if key not in self._trees:
            from scipy.spatial import cKDTree

            segments = segment_starts(self.coord_start, len(self.coords))
            if edge_ok is not None:
                segments = segments[edge_ok[self.edge_of(segments)]]
            if len(segments) == 0:
                self._trees[key] = (None, None)
            else:
                seg, xy = sample_segments(self.coords, segments, self.bin_m)
                self._trees[key] = (cKDTree(xy, balanced_tree=False, compact_nodes=False), seg)
        return self._trees[key]

    @cached_property
    def _trees(self) -> dict:
        return {}

    def _bin_range(self, offset: np.ndarray, reach: float, n: int) -> tuple[np.ndarray, np.ndarray]:
        """First and last bin (clipped to 0..n-1) within ``reach`` metres of each offset (metres from the
        grid's origin); first > last where the range misses the grid."""
        lo = np.clip(np.floor((offset - reach) / self.bin_m), -1, n).astype(np.int64)
        hi = np.clip(np.floor((offset + reach) / self.bin_m), -1, n).astype(np.int64)
        return np.maximum(lo, 0), np.minimum(hi, n - 1)

    def _keep_nearest(self, xy, points, owner, segment, radius, edge_ok, found: Nearest, settled: np.ndarray,
                      ) -> None:
        """Among candidate (owner, segment) pairs, grouped by owner (a position in ``points``), the nearest
        segment of each owner (ties: the lowest segment); owners whose nearest lies within ``radius`` are
        written to ``found`` and marked in ``settled``."""
        if edge_ok is not None and len(segment):
            allowed = edge_ok[self.edge_of(segment)]
            owner, segment = owner[allowed], segment[allowed]
        if len(segment) == 0:
            return
        px, py = xy[points[owner], 0], xy[points[owner], 1]
        ax, ay = self.coords[segment, 0], self.coords[segment, 1]
        bx, by = self.coords[segment + 1, 0] - ax, self.coords[segment + 1, 1] - ay
        length2 = bx * bx + by * by
        t = np.clip(np.divide((px - ax) * bx + (py - ay) * by, length2, out=np.zeros_like(length2),
                              where=length2 > 0), 0.0, 1.0)
        dx, dy = px - ax - t * bx, py - ay - t * by
        distance = np.sqrt(dx * dx + dy * dy)
        group = np.r_[True, owner[1:] != owner[:-1]]
        starts = np.flatnonzero(group)
        least = np.minimum.reduceat(distance, starts)
        sizes = np.diff(np.r_[starts, len(owner)])
        at_least = distance == np.repeat(least, sizes)
        choice = np.minimum.reduceat(np.where(at_least, segment, np.iinfo(np.int64).max), starts)
        pick = np.flatnonzero(at_least & (segment == np.repeat(choice, sizes)))
        pick = pick[np.r_[True, owner[pick][1:] != owner[pick][:-1]]]  # one row per owner
        winners, within = owner[pick], distance[pick] <= radius
        rows = points[winners[within]]
        found.segment[rows], found.t[rows], found.distance_m[rows] = segment[pick][within], t[pick][within], \
            distance[pick][within]
        settled[winners[within]] = True
