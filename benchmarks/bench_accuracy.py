"""Accuracy of the drawn service circles against the point query (the designation check's click).

Reproduce (from the repository root):

    python benchmarks/bench_accuracy.py

For the demo region (its outpatient-pooling pharmacies) and the two real extracts in ../shared/data/osm
(25 seeded random sites each), and for 5, 10 and 15 minutes: precision and recall of "inside the drawn
circle" against "the point's own walk time is within the budget", at 20,000 random street points and at
20,000 random places within 50 m of a street. "Outside the margin" counts only places whose 3 x 3 cells are
all in or all out of the circle (every place farther than one cell diagonal from the polygon's edge is);
"all" counts every place. Targets (issue "One truth on real streets"): both >= 0.99 outside the margin.
Also: the walking filter's counts (gates cut, barrier ways and tunnels excluded, edges off the ground,
small pieces), how many street points and places the snap rule moved (to the ground, off a small piece),
and how often the cell snap (WalkNetwork.snap_cells) found the point snap's access walk exactly.
Prints Markdown tables and writes them to benchmarks/results/accuracy.md.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from publish import publish_table  # noqa: E402  (benchmarks/, the script's own folder)
OSM_DIR = ROOT.parent / "shared" / "data" / "osm"
N_PLACES = 20_000
NEAR_M = 50.0
BUDGETS = (5.0, 10.0, 15.0)


def street_and_near_places(network, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random street points (uniform by length) and places within ``NEAR_M`` of a street (network CRS)."""
    rng = np.random.default_rng(seed)
    weights = network.edge_length / network.edge_length.sum()

    def on_streets(n):
        edge = rng.choice(network.n_edges, n, p=weights)
        return network.points_at(edge, rng.uniform(0, 1, n) * network.edge_length[edge])

    angle, radius = rng.uniform(0, 2 * np.pi, N_PLACES), NEAR_M * np.sqrt(rng.uniform(0, 1, N_PLACES))
    near = on_streets(N_PLACES) + np.column_stack([np.cos(angle), np.sin(angle)]) * radius[:, None]
    return on_streets(N_PLACES), near


def precision_recall(drawn: np.ndarray, point: np.ndarray) -> tuple[float, float]:
    both = (drawn & point).sum()
    return both / max(drawn.sum(), 1), both / max(point.sum(), 1)


def cases():
    """(name, network, access with a horizon of 15 minutes or more, surface) per extract."""
    from planning.access import service_access
    from planning.demo import load_demo_region
    from planning.isochrones import walk_surface
    from planning.model import Service
    from planning.network import load_network
    from planning.policy import load_policy
    from planning.assess import locate_pharmacies, region_grid, service_sites

    region = load_demo_region()
    network = load_network(region.network_path)
    policy = load_policy()
    sites, ids = service_sites(network, locate_pharmacies(region, network, policy), Service.OUTPATIENT_POOLING, policy)
    access = service_access(network, sites, site_ids=ids, max_minutes=max(BUDGETS))
    yield "demo (outpatient pooling)", network, access, walk_surface(access, grid=region_grid(region, network, policy))
    for name in ("nanjing_xuanwu", "shenzhen_longgang"):
        path = OSM_DIR / f"{name}.osm"
        if not path.is_file():
            print(f"skipped {name}: {path} is absent")
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            network = load_network(path)
        rng = np.random.default_rng(7)
        edges = rng.choice(network.n_edges, 25, p=network.edge_length / network.edge_length.sum())
        sites = network.snap(network.points_at(edges, rng.uniform(0, 1, 25) * network.edge_length[edges])
                             + rng.normal(0, 20, (25, 2)))
        access = service_access(network, sites, max_minutes=max(BUDGETS))
        yield f"{name} (25 random sites)", network, access, walk_surface(access)


def main() -> None:
    from planning.coverage import DEFAULT_RESIDENT_SPACING_M
    from planning.isochrones import settled_cells

    accuracy = ["| extract | minutes | street points: precision / recall (outside margin) | (all) "
                "| within 50 m: precision / recall (outside margin) | (all) |", "|---|---|---|---|---|---|"]
    filters = ["| extract | nodes / edges | gates cut | barrier ways excl. | tunnels excl. | edges off ground "
               "| small pieces | street points moved (ground / piece) | places moved (ground / piece) "
               "| cells with the point snap's access walk | max extra access walk |",
               "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, network, access, surface in cases():
        street, near = street_and_near_places(network, seed=11)
        cells = []
        for xy in (street, near):
            snap = network.snap(xy, max_snap_m=surface.max_snap_m)
            minutes, _ = access.point_minutes(snap)
            cells.append((xy, minutes, snap))
        for budget in BUDGETS:
            mask = surface.mask(budget)
            steady = settled_cells(mask)
            row = [name, f"{budget:g}"]
            for xy, minutes, _ in cells:
                rows, cols = surface.grid.cells(xy)
                on = rows >= 0
                drawn, settled = np.zeros(len(xy), bool), np.zeros(len(xy), bool)
                drawn[on], settled[on] = mask[rows[on], cols[on]], steady[rows[on], cols[on]]
                point = np.isfinite(minutes) & (minutes <= budget)
                p, r = precision_recall(drawn[settled], point[settled])
                pa, ra = precision_recall(drawn, point)
                row += [f"{p:.4f} / {r:.4f} ({settled.mean():.0%} of places)", f"{pa:.4f} / {ra:.4f}"]
            accuracy.append(f"| {' | '.join(row)} |")
        summary = network.summary()
        counts = np.maximum(np.ceil(network.edge_length / DEFAULT_RESIDENT_SPACING_M).astype(np.int64), 1)
        edge = np.repeat(np.arange(network.n_edges), counts)
        rank = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        placed = network.place_street_points(edge, (rank + 0.5) * (network.edge_length / counts)[edge])
        moved_street = placed.n_resnapped
        moved_places = cells[1][2].n_resnapped
        grid = surface.grid
        index, cell_snap = network.snap_cells(grid.x0, grid.y_top, grid.n_rows, grid.n_cols, grid.cell_m,
                                              max_snap_m=surface.max_snap_m)
        centres = np.column_stack([grid.x0 + (index % grid.n_cols + 0.5) * grid.cell_m,
                                   grid.y_top - (index // grid.n_cols + 0.5) * grid.cell_m])
        sample = np.random.default_rng(3).choice(len(index), min(100_000, len(index)), replace=False)
        extra = cell_snap.access_m[sample] - network.snap(centres[sample], max_snap_m=surface.max_snap_m).access_m
        filters.append(
            f"| {name} | {summary['nodes']:,} / {summary['edges']:,} | {summary.get('gates_cut', 0)} "
            f"| {summary.get('barrier_ways_excluded', 0)} | {summary.get('tunnels_excluded', 0)} "
            f"| {summary['off_ground_edges']} | {summary['small_pieces']} "
            f"| {moved_street['moved_to_ground']} / {moved_street['moved_off_small_piece']} of {len(placed):,} "
            f"| {moved_places['moved_to_ground']} / {moved_places['moved_off_small_piece']} of {N_PLACES:,} "
            f"| {(extra <= 1e-6).mean():.2%} of {len(sample):,} | {extra.max():.1f} m |")
    text = "\n".join(accuracy) + "\n\n" + "\n".join(filters)
    publish_table(text, "accuracy.md")


if __name__ == "__main__":
    main()
