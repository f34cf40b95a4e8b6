"""Speed benchmark of the walking-access engine against networkx, the osmnx isochrone recipe and pandana.

What is compared (15-minute horizon at 75 m/min = 1,125 m, distances in metres, lengths as weights):

* **This engine** -- ``service_access(net, sites, max_minutes=15)``: one bounded multi-source
  Dijkstra (scipy.sparse.csgraph) giving every node's distance to its nearest site, with sites
  placed *on edges* (snapped).  Also a single-point query ``access.point_distance(net.snap(pt))``
  (median over ~1,000 single-point calls; and the same without the snap), and the service-circle
  polygons of all sites of one service (``walk_surface(access).polygon(15)``).  The network build
  (the CSR ``adjacency``) and the one-time snapping index (edge lines + STRtree) are timed apart.
* **networkx** ``multi_source_dijkstra_path_length(G, sites, cutoff=1125, weight="length")`` on an
  ``nx.Graph`` built from the same CSR arrays (shortest of parallel edges, no self-loops).
* **osmnx isochrone recipe** -- ``nx.ego_graph(G, site_node, radius=1125, distance="length")`` once
  per site, as in the osmnx isochrone example; for polygons the recipe's convex hull of the reached
  nodes is added per site.
* **pandana** ``Network(node_x, node_y, edge_from, edge_to, edge_weights)`` (contraction hierarchies),
  then ``set_pois(...)`` + ``nearest_pois(distance=1125, category, num_pois=1)``.

Cases: (a) the real Nanjing extract ``../shared/data/osm/nanjing_xuanwu.osm`` (skipped with a message
when absent) with 200 sites; (b) ``street_grid(550)`` (302,500 nodes) with 2,000 sites, plus "all four
services" (four independent site sets of 2,000) checked against the project's speed targets.

Reproduce (from the repository root)::

    python benchmarks/bench_access.py            # full run, several minutes (pandana's CH build dominates)
    python benchmarks/bench_access.py --quick    # smoke test: Nanjing + 120 x 120 grid, < 30 s

The Markdown table is printed and written to ``benchmarks/results/access.md`` (gitignored).

Fairness notes
--------------
* Timings are the **median** of several ``time.perf_counter`` runs (the count is printed per row);
  very slow steps (a pandana CH build over 10 s, a networkx search over 120 s) run once.  For our
  service_access and polygons the first (cold) call is shown too: the first walk surface on a network
  fills per-network caches.
* The peers cannot place a site on an edge: their sites sit at the **nearest network node** of each
  site point (scipy cKDTree, the same rule as pandana ``get_node_ids`` and osmnx ``nearest_nodes``).
  Our engine solves the harder, exact on-edge problem (virtual source nodes plus access walks).
* Graph construction for networkx (``nx.Graph`` from the arrays) is **excluded** from its query time
  and reported separately; the simple ``nx.Graph`` is the peer's fastest option (a MultiGraph, as
  ``net.to_networkx()`` or osmnx give, is slower -- one informative row shows it).
* The ego_graph recipe on the big case is timed on a random sample of 50 sites and **scaled linearly**
  to all 2,000 (marked "scaled" in the table); its polygons are per-site convex hulls (no union),
  which are cruder than ours (ours follow the reached streets plus an access width).
* pandana's query = ``set_pois`` (maps sites to nodes with its KD-tree) + ``nearest_pois``; each repeat
  uses a fresh category name (re-using one category makes pandana 0.8 slower on every repeat).
  pandana runs OpenMP threads (the thread count it reports is printed); our engine and networkx are
  single-threaded.  pandana returns float32 distances.
* Our point query includes ``net.snap`` (the STRtree lookup of the nearest edge); pandana's point peer
  is ``get_node_ids`` for one point + a lookup in its ``nearest_pois`` result.
* Other processes on the machine disturb timings; the load average at start is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import os
import platform
import re
import resource
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import networkx as nx  # noqa: E402
import pandas as pd  # noqa: E402
import shapely  # noqa: E402
from scipy.spatial import cKDTree  # noqa: E402

from planning.access import service_access  # noqa: E402
from planning.isochrones import walk_surface  # noqa: E402
from planning.network import WalkNetwork, load_network  # noqa: E402
from planning.synthetic import street_grid  # noqa: E402

SPEED_M_PER_MIN = 75.0
BUDGET_MIN = 15.0
RADIUS_M = BUDGET_MIN * SPEED_M_PER_MIN  # 1,125 m
NANJING = ROOT.parent / "shared" / "data" / "osm" / "nanjing_xuanwu.osm"
RESULTS = ROOT / "benchmarks" / "results"
#: Targets on the 302,500-node grid with 2,000 sites per service.
TARGET_FOUR_SERVICES_S = 1.0
TARGET_RATIO_VS_EGO = 300.0
TARGET_POINT_QUERY_S = 1e-3
TARGET_POLYGONS_S = 3.0


# ====================================================================== timing helpers
@dataclasses.dataclass
class Timing:
    seconds: float  # median of the runs
    runs: int
    result: object = None
    scaled: bool = False  # extrapolated from a sample
    first: float = np.nan  # the first run (cold caches)

    def per(self, factor: float) -> Timing:
        return Timing(self.seconds * factor, self.runs, self.result, scaled=True, first=self.first * factor)


def timed(fn, repeats: int, *, once_if_over: float = np.inf) -> Timing:
    """Median wall time of ``repeats`` calls of ``fn()`` (time.perf_counter); a single run when the first
    one takes longer than ``once_if_over`` seconds. Keeps the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
        if times[0] > once_if_over:
            break
    return Timing(statistics.median(times), len(times), result, first=times[0])


def median_per_call(fn, items) -> float:
    """Median wall time of ``fn(item)`` over single-item calls."""
    times = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@contextlib.contextmanager
def c_stdout_captured(sink: list[str]):
    """Capture what C/C++ code writes to file descriptor 1 (pandana's progress output) into ``sink``."""
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 1)
        try:
            yield
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
            tmp.seek(0)
            sink.append(tmp.read().decode(errors="replace"))


def fmt(seconds: float | None) -> str:
    if seconds is None or not np.isfinite(seconds):
        return "—"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def cell(peer: Timing | None, ours: Timing | None, note: str = "") -> str:
    """'time (ratio x) [runs]' for a peer against our time; ratio = peer / ours."""
    if peer is None:
        return "—"
    text = fmt(peer.seconds)
    if ours is not None and ours.seconds > 0:
        text += f" (**{peer.seconds / ours.seconds:,.1f}×**)"
    tags = [f"{peer.runs} run{'s' if peer.runs > 1 else ''}"] + (["scaled"] if peer.scaled else []) + ([note] if note else [])
    return f"{text} [{', '.join(tags)}]"


def ours_cell(t: Timing | None, note: str = "") -> str:
    if t is None:
        return "—"
    tags = [f"{t.runs} run{'s' if t.runs > 1 else ''}"] + ([note] if note else [])
    return f"{fmt(t.seconds)} [{', '.join(tags)}]"


# ====================================================================== inputs
def points_near_edges(net: WalkNetwork, k: int, rng: np.random.Generator, scatter_m: float = 30.0) -> np.ndarray:
    """k points (metres) scattered around random positions on random edges (like tests/test_access.py)."""
    edges = rng.integers(0, net.n_edges, k)
    along = shapely.line_interpolate_point(net.edge_lines[edges], rng.uniform(0, 1, k), normalized=True)
    return shapely.get_coordinates(along) + rng.normal(0, scatter_m, size=(k, 2))


def nearest_nodes(net: WalkNetwork, xy: np.ndarray) -> np.ndarray:
    """Nearest network node of each point (what the peers use in place of an on-edge site)."""
    return cKDTree(net.node_xy).query(xy)[1]


def fresh_copy(net: WalkNetwork) -> WalkNetwork:
    """The same arrays without the cached adjacency / edge lines / STRtree (to time building them)."""
    return WalkNetwork(**{f.name: getattr(net, f.name) for f in dataclasses.fields(net)})


def nx_graph(net: WalkNetwork) -> nx.Graph:
    """A simple nx.Graph with the CSR adjacency's edges (shortest parallel edge, no self-loops)."""
    coo = net.adjacency.tocoo()
    upper = coo.row < coo.col
    graph = nx.Graph()
    graph.add_nodes_from(range(net.n_nodes))
    graph.add_weighted_edges_from(
        zip(coo.row[upper].tolist(), coo.col[upper].tolist(), coo.data[upper].tolist()), weight="length")
    return graph


# ====================================================================== contenders
def ours_build(net: WalkNetwork, repeats: int) -> tuple[Timing, Timing]:
    """CSR adjacency build, and the one-time snapping index (edge lines + STRtree, via a first snap)."""
    adjacency = timed(lambda: fresh_copy(net).adjacency, repeats)

    def snap_index():
        copy = fresh_copy(net)
        start = time.perf_counter()
        copy.snap(net.node_xy[:1])
        return time.perf_counter() - start

    index_times = [snap_index() for _ in range(repeats)]
    return adjacency, Timing(statistics.median(index_times), repeats)


def ours_access(net: WalkNetwork, sites, repeats: int) -> Timing:
    """This engine: exact nearest-site distance of every node, sites on edges, bounded to 1,125 m."""
    net.adjacency  # built and timed separately
    return timed(lambda: service_access(net, sites, speed_m_per_min=SPEED_M_PER_MIN, max_minutes=BUDGET_MIN),
                 repeats)


def ours_point_queries(net: WalkNetwork, access, points_xy: np.ndarray) -> tuple[Timing, Timing]:
    """Median single-point query time: snap + point_distance, and point_distance on a pre-snapped point."""
    with_snap = median_per_call(lambda xy: access.point_distance(net.snap(xy)), points_xy[:, None, :])
    snaps = net.snap(points_xy)
    singles = [snaps.subset(np.array([i])) for i in range(len(points_xy))]
    without = median_per_call(access.point_distance, singles)
    return Timing(with_snap, len(points_xy)), Timing(without, len(points_xy))


def ours_polygons(access, repeats: int) -> Timing:
    """Service-circle polygons of all sites of one service: walk surface + 15-minute polygon."""
    return timed(lambda: walk_surface(access).polygon(BUDGET_MIN), repeats)


def networkx_multi_source(graph: nx.Graph, site_nodes: np.ndarray, repeats: int) -> Timing:
    """networkx bounded multi-source Dijkstra from the sites' nearest nodes."""
    sources = set(site_nodes.tolist())
    return timed(lambda: nx.multi_source_dijkstra_path_length(graph, sources, cutoff=RADIUS_M, weight="length"),
                 repeats, once_if_over=120.0)


def osmnx_ego_recipe(graph: nx.Graph, site_nodes: np.ndarray, repeats: int, *, node_xy=None) -> Timing:
    """The osmnx isochrone example: one ``nx.ego_graph`` per site; with ``node_xy`` also the recipe's
    convex hull of the reached nodes per site (its isochrone polygon)."""

    def run():
        for node in site_nodes:
            sub = nx.ego_graph(graph, int(node), radius=RADIUS_M, distance="length")
            if node_xy is not None:
                shapely.convex_hull(shapely.multipoints(node_xy[np.fromiter(sub.nodes, dtype=np.int64)]))
        return None

    return timed(run, repeats)


def pandana_build(net: WalkNetwork, repeats: int, log: list[str]) -> Timing:
    """pandana Network (contraction hierarchies) from the same node coordinates and edges (once when > 10 s)."""
    import pandana

    coo = net.adjacency.tocoo()
    upper = coo.row < coo.col
    args = (pd.Series(net.node_xy[:, 0]), pd.Series(net.node_xy[:, 1]), pd.Series(coo.row[upper]),
            pd.Series(coo.col[upper]), pd.DataFrame({"length": coo.data[upper]}))
    with c_stdout_captured(log):
        return timed(lambda: pandana.Network(*args, twoway=True), repeats, once_if_over=10.0)


_category_counter = [0]


def pandana_query(pnet, site_xy: np.ndarray, repeats: int, log: list[str]) -> tuple[Timing, Timing, Timing]:
    """set_pois + nearest_pois (fresh category per run); returns (total, set_pois, nearest_pois)."""
    set_times, near_times, result = [], [], None
    x, y = pd.Series(site_xy[:, 0]), pd.Series(site_xy[:, 1])
    with c_stdout_captured(log):
        for _ in range(repeats):
            _category_counter[0] += 1
            category = f"sites{_category_counter[0]}"
            start = time.perf_counter()
            pnet.set_pois(category, RADIUS_M, 1, x, y)
            middle = time.perf_counter()
            result = pnet.nearest_pois(RADIUS_M, category, num_pois=1)
            near_times.append(time.perf_counter() - middle)
            set_times.append(middle - start)
    total = [s + n for s, n in zip(set_times, near_times)]
    return (Timing(statistics.median(total), repeats, result[1].to_numpy()),
            Timing(statistics.median(set_times), repeats), Timing(statistics.median(near_times), repeats))


def pandana_point_queries(pnet, nearest: np.ndarray, points_xy: np.ndarray) -> Timing:
    """pandana's point answer: get_node_ids for one point, then a lookup in the nearest_pois result."""
    def one(xy):
        node = pnet.get_node_ids(pd.Series([xy[0]]), pd.Series([xy[1]])).iat[0]
        return nearest[node]

    return Timing(median_per_call(one, points_xy), len(points_xy))


# ====================================================================== correctness cross-check
def cross_check(net: WalkNetwork, graph: nx.Graph, pnet, k: int, rng: np.random.Generator, log: list[str]) -> str:
    """Sites exactly at nodes: our node distances against networkx (and pandana) within 1,125 m."""
    degree = np.bincount(np.concatenate([net.edge_u, net.edge_v]), minlength=net.n_nodes)
    nodes = rng.choice(np.flatnonzero(degree > 0), size=k, replace=False)
    sites = net.snap(net.node_xy[nodes])
    assert np.all(sites.access_m == 0.0), "a node coordinate did not snap onto the network"
    ours = service_access(net, sites, speed_m_per_min=SPEED_M_PER_MIN, max_minutes=BUDGET_MIN).node_distance_m
    ref_dict = nx.multi_source_dijkstra_path_length(graph, set(nodes.tolist()), cutoff=RADIUS_M, weight="length")
    ref = np.full(net.n_nodes, np.inf)
    ref[np.fromiter(ref_dict.keys(), dtype=np.int64)] = np.fromiter(ref_dict.values(), dtype=float)
    both = np.isfinite(ours) & np.isfinite(ref)
    only = int((np.isfinite(ours) != np.isfinite(ref)).sum())
    diff = float(np.abs(ours[both] - ref[both]).max()) if both.any() else 0.0
    text = (f"{k} sites exactly at nodes: networkx reaches {int(np.isfinite(ref).sum()):,} nodes, ours "
            f"{int(np.isfinite(ours).sum()):,}; reached by only one: {only}; max |ours - networkx| = {diff:.3g} m")
    if pnet is not None:
        with c_stdout_captured(log):
            _category_counter[0] += 1
            category = f"check{_category_counter[0]}"
            pnet.set_pois(category, RADIUS_M, 1, pd.Series(net.node_xy[nodes, 0]), pd.Series(net.node_xy[nodes, 1]))
            pan = pnet.nearest_pois(RADIUS_M, category, num_pois=1)[1].to_numpy()
        pan = np.where(pan < RADIUS_M, pan, np.inf)  # pandana fills "none within" with the distance
        inside = np.isfinite(ref) & (ref < RADIUS_M - 0.01)
        agree = np.isfinite(pan[inside])
        pdiff = float(np.abs(pan[inside][agree] - ref[inside][agree]).max()) if agree.any() else 0.0
        text += (f"; max |pandana - networkx| = {pdiff:.3g} m (float32), pandana misses "
                 f"{int((~agree).sum())} nodes networkx reaches below 1,124.99 m")
    return text


# ====================================================================== one case
def run_case(name: str, net: WalkNetwork, n_sites: int, *, seed: int, repeats: int, ego_sample: int | None,
             n_points: int, four_services: bool, log: list[str]) -> dict:
    rng = np.random.default_rng(seed)
    print(f"\n### {name}: {net!r}, {n_sites:,} sites", flush=True)
    site_xy = points_near_edges(net, n_sites, rng)
    adjacency_t, snap_index_t = ours_build(net, repeats)
    snap_t = timed(lambda: net.snap(site_xy), repeats)
    sites = snap_t.result
    site_nodes = nearest_nodes(net, site_xy)
    print(f"  sites on network: {int(sites.on_network.sum())}/{n_sites}; distinct nearest nodes: "
          f"{len(np.unique(site_nodes))}", flush=True)

    rows = {}
    ours = ours_access(net, sites, repeats)
    access = ours.result
    print(f"  ours: service_access {fmt(ours.seconds)}; reached nodes {int(np.isfinite(access.node_distance_m).sum()):,}",
          flush=True)
    points_xy = points_near_edges(net, n_points, rng)
    point_t, point_nosnap_t = ours_point_queries(net, access, points_xy)
    poly_t = ours_polygons(access, repeats)
    print(f"  ours: point {fmt(point_t.seconds)}, pre-snapped {fmt(point_nosnap_t.seconds)}, polygons {fmt(poly_t.seconds)}",
          flush=True)

    nx_build = timed(lambda: nx_graph(net), 1)
    graph = nx_build.result
    nx_t = networkx_multi_source(graph, site_nodes, max(1, repeats - 2))
    print(f"  networkx: build {fmt(nx_build.seconds)}, multi-source {fmt(nx_t.seconds)} ({nx_t.runs} runs)", flush=True)

    if ego_sample is not None and ego_sample < n_sites:
        sample = rng.choice(site_nodes, size=ego_sample, replace=False)
        scale = n_sites / ego_sample
    else:
        sample, scale = site_nodes, 1.0
    ego_repeats = max(1, repeats - 2)
    ego_t = osmnx_ego_recipe(graph, sample, ego_repeats)
    ego_hull_t = osmnx_ego_recipe(graph, sample, ego_repeats, node_xy=net.node_xy)
    if scale != 1.0:
        ego_t, ego_hull_t = ego_t.per(scale), ego_hull_t.per(scale)
    multi = timed(lambda: net.to_networkx(), 1)
    ego_multi_t = osmnx_ego_recipe(multi.result, sample[: min(len(sample), 50)], 1).per(n_sites / min(len(sample), 50))
    ego_multi_t.scaled = len(sample[:50]) < n_sites
    del multi
    print(f"  ego_graph recipe: {fmt(ego_t.seconds)} for all sites (+hull {fmt(ego_hull_t.seconds)}; "
          f"MultiGraph {fmt(ego_multi_t.seconds)})", flush=True)

    pan_build = pandana_build(net, max(1, repeats - 2), log)
    pnet = pan_build.result
    pan_total, pan_set, pan_near = pandana_query(pnet, site_xy, max(1, repeats - 2), log)
    pan_point = pandana_point_queries(pnet, pan_total.result, points_xy[: min(300, len(points_xy))])
    print(f"  pandana: build {fmt(pan_build.seconds)}, set_pois {fmt(pan_set.seconds)} + nearest_pois "
          f"{fmt(pan_near.seconds)}", flush=True)

    check = cross_check(net, graph, pnet, min(n_sites, 500), rng, log)
    print(f"  check: {check}", flush=True)

    sample_note = f"{len(sample)} sampled sites ×{scale:g}" if scale != 1.0 else f"all {n_sites} sites"
    rows = [
        ("Network build", ours_cell(adjacency_t, "CSR adjacency"),
         f"{fmt(nx_build.seconds)} [nx.Graph, excluded from queries]", "(same nx.Graph)",
         cell(pan_build, adjacency_t, "contraction hierarchies")),
        ("Snapping index (one-time)", ours_cell(snap_index_t, "edge lines + STRtree"), "—", "—",
         "(KD-tree inside build)"),
        (f"Place {n_sites:,} sites", ours_cell(snap_t, "snap onto edges"), "nearest node (untimed)",
         "nearest node (untimed)", "inside set_pois"),
        (f"Nearest-site distance, all nodes, ≤ {RADIUS_M:,.0f} m", ours_cell(ours, f"service_access; first call {fmt(ours.first)}"),
         cell(nx_t, ours, "multi_source_dijkstra"), cell(ego_t, ours, f"ego_graph per site, {sample_note}"),
         cell(pan_total, ours, f"set_pois {fmt(pan_set.seconds)} + nearest_pois {fmt(pan_near.seconds)}")),
        ("  ⤷ ego_graph on MultiGraph (`net.to_networkx()`)", "—", "—",
         cell(ego_multi_t, ours, "informative"), "—"),
        ("Point query (snap + lookup), median/point", ours_cell(point_t, "single points"), "—", "—",
         cell(pan_point, point_t, "get_node_ids + lookup")),
        ("Point query, pre-snapped, median/point", ours_cell(point_nosnap_t, "point_distance only"), "—", "—", "—"),
        (f"Service polygons, all {n_sites:,} sites", ours_cell(poly_t, f"walk_surface + polygon(15); first call {fmt(poly_t.first)}"), "—",
         cell(ego_hull_t, poly_t, "ego_graph + convex hull per site, no union"), "—"),
    ]
    result = {"name": name, "rows": rows, "check": check, "ours": ours, "point": point_t, "polygons": poly_t,
              "ego_per_site": ego_t.seconds / n_sites}
    if four_services:
        result["four"] = run_four_services(net, graph, n_sites, ego_sample or n_sites, rng, repeats, point_t)
    del graph, pnet
    return result


def run_four_services(net, graph, n_sites, ego_sample, rng, repeats, point_t) -> list[tuple[str, str, str, str]]:
    """Four independent site sets of ``n_sites`` (the four medical-insurance services), against the targets."""
    access_times, ego_times, poly_times = [], [], []
    for service in range(4):
        site_xy = points_near_edges(net, n_sites, rng)
        sites = net.snap(site_xy)
        t = ours_access(net, sites, repeats)
        access_times.append(t.seconds)
        poly_times.append(ours_polygons(t.result, max(1, repeats - 2)).seconds)
        nodes = rng.choice(nearest_nodes(net, site_xy), size=min(ego_sample, n_sites), replace=False)
        ego_times.append(osmnx_ego_recipe(graph, nodes, 1).seconds * n_sites / len(nodes))
        print(f"  service {service + 1}: access {fmt(access_times[-1])}, polygons {fmt(poly_times[-1])}, "
              f"ego recipe {fmt(ego_times[-1])}", flush=True)
    total, ratio = sum(access_times), sum(ego_times) / sum(access_times)

    def verdict(ok):
        return "PASS" if ok else "**FAIL**"

    return [
        ("All four services, summed `service_access`", fmt(total), f"≤ {fmt(TARGET_FOUR_SERVICES_S)}",
         verdict(total <= TARGET_FOUR_SERVICES_S)),
        ("Ratio: ego_graph recipe (sampled, scaled) / ours, four services", f"{ratio:,.0f}×",
         f"≥ {TARGET_RATIO_VS_EGO:,.0f}×", verdict(ratio >= TARGET_RATIO_VS_EGO)),
        ("Point query median (snap + lookup)", fmt(point_t.seconds), f"≤ {fmt(TARGET_POINT_QUERY_S)}",
         verdict(point_t.seconds <= TARGET_POINT_QUERY_S)),
        (f"Polygons, all {n_sites:,} sites, worst of four services", fmt(max(poly_times)),
         f"≤ {fmt(TARGET_POLYGONS_S)}", verdict(max(poly_times) <= TARGET_POLYGONS_S)),
    ]


# ====================================================================== report
def markdown(cases: list[dict], header: list[str], pandana_threads: str, quick: bool) -> str:
    lines = ["# Access engine benchmark", ""] + header + [""]
    lines += ["Cells: median time [number of runs, notes] and **ratio = peer time / our time** (> 1: ours is faster).",
              "Peers use each site's nearest node; ours places sites on edges (exact). "
              f"networkx/ego_graph run on an nx.Graph whose build is excluded. pandana: {pandana_threads}.", ""]
    for case in cases:
        lines += [f"## {case['name']}", "",
                  "| Task | This engine | networkx multi-source | osmnx ego_graph recipe | pandana |",
                  "|---|---|---|---|---|"]
        lines += ["| " + " | ".join(row) + " |" for row in case["rows"]]
        lines += ["", f"Correctness: {case['check']}", ""]
        if "four" in case:
            note = " (quick case: the targets are for the 302,500-node grid; informative only)" if quick else ""
            lines += [f"### All four services, {case['name']}{note}", "",
                      "| Measure | Ours | Target | Verdict |", "|---|---|---|---|"]
            lines += ["| " + " | ".join(row) + " |" for row in case["four"]]
            lines += [""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke-test case (< 30 s)")
    parser.add_argument("--seed", type=int, default=20240601)
    args = parser.parse_args(argv)
    wall = time.perf_counter()
    warnings.simplefilter("ignore")  # clipped-extract / disconnected-network notices of the OSM file
    repeats = 3 if args.quick else 5
    log: list[str] = []
    header = [
        f"- Run: {datetime.datetime.now():%Y-%m-%d %H:%M}, `python benchmarks/bench_access.py"
        f"{' --quick' if args.quick else ''}`, seed {args.seed}",
        f"- Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average at start {os.getloadavg()[0]:.2f}; numpy {np.__version__}, networkx {nx.__version__}, "
        f"pandana {__import__('pandana').__version__}, shapely {shapely.__version__}",
        f"- Horizon {BUDGET_MIN:g} min × {SPEED_M_PER_MIN:g} m/min = {RADIUS_M:,.0f} m; timings: median of "
        f"{repeats} runs unless the cell says otherwise (time.perf_counter)",
    ]
    print("\n".join(header), flush=True)

    cases = []
    if NANJING.is_file():
        net = load_network(NANJING, cache_dir=RESULTS / "cache")
        cases.append(run_case("(a) Nanjing Xuanwu (real OSM)", net, 200, seed=args.seed, repeats=repeats,
                              ego_sample=None, n_points=300 if args.quick else 1000, four_services=False, log=log))
    else:
        print(f"\nSKIPPED case (a): real extract {NANJING} is absent (../shared/data/osm beside the repo)")
        header.append(f"- Case (a) skipped: {NANJING} absent")
    side, n_sites = (120, 200) if args.quick else (550, 2000)
    net = street_grid(side)
    cases.append(run_case(f"(b) street_grid({side}), {net.n_nodes:,} nodes", net, n_sites, seed=args.seed + 1,
                          repeats=repeats, ego_sample=50, n_points=300 if args.quick else 1000,
                          four_services=True, log=log))

    threads = sorted(set(re.findall(r"Generating contraction hierarchies with \d+ threads", "".join(log))))
    pandana_threads = "; ".join(threads) or "no thread report captured"
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    footer = [f"Load average at the end: {os.getloadavg()[0]:.2f} (other processes share the 2 cores)",
              f"Peak RSS (resource.getrusage, whole process incl. peers): {peak_mb:,.0f} MB",
              f"Wall time of the benchmark: {time.perf_counter() - wall:,.1f} s"]
    table = markdown(cases, header, pandana_threads, args.quick) + "\n" + "\n\n".join(footer) + "\n"
    print("\n" + table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / ("access-quick.md" if args.quick else "access.md")).write_text(table, encoding="utf-8")
    print(f"(written to {RESULTS / ('access-quick.md' if args.quick else 'access.md')})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
