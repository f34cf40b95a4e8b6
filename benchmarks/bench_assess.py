"""Benchmark of the full policy assessment and the designation check.

Reproduce (from the repository root):

    python benchmarks/bench_assess.py            # full run, about 3-4 minutes
    python benchmarks/bench_assess.py --quick    # smoke run

Cases and targets (issue "Policy assessment"; the city of a million nodes: issue "Province scale", item 4):
- the demo region 示例市（虚构）, network already cached: full assessment <= 3 s (issue "One truth on real
  streets": <= 1.5 s); "full" includes every polygon layer (zones, circles, uncovered areas of all four
  services), which assess() builds lazily;
- a designation check (one location, two services) on the demo: median <= 10 ms;
- a 302,500-node synthetic street grid (planning.synthetic.street_grid(550)) with 2,000 pharmacies
  in 9 counties x 9 sub-districts: full assessment <= 5 s with peak memory <= 2 GB;
- a 1,000,000-node grid (street_grid(1000)) with 6,611 pharmacies, the same 9 x 9 areas: full assessment
  <= 10 s warm with peak memory <= 2.5 GB, single process.
Each synthetic case runs in a fresh subprocess so its peak RSS (ru_maxrss: network, region, the cold and
the warm assessments) is its own; "cold" includes the one-time per-network work (spatial index, cell snap,
street points), "warm" is a further assessment on the same loaded network, the previous one released
first (one assessment alive at a time, as in the app). Times are time.perf_counter; the synthetic warm
times give the best and the median of the repeats, the others the median. Prints a Markdown table and
writes it to benchmarks/results/assess.md.

Every case runs as the product's own processes do (the CLI, the app, the tiles' tasks): with
planning.memory.keep_freed_memory(), glibc keeping freed memory for reuse.
``PHARMACY_PLANNER_MALLOC=default python benchmarks/bench_assess.py`` measures glibc's defaults instead.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from publish import publish_table  # noqa: E402  (benchmarks/, the script's own folder)


def timed(function, repeats: int) -> tuple[float, object]:
    times, result = repeated(function, repeats)
    return statistics.median(times), result


def repeated(function, repeats: int) -> tuple[list[float], object]:
    """The wall time (s) of each of ``repeats`` calls and the last result; each call's result is released
    before the next call starts."""
    times, result = [], None
    for _ in range(repeats):
        result = None
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return times, result


def full_assessment(region, network):
    """assess() plus every polygon layer it builds on demand (what a gap report needs)."""
    from planning.assess import assess

    assessment = assess(region, network)
    assessment.zones, assessment.circles, assessment.uncovered  # noqa: B018 - built for the timing
    return assessment


def demo_case(repeats: int) -> dict:
    from planning.assess import assess
    from planning.demo import PLANTED, load_demo_region
    from planning.model import Service
    from planning.network import load_network
    from planning.screening import check_location

    region = load_demo_region()
    load_network(region.network_path)  # make sure the cache exists
    load_time, network = timed(lambda: load_network(region.network_path), 3)
    tables_time, _ = timed(lambda: assess(region, network), repeats)
    assessment_time, assessment = timed(lambda: full_assessment(region, network), repeats)
    core = PLANTED["saturated_core_street"]["core_point"]
    services = [Service.OUTPATIENT_POOLING, Service.CHRONIC_DISEASE]
    check_location(assessment, core[0], core[1], services)
    check_times = []
    for i in range(200):
        lon, lat = core[0] + (i % 20) * 0.0005, core[1] + (i // 20) * 0.0005
        start = time.perf_counter()
        check_location(assessment, lon, lat, services)
        check_times.append(time.perf_counter() - start)
    return {"nodes": network.n_nodes, "pharmacies": len(region.pharmacies), "load_cached_s": load_time,
            "assess_s": assessment_time, "tables_s": tables_time, "check_median_ms": statistics.median(check_times) * 1000,
            "check_p95_ms": sorted(check_times)[int(0.95 * len(check_times))] * 1000}


def synthetic_case(side: int, n_pharmacies: int, repeats: int = 3) -> dict:
    """Runs in its own process (see main) so ru_maxrss is this case's peak."""
    from planning.memory import keep_freed_memory
    from planning.synthetic import street_grid, synthetic_region

    keep_freed_memory()

    network = street_grid(side)
    region = synthetic_region(network, counties_per_side=3, subdistricts_per_county_side=3,
                              n_pharmacies=n_pharmacies, seed=1)
    (cold,) = repeated(lambda: full_assessment(region, network), 1)[0]  # the result is not kept
    warm = repeated(lambda: full_assessment(region, network), repeats)[0]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"nodes": network.n_nodes, "pharmacies": n_pharmacies, "cold_s": cold, "warm_s": statistics.median(warm),
            "warm_best_s": min(warm), "peak_mb": peak_mb}


def run_synthetic(side: int, n_pharmacies: int) -> dict:
    """:func:`synthetic_case` in a fresh subprocess."""
    child = subprocess.run([sys.executable, __file__, "--synthetic-only", str(side), str(n_pharmacies)],
                           capture_output=True, text=True, check=True)
    return json.loads(child.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small synthetic case, fewer repeats")
    parser.add_argument("--synthetic-only", nargs=2, type=int, metavar=("SIDE", "PHARMACIES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.synthetic_only:
        print(json.dumps(synthetic_case(*args.synthetic_only)))
        return
    from planning.memory import keep_freed_memory

    keeping = keep_freed_memory()
    demo = demo_case(repeats=1 if args.quick else 5)
    synthetic = run_synthetic(*((120, 200) if args.quick else (550, 2000)))
    city = run_synthetic(*((180, 216) if args.quick else (1000, 6611)))

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    rows = [
        ("demo: load cached network", f"{demo['nodes']:,} nodes", f"{demo['load_cached_s'] * 1000:.0f} ms", "", ""),
        ("demo: assessment tables only (polygons lazily later)", f"{demo['pharmacies']} pharmacies",
         f"{demo['tables_s']:.2f} s", "", ""),
        ("demo: full assessment incl. all polygon layers", f"{demo['pharmacies']} pharmacies",
         f"{demo['assess_s']:.2f} s", "<= 3 s", verdict(demo["assess_s"] <= 3)),
        ("demo: designation check (2 services)", "200 locations", f"{demo['check_median_ms']:.1f} ms median "
         f"(p95 {demo['check_p95_ms']:.1f} ms)", "<= 10 ms", verdict(demo["check_median_ms"] <= 10)),
        ("synthetic: full assessment, cold", f"{synthetic['nodes']:,} nodes, {synthetic['pharmacies']:,} pharmacies",
         f"{synthetic['cold_s']:.2f} s", "", ""),
        ("synthetic: full assessment, warm", "same network", f"{synthetic['warm_s']:.2f} s median "
         f"(best {synthetic['warm_best_s']:.2f} s)", "<= 5 s",
         verdict(synthetic["warm_s"] <= 5) if not args.quick else "(quick)"),
        ("synthetic: peak memory", "whole process", f"{synthetic['peak_mb']:,.0f} MB", "<= 2 GB",
         verdict(synthetic["peak_mb"] <= 2048) if not args.quick else "(quick)"),
        ("city: full assessment, cold", f"{city['nodes']:,} nodes, {city['pharmacies']:,} pharmacies",
         f"{city['cold_s']:.2f} s", "", ""),
        ("city: full assessment, warm", "same network", f"{city['warm_s']:.2f} s median (best {city['warm_best_s']:.2f} s)",
         "<= 10 s", verdict(city["warm_s"] <= 10) if not args.quick else "(quick)"),
        ("city: peak memory", "whole process", f"{city['peak_mb']:,.0f} MB", "<= 2.5 GB",
         verdict(city["peak_mb"] <= 2560) if not args.quick else "(quick)"),
    ]
    table = ["| case | size | measured | target | |", "|---|---|---|---|---|"]
    table += [f"| {' | '.join(row)} |" for row in rows]
    text = "\n".join(table) + ("\n\nglibc keeping freed memory for reuse (planning.memory)" if keeping
                                else "\n\nglibc's default allocation (PHARMACY_PLANNER_MALLOC=default or not glibc)")
    publish_table(text, "assess-quick.md" if args.quick else "assess.md")


if __name__ == "__main__":
    main()
