"""Build the walking network from OSM inputs into compact arrays, cache it, and snap points to its edges.

A :class:`WalkNetwork` is an undirected street graph in a local metric CRS (UTM, metres): node
coordinates, one row per edge with its polyline geometry and length, and a scipy CSR adjacency
matrix for shortest-path searches. Every reader (OSM XML or PBF via pyosmium, GraphML, osmnx download)
ends in the same arrays, so the rest of the tool never sees where a network came from.

Walking filter (:data:`WALKABLE_HIGHWAYS`, :func:`is_walkable`)
    A way is walkable when its ``highway`` tag is in :data:`WALKABLE_HIGHWAYS` (footway, steps,
    pedestrian, living_street, residential, service, path, track, the road classes from trunk to
    unclassified and their links, ...), or is ``cycleway``/``bridleway`` with ``foot`` = yes or
    designated. It is excluded when ``foot=no``, when ``access`` is private/no/customers without a
    foot permission, when ``service=private``, or when it is under construction or proposed.
    Motorways and their links are never walkable. Walking is two-way: ``oneway`` is ignored.

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
import os
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pyproj
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import connected_components

from planning.errors import NetworkInputError, ParameterError
from planning.memo import Memo

#: Cache format version: bump when the arrays or the walking filter change meaning.
CACHE_VERSION = 3

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

#: Default maximum snapping distance, metres: a point farther than this from every walkable edge is
#: "off network" (a pharmacy or resident not on a mapped street, or a coordinate in the wrong CRS:
#: the GCJ-02 offset is typically 300-600 m in eastern China).
DEFAULT_MAX_SNAP_M = 250.0


class ClippedExtractWarning(UserWarning):
    """Ways reference nodes missing from the file; their present parts were kept."""


class DisconnectedNetworkWarning(UserWarning):
    """The walking network has more than one connected piece (all are kept)."""


def is_walkable(tags: Mapping[str, str]) -> bool:
    """Whether an OSM way with these tags belongs to the walking network (see the module docstring)."""
    highway = tags.get("highway")
    if highway is None or highway in NEVER_WALKABLE_HIGHWAYS:
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
    memo: Memo = field(default_factory=Memo, repr=False)  # derived values: edge samples, map layers, tilings

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
        highway = (np.asarray(list(edge_highway), dtype="U24") if edge_highway is not None
                   else np.full(len(edge_u), "unknown", dtype="U24"))
        osmid = np.arange(n, dtype=np.int64) if node_osmid is None else np.asarray(node_osmid, dtype=np.int64)
        return cls(
            crs=str(crs), node_osmid=osmid, node_xy=node_xy, edge_u=edge_u, edge_v=edge_v,
            edge_length=_polyline_lengths(coords, coord_start), edge_highway=highway,
            coord_start=coord_start, coords=coords, source=source,
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
        """Connected-piece label of every node (int array (n,)), 0 for the largest piece."""
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
    def _edge_tree(self) -> shapely.STRtree:
        return shapely.STRtree(self.edge_lines)

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
    def snap(self, xy: np.ndarray, *, max_snap_m: float = DEFAULT_MAX_SNAP_M) -> Snap:
        """Snap points (k x 2, metres in ``crs``) to their nearest edge.

        Returns a :class:`Snap` giving, per point, the edge, the position along it (metres from
        ``edge_u``), the straight access distance from the point to that position (metres), and
        ``on_network`` = access distance <= ``max_snap_m``. Points beyond it still get their nearest
        edge (so the distance can be reported) but are flagged off network.
        """
        if max_snap_m <= 0:
            raise ParameterError("最大吸附距离必须为正数", "max_snap_m must be positive (metres)")
        if self.n_edges == 0:
            raise NetworkInputError("路网中没有可步行的道路", "the network has no walkable edge")
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        points = shapely.points(xy)
        edge = np.full(len(xy), -1, dtype=np.int64)
        distance = np.full(len(xy), np.inf)
        finite = np.isfinite(xy).all(axis=1)
        for limit in (max_snap_m, None):  # cheap bounded query first, unbounded for the rest
            todo = np.flatnonzero(finite & (edge < 0))
            if len(todo) == 0:
                break
            (hit, nearest), dist = self._edge_tree.query_nearest(
                points[todo], max_distance=limit, return_distance=True, all_matches=False
            )
            edge[todo[hit]] = nearest
            distance[todo[hit]] = dist
        offset = np.full(len(xy), np.nan)
        snapped = np.full((len(xy), 2), np.nan)
        ok = edge >= 0
        if ok.any():
            lines = self.edge_lines[edge[ok]]
            offset[ok] = np.clip(shapely.line_locate_point(lines, points[ok]), 0.0, self.edge_length[edge[ok]])
            snapped[ok] = shapely.get_coordinates(shapely.line_interpolate_point(lines, offset[ok]))
        return Snap(edge=edge, offset_m=offset, access_m=distance, snapped_xy=snapped,
                    on_network=ok & (distance <= max_snap_m), max_snap_m=float(max_snap_m))

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
        """A networkx MultiGraph with the same nodes (0..n-1) and edges (``length`` in metres, ``key`` = edge index)."""
        import networkx as nx

        graph = nx.MultiGraph()
        graph.add_nodes_from(range(self.n_nodes))
        graph.add_weighted_edges_from(
            ((int(u), int(v), float(w)) for u, v, w in zip(self.edge_u, self.edge_v, self.edge_length)),
            weight="length",
        )
        return graph


@dataclass(frozen=True)
class Snap:
    """Where points meet the network; arrays of one row per point (see :meth:`WalkNetwork.snap`).

    ``edge`` is -1 only for points with non-finite coordinates. Distances are metres.
    """

    edge: np.ndarray
    offset_m: np.ndarray
    access_m: np.ndarray
    snapped_xy: np.ndarray
    on_network: np.ndarray
    max_snap_m: float

    def __len__(self) -> int:
        return len(self.edge)

    def subset(self, mask: np.ndarray) -> Snap:
        """The rows selected by a boolean mask or index array."""
        return Snap(self.edge[mask], self.offset_m[mask], self.access_m[mask], self.snapped_xy[mask],
                    self.on_network[mask], self.max_snap_m)


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
        digest = _file_sha256(path)
        cache_path = _cache_root(cache_dir) / f"walk-v{CACHE_VERSION}-{digest[:32]}.npz"
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
    (parsed data only: nothing uploaded is executed or unpickled).
    """
    suffix = "".join(Path(filename).suffixes[-2:]).lower() or ".osm"
    if not suffix.endswith((".osm", ".osm.gz", ".osm.bz2", ".pbf", ".graphml")):
        suffix = Path(filename).suffix.lower()
    folder = _cache_root(cache_dir) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(data).hexdigest()[:32]}{suffix}"
    if not path.exists():
        path.write_bytes(data)
    return load_network(path, cache_dir=cache_dir)


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
    us, vs, geoms, highways = [], [], [], []
    for u, v, data in graph.edges(data=True):
        tags = {k: _first(data.get(k)) for k in ("highway", "foot", "access", "service") if data.get(k) is not None}
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
    osmids = np.array([n if isinstance(n, (int, np.integer)) else i for i, n in enumerate(nodes)], dtype=np.int64)
    network = WalkNetwork.from_arrays(node_xy, np.array(us, dtype=np.int64), np.array(vs, dtype=np.int64),
                                      crs=crs, edge_coords=geoms, edge_highway=highways,
                                      node_osmid=osmids, source=source)
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
    ways: list[tuple[int, list[int], dict[str, str]]] = []
    try:
        for obj in osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY):
            if obj.is_node():
                if obj.location.valid():
                    lonlat[obj.id] = (obj.location.lon, obj.location.lat)
            else:
                tags = dict(obj.tags)
                if is_walkable(tags):
                    ways.append((obj.id, [node.ref for node in obj.nodes], tags))
    except RuntimeError as exc:  # libosmium reports malformed input as RuntimeError
        raise NetworkInputError(f"无法解析 OSM 文件 {path.name}：{exc}",
                                f"cannot parse OSM file {path.name}: {exc}") from exc
    return _network_from_ways(lonlat, ways, source=path.name)


def _network_from_ways(
    lonlat: Mapping[int, tuple[float, float]],
    ways: list[tuple[int, list[int], dict[str, str]]],
    *,
    source: str,
) -> WalkNetwork:
    """Topological simplification of walkable ways into edges between intersections and dead ends.

    Ways are first split where they reference nodes missing from the file (clipped extracts). A node
    becomes a network node when it ends a way piece or is used more than once (by two pieces or twice
    by one); each piece is cut there into edges whose polylines keep the intermediate vertices.
    (osmnx.graph_from_xml cannot be used: it fails on clipped extracts and applies no walking filter.)
    """
    pieces: list[tuple[list[int], str]] = []
    missing_refs = 0
    clipped_ways = 0
    for _, refs, tags in ways:
        present = [r in lonlat for r in refs]
        if not all(present):
            clipped_ways += 1
            missing_refs += present.count(False)
        run: list[int] = []
        for ref, ok in zip(refs, present):
            if ok:
                if not run or run[-1] != ref:
                    run.append(ref)
            else:
                if len(run) >= 2:
                    pieces.append((run, tags["highway"]))
                run = []
        if len(run) >= 2:
            pieces.append((run, tags["highway"]))
    if clipped_ways:
        warnings.warn(
            f"{clipped_ways} walkable ways reference {missing_refs} nodes missing from {source} "
            f"(a clipped extract); their parts inside the file were kept",
            ClippedExtractWarning,
            stacklevel=3,
        )
    if not pieces:
        raise NetworkInputError(f"{source} 中没有可步行的道路", f"{source} holds no walkable street")

    uses: dict[int, int] = {}
    for refs, _ in pieces:
        for ref in refs:
            uses[ref] = uses.get(ref, 0) + 1
    for refs, _ in pieces:
        uses[refs[0]] += 2  # piece ends are always network nodes
        uses[refs[-1]] += 2

    node_index: dict[int, int] = {}
    edge_refs: list[list[int]] = []
    highways: list[str] = []
    for refs, highway in pieces:
        start = 0
        for i in range(1, len(refs)):
            if uses[refs[i]] > 1:
                edge_refs.append(refs[start:i + 1])
                highways.append(highway)
                start = i
    for refs in edge_refs:
        for ref in (refs[0], refs[-1]):
            if ref not in node_index:
                node_index[ref] = len(node_index)

    osmids = np.fromiter(node_index.keys(), dtype=np.int64, count=len(node_index))
    node_lonlat = np.array([lonlat[r] for r in osmids], dtype=np.float64)
    crs = _utm_crs(node_lonlat[:, 0], node_lonlat[:, 1])
    transformer = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    node_xy = np.column_stack(transformer.transform(node_lonlat[:, 0], node_lonlat[:, 1]))
    flat_refs = [r for refs in edge_refs for r in refs]
    flat_lonlat = np.array([lonlat[r] for r in flat_refs], dtype=np.float64)
    flat_xy = np.column_stack(transformer.transform(flat_lonlat[:, 0], flat_lonlat[:, 1]))
    counts = np.fromiter((len(refs) for refs in edge_refs), dtype=np.int64, count=len(edge_refs))
    coord_start = np.concatenate([[0], np.cumsum(counts)])
    edge_u = np.fromiter((node_index[refs[0]] for refs in edge_refs), dtype=np.int64, count=len(edge_refs))
    edge_v = np.fromiter((node_index[refs[-1]] for refs in edge_refs), dtype=np.int64, count=len(edge_refs))
    return WalkNetwork(
        crs=crs, node_osmid=osmids, node_xy=node_xy, edge_u=edge_u, edge_v=edge_v,
        edge_length=_polyline_lengths(flat_xy, coord_start),
        edge_highway=np.asarray(highways, dtype="U24"), coord_start=coord_start, coords=flat_xy,
        source=source,
    )


# ====================================================================== helpers
def _polyline_lengths(coords: np.ndarray, coord_start: np.ndarray) -> np.ndarray:
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


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _cache_root(cache_dir: str | os.PathLike | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("PHARMACY_PLANNER_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "pharmacy-planner"


_ARRAY_FIELDS = ("node_osmid", "node_xy", "edge_u", "edge_v", "edge_length", "edge_highway", "coord_start", "coords")
_WARNING_TYPES = {cls.__name__: cls for cls in (ClippedExtractWarning, DisconnectedNetworkWarning, UserWarning)}


def _write_cache(path: Path, network: WalkNetwork, messages: list[tuple[type, str]]) -> None:
    """Atomically write the arrays as .npz (no pickles: the cache is plain arrays and JSON)."""
    meta = {"crs": network.crs, "source": network.source,
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
    network = WalkNetwork(crs=meta["crs"], source=meta["source"], **arrays)
    messages = [(_WARNING_TYPES.get(name, UserWarning), text) for name, text in meta["warnings"]]
    return network, messages
