"""Benchmark of the tiled assessment on Dask (issue "Province scale").

Reproduce (from the repository root):

    python benchmarks/bench_tiles.py            # full run: 8 M-node province, about 21 minutes on 2 cores (idle)
    python benchmarks/bench_tiles.py --quick    # smoke run, about 2 minutes
    python benchmarks/bench_tiles.py --city-only    # the 1 M-node city rows alone, about 2 minutes

Cases:
- a synthetic province (:func:`planning.synthetic.write_synthetic_province`: 6 x 6 = 36 counties,
  2,832 x 2,832 = 8,020,224 street nodes, 50,000 pharmacies), generated county by county into a network
  store, then ``pharmacy-plan assess`` on its files with ``--workers 1`` and ``--workers 2`` (one
  tile per county): wall time of the command, the tiles' own time, the highest peak memory of a worker
  (resident set, MB) and of the command's main process, scaling efficiency ``t1 / (2 t2)``;
- a 1,000,000-node city (``street_grid(1000)``, 3 x 3 counties of 3 x 3 sub-districts, 6,611 pharmacies):
  the full single-process assessment (tables and every polygon layer) in its own process, and the same
  region tiled by county on a 2-worker LocalCluster (its layers and rasters included).
Each case runs in a fresh subprocess so peak memory is its own. Prints a Markdown table and writes it to
benchmarks/results/tiles.md. Targets: <= 3 GB per worker on the province; tiled no slower than one
process at 1 M nodes.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from publish import publish_table  # noqa: E402  (benchmarks/, the script's own folder)


def generate(folder: Path, counties_side: int, county_nodes: int, pharmacies: int) -> dict:
    """Write the synthetic province's store and its region files (GeoJSON, as a bureau would give)."""
    from planning.synthetic import write_synthetic_province

    start = time.perf_counter()
    region, store = write_synthetic_province(folder, counties_per_side=counties_side, county_nodes_side=county_nodes,
                                             n_pharmacies=pharmacies)
    seconds = time.perf_counter() - start
    for name in ("counties", "subdistricts", "pharmacies"):
        getattr(region, name).to_file(folder / f"{name}.geojson", driver="GeoJSON", engine="pyogrio")
    return {"nodes": store.n_nodes, "edges": store.n_edges, "counties": len(region.counties),
            "subdistricts": len(region.subdistricts), "pharmacies": len(region.pharmacies), "seconds": seconds,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_cli(folder: Path, workers: int) -> dict:
    out = folder / f"out-{workers}"
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "planning", "assess", "--pharmacies", str(folder / "pharmacies.geojson"),
               "--subdistricts", str(folder / "subdistricts.geojson"), "--counties",
               str(folder / "counties.geojson"), "--network", str(folder / "network"), "--workers", str(workers),
               "--out", str(out), "--lang", "en"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"pharmacy-plan failed ({done.returncode}):\n{done.stderr[-3000:]}")
    found = re.search(r"(\d+) tiles in ([\d,]+) s; highest tile peak memory ([\d,]+) MB; main process ([\d,]+) MB",
                      done.stdout)
    tiles, tiled_s, worker_mb, main_mb = (float(g.replace(",", "")) for g in found.groups())
    return {"workers": workers, "wall_s": wall, "tiles": int(tiles), "tiled_s": tiled_s, "worker_peak_mb": worker_mb,
            "main_peak_mb": main_mb}


def city_single(side: int, pharmacies: int) -> dict:
    from planning.assess import assess
    from planning.memory import keep_freed_memory
    from planning.synthetic import street_grid, synthetic_region

    keep_freed_memory()  # as the CLI and the tiles' tasks run

    network = street_grid(side)
    region = synthetic_region(network, counties_per_side=3, subdistricts_per_county_side=3, n_pharmacies=pharmacies,
                              seed=1)
    start = time.perf_counter()
    found = assess(region, network)
    found.zones, found.circles, found.uncovered  # noqa: B018 - the full assessment builds every layer
    return {"nodes": network.n_nodes, "seconds": time.perf_counter() - start,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def city_tiled(side: int, pharmacies: int, workers: int) -> dict:
    from dask.distributed import Client, LocalCluster

    from planning.netstore import write_store
    from planning.synthetic import street_grid, synthetic_region
    from planning.tiles import assess_tiled

    network = street_grid(side)
    region = synthetic_region(network, counties_per_side=3, subdistricts_per_county_side=3, n_pharmacies=pharmacies,
                              seed=1)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        store = write_store(network, Path(folder) / "store")
        store_s = time.perf_counter() - start
        del network
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address="127.0.0.1:0") as cluster, \
                Client(cluster) as client:
            start = time.perf_counter()
            tiled = assess_tiled(region, store, client=client, work_dir=Path(folder) / "work")
            seconds = time.perf_counter() - start
    return {"store_s": store_s, "seconds": seconds, "tiles": len(tiled.tiles),
            "worker_peak_mb": max(r.peak_mb for r in tiled.results.values()),
            "main_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def child(case: str, *args) -> dict:
    done = subprocess.run([sys.executable, __file__, "--case", case, *map(str, args)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"case {case} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small cases")
    parser.add_argument("--folder", type=Path, help="where the synthetic province is written (default: temporary)")
    parser.add_argument("--city-only", action="store_true",
                        help="only the 1 M-node city: one process against tiled on 2 workers (no province)")
    parser.add_argument("--case", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        name, *rest = args.case
        function = {"generate": generate, "single": city_single, "tiled": city_tiled}[name]
        values = [Path(rest[0]), *map(int, rest[1:])] if name == "generate" else list(map(int, rest))
        print(json.dumps(function(*values)))
        return
    counties_side, county_nodes, pharmacies = (3, 120, 3_000) if args.quick else (6, 472, 50_000)
    city_side, city_pharmacies = (300, 600) if args.quick else (1000, 6_611)
    rows = [] if args.city_only else province_rows(args, counties_side, county_nodes, pharmacies)
    single = child("single", city_side, city_pharmacies)
    tiled = child("tiled", city_side, city_pharmacies, 2)
    rows += [
        ("city: full assessment, one process", f"{single['nodes']:,} nodes, {city_pharmacies:,} pharmacies",
         f"{single['seconds']:.1f} s, peak {single['peak_mb']:,.0f} MB", ""),
        ("city: tiled by county, LocalCluster of 2 workers", f"{tiled['tiles']} tiles (store written in "
         f"{tiled['store_s']:.1f} s, not counted)",
         f"{tiled['seconds']:.1f} s ({single['seconds'] / tiled['seconds']:.2f}x one process); worker peak "
         f"{tiled['worker_peak_mb']:,.0f} MB", "no slower than one process"),
    ]
    table = ["| case | size | measured | target |", "|---|---|---|---|"]
    table += [f"| {' | '.join(row)} |" for row in rows]
    name = "tiles-city.md" if args.city_only else "tiles-quick.md" if args.quick else "tiles.md"
    publish_table("\n".join(table), name)


def province_rows(args, counties_side: int, county_nodes: int, pharmacies: int) -> list[tuple[str, ...]]:
    """The synthetic province generated into a store, then assessed by the CLI on 1 and 2 workers."""
    folder = args.folder or Path(tempfile.mkdtemp(prefix="pharmacy-province-"))
    folder.mkdir(parents=True, exist_ok=True)
    made = child("generate", folder, counties_side, county_nodes, pharmacies)
    one, two = run_cli(folder, 1), run_cli(folder, 2)
    if args.folder is None:
        shutil.rmtree(folder, ignore_errors=True)
    efficiency = one["wall_s"] / (2 * two["wall_s"])
    size = (f"{made['nodes']:,} nodes, {made['counties']} counties, {made['subdistricts']} sub-districts, "
            f"{made['pharmacies']:,} pharmacies")
    return [
        ("province: generate county by county into the store", size,
         f"{made['seconds']:.0f} s, peak {made['peak_mb']:,.0f} MB", ""),
        ("province: `pharmacy-plan assess --workers 1`", f"{one['tiles']} tiles",
         f"{one['wall_s']:.0f} s (tiles {one['tiled_s']:.0f} s); worker peak {one['worker_peak_mb']:,.0f} MB, "
         f"main {one['main_peak_mb']:,.0f} MB", "<= 3 GB per worker"),
        ("province: `pharmacy-plan assess --workers 2`", f"{two['tiles']} tiles",
         f"{two['wall_s']:.0f} s (tiles {two['tiled_s']:.0f} s); worker peak {two['worker_peak_mb']:,.0f} MB, "
         f"main {two['main_peak_mb']:,.0f} MB", "<= 3 GB per worker"),
        ("province: scaling efficiency 1 -> 2 workers", "t1 / (2 t2)", f"{efficiency:.2f}", ""),
    ]


if __name__ == "__main__":
    main()
