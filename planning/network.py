"""Build the walking network from OSM inputs into compact arrays, cache it, and snap points to its edges.

A :class:`WalkNetwork` is an undirected street graph in a local metric CRS (UTM, metres): node
coordinates, one row per edge with its polyline geometry and length, and a scipy CSR adjacency
matrix for shortest-path searches. Every reader (OSM XML or PBF via pyosmium, GraphML, osmnx download)
ends in the same arrays, so the rest of the tool never sees where a network came from.

Walking filter (:data:`WALKABLE_HIGHWAYS`, :func:`is_walkable`, :func:`walk_verdict`)
    A way is walkable when its ``highway`` tag is in :data:`WALKABLE_HIGHWAYS` (footway, steps,
    pedestrian, living_street, residential, service, path, track, the road classes from trunk to
    unclassified and their links, ...), or is ``cycleway``/``bridleway`` with ``foot`` = yes or
    designated. It is excluded when ``foot=no``, when ``access`` is private/no/customers without a
    foot permission, when ``service=private``, or when it is under construction or proposed.
    Motorways and their links are never walkable. Walking is two-way: ``oneway`` is ignored.

Passage from tags (read from ways and nodes)

    ==========================================  =====================================================
    tags                                        walking network
    ==========================================  =====================================================
    node ``barrier=*`` (gate, lift_gate,        passable; with ``foot=no|private``, or ``access=no|
    bollard, ...)                               private`` and no foot permission, the way is cut at
                                                that node: each way reaching it ends there (a dead end
                                                on each side, no passage through; ``gates_cut``)
    way ``barrier=wall|fence|city_wall|         never walked, whatever its other tags
    retaining_wall``                            (``barrier_ways_excluded``)
    way ``tunnel=*`` (not ``no`` or             walked only with pedestrian permission: ``highway``
    ``building_passage``) or ``covered=yes``    footway, steps, pedestrian, corridor, path or elevator,
                                                or ``foot=yes|designated|permissive``, or a
                                                ``sidewalk[:both|:left|:right]`` other than no/none/
                                                separate. ``access=destination`` is not a foot
                                                permission (``tunnels_excluded``)
    way in a tunnel, ``bridge=*`` (not no),     walked, but flagged off the ground
    ``layer`` != 0, or ``level`` without 0      (``WalkNetwork.edge_off_ground``); see Snapping
    ==========================================  =====================================================

    ``tunnel=building_passage`` (a way through a building at street level) counts as ground and needs
    no extra permission. The counts in brackets are kept in ``WalkNetwork.filter_counts``.

Snapping (:meth:`WalkNetwork.snap`, the one rule for residents, sites, candidates, clicks and map cells)
    A point goes to the nearest edge of the first of these classes that has an edge within the
    maximum snap distance: (1) ground edges on a large piece, (2) ground edges on a small piece,
    (3) off-ground edges on a large piece, (4) off-ground edges on a small piece. So nobody at the
    surface is placed in a tunnel or on a bridge while a ground street is within reach, and a point
    whose nearest ground street is a stranded bit is moved to a street of the connected city when one
    is within reach. A *small piece* (:data:`SMALL_PIECE_M`) is a connected piece holding less than
    500 m of street that is not the largest piece (judged by length alone: at snap time the sites are
    not known). ``Snap.moved_to_ground`` / ``Snap.moved_off_small_piece`` mark the points placed
    elsewhere than their plain nearest edge.

Clipped extracts
    A way whose nodes are partly missing from the file (an extract cut at its bounds) is split at the
    missing nodes and its present parts kept; a :class:`ClippedExtractWarning` says how many.

Disconnected pieces
    Every connected piece is kept; ``WalkNetwork.components`` labels them and a
    :class:`DisconnectedNetworkWarning` reports their number and sizes when there is more than one.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path

import numpy as np
import pyproj
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import connected_components

from planning.errors import NetworkInputError, ParameterError
from planning.memo import Memo
from planning.segment_index import SegmentIndex, sample_segments, segment_starts

#: Cache format version: bump when the arrays or the walking filter change meaning.
#: 4: node barriers, barrier ways, tunnel permission, ``edge_off_ground`` and ``filter_counts``.
CACHE_VERSION = 4

#: ``highway`` values a pedestrian may use (OSM wiki "Key:highway"; close to osmnx's "walk" network,
#: but trunk roads are kept because Chinese urban trunk roads have sidewalks).
WALKABLE_HIGHWAYS = frozenset(
    {
        "trunk", "trunk_link", "primary", "primary_link", "secondary", "secondary_link",
        "tertiary", "tertiary_link", "unclassified", "residential", "living_street", "service",
        "pedestrian", "footway", "steps", "path", "track", "corridor", "road", "elevator",
    }
)
#: Never walkable, whatever other tags say.
NEVER_WALKABLE_HIGHWAYS = frozenset(
    {"motorway", "motorway_link", "construction", "proposed", "abandoned", "razed", "platform",
     "raceway", "bus_guideway", "busway"}
)
_FOOT_ALLOWED = frozenset({"yes", "designated", "permissive", "official"})
_ACCESS_DENIED = frozenset({"private", "no", "customers"})
#: Barriers drawn as ways that no one walks along (OSM wiki "Key:barrier").
BARRIER_WAYS = frozenset({"wall", "fence", "city_wall", "retaining_wall"})
#: ``highway`` classes that are pedestrian by themselves, also in a tunnel or under a cover.
PEDESTRIAN_HIGHWAYS = frozenset({"footway", "steps", "pedestrian", "corridor", "path", "elevator"})
_FOOT_PERMISSION = frozenset({"yes", "designated", "permissive"})
_NODE_BLOCKED = frozenset({"no", "private"})
_NO_SIDEWALK = frozenset({"no", "none", "separate"})
#: A connected piece with less street than this (metres), other than the largest piece, is "small":
#: points whose nearest street lies on one snap to a larger piece within the snap distance.
SMALL_PIECE_M = 500.0

#: Default maximum snapping distance, metres: a point farther than this from every walkable edge is
#: "off network" (a pharmacy or resident not on a mapped street, or a coordinate in the wrong CRS:
#: the GCJ-02 offset is typically 300-600 m in eastern China).
DEFAULT_MAX_SNAP_M = 250.0


class ClippedExtractWarning(UserWarning):
    """Ways reference nodes missing from the file; their present parts were kept."""


class DisconnectedNetworkWarning(UserWarning):
    """The walking network has more than one connected piece (all are kept)."""


def walk_verdict(tags: Mapping[str, str]) -> str:
    """Why an OSM way with these tags is or is not walked: ``"walk"``, ``"barrier_way"`` (a wall or
    fence), ``"tunnel"`` (a tunnel or covered way without pedestrian permission), ``"filter"`` (the
    walking filter) or ``"not_highway"`` (no ``highway`` tag). See the module docstring."""
    highway = tags.get("highway")
    if highway is None:
        return "not_highway"
    if not _passes_filter(tags, highway):
        return "filter"
    if tags.get("barrier") in BARRIER_WAYS:
        return "barrier_way"
    if _is_tunnel_or_covered(tags) and not _pedestrian_permission(tags, highway):
        return "tunnel"
    return "walk"


def is_walkable(tags: Mapping[str, str]) -> bool:
    """Whether an OSM way with these tags belongs to the walking network (see the module docstring)."""
    return walk_verdict(tags) == "walk"


def is_off_ground(tags: Mapping[str, str]) -> bool:
    """Whether a way lies off the ground: in a tunnel (not a building passage), on a bridge, or on a
    non-zero ``layer`` or ``level`` (a ``level`` list holding 0, as on stairs from the street, is ground)."""
    tunnel = tags.get("tunnel")
    if tunnel not in (None, "no", "building_passage"):
        return True
    if tags.get("bridge") not in (None, "no"):
        return True
    layer = _numbers(tags.get("layer"))
    if layer and any(v != 0 for v in layer):
        return True
    level = _numbers(tags.get("level"))
    return bool(level) and 0 not in level


def node_blocks_passage(tags: Mapping[str, str]) -> bool:
    """Whether a node cuts the ways through it: a ``barrier`` whose ``foot`` (or, without a foot
    permission, ``access``) is no/private."""
    if "barrier" not in tags:
        return False
    foot = tags.get("foot")
    if foot in _NODE_BLOCKED:
        return True
    return tags.get("access") in _NODE_BLOCKED and foot not in _FOOT_ALLOWED


def _passes_filter(tags: Mapping[str, str], highway: str) -> bool:
    if highway in NEVER_WALKABLE_HIGHWAYS:
        return False
    foot = tags.get("foot")
    if foot == "no":
        return False
    if highway not in WALKABLE_HIGHWAYS and not (highway in {"cycleway", "bridleway"} and foot in _FOOT_ALLOWED):
        return False
    if tags.get("access") in _ACCESS_DENIED and foot not in _FOOT_ALLOWED:
        return False
    if tags.get("service") == "private" and foot not in _FOOT_ALLOWED:
        return False
    return True


def _is_tunnel_or_covered(tags: Mapping[str, str]) -> bool:
    return tags.get("tunnel") not in (None, "no", "building_passage") or tags.get("covered") == "yes"


def _pedestrian_permission(tags: Mapping[str, str], highway: str) -> bool:
    if highway in PEDESTRIAN_HIGHWAYS or tags.get("foot") in _FOOT_PERMISSION:
        return True
    return any(tags.get(key) not in (None, *_NO_SIDEWALK)
               for key in ("sidewalk", "sidewalk:both", "sidewalk:left", "sidewalk:right"))


def _numbers(value: str | None) -> list[float]:
    """The numbers of a ``layer``/``level`` value such as "-1", "0;1" or "1.5"; [] when none parse."""
    if not value:
        return []
    out = []
    for part in str(value).replace(",", ";").split(";"):
        try:
            out.append(float(part.strip()))
        except ValueError:
            continue
    return out


@dataclass(frozen=True, eq=False)
class NetworkPieces:
    """The connected pieces of a whole network, carried by a part cut from it: ``node_component`` (int,
    per node of the part: the whole's piece label, 0 for its largest) and ``edge_small_piece`` (bool, per
    edge of the part: its piece in the whole holds less than :data:`SMALL_PIECE_M` metres of street)."""

    node_component: np.ndarray
    edge_small_piece: np.ndarray


@dataclass(frozen=True, eq=False)
class WalkNetwork:
    """An undirected walking network in a local metric CRS.

    Attributes
    ----------
    crs : str
        The projected CRS of every coordinate here (a UTM zone, metres), e.g. ``"EPSG:32650"``.
    node_osmid : int64 array (n,)
        Source node ids (OSM ids, or 0..n-1 for synthetic networks).
    node_xy : float64 array (n, 2)
        Node coordinates in ``crs``, metres.
    edge_u, edge_v : int64 arrays (m,)
        Node indices of each edge's two ends; the geometry runs from ``edge_u`` to ``edge_v``.
    edge_length : float64 array (m,)
        Length of each edge's polyline, metres.
    edge_highway : str array (m,)
        The OSM ``highway`` class of each edge.
    coord_start : int64 array (m + 1,)
        Edge ``i``'s polyline is ``coords[coord_start[i]:coord_start[i + 1]]``.
    coords : float64 array (k, 2)
        All polyline vertices in ``crs``, metres.
    source : str
        Where the network came from (file name, "synthetic", ...).
    edge_off_ground : bool array (m,)
        Edges in a tunnel, on a bridge or on a non-zero layer/level: walked, but points at the surface
        snap to them only when no ground edge is within the snap distance. All False when not given.
    filter_counts : dict
        What the OSM reader's passage rules did (``gates_cut``, ``barrier_ways_excluded``,
        ``tunnels_excluded``, ``off_ground_edges``); empty for networks not read from OSM.
    pieces : NetworkPieces or None
        For a network cut from a larger one (a tile of :mod:`planning.netstore`): the connected pieces
        of that whole network, so a street cut off at the tile's edge is not taken for a small piece
        and the pieces a site stands on are the whole network's. None: computed from this network.
    """

    crs: str
    node_osmid: np.ndarray
    node_xy: np.ndarray
    edge_u: np.ndarray
    edge_v: np.ndarray
    edge_length: np.ndarray
    edge_highway: np.ndarray
    coord_start: np.ndarray
    coords: np.ndarray
    source: str = ""
    edge_off_ground: np.ndarray | None = None
    filter_counts: dict = field(default_factory=dict)
    pieces: NetworkPieces | None = None
    memo: Memo = field(default_factory=Memo, repr=False)  # derived values: edge samples, map layers, tilings

    def __post_init__(self):
        flags = (np.zeros(len(self.edge_u), dtype=bool) if self.edge_off_ground is None
                 else np.asarray(self.edge_off_ground, dtype=bool))
        if flags.shape != (len(self.edge_u),):
            raise ParameterError("离地标记数量与边数不一致", "edge_off_ground and edges differ in length")
        object.__setattr__(self, "edge_off_ground", flags)
        if self.pieces is not None and (self.pieces.node_component.shape != (len(self.node_xy),)
                                        or self.pieces.edge_small_piece.shape != (len(self.edge_u),)):
            raise ParameterError("连通片标记数量与节点/边数不一致", "pieces and nodes/edges differ in length")

    def __getstate__(self) -> dict:
        """Pickled (a Dask task's input, a tile's saved state) as its arrays only: the caches (adjacency,
        trees, samples) are rebuilt where it is unpickled."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __setstate__(self, state: dict) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_arrays(
        cls,
        node_xy: np.ndarray,
        edge_u: np.ndarray,
        edge_v: np.ndarray,
        *,
        crs: str,
        edge_coords: list[np.ndarray] | None = None,
        edge_highway: Iterable[str] | None = None,
        node_osmid: np.ndarray | None = None,
        source: str = "arrays",
        edge_off_ground: np.ndarray | None = None,
    ) -> WalkNetwork:
        """Build a network from node coordinates (metres, in ``crs``) and edge end indices.

        ``edge_coords[i]``, when given, is edge ``i``'s polyline (k_i x 2, metres) from ``edge_u[i]`` to
        ``edge_v[i]``; otherwise edges are straight. Lengths are always measured from the geometry.
        """
        node_xy = np.asarray(node_xy, dtype=np.float64).reshape(-1, 2)
        edge_u = np.asarray(edge_u, dtype=np.int64)
        edge_v = np.asarray(edge_v, dtype=np.int64)
        if edge_u.shape != edge_v.shape:
            raise ParameterError("边的起点与终点数量不一致", "edge_u and edge_v differ in length")
        n = len(node_xy)
        if len(edge_u) and (min(edge_u.min(), edge_v.min()) < 0 or max(edge_u.max(), edge_v.max()) >= n):
            raise ParameterError("边引用了不存在的节点", "an edge references a node index out of range")
        if edge_coords is None:
            coords = np.stack([node_xy[edge_u], node_xy[edge_v]], axis=1).reshape(-1, 2)
            coord_start = np.arange(0, 2 * len(edge_u) + 1, 2, dtype=np.int64)
        else:
            if len(edge_coords) != len(edge_u):
                raise ParameterError("边几何数量与边数不一致", "edge_coords and edges differ in length")
            counts = np.fromiter((len(c) for c in edge_coords), dtype=np.int64, count=len(edge_coords))
            if len(counts) and counts.min() < 2:
                raise ParameterError("边几何至少需要两个点", "every edge polyline needs at least two points")
            coord_start = np.concatenate([[0], np.cumsum(counts)])
            coords = (np.concatenate(edge_coords).astype(np.float64) if len(edge_coords)
                      else np.empty((0, 2)))
        highway = (_highway_array(edge_highway) if edge_highway is not None
                   else np.full(len(edge_u), "unknown", dtype="U24"))
        osmid = np.arange(n, dtype=np.int64) if node_osmid is None else np.asarray(node_osmid, dtype=np.int64)
        return cls(
            crs=str(crs), node_osmid=osmid, node_xy=node_xy, edge_u=edge_u, edge_v=edge_v,
            edge_length=polyline_lengths(coords, coord_start), edge_highway=highway,
            coord_start=coord_start, coords=coords, source=source, edge_off_ground=edge_off_ground,
        )

    # ------------------------------------------------------------------ sizes and derived arrays
    @property
    def n_nodes(self) -> int:
        return len(self.node_xy)

    @property
    def n_edges(self) -> int:
        return len(self.edge_u)

    def __repr__(self) -> str:
        return (f"WalkNetwork({self.source!r}: {self.n_nodes:,} nodes, {self.n_edges:,} edges, "
                f"{self.edge_length.sum() / 1000:,.1f} km, {self.crs}, {self.n_components} piece(s))")

    @cached_property
    def adjacency(self) -> sp.csr_matrix:
        """Symmetric n x n CSR matrix of walking lengths in metres (the shortest of parallel edges;
        self-loops left out since they never shorten a path). Explicit zeros are real zero-length edges."""
        keep = self.edge_u != self.edge_v
        rows = np.concatenate([self.edge_u[keep], self.edge_v[keep]])
        cols = np.concatenate([self.edge_v[keep], self.edge_u[keep]])
        data = np.concatenate([self.edge_length[keep], self.edge_length[keep]])
        order = np.lexsort((data, cols, rows))
        rows, cols, data = rows[order], cols[order], data[order]
        first = np.ones(len(rows), dtype=bool)
        first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
        rows, cols, data = rows[first], cols[first], data[first]
        indptr = np.zeros(self.n_nodes + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=self.n_nodes), out=indptr[1:])
        matrix = sp.csr_matrix((data, cols.astype(np.int32), indptr), shape=(self.n_nodes, self.n_nodes))
        matrix.has_sorted_indices = True
        return matrix

    @cached_property
    def components(self) -> np.ndarray:
        """Connected-piece label of every node (int array (n,)), 0 for the largest piece (of the whole
        network when this one was cut from it: :attr:`pieces`)."""
        if self.pieces is not None:
            return self.pieces.node_component
        if self.n_nodes == 0:
            return np.zeros(0, dtype=np.int64)
        _, labels = connected_components(self.adjacency, directed=False)
        sizes = np.bincount(labels)
        rank = np.empty_like(sizes)
        rank[np.argsort(-sizes, kind="stable")] = np.arange(len(sizes))
        return rank[labels]

    @property
    def n_components(self) -> int:
        return int(self.components.max()) + 1 if self.n_nodes else 0

    def component_sizes(self) -> np.ndarray:
        """Node count of each connected piece, largest first."""
        return np.bincount(self.components)

    @cached_property
    def edge_on_small_piece(self) -> np.ndarray:
        """Bool per edge: its connected piece holds less than :data:`SMALL_PIECE_M` metres of street
        and is not the largest piece (piece 0); for a cut network, as in the whole (:attr:`pieces`)."""
        if self.pieces is not None:
            return self.pieces.edge_small_piece
        if self.n_edges == 0:
            return np.zeros(0, dtype=bool)
        piece = self.components[self.edge_u]
        street = np.bincount(piece, weights=self.edge_length, minlength=self.n_components)
        return (street[piece] < SMALL_PIECE_M) & (piece != 0)

    def summary(self) -> dict:
        """Plain numbers about the network for reports: nodes, edges, km, pieces, small pieces, edges off
        the ground, and the OSM reader's passage counts (:attr:`filter_counts`)."""
        small = self.edge_on_small_piece
        return {"nodes": self.n_nodes, "edges": self.n_edges, "street_km": float(self.edge_length.sum() / 1000),
                "pieces": self.n_components,
                "small_pieces": int(len(np.unique(self.components[self.edge_u[small]]))) if small.any() else 0,
                "small_piece_km": float(self.edge_length[small].sum() / 1000),
                "off_ground_edges": int(self.edge_off_ground.sum()), **self.filter_counts}

    @cached_property
    def edge_lines(self) -> np.ndarray:
        """Edge polylines as shapely LineStrings (metres, ``crs``), built once on demand."""
        counts = np.diff(self.coord_start)
        return shapely.linestrings(self.coords, indices=np.repeat(np.arange(self.n_edges), counts))

    @cached_property
    def _vertex_offset(self) -> np.ndarray:
        """Distance (metres) along its edge from the edge's start to every vertex in ``coords``,
        accumulated over all edges (no step across an edge boundary), so positions are searchable."""
        step = np.concatenate([[0.0], np.hypot(*np.diff(self.coords, axis=0).T)]) if len(self.coords) else np.zeros(0)
        step[self.coord_start[1:-1]] = 0.0
        return np.cumsum(step)

    @cached_property
    def _offset_in_edge(self) -> np.ndarray:
        """Distance (metres) from its edge's first vertex to every vertex in ``coords``, summed edge by edge
        in vertex order: the same floats in every network holding the edge (a tile's or the whole's), unlike
        differences of :attr:`_vertex_offset`, which accumulate every edge before it."""
        out = np.zeros(len(self.coords))
        counts = np.diff(self.coord_start)
        longest_first = np.argsort(-counts, kind="stable")
        n_longer = np.searchsorted(-counts[longest_first], -np.arange(int(counts.max(initial=1))), side="left")
        first = self.coord_start[:-1][longest_first]
        for k in range(1, len(n_longer)):  # the k-th vertex of every edge having one, from the (k-1)-th
            at = first[:n_longer[k]] + k
            out[at] = out[at - 1] + np.hypot(*(self.coords[at] - self.coords[at - 1]).T)
        return out

    def _position_on_segment(self, segment: np.ndarray, t: np.ndarray, edge: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Offset along ``edge`` (metres, within 0..its length) and xy of the point at ``t`` (0..1) along
        polyline segment ``segment`` (the vertex index of its first vertex) of that edge."""
        a, b = self.coords[segment], self.coords[segment + 1]
        step = np.hypot(*(b - a).T)
        offset = np.clip(self._offset_in_edge[segment] + t * step, 0.0, self.edge_length[edge])
        return offset, a + (b - a) * t[:, None]

    def points_at(self, edge: np.ndarray, offset_m: np.ndarray) -> np.ndarray:
        """Coordinates (k x 2, metres) of the points ``offset_m`` metres along edges ``edge`` (vectorised)."""
        edge = np.asarray(edge, dtype=np.int64)
        cumulative = self._vertex_offset
        start, end = self.coord_start[edge], self.coord_start[edge + 1]
        target = cumulative[start] + np.asarray(offset_m, dtype=np.float64)
        j = np.clip(np.searchsorted(cumulative, target, side="right") - 1, start, end - 2)
        length = cumulative[j + 1] - cumulative[j]
        fraction = np.clip(np.divide(target - cumulative[j], length, out=np.zeros(len(edge)), where=length > 0), 0, 1)
        return self.coords[j] + (self.coords[j + 1] - self.coords[j]) * fraction[:, None]

    def edge_samples(self, spacing_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Points along every edge at most ``spacing_m`` apart, both ends included: (edge, offset_m, xy).

        Computed once per spacing and kept on the network (service circles of every service reuse them).
        """
        def build():
            counts = np.ceil(self.edge_length / spacing_m).astype(np.int64) + 1
            edge = np.repeat(np.arange(self.n_edges, dtype=np.int64), counts)
            rank = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            offset = rank * (self.edge_length / (counts - 1))[edge]
            return edge, offset, self.points_at(edge, offset)

        return self.memo.get(("network.edge_samples", float(spacing_m)), build)

    @cached_property
    def segment_index(self) -> SegmentIndex:
        """Bins of the edges' polyline segments for nearest-street queries (:mod:`planning.segment_index`),
        built once on demand: plain arrays (about 40 MB on a 1,000,000-node grid), no GEOS objects."""
        return SegmentIndex.build(self.coords, self.coord_start)

    @cached_property
    def to_lonlat(self) -> pyproj.Transformer:
        return pyproj.Transformer.from_crs(self.crs, "EPSG:4326", always_xy=True)

    @cached_property
    def from_lonlat(self) -> pyproj.Transformer:
        return pyproj.Transformer.from_crs("EPSG:4326", self.crs, always_xy=True)

    def project(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """WGS84 longitude/latitude (degrees) to (k, 2) coordinates in this network's CRS (metres)."""
        x, y = self.from_lonlat.transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
        return np.column_stack([x, y])

    # ------------------------------------------------------------------ snapping
    @cached_property
    def _edge_tier(self) -> np.ndarray:
        """Snap class of every edge, 0 best: 0 ground on a large piece, 1 ground on a small piece,
        2 off the ground on a large piece, 3 off the ground on a small piece (module docstring)."""
        return self.edge_off_ground.astype(np.int8) * 2 + self.edge_on_small_piece.astype(np.int8)

    def snap(self, xy: np.ndarray, *, max_snap_m: float = DEFAULT_MAX_SNAP_M) -> Snap:
        """Snap points (k x 2, metres in ``crs``) to an edge by the rule of the module docstring: the
        nearest edge of the best snap class (ground before off-ground, large piece before small) that
        has an edge within ``max_snap_m``.

        Returns a :class:`Snap` giving, per point, the edge, the position along it (metres from
        ``edge_u``), the straight access distance from the point to that position (metres), and
        ``on_network`` = access distance <= ``max_snap_m``. Points beyond it still get their nearest
        edge (so the distance can be reported) but are flagged off network.
        """
        return self._snap(xy, max_snap_m=max_snap_m, locate_beyond=True)

    def _snap(self, xy: np.ndarray, *, max_snap_m: float, locate_beyond: bool) -> Snap:
        """:meth:`snap`; with ``locate_beyond=False`` points beyond ``max_snap_m`` get edge -1 (faster)."""
        if max_snap_m <= 0:
            raise ParameterError("最大吸附距离必须为正数", "max_snap_m must be positive (metres)")
        if self.n_edges == 0:
            raise NetworkInputError("路网中没有可步行的道路", "the network has no walkable edge")
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        index = self.segment_index
        segment = np.full(len(xy), -1, dtype=np.int64)
        along = np.zeros(len(xy))
        distance = np.full(len(xy), np.inf)

        def take(rows: np.ndarray, found) -> np.ndarray:
            """Write the segments found for ``rows``; returns the rows that got one."""
            hit = found.segment >= 0
            segment[rows[hit]], along[rows[hit]], distance[rows[hit]] = (found.segment[hit], found.t[hit],
                                                                          found.distance_m[hit])
            return rows[hit]

        finite = np.isfinite(xy).all(axis=1)
        todo = np.flatnonzero(finite)
        if len(todo):
            take(todo, index.nearest(xy[todo], max_snap_m))
        edge = np.where(segment >= 0, index.edge_of(segment), -1)
        plain = edge.copy()
        tier = self._edge_tier
        pending = np.flatnonzero(edge >= 0)
        pending = pending[tier[edge[pending]] > 0]
        for better in range(3):  # a better snap class within reach wins over a nearer edge of a worse one
            pending = pending[tier[edge[pending]] > better]
            if len(pending) == 0:
                break
            moved = take(pending, index.nearest(xy[pending], max_snap_m, edge_ok=tier == better))
            edge[moved] = index.edge_of(segment[moved])
            pending = np.setdiff1d(pending, moved, assume_unique=True)
        todo = np.flatnonzero(finite & (edge < 0))
        if locate_beyond and len(todo):  # off network: the plain nearest edge, for the reported distance
            located = take(todo, index.nearest(xy[todo]))
            edge[located] = index.edge_of(segment[located])
        offset = np.full(len(xy), np.nan)
        snapped = np.full((len(xy), 2), np.nan)
        ok = edge >= 0
        if ok.any():
            offset[ok], snapped[ok] = self._position_on_segment(segment[ok], along[ok], edge[ok])
        moved = (plain >= 0) & (edge != plain)
        lifted = np.zeros(len(xy), dtype=bool)
        lifted[moved] = self.edge_off_ground[plain[moved]]
        return Snap(edge=edge, offset_m=offset, access_m=distance, snapped_xy=snapped,
                    on_network=ok & (distance <= max_snap_m), max_snap_m=float(max_snap_m),
                    moved_to_ground=lifted, moved_off_small_piece=moved & ~lifted)

    def place_street_points(self, edge: np.ndarray, offset_m: np.ndarray, *,
                            max_snap_m: float = DEFAULT_MAX_SNAP_M) -> Snap:
        """Points given on the network (``offset_m`` metres along edges ``edge``), placed by the rule of
        :meth:`snap`: points on a ground street of a large piece stay where they are (access walk 0);
        the others (on a tunnel, a bridge, another level or a small piece) are snapped from where they
        stand, so they go to a ground street of the connected city when one is within ``max_snap_m``
        (``moved_to_ground`` / ``moved_off_small_piece``) and stay on their own edge otherwise.
        Residents along the streets and siting candidates are placed this way."""
        edge = np.asarray(edge, dtype=np.int64)
        offset = np.asarray(offset_m, dtype=np.float64)
        xy = self.points_at(edge, offset)
        # Points that stay share the given arrays (snaps are never written to; a million-node network
        # has 5.5 million street points)
        snap = Snap(edge=edge, offset_m=offset, access_m=np.zeros(len(edge)), snapped_xy=xy,
                    on_network=np.ones(len(edge), dtype=bool), max_snap_m=float(max_snap_m))
        elsewhere = np.flatnonzero(self._edge_tier[edge] > 0)
        if len(elsewhere) == 0:
            return snap
        moved = self.snap(xy[elsewhere], max_snap_m=max_snap_m)
        columns = {name: getattr(snap, name).copy() for name in
                   ("edge", "offset_m", "access_m", "snapped_xy", "moved_to_ground", "moved_off_small_piece")}
        for name, column in columns.items():
            column[elsewhere] = getattr(moved, name)
        return Snap(on_network=np.ones(len(edge), dtype=bool), max_snap_m=float(max_snap_m), **columns)

    def snap_cells(self, x0: float, y_top: float, n_rows: int, n_cols: int, cell_m: float, *,
                   max_snap_m: float = DEFAULT_MAX_SNAP_M) -> tuple[np.ndarray, Snap]:
        """The centres of a raster's cells snapped by the rule of :meth:`snap` (snap class first, then the
        nearest street of that class within ``max_snap_m``), for the cells on the network only.

        The raster's top-left corner is (``x0``, ``y_top``) in ``crs`` metres, cells of ``cell_m``
        metres, row 0 at the top. Returns the flat (row-major) indices of the cells whose centre is
        within ``max_snap_m`` of a street, and their :class:`Snap` (edge, offset, straight access walk;
        no positions: ``snapped_xy`` None). Kept on the network per raster (:attr:`memo`).

        Method (vectorised, no spatial-index query per cell): every polyline segment is sampled at most
        h = ``cell_m / 2`` apart and the samples of the best snap class are burnt into the raster (each
        street cell keeps the segments of its two samples nearest its centre); a Euclidean distance
        transform with nearest indices (``scipy.ndimage.distance_transform_edt``) gives every cell its
        nearest street cell; each cell then projects its centre exactly onto those segments, the two
        segments beside the first on the same edge and the segments found by its four neighbours, and
        keeps the nearest. The access walk and position are exact for the segment kept, which is the
        street :meth:`snap` takes or one at most ``h/2 + sqrt(2) * cell_m`` farther (the distance
        transform measures between cell centres); ``benchmarks/bench_accuracy.py`` measures how often
        (on the demo, 98.9 % of cells get the same access walk, the others at most 21 m more). Cells the
        transform cannot decide (no street of the best class within reach but one of another class, or a
        distance within the transform's error of ``max_snap_m``) go through :meth:`snap` itself. Cells are
        projected in chunks of 262,144, so the temporaries stay bounded on large rasters.
        """
        key = (float(x0), float(y_top), int(n_rows), int(n_cols), float(cell_m), float(max_snap_m))
        return self.memo.get(("network.snap_cells", key), lambda: self._snap_cells(*key))

    def _segment_samples(self, spacing_m: float) -> tuple[np.ndarray, np.ndarray]:
        """Points along every polyline segment at most ``spacing_m`` apart, both ends included:
        (segment index into ``coords`` (its first vertex), xy). Not kept: only a new raster's cell snap
        reads them (12.9 million samples, 310 MB, on the 1,000,000-node grid)."""
        return sample_segments(self.coords, segment_starts(self.coord_start, len(self.coords)), spacing_m,
                               chunk=_CELL_CHUNK)

    def _snap_cells(self, x0, y_top, n_rows, n_cols, cell_m, max_snap_m) -> tuple[np.ndarray, Snap]:
        from scipy import ndimage

        if max_snap_m <= 0 or cell_m <= 0:
            raise ParameterError("最大吸附距离和栅格大小必须为正数", "max_snap_m and cell_m must be positive (metres)")
        # The transform runs on the raster grown by more than max_snap_m on each side, so a street just
        # outside the raster is seen by the cells near its border.
        pad = int(math.ceil(max_snap_m / cell_m)) + 2
        big_rows, big_cols = n_rows + 2 * pad, n_cols + 2 * pad
        bx0, by_top = x0 - pad * cell_m, y_top + pad * cell_m
        spacing = cell_m / 2
        # A street point lies within spacing/2 of a sample, a sample within cell/sqrt(2) of its cell's centre.
        slack = spacing / 2 + cell_m / math.sqrt(2)
        seg, samples = self._segment_samples(spacing)
        vertex_edge = np.repeat(np.arange(self.n_edges), np.diff(self.coord_start))
        seg_tier = self._edge_tier[vertex_edge[seg]]
        # Temporaries over the samples are int32 where they fit (cells of the grown raster, segments):
        # 12.9 million samples on the 1,000,000-node grid.
        small = big_rows * big_cols < 2**31 and len(self.coords) < 2**31
        index_type = np.int32 if small else np.int64
        inside = np.empty(len(seg), dtype=bool)
        flat = np.empty(len(seg), dtype=index_type)  # cell of each sample in the grown raster (-1 outside)
        for start in range(0, len(seg), _CELL_CHUNK):
            part = slice(start, start + _CELL_CHUNK)
            col = np.floor((samples[part, 0] - bx0) / cell_m)
            row = np.floor((by_top - samples[part, 1]) / cell_m)
            inside[part] = (col >= 0) & (col < big_cols) & (row >= 0) & (row < big_rows)
            flat[part] = np.where(inside[part], row * big_cols + col, -1)
        seg = seg.astype(index_type)
        col = row = None

        def nearest_street(chosen: np.ndarray):
            """Per cell of the grown raster: the segment of the nearest street cell among the samples
            ``chosen`` (-1 without one), and the distance (metres) between the two cell centres."""
            on = np.flatnonzero(chosen & inside)
            if len(on) == 0:
                return None, None
            cell_of = flat[on]
            key = np.empty(len(on))  # the cell, then the sample's distance to its centre (< 1: below the cell index)
            for start in range(0, len(on), _CELL_CHUNK):  # bounded temporaries
                part, cells_part = on[start:start + _CELL_CHUNK], cell_of[start:start + _CELL_CHUNK]
                gap = np.hypot(samples[part, 0] - (bx0 + (cells_part % big_cols + 0.5) * cell_m),
                               samples[part, 1] - (by_top - (cells_part // big_cols + 0.5) * cell_m)) / cell_m
                key[start:start + _CELL_CHUNK] = cells_part * 2.0 + gap
            order = np.argsort(key, kind="stable")
            key = gap = None
            cell_of, seg_of = cell_of[order], seg[on][order]
            on = order = None
            first = np.r_[True, cell_of[1:] != cell_of[:-1]]
            # Each street cell keeps its nearest segment and its nearest other segment (two streets
            # crossing one cell are common in a dense centre).
            cell_segment = np.full((2, big_rows * big_cols), -1, dtype=index_type)
            cell_segment[0, cell_of[first]] = seg_of[first]
            rest = cell_segment[0, cell_of] != seg_of
            cell_segment[1] = cell_segment[0]
            later = np.flatnonzero(rest)
            second = later[np.r_[True, cell_of[later][1:] != cell_of[later][:-1]]] if len(later) else later
            cell_segment[1, cell_of[second]] = seg_of[second]
            street = np.zeros((big_rows, big_cols), dtype=bool)
            street.ravel()[cell_of[first]] = True
            cell_of = seg_of = first = rest = later = second = None  # released before the transform
            distance, (near_row, near_col) = ndimage.distance_transform_edt(~street, return_indices=True)
            return cell_segment[:, (near_row * big_cols + near_col).ravel()], distance.ravel() * cell_m

        def in_raster(grown: np.ndarray) -> np.ndarray:
            """A grown-raster array (flat) cut to the raster's cells (flat, row-major)."""
            return grown.reshape(big_rows, big_cols)[pad:pad + n_rows, pad:pad + n_cols].ravel()

        best_segment, best_cells_m = nearest_street(seg_tier == 0)
        other_lower = None
        if (seg_tier > 0).any():  # streets of another snap class may be in reach of the cells left
            _, other_cells_m = nearest_street(seg_tier > 0)
            other_lower = None if other_cells_m is None else in_raster(other_cells_m) - slack
            other_cells_m = None
        # Released before the cells are projected: the samples are not needed again.
        flat = inside = seg = samples = seg_tier = None
        n_cells = n_rows * n_cols
        decided = np.zeros(n_cells, dtype=bool)
        # Results go straight to their cell in raster-sized arrays (pages of cells never found are never
        # touched), compacted at the end: no list of parts held beside the result.
        found_edge, found_offset = np.empty(n_cells, dtype=np.int64), np.empty(n_cells)
        found_access = np.empty(n_cells)
        undecided_lower = np.full(n_cells, np.inf) if best_segment is None else None
        if best_segment is not None:
            lower = in_raster(best_cells_m) - slack
            best_cells_m = None
            cand_cells = np.flatnonzero(lower <= max_snap_m).astype(index_type)
            segments = _SegmentGeometry.of(self.coords)
            # Cells are projected in chunks: every step below is per cell, and a chunk's temporaries
            # (seven candidate segments, projections) stay small (the 302,500-node grid has 2.8 million
            # candidate cells; all at once, 2,000 circles there peaked at 1.8 GB for the process).
            for start in range(0, len(cand_cells), _CELL_CHUNK):
                chunk = cand_cells[start:start + _CELL_CHUNK].astype(np.int64)
                big = (chunk // n_cols + pad) * big_cols + (chunk % n_cols + pad)  # in the grown raster
                s, t, d = segments.nearest(best_segment, big, big_cols, bx0, by_top, cell_m, vertex_edge)
                ok = d <= max_snap_m
                s, t = s[ok], t[ok]
                edge = vertex_edge[s]
                offset, _ = self._position_on_segment(s, t, edge)
                cells_found = chunk[ok]
                found_edge[cells_found], found_offset[cells_found] = edge, offset
                found_access[cells_found] = d[ok]
                decided[cells_found] = True
            best_segment = segments = cand_cells = None
            undecided_lower = np.where(decided, np.inf, lower)
            lower = None
        if other_lower is not None:
            undecided_lower = np.where(decided, np.inf, np.minimum(undecided_lower, other_lower))
        others = np.flatnonzero(undecided_lower <= max_snap_m)
        other_lower = undecided_lower = None
        if len(others):
            centres = np.column_stack([x0 + (others % n_cols + 0.5) * cell_m,
                                       y_top - (others // n_cols + 0.5) * cell_m])
            fallback = self._snap(centres, max_snap_m=max_snap_m, locate_beyond=False)
            keep = fallback.on_network
            at = others[keep]
            found_edge[at], found_offset[at] = fallback.edge[keep], fallback.offset_m[keep]
            found_access[at] = fallback.access_m[keep]
            decided[at] = True
            fallback = centres = at = None
        cells = np.flatnonzero(decided)
        if len(cells) < n_cells:  # one array at a time, each full-size one freed once compacted
            found_edge, found_offset, found_access = found_edge[cells], found_offset[cells], found_access[cells]
        return cells, Snap(edge=found_edge, offset_m=found_offset, access_m=found_access, snapped_xy=None,
                           on_network=np.ones(len(cells), dtype=bool), max_snap_m=float(max_snap_m))

    def snap_lonlat(self, lon, lat, *, max_snap_m: float = DEFAULT_MAX_SNAP_M) -> Snap:
        """:meth:`snap` for WGS84 longitude/latitude in degrees."""
        return self.snap(self.project(lon, lat), max_snap_m=max_snap_m)

    # ------------------------------------------------------------------ export
    def edges_gdf(self, *, lonlat: bool = True):
        """Edges as a GeoDataFrame (u, v, length_m, highway) in EPSG:4326 (or ``crs`` if ``lonlat=False``)."""
        import geopandas as gpd

        gdf = gpd.GeoDataFrame(
            {"u": self.edge_u, "v": self.edge_v, "length_m": self.edge_length, "highway": self.edge_highway},
            geometry=self.edge_lines, crs=self.crs,
        )
        return gdf.to_crs("EPSG:4326") if lonlat else gdf

    def to_networkx(self):
        """A networkx MultiGraph with the same nodes (0..n-1) and one edge per network edge: edge ``i``
        joins ``edge_u[i]`` and ``edge_v[i]`` under key ``i``, with ``length`` (metres), ``highway``
        and ``off_ground`` attributes. (Keys are the edge indices themselves, so parallel edges and
        self-loops keep their identity.)"""
        import networkx as nx

        graph = nx.MultiGraph()
        graph.add_nodes_from(range(self.n_nodes))
        graph.add_edges_from(
            (int(u), int(v), i, {"length": float(w), "highway": str(h), "off_ground": bool(f)})
            for i, (u, v, w, h, f) in enumerate(zip(self.edge_u, self.edge_v, self.edge_length,
                                                     self.edge_highway, self.edge_off_ground))
        )
        return graph


#: Cells projected at once by :meth:`WalkNetwork.snap_cells` (bounds its temporaries to tens of MB).
_CELL_CHUNK = 1 << 18


@dataclass(frozen=True)
class _SegmentGeometry:
    """The polyline segments of a network's ``coords`` (segment i runs from vertex i to i + 1; metres):
    start, direction and inverse squared length, for projecting many points at once."""

    px: np.ndarray
    py: np.ndarray
    abx: np.ndarray
    aby: np.ndarray
    inverse: np.ndarray

    @classmethod
    def of(cls, coords: np.ndarray) -> _SegmentGeometry:
        abx, aby = np.diff(coords[:, 0]), np.diff(coords[:, 1])
        ab2 = abx * abx + aby * aby
        return cls(coords[:-1, 0], coords[:-1, 1], abx, aby, np.divide(1.0, ab2, out=np.zeros_like(ab2), where=ab2 > 0))

    def nearest(self, best_segment: np.ndarray, big: np.ndarray, big_cols: int, bx0: float, by_top: float,
                cell_m: float, vertex_edge: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For the cells ``big`` (flat indices of the grown raster, ``big_cols`` wide, top-left corner
        (``bx0``, ``by_top``)): the nearest of the segments their street cell kept (``best_segment``, two
        per cell), the two beside the first on the same edge and those their four neighbours found.
        Returns (segment, position along it 0..1, distance from the cell centre in metres)."""
        own = best_segment[0, big]
        options = [own, best_segment[1, big]]
        for step in (-1, 1):  # the segments beside it on the same edge
            other = np.clip(own + step, 0, len(self.px) - 1)
            same = (vertex_edge[other] == vertex_edge[own]) & (vertex_edge[other + 1] == vertex_edge[own])
            options.append(np.where(same, other, own))
        for shift in (-1, 1, -big_cols, big_cols):  # what the four neighbours found
            options.append(best_segment[0, np.clip(big + shift, 0, best_segment.shape[1] - 1)])
        cx = bx0 + (big % big_cols + 0.5) * cell_m
        cy = by_top - (big // big_cols + 0.5) * cell_m
        best_d = np.full(len(big), np.inf)
        best_s = own.copy()
        best_t = np.zeros(len(big))
        for k, option in enumerate(options):
            rows = np.arange(len(big)) if k == 0 else np.flatnonzero(option != best_s)
            option = option[rows]
            ux, uy = cx[rows] - self.px[option], cy[rows] - self.py[option]
            sx, sy = self.abx[option], self.aby[option]
            t = np.clip((ux * sx + uy * sy) * self.inverse[option], 0.0, 1.0)
            ux -= t * sx
            uy -= t * sy
            d = np.sqrt(ux * ux + uy * uy)
            better = d < best_d[rows]
            rows = rows[better]
            best_d[rows], best_s[rows], best_t[rows] = d[better], option[better], t[better]
        return best_s, best_t, best_d


@dataclass(frozen=True)
class Snap:
    """Where points meet the network; arrays of one row per point (see :meth:`WalkNetwork.snap`).

    ``edge`` is -1 only for points with non-finite coordinates. Distances are metres. ``snapped_xy`` is
    None where the positions are not kept: a raster's cell snap (:meth:`WalkNetwork.snap_cells`), which
    only the walk surfaces read (``points_at(edge, offset_m)`` gives them; 138 MB on a 1 M-node city).
    ``moved_to_ground`` marks points whose plain nearest edge was off the ground (a tunnel, a bridge)
    and that went to a ground street within reach instead; ``moved_off_small_piece`` points whose
    plain nearest edge lay on a small piece and that went to a larger piece (module docstring).
    Both default to all False.
    """

    edge: np.ndarray
    offset_m: np.ndarray
    access_m: np.ndarray
    snapped_xy: np.ndarray | None
    on_network: np.ndarray
    max_snap_m: float
    moved_to_ground: np.ndarray | None = None
    moved_off_small_piece: np.ndarray | None = None

    def __post_init__(self):
        for name in ("moved_to_ground", "moved_off_small_piece"):
            value = getattr(self, name)
            object.__setattr__(self, name, np.zeros(len(self.edge), dtype=bool) if value is None
                               else np.asarray(value, dtype=bool))

    def __len__(self) -> int:
        return len(self.edge)

    @property
    def n_resnapped(self) -> dict:
        """How many points went elsewhere than their plain nearest edge, by reason."""
        return {"moved_to_ground": int(self.moved_to_ground.sum()),
                "moved_off_small_piece": int(self.moved_off_small_piece.sum())}

    @staticmethod
    def joined(first: Snap, second: Snap) -> Snap:
        """The rows of ``first`` then those of ``second`` (the larger snap distance of the two kept)."""
        pick = lambda name: np.concatenate([getattr(first, name), getattr(second, name)])  # noqa: E731
        if first.snapped_xy is None or second.snapped_xy is None:
            raise ValueError("a snap without positions (a raster's cells) cannot be joined")
        return Snap(pick("edge"), pick("offset_m"), pick("access_m"), pick("snapped_xy").reshape(-1, 2),
                    pick("on_network"), max(first.max_snap_m, second.max_snap_m), pick("moved_to_ground"),
                    pick("moved_off_small_piece"))

    def subset(self, mask: np.ndarray) -> Snap:
        """The rows selected by a boolean mask or index array."""
        return Snap(self.edge[mask], self.offset_m[mask], self.access_m[mask],
                    None if self.snapped_xy is None else self.snapped_xy[mask], self.on_network[mask], self.max_snap_m, self.moved_to_ground[mask],
                    self.moved_off_small_piece[mask])


# ====================================================================== readers
def load_network(
    source: str | os.PathLike,
    *,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
) -> WalkNetwork:
    """Load a walking network from a file: OSM XML (``.osm``, ``.osm.gz``, ``.osm.bz2``), OSM PBF
    (``.osm.pbf``) or osmnx GraphML (``.graphml``).

    The result is cached on disk under ``cache_dir`` (default: ``$PHARMACY_PLANNER_CACHE`` or
    ``~/.cache/pharmacy-planner``) keyed by the file's SHA-256 and :data:`CACHE_VERSION`, so the
    second load of the same file skips parsing. Warnings raised while parsing (clipped extract,
    disconnected pieces) are raised again on cached loads.
    """
    path = Path(source)
    if not path.is_file():
        raise NetworkInputError(f"找不到路网文件：{path}", f"network file not found: {path}")
    name = path.name.lower()
    if name.endswith((".osm", ".osm.gz", ".osm.bz2", ".pbf")):
        reader = _read_osm
    elif name.endswith(".graphml"):
        reader = _read_graphml
    else:
        raise NetworkInputError(
            f"不支持的路网文件类型：{path.name}（支持 .osm、.osm.gz、.osm.pbf、.graphml）",
            f"unsupported network file type: {path.name} (use .osm, .osm.gz, .osm.pbf or .graphml)",
        )
    cache_path = None
    if use_cache:
        digest = file_sha256(path)
        cache_path = network_cache_root(cache_dir) / f"walk-v{CACHE_VERSION}-{digest[:32]}.npz"
        cached = _read_cache(cache_path)
        if cached is not None:
            network, messages = cached
            for category, text in messages:
                warnings.warn(text, category, stacklevel=2)
            return network
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        network = reader(path)
        _warn_if_disconnected(network)
    messages = [(w.category, str(w.message)) for w in caught]
    for category, text in messages:
        warnings.warn(text, category, stacklevel=2)
    if cache_path is not None:
        _write_cache(cache_path, network, messages)
    return network


def load_network_bytes(data: bytes, filename: str, *, cache_dir: str | os.PathLike | None = None) -> WalkNetwork:
    """Load an uploaded network file (its bytes and original name, which decides the format).

    The bytes are stored once under the cache folder, named by their SHA-256, and read like any file
    (parsed data only: nothing uploaded is executed or unpickled). Errors name ``filename``.
    """
    suffix = "".join(Path(filename).suffixes[-2:]).lower() or ".osm"
    if not suffix.endswith((".osm", ".osm.gz", ".osm.bz2", ".pbf", ".graphml")):
        suffix = Path(filename).suffix.lower()
    folder = network_cache_root(cache_dir) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(data).hexdigest()[:32]}{suffix}"
    if not path.exists():
        path.write_bytes(data)
    try:
        return load_network(path, cache_dir=cache_dir)
    except NetworkInputError as exc:  # name the upload, not the stored copy's hash
        def named(text: str) -> str:
            return text.replace(str(path), filename).replace(path.name, filename)

        raise NetworkInputError(named(exc.message_zh), named(exc.message_en)) from exc


#: Way tags the walking filter and the level flag read from an osmnx graph's edges.
_OSMNX_TAGS = ("highway", "foot", "access", "service", "barrier", "tunnel", "covered", "bridge", "layer", "level",
               "sidewalk", "sidewalk:both", "sidewalk:left", "sidewalk:right")


def network_from_osmnx(graph, *, source: str = "osmnx") -> WalkNetwork:
    """Convert an osmnx graph (MultiDiGraph in EPSG:4326 with node ``x``/``y``) to a WalkNetwork.

    Directed twins (u->v and v->u with the same geometry) become one undirected edge. When the graph
    carries OSM tags, the walking filter applies and edges without ``highway`` (building outlines that
    ``osmnx.graph_from_xml`` keeps) are dropped; a graph with no ``highway`` tag at all is kept whole.
    """
    nodes = list(graph.nodes)
    index = {node: i for i, node in enumerate(nodes)}
    lon = np.array([graph.nodes[n]["x"] for n in nodes], dtype=float)
    lat = np.array([graph.nodes[n]["y"] for n in nodes], dtype=float)
    crs = _utm_crs(lon, lat)
    transformer = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    node_xy = np.column_stack(transformer.transform(lon, lat))
    tagged = any("highway" in data for _, _, data in graph.edges(data=True))
    seen: set[tuple] = set()
    us, vs, geoms, highways, flags = [], [], [], [], []
    for u, v, data in graph.edges(data=True):
        tags = {k: str(_first(data.get(k))) for k in _OSMNX_TAGS if data.get(k) is not None}
        if tagged and not is_walkable(tags):
            continue
        geometry = data.get("geometry")
        if geometry is not None:
            line = np.asarray(geometry.coords, dtype=float)
            line = np.column_stack(transformer.transform(line[:, 0], line[:, 1]))
        else:
            line = node_xy[[index[u], index[v]]]
        key = (min(index[u], index[v]), max(index[u], index[v]),
               round(float(np.hypot(*np.diff(line, axis=0).T).sum()), 3))
        if key in seen:  # the reverse twin of an edge already taken
            continue
        seen.add(key)
        us.append(index[u])
        vs.append(index[v])
        geoms.append(line)
        highways.append(str(tags.get("highway", "unknown")))
        flags.append(is_off_ground(tags))
    osmids = np.array([n if isinstance(n, (int, np.integer)) else i for i, n in enumerate(nodes)], dtype=np.int64)
    network = WalkNetwork.from_arrays(node_xy, np.array(us, dtype=np.int64), np.array(vs, dtype=np.int64),
                                      crs=crs, edge_coords=geoms, edge_highway=highways,
                                      node_osmid=osmids, source=source, edge_off_ground=np.array(flags, dtype=bool))
    return _drop_unused_nodes(network)


def download_network(place: str | None = None, *, polygon=None) -> WalkNetwork:
    """Download a walking network with osmnx by place name or shapely polygon (EPSG:4326).

    Needs the internet; for online users only. Offline users load a file with :func:`load_network`.
    All disconnected pieces are kept (``retain_all=True``).
    """
    import osmnx as ox

    if (place is None) == (polygon is None):
        raise ParameterError("请提供地名或多边形之一", "give exactly one of place or polygon")
    if place is not None:
        graph = ox.graph_from_place(place, network_type="walk", retain_all=True)
        return network_from_osmnx(graph, source=f"osmnx:{place}")
    graph = ox.graph_from_polygon(polygon, network_type="walk", retain_all=True)
    return network_from_osmnx(graph, source="osmnx:polygon")


def _read_graphml(path: Path) -> WalkNetwork:
    import osmnx as ox

    try:
        graph = ox.load_graphml(path)
    except Exception as exc:  # osmnx/networkx raise many types on malformed files
        raise NetworkInputError(f"无法读取 GraphML 文件：{exc}", f"cannot read GraphML file: {exc}") from exc
    return network_from_osmnx(graph, source=path.name)


def _read_osm(path: Path) -> WalkNetwork:
    """OSM XML (plain, .gz, .bz2) or PBF through pyosmium, which hands over raw tags and node order.

    (pyrosm's network reader was tried for PBF: it applies its own filter and splits ways before we
    see them, so the same extract gave 224.9 km as PBF against 173.5 km as XML. With pyosmium both
    formats give the identical network.)
    """
    import osmium

    lonlat: dict[int, tuple[float, float]] = {}
    blocked: set[int] = set()
    ways: list[tuple[int, list[int], dict[str, str]]] = []
    counts = {"barrier_ways_excluded": 0, "tunnels_excluded": 0}
    try:
        for obj in osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY):
            if obj.is_node():
                if obj.location.valid():
                    lonlat[obj.id] = (obj.location.lon, obj.location.lat)
                if "barrier" in obj.tags and node_blocks_passage(dict(obj.tags)):
                    blocked.add(obj.id)
            else:
                tags = dict(obj.tags)
                verdict = walk_verdict(tags)
                if verdict == "walk":
                    ways.append((obj.id, [node.ref for node in obj.nodes], tags))
                elif verdict == "barrier_way":
                    counts["barrier_ways_excluded"] += 1
                elif verdict == "tunnel":
                    counts["tunnels_excluded"] += 1
    except (RuntimeError, osmium.InvalidLocationError) as exc:  # libosmium: malformed input, impossible lat/lon
        raise NetworkInputError(f"无法解析 OSM 文件 {path.name}：{exc}",
                                f"cannot parse OSM file {path.name}: {exc}") from exc
    return _network_from_ways(lonlat, ways, source=path.name, blocked=blocked, counts=counts)


def _network_from_ways(
    lonlat: Mapping[int, tuple[float, float]],
    ways: list[tuple[int, list[int], dict[str, str]]],
    *,
    source: str,
    blocked: set[int] = frozenset(),
    counts: Mapping[str, int] | None = None,
) -> WalkNetwork:
    """Topological simplification of walkable ways into edges between intersections and dead ends.

    Ways are first split where they reference nodes missing from the file (clipped extracts) and cut
    at ``blocked`` nodes (locked gates): each way occurrence of a blocked node becomes a node of its
    own, so the parts on either side end there without passing (those network nodes keep the gate's
    OSM id). A node becomes a network node when it ends a way piece or is used more than once (by two
    pieces or twice by one); each piece is cut there into edges whose polylines keep the intermediate
    vertices. (osmnx.graph_from_xml cannot be used: it fails on clipped extracts and applies no
    walking filter.)
    """
    pieces: list[tuple[list, str, bool]] = []
    missing_refs = 0
    clipped_ways = 0
    position = dict(lonlat)
    original: dict = {}
    gates_cut: set[int] = set()
    for _, refs, tags in ways:
        present = [r in lonlat for r in refs]
        if not all(present):
            clipped_ways += 1
            missing_refs += present.count(False)
        highway, off_ground = tags["highway"], is_off_ground(tags)
        run: list = []
        for ref, ok in zip(refs, present):
            if ok and ref in blocked:
                gates_cut.add(ref)
                if run:  # this side ends at the gate, on a copy of its own
                    end = ("gate", ref, len(original))
                    original[end], position[end] = ref, lonlat[ref]
                    run.append(end)
                    if len(run) >= 2:
                        pieces.append((run, highway, off_ground))
                start = ("gate", ref, len(original))
                original[start], position[start] = ref, lonlat[ref]
                run = [start]
            elif ok:
                if not run or run[-1] != ref:
                    run.append(ref)
            else:
                if len(run) >= 2:
                    pieces.append((run, highway, off_ground))
                run = []
        if len(run) >= 2:
            pieces.append((run, highway, off_ground))
    if clipped_ways:
        warnings.warn(
            f"{clipped_ways} walkable ways reference {missing_refs} nodes missing from {source} "
            f"(a clipped extract); their parts inside the file were kept",
            ClippedExtractWarning,
            stacklevel=3,
        )
    if not pieces:
        raise NetworkInputError(f"{source} 中没有可步行的道路", f"{source} holds no walkable street")

    uses: dict = {}
    for refs, _, _ in pieces:
        for ref in refs:
            uses[ref] = uses.get(ref, 0) + 1
    for refs, _, _ in pieces:
        uses[refs[0]] += 2  # piece ends are always network nodes
        uses[refs[-1]] += 2

    node_index: dict = {}
    edge_refs: list[list] = []
    highways: list[str] = []
    flags: list[bool] = []
    for refs, highway, off_ground in pieces:
        start = 0
        for i in range(1, len(refs)):
            if uses[refs[i]] > 1:
                edge_refs.append(refs[start:i + 1])
                highways.append(highway)
                flags.append(off_ground)
                start = i
    for refs in edge_refs:
        for ref in (refs[0], refs[-1]):
            if ref not in node_index:
                node_index[ref] = len(node_index)

    osmids = np.fromiter((original.get(r, r) for r in node_index), dtype=np.int64, count=len(node_index))
    node_lonlat = np.array([position[r] for r in node_index], dtype=np.float64)
    crs = _utm_crs(node_lonlat[:, 0], node_lonlat[:, 1])
    transformer = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    node_xy = np.column_stack(transformer.transform(node_lonlat[:, 0], node_lonlat[:, 1]))
    flat_refs = [r for refs in edge_refs for r in refs]
    flat_lonlat = np.array([position[r] for r in flat_refs], dtype=np.float64)
    flat_xy = np.column_stack(transformer.transform(flat_lonlat[:, 0], flat_lonlat[:, 1]))
    counts_per_edge = np.fromiter((len(refs) for refs in edge_refs), dtype=np.int64, count=len(edge_refs))
    coord_start = np.concatenate([[0], np.cumsum(counts_per_edge)])
    edge_u = np.fromiter((node_index[refs[0]] for refs in edge_refs), dtype=np.int64, count=len(edge_refs))
    edge_v = np.fromiter((node_index[refs[-1]] for refs in edge_refs), dtype=np.int64, count=len(edge_refs))
    off_ground = np.asarray(flags, dtype=bool)
    filter_counts = {"gates_cut": len(gates_cut), "barrier_ways_excluded": 0, "tunnels_excluded": 0,
                     **dict(counts or {}), "off_ground_edges": int(off_ground.sum())}
    return WalkNetwork(
        crs=crs, node_osmid=osmids, node_xy=node_xy, edge_u=edge_u, edge_v=edge_v,
        edge_length=polyline_lengths(flat_xy, coord_start),
        edge_highway=np.asarray(highways, dtype="U24"), coord_start=coord_start, coords=flat_xy,
        source=source, edge_off_ground=off_ground, filter_counts=filter_counts,
    )


# ====================================================================== helpers
def _highway_array(values: Iterable[str]) -> np.ndarray:
    """Highway classes as a str array of at most 24 characters each; an array of narrower strings keeps
    its width (a synthetic grid's 1.8 million "residential" take 81 MB, not 177)."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "U" and values.dtype.itemsize <= 24 * 4:
        return values
    return np.asarray(list(values), dtype="U24")


def polyline_lengths(coords: np.ndarray, coord_start: np.ndarray) -> np.ndarray:
    """Length in metres of each polyline stored as coords[coord_start[i]:coord_start[i+1]]."""
    if len(coord_start) <= 1:
        return np.zeros(0)
    step = np.hypot(*np.diff(coords, axis=0).T) if len(coords) > 1 else np.zeros(0)
    cumulative = np.concatenate([[0.0], np.cumsum(step)])
    return cumulative[coord_start[1:] - 1] - cumulative[coord_start[:-1]]


def _utm_crs(lon: np.ndarray, lat: np.ndarray) -> str:
    """The WGS84 UTM zone (metres) holding the centre of these points, as "EPSG:326xx/327xx"."""
    if len(lon) == 0:
        raise NetworkInputError("路网没有节点", "the network has no node")
    clon, clat = float(np.median(lon)), float(np.median(lat))
    zone = int((clon + 180) // 6) % 60 + 1
    return f"EPSG:{32600 + zone if clat >= 0 else 32700 + zone}"


def _first(value):
    """osmnx stores merged tags as lists; the first value stands for the edge."""
    return value[0] if isinstance(value, list) and value else value


def _drop_unused_nodes(network: WalkNetwork) -> WalkNetwork:
    used = np.zeros(network.n_nodes, dtype=bool)
    used[network.edge_u] = True
    used[network.edge_v] = True
    if used.all():
        return network
    new_index = np.cumsum(used) - 1
    return WalkNetwork(
        crs=network.crs, node_osmid=network.node_osmid[used], node_xy=network.node_xy[used],
        edge_u=new_index[network.edge_u], edge_v=new_index[network.edge_v],
        edge_length=network.edge_length, edge_highway=network.edge_highway,
        coord_start=network.coord_start, coords=network.coords, source=network.source,
        edge_off_ground=network.edge_off_ground, filter_counts=network.filter_counts,
    )


def _warn_if_disconnected(network: WalkNetwork) -> None:
    if network.n_components > 1:
        sizes = network.component_sizes()
        warnings.warn(
            f"the walking network of {network.source} has {len(sizes)} disconnected pieces, all kept: "
            f"the largest holds {sizes[0] / sizes.sum():.1%} of {sizes.sum():,} nodes; "
            f"the next sizes are {sizes[1:6].tolist()} nodes",
            DisconnectedNetworkWarning,
            stacklevel=3,
        )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def network_cache_root(cache_dir: str | os.PathLike | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("PHARMACY_PLANNER_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "pharmacy-planner"


_ARRAY_FIELDS = ("node_osmid", "node_xy", "edge_u", "edge_v", "edge_length", "edge_highway", "coord_start", "coords",
                 "edge_off_ground")
_WARNING_TYPES = {cls.__name__: cls for cls in (ClippedExtractWarning, DisconnectedNetworkWarning, UserWarning)}


def _write_cache(path: Path, network: WalkNetwork, messages: list[tuple[type, str]]) -> None:
    """Atomically write the arrays as .npz (no pickles: the cache is plain arrays and JSON)."""
    meta = {"crs": network.crs, "source": network.source, "filter_counts": network.filter_counts,
            "warnings": [[c.__name__ if c.__name__ in _WARNING_TYPES else "UserWarning", m] for c, m in messages]}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.savez(buffer, meta=np.array(json.dumps(meta)), **{f: getattr(network, f) for f in _ARRAY_FIELDS})
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(buffer.getvalue())
        os.replace(tmp, path)
    except OSError as exc:  # a read-only home must not stop the analysis
        warnings.warn(f"network cache not written ({exc}); loading will parse the file again", stacklevel=3)


def _read_cache(path: Path) -> tuple[WalkNetwork, list[tuple[type, str]]] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            arrays = {f: data[f] for f in _ARRAY_FIELDS}
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return None  # a damaged cache is ignored and rewritten
    network = WalkNetwork(crs=meta["crs"], source=meta["source"], filter_counts=meta.get("filter_counts", {}), **arrays)
    messages = [(_WARNING_TYPES.get(name, UserWarning), text) for name, text in meta["warnings"]]
    return network, messages
