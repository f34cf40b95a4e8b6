"""Independent reference answers: networkx Dijkstra on a graph where sites and points are real nodes."""

from __future__ import annotations

from collections import defaultdict

import networkx as nx
import numpy as np

from planning.network import Snap, WalkNetwork


def split_graph(network: WalkNetwork, sites: Snap, points: Snap) -> nx.MultiGraph:
    """The network with every on-network site and point inserted as a node on its edge.

    Site ``s`` hangs off its edge position as leaf ``("site", s)`` through its access walk, point
    ``p`` as leaf ``("pt", p)``; edges holding several positions are cut into a chain in order.
    """
    graph = nx.MultiGraph()
    graph.add_nodes_from(range(network.n_nodes))
    positions: dict[int, list[tuple[float, tuple]]] = defaultdict(list)
    for kind, snap in (("site", sites), ("pt", points)):
        for i in np.flatnonzero(snap.on_network):
            positions[int(snap.edge[i])].append((float(snap.offset_m[i]), (kind, int(i))))
            graph.add_edge((kind, int(i)), ("on", kind, int(i)), weight=float(snap.access_m[i]))
    for e in range(network.n_edges):
        u, v, length = int(network.edge_u[e]), int(network.edge_v[e]), float(network.edge_length[e])
        previous, previous_offset = u, 0.0
        for offset, label in sorted(positions.get(e, [])):
            here = ("on", *label)
            graph.add_edge(previous, here, weight=offset - previous_offset)
            previous, previous_offset = here, offset
        graph.add_edge(previous, v, weight=length - previous_offset)
    return graph


def nearest_site_distances(network: WalkNetwork, sites: Snap, points: Snap) -> tuple[np.ndarray, np.ndarray, dict]:
    """Node and point distances (metres) to the nearest site, and each site's own distance map."""
    graph = split_graph(network, sites, points)
    sources = [("site", int(i)) for i in np.flatnonzero(sites.on_network)]
    best = nx.multi_source_dijkstra_path_length(graph, set(sources), weight="weight") if sources else {}
    node = np.array([best.get(i, np.inf) for i in range(network.n_nodes)])
    point = np.array([best.get(("pt", i), np.nan if not points.on_network[i] else np.inf)
                      for i in range(len(points))])
    per_site = {s[1]: nx.single_source_dijkstra_path_length(graph, s, weight="weight") for s in sources}
    return node, point, per_site
