"""A walking network on disk, cut into square chunks that a tile reads by bounding box.

A province's network is read once (:func:`write_store` from a :class:`WalkNetwork`, or
:func:`write_store_chunks` from a generator that never holds the whole) into a store folder:

- ``meta.json``: CRS, source, chunk size (metres), sizes, the longest edge extent, the highway names;
- ``chunks/<col>_<row>.npz``: the edges whose first vertex lies in the chunk, with global edge and node
  ids, lengths (metres), highway codes, off-ground flags, polylines, and the nodes they reference;
- ``pieces.npz``: the connected piece of every node of the whole network and the small-piece flag of
  every edge (:class:`planning.network.NetworkPieces`), so a tile keeps the whole's pieces.

:meth:`NetworkStore.read` gives the part of the network whose edges meet a bounding box (metres, in the
store's CRS), edges and nodes in the whole's order, so a walk search inside it matches the whole's.
Only plain arrays and JSON are stored (no pickles). The store is keyed by the source file's SHA-256
(:func:`store_for_file`): reading the same file again reuses it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from planning.errors import NetworkInputError
from planning.network import (SMALL_PIECE_M, NetworkPieces, WalkNetwork, file_sha256, load_network,
                              network_cache_root, polyline_lengths)

#: Format version of a store folder; a store of another version is refused (and rebuilt from its file).
STORE_VERSION = 1
#: Default chunk side, metres: a few thousand edges per chunk in a city, one file read per few km².
DEFAULT_CHUNK_M = 5_000.0


@dataclass(frozen=True)
class EdgeChunk:
    """Edges of one part of a network with global ids, as a generator hands them to
    :func:`write_store_chunks`: ``edge_id`` (int64, unique over the whole), ``u``/``v`` (global node ids),
    ``coord_start``/``coords`` (polylines, metres, local offsets into ``coords``), ``highway`` (str),
    ``off_ground`` (bool), and the nodes they reference: ``node_id`` (global), ``node_xy`` (metres),
    ``node_osmid``; ``length`` (metres) when the source measured it otherwise than along the polyline
    (None: measured along it)."""

    edge_id: np.ndarray
    u: np.ndarray
    v: np.ndarray
    coord_start: np.ndarray
    coords: np.ndarray
    highway: np.ndarray
    off_ground: np.ndarray
    node_id: np.ndarray
    node_xy: np.ndarray
    node_osmid: np.ndarray
    length: np.ndarray | None = None


@dataclass(frozen=True)
class NetworkStore:
    """An open store folder (see the module docstring). ``crs`` is its projected CRS (metres)."""

    path: Path
    crs: str
    source: str
    chunk_m: float
    n_nodes: int
    n_edges: int
    max_edge_extent_m: float
    highways: tuple[str, ...]
    bounds: tuple[float, float, float, float]

    @classmethod
    def open(cls, path: str | os.PathLike) -> NetworkStore:
        path = Path(path)
        try:
            meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise NetworkInputError(f"路网分块文件夹不可读：{path}（{exc}）",
                                    f"the network store {path} cannot be read ({exc})") from exc
        if meta.get("version") != STORE_VERSION:
            raise NetworkInputError(f"路网分块文件夹版本为 {meta.get('version')}，本程序读取版本 {STORE_VERSION}：{path}",
                                    f"the network store {path} has version {meta.get('version')}; "
                                    f"this program reads version {STORE_VERSION}")
        return cls(path=path, crs=meta["crs"], source=meta["source"], chunk_m=float(meta["chunk_m"]),
                   n_nodes=int(meta["n_nodes"]), n_edges=int(meta["n_edges"]),
                   max_edge_extent_m=float(meta["max_edge_extent_m"]), highways=tuple(meta["highways"]),
                   bounds=tuple(meta["bounds"]))

    @cached_property
    def _pieces(self) -> tuple[np.ndarray, np.ndarray]:
        with np.load(self.path / "pieces.npz", allow_pickle=False) as data:
            return data["node_component"], data["edge_small_piece"]

    def chunk_names(self, bounds: tuple[float, float, float, float]) -> list[str]:
        """Names of the chunk files that may hold an edge meeting ``bounds`` (metres)."""
        reach = self.max_edge_extent_m
        xmin, ymin, xmax, ymax = bounds
        cols = range(math.floor((xmin - reach) / self.chunk_m), math.floor((xmax + reach) / self.chunk_m) + 1)
        rows = range(math.floor((ymin - reach) / self.chunk_m), math.floor((ymax + reach) / self.chunk_m) + 1)
        return [name for c in cols for r in rows if (self.path / "chunks" / (name := f"{c}_{r}.npz")).is_file()]

    def read_around(self, xy: np.ndarray, radius_m: float) -> WalkNetwork:
        """The streets within ``radius_m`` (metres, by bounding box) of some points (k x 2, store CRS): a
        sample of the network near a sample of pharmacies, e.g. to decide their datum, without reading
        the whole. Edges and nodes as :meth:`read` gives them."""
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        boxes = np.column_stack([xy - radius_m, xy + radius_m])
        near: dict[str, list[int]] = {}
        for i, box in enumerate(boxes):
            for name in self.chunk_names(tuple(box)):
                near.setdefault(name, []).append(i)
        return self._assemble(sorted(near), lambda name, part: _edges_meeting_any(part, boxes[near[name]]),
                              f"{self.source} [{len(xy)} sample points, {radius_m:.0f} m]")

    def read(self, bounds: tuple[float, float, float, float]) -> WalkNetwork:
        """The part of the network whose edges meet ``bounds`` (xmin, ymin, xmax, ymax; metres, store CRS):
        whole edges with both their nodes, in the whole network's order, carrying the whole's pieces."""
        return self._assemble(self.chunk_names(bounds), lambda name, part: _edges_meeting(part, bounds),
                              f"{self.source} [{', '.join(f'{b:.0f}' for b in bounds)}]")

    def _assemble(self, names: list[str], keep, source: str) -> WalkNetwork:
        """The network of the edges ``keep(name, chunk)`` picks (positions) from the chunks ``names``."""
        parts = []
        for name in names:
            with np.load(self.path / "chunks" / name, allow_pickle=False) as data:
                parts.append({k: data[k] for k in data.files})
        kept = [keep(name, part) for name, part in zip(names, parts)]
        if not sum(len(k) for k in kept):
            raise NetworkInputError(f"路网分块中没有道路在所选范围内（{source}）",
                                    f"the network store has no street within the range read ({source})")
        edge_id = np.concatenate([p["edge_id"][k] for p, k in zip(parts, kept)])
        order = np.argsort(edge_id, kind="stable")
        u = np.concatenate([p["u"][k] for p, k in zip(parts, kept)])[order]
        v = np.concatenate([p["v"][k] for p, k in zip(parts, kept)])[order]
        highway_code = np.concatenate([p["highway"][k] for p, k in zip(parts, kept)])[order]
        off_ground = np.concatenate([p["off_ground"][k] for p, k in zip(parts, kept)])[order]
        lines = [_polylines(p, k) for p, k in zip(parts, kept)]
        counts = np.concatenate([c for c, _ in lines])[order]
        coords_by_edge = np.concatenate([x for _, x in lines]) if lines else np.empty((0, 2))
        starts = np.concatenate([[0], np.cumsum(np.concatenate([c for c, _ in lines]))])
        # polylines follow the edge order: gather each edge's vertices from the concatenated chunks
        coords = coords_by_edge[_ranges(starts[:-1][order], counts)]
        coord_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        node_id = np.concatenate([p["node_id"] for p in parts])
        node_xy = np.concatenate([p["node_xy"] for p in parts])
        node_osmid = np.concatenate([p["node_osmid"] for p in parts])
        node_id, first = np.unique(node_id, return_index=True)
        used = np.unique(np.concatenate([u, v]))
        where = np.searchsorted(node_id, used)
        if np.any(where >= len(node_id)) or np.any(node_id[np.minimum(where, len(node_id) - 1)] != used):
            raise NetworkInputError(f"路网分块文件夹缺少节点：{self.path}", f"the network store {self.path} lacks nodes")
        node_component, edge_small = self._pieces
        lengths = np.concatenate([p["length"][k] for p, k in zip(parts, kept)])[order]
        return WalkNetwork(
            crs=self.crs, node_osmid=node_osmid[first][where], node_xy=node_xy[first][where],
            edge_u=np.searchsorted(used, u), edge_v=np.searchsorted(used, v), edge_length=lengths,
            edge_highway=np.asarray(self.highways, dtype="U24")[highway_code], coord_start=coord_start,
            coords=coords, source=source, edge_off_ground=off_ground,
            pieces=NetworkPieces(node_component=node_component[used], edge_small_piece=edge_small[edge_id[order]]))


def write_store(network: WalkNetwork, path: str | os.PathLike, *, chunk_m: float = DEFAULT_CHUNK_M,
                source_sha256: str = "") -> NetworkStore:
    """Write an in-memory network into a store folder (replacing one there) and open it."""
    def chunks() -> Iterable[EdgeChunk]:
        first = network.coords[network.coord_start[:-1]]
        key = np.floor(first / chunk_m).astype(np.int64)
        order = np.lexsort((key[:, 1], key[:, 0]))
        bounds = np.flatnonzero(np.any(np.diff(key[order], axis=0) != 0, axis=1)) + 1
        for group in np.split(order, bounds):
            group = np.sort(group)
            counts = np.diff(network.coord_start)[group]
            take = _ranges(network.coord_start[group], counts)
            nodes = np.unique(np.concatenate([network.edge_u[group], network.edge_v[group]]))
            yield EdgeChunk(edge_id=group.astype(np.int64), u=network.edge_u[group], v=network.edge_v[group],
                            coord_start=np.concatenate([[0], np.cumsum(counts)]), coords=network.coords[take],
                            highway=network.edge_highway[group], off_ground=network.edge_off_ground[group],
                            node_id=nodes, node_xy=network.node_xy[nodes], node_osmid=network.node_osmid[nodes],
                            length=network.edge_length[group])

    return write_store_chunks(chunks(), path, crs=network.crs, source=network.source, chunk_m=chunk_m,
                              n_nodes=network.n_nodes, source_sha256=source_sha256)


def write_store_chunks(chunks: Iterable[EdgeChunk], path: str | os.PathLike, *, crs: str, source: str,
                       n_nodes: int, chunk_m: float = DEFAULT_CHUNK_M, source_sha256: str = "") -> NetworkStore:
    """Write a network handed over part by part (global node ids ``0 .. n_nodes - 1``, global edge ids
    unique and not negative, in the order a whole network would hold its edges) into a store folder, then the whole network's connected pieces from every chunk's ends.

    Each part is split by the chunk of each edge's first vertex, so parts need not follow chunks; only
    one part is held at a time, plus the whole's edge ends (16 bytes per edge) for the pieces."""
    path = Path(path)
    staging = path.with_name(path.name + f".{os.getpid()}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "chunks").mkdir(parents=True)
    highways: dict[str, int] = {}
    ends_u, ends_v, ends_id, ends_len = [], [], [], []
    extent, n_edges = 0.0, 0
    lo, hi = np.full(2, np.inf), np.full(2, -np.inf)
    serial = 0
    for chunk in chunks:
        counts = np.diff(chunk.coord_start)
        lengths = (polyline_lengths(chunk.coords, chunk.coord_start) if chunk.length is None
                   else np.asarray(chunk.length, dtype=np.float64))
        first = chunk.coords[chunk.coord_start[:-1]]
        box_lo = np.minimum.reduceat(chunk.coords, chunk.coord_start[:-1]) if len(counts) else np.empty((0, 2))
        box_hi = np.maximum.reduceat(chunk.coords, chunk.coord_start[:-1]) if len(counts) else np.empty((0, 2))
        if len(counts):
            extent = max(extent, float(np.max(box_hi - box_lo)))
            lo, hi = np.minimum(lo, box_lo.min(axis=0)), np.maximum(hi, box_hi.max(axis=0))
        codes = np.array([highways.setdefault(str(h), len(highways)) for h in chunk.highway], dtype=np.int32)
        key = np.floor(first / chunk_m).astype(np.int64)
        node_order = np.argsort(chunk.node_id, kind="stable")
        sorted_nodes = chunk.node_id[node_order]
        for cell in np.unique(key, axis=0):
            group = np.flatnonzero((key == cell).all(axis=1))
            take = _ranges(chunk.coord_start[group], counts[group])
            nodes = np.unique(np.concatenate([chunk.u[group], chunk.v[group]]))
            at = node_order[np.searchsorted(sorted_nodes, nodes)]
            name = f"{int(cell[0])}_{int(cell[1])}"
            target = staging / "chunks" / f"{name}.npz"
            if target.exists():  # another part already wrote edges here: keep both under one name
                name = f"{name}.{serial}"
                serial += 1
            np.savez(staging / "chunks" / f"{name}.npz", edge_id=chunk.edge_id[group], u=chunk.u[group],
                     v=chunk.v[group], length=lengths[group], highway=codes[group],
                     off_ground=np.asarray(chunk.off_ground, dtype=bool)[group],
                     counts=counts[group], coords=chunk.coords[take], box_lo=box_lo[group], box_hi=box_hi[group],
                     node_id=nodes, node_xy=chunk.node_xy[at], node_osmid=chunk.node_osmid[at])
        ends_u.append(chunk.u)
        ends_v.append(chunk.v)
        ends_id.append(chunk.edge_id)
        ends_len.append(lengths)
        n_edges += len(chunk.edge_id)
    _merge_shared_chunk_names(staging / "chunks")
    u, v, edge_id, length = (np.concatenate(a) if a else np.zeros(0) for a in (ends_u, ends_v, ends_id, ends_len))
    node_component, edge_small = _whole_pieces(u.astype(np.int64), v.astype(np.int64), edge_id.astype(np.int64),
                                               length, n_nodes)
    np.savez(staging / "pieces.npz", node_component=node_component, edge_small_piece=edge_small)
    meta = {"version": STORE_VERSION, "crs": crs, "source": source, "chunk_m": chunk_m, "n_nodes": int(n_nodes),
            "n_edges": int(n_edges), "max_edge_extent_m": extent, "highways": list(highways),
            "bounds": [float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])], "source_sha256": source_sha256}
    (staging / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    shutil.rmtree(path, ignore_errors=True)
    os.replace(staging, path)
    return NetworkStore.open(path)


def store_for_file(network_path: str | os.PathLike, *, cache_dir: str | os.PathLike | None = None,
                   chunk_m: float = DEFAULT_CHUNK_M) -> NetworkStore:
    """The store of a network file (.osm, .pbf, .graphml), written once per file content (SHA-256) under
    the network cache folder (``PHARMACY_PLANNER_CACHE``, default ``~/.cache/pharmacy-planner``)."""
    sha = file_sha256(Path(network_path))
    path = network_cache_root(cache_dir) / "stores" / f"{sha}-{chunk_m:.0f}"
    if (path / "meta.json").is_file():
        try:
            return NetworkStore.open(path)
        except NetworkInputError:
            pass  # another version: rebuilt below
    return write_store(load_network(network_path, cache_dir=cache_dir), path, chunk_m=chunk_m, source_sha256=sha)


def _edges_meeting(part: dict, bounds: tuple[float, float, float, float]) -> np.ndarray:
    xmin, ymin, xmax, ymax = bounds
    lo, hi = part["box_lo"], part["box_hi"]
    return np.flatnonzero((hi[:, 0] >= xmin) & (lo[:, 0] <= xmax) & (hi[:, 1] >= ymin) & (lo[:, 1] <= ymax))


def _edges_meeting_any(part: dict, boxes: np.ndarray) -> np.ndarray:
    """Edges of one chunk whose bounding box meets any of ``boxes`` (k x 4: xmin, ymin, xmax, ymax; the
    few boxes near this chunk)."""
    lo, hi = part["box_lo"][:, None, :], part["box_hi"][:, None, :]
    meets = ((hi[..., 0] >= boxes[:, 0]) & (lo[..., 0] <= boxes[:, 2]) & (hi[..., 1] >= boxes[:, 1])
             & (lo[..., 1] <= boxes[:, 3]))
    return np.flatnonzero(meets.any(axis=1))


def is_store(path) -> bool:
    """Whether ``path`` is a network store folder (holds ``meta.json`` and ``chunks/``)."""
    path = Path(path)
    return path.is_dir() and (path / "meta.json").is_file() and (path / "chunks").is_dir()


def _polylines(part: dict, kept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertex counts and vertices of the kept edges of one chunk, in the chunk's edge order."""
    counts = part["counts"]
    starts = np.concatenate([[0], np.cumsum(counts)])
    return counts[kept], part["coords"][_ranges(starts[kept], counts[kept])].reshape(-1, 2)


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The indices ``starts[i] .. starts[i] + counts[i] - 1`` of every i, concatenated (vectorised)."""
    counts = np.asarray(counts, dtype=np.int64)
    if not len(counts):
        return np.zeros(0, dtype=np.int64)
    before = np.cumsum(counts) - counts
    return np.repeat(np.asarray(starts, dtype=np.int64) - before, counts) + np.arange(int(counts.sum()))


def _merge_shared_chunk_names(folder: Path) -> None:
    """Chunks written by several parts (``c_r.npz`` and ``c_r.npz.k``-style names) joined into one file."""
    extra = sorted(p for p in folder.glob("*.*.npz"))
    for path in extra:
        base = folder / (path.name.split(".")[0] + ".npz")
        with np.load(base, allow_pickle=False) as a, np.load(path, allow_pickle=False) as b:
            joined = {k: np.concatenate([a[k], b[k]]) for k in a.files}
        node_id, first = np.unique(joined["node_id"], return_index=True)
        joined.update(node_id=node_id, node_xy=joined["node_xy"][first], node_osmid=joined["node_osmid"][first])
        np.savez(base, **joined)
        path.unlink()


def _whole_pieces(u: np.ndarray, v: np.ndarray, edge_id: np.ndarray, length: np.ndarray, n_nodes: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Piece label per node (0: the largest, by node count, as :attr:`WalkNetwork.components`) and the
    small-piece flag by edge id (as :attr:`WalkNetwork.edge_on_small_piece`; ids need not be dense:
    the array runs to the largest id, unused ids False)."""
    if len(edge_id) and (edge_id.min() < 0 or len(np.unique(edge_id)) != len(edge_id)):
        raise NetworkInputError("路网边编号为负或重复", "the network's edge ids are negative or repeated")
    if len(u) and (min(u.min(), v.min()) < 0 or max(u.max(), v.max()) >= n_nodes):
        raise NetworkInputError("路网边引用了不存在的节点", "an edge of the network references a node id out of range")
    graph = sp.coo_matrix((np.ones(len(u), dtype=np.int8), (u, v)), shape=(n_nodes, n_nodes)).tocsr()
    _, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels)
    rank = np.empty_like(sizes)
    rank[np.argsort(-sizes, kind="stable")] = np.arange(len(sizes))
    component = rank[labels]
    piece = component[u]
    street = np.bincount(piece, weights=length, minlength=int(component.max()) + 1 if n_nodes else 0)
    small = np.zeros(int(edge_id.max()) + 1 if len(edge_id) else 0, dtype=bool)
    small[edge_id] = (street[piece] < SMALL_PIECE_M) & (piece != 0)
    return component, small
