"""Benchmark of what-if scenarios and site suggestion.

Reproduce (from the repository root):

    python benchmarks/bench_scenario.py            # full run, about 1 minute
    python benchmarks/bench_scenario.py --quick    # smoke run (small synthetic case)

Cases and targets (issue "What-if scenarios, site suggestion and notebooks"):
- the demo region 示例市（虚构）, baseline assessed once: a scenario re-assessment after one edit <= 1 s
  (a new outpatient-pooling site: one service searched again; a withdrawn site holding three services; a
  population edit: no search; a policy edit: every service searched again). Each repeat builds a fresh
  Scenario (a scenario caches its own assessment), so nothing but the baseline is reused;
- a 302,500-node synthetic street grid (planning.synthetic.street_grid(550)) with 2,000 existing
  pharmacies (948 hold outpatient pooling): greedy k = 10 new outpatient-pooling sites <= 10 s, measured from
  the baseline assessment: candidates (street points 100 m apart, blocked ones dropped), the exact
  candidate -> resident walk pairs, and the lazy greedy with its 1-interchange. It runs in a fresh
  subprocess so its peak memory (whole process, baseline assessment included) is its own.
Times are medians of the repeats shown (time.perf_counter). Prints a Markdown table; writes nothing.
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


from bench_assess import timed as median_time  # noqa: E402  (one timing helper for the benchmarks)


def demo_case(repeats: int) -> dict:
    from planning.assess import assess
    from planning.demo import PLANTED, load_demo_region
    from planning.network import load_network
    from planning.scenario import Scenario

    region = load_demo_region()
    network = load_network(region.network_path)
    baseline = assess(region, network)
    lon, lat = PLANTED["saturated_core_street"]["core_point"]
    pharmacies = region.pharmacies
    three = pharmacies[pharmacies[["outpatient_pooling", "chronic_disease", "personal_account"]].all(axis=1)]
    edits = {
        "add one outpatient-pooling site": lambda s: s.add_site("NEW-1", lon, lat, ["outpatient_pooling"]),
        "withdraw a site holding 3 services": lambda s: s.remove_site(three["pharmacy_id"].iloc[0]),
        "population +20 % in one sub-district": lambda s: s.scale_population(1.2, ["990103005"]),
        "policy: 10-minute circle": lambda s: s.change_policy(walk_minutes=10),
    }
    rows = {}
    for label, edit in edits.items():
        edit(Scenario(baseline)).assess()  # warm-up (imports, caches of the baseline)
        seconds, _ = median_time(lambda edit=edit: edit(Scenario(baseline)).assess(), repeats)
        searched = len(edit(Scenario(baseline)).changed_services())
        rows[label] = {"seconds": seconds, "searched": searched}
    add = edits["add one outpatient-pooling site"]
    diff_seconds, _ = median_time(lambda: add(Scenario(baseline)).diff(services=["outpatient_pooling"]), repeats)
    return {"nodes": network.n_nodes, "pharmacies": len(pharmacies), "edits": rows, "diff_s": diff_seconds}


def synthetic_case(side: int, n_pharmacies: int, repeats: int) -> dict:
    """Runs in its own process (see main) so ru_maxrss is this case's peak."""
    from planning.assess import assess
    from planning.siting import CoverageProblem, redundancy
    from planning.synthetic import street_grid, synthetic_region

    network = street_grid(side)
    region = synthetic_region(network, counties_per_side=3, subdistricts_per_county_side=3,
                              n_pharmacies=n_pharmacies, seed=1)
    baseline = assess(region, network)
    builds, solves, totals = [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        problem = CoverageProblem.from_assessment(baseline, "outpatient_pooling")
        built = time.perf_counter()
        plan = problem.suggest(10)
        done = time.perf_counter()
        builds.append(built - start)
        solves.append(done - built)
        totals.append(done - start)
    redundancy_s, _ = median_time(lambda: redundancy(baseline, "outpatient_pooling"), 1)
    return {
        "nodes": network.n_nodes, "pharmacies": n_pharmacies,
        "pooling_sites": int(region.pharmacies["outpatient_pooling"].sum()),
        "candidates": len(problem.candidates), "demand_points": len(problem.persons), "pairs": int(problem.matrix.nnz),
        "build_s": statistics.median(builds), "solve_s": statistics.median(solves),
        "total_s": statistics.median(totals),
        "gain": plan.covered_persons, "share_before": problem.covered_before / problem.population,
        "share_after": float(plan.sites["covered_share"].iloc[-1]) if len(plan.sites) else
        problem.covered_before / problem.population, "sites": len(plan.sites), "redundancy_s": redundancy_s,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small synthetic case, fewer repeats")
    parser.add_argument("--synthetic-only", nargs=3, type=int, metavar=("SIDE", "PHARMACIES", "REPEATS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.synthetic_only:
        print(json.dumps(synthetic_case(*args.synthetic_only)))
        return
    side, pharmacies = (120, 30) if args.quick else (550, 2000)
    repeats = 1 if args.quick else 5
    demo = demo_case(repeats)
    child = subprocess.run([sys.executable, __file__, "--synthetic-only", str(side), str(pharmacies),
                            str(1 if args.quick else 3)], capture_output=True, text=True, check=True)
    synthetic = json.loads(child.stdout.strip().splitlines()[-1])

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    rows = []
    for label, row in demo["edits"].items():
        rows.append((f"demo: re-assess after one edit — {label}",
                     f"{demo['nodes']:,} nodes, {demo['pharmacies']} pharmacies; "
                     f"{row['searched']} of 4 services searched",
                     f"{row['seconds']:.2f} s", "<= 1 s", verdict(row["seconds"] <= 1)))
    rows.append(("demo: re-assess and diff (zones of one service)", "after adding one site",
                 f"{demo['diff_s']:.2f} s", "", ""))
    size = (f"{synthetic['nodes']:,} nodes, {synthetic['pharmacies']:,} pharmacies "
            f"({synthetic['pooling_sites']:,} outpatient pooling)")
    rows += [
        ("synthetic: candidates + exact walk pairs", size,
         f"{synthetic['build_s']:.2f} s ({synthetic['candidates']:,} candidates x {synthetic['demand_points']:,} "
         f"uncovered resident points, {synthetic['pairs']:,} pairs)", "", ""),
        ("synthetic: lazy greedy k = 10 + 1-interchange", "same", f"{synthetic['solve_s']:.2f} s", "", ""),
        ("synthetic: greedy k = 10, total", "same",
         (f"{synthetic['total_s']:.2f} s ({synthetic['sites']} sites, +{synthetic['gain']:,.0f} persons, "
          f"covered {synthetic['share_before']:.1%} -> {synthetic['share_after']:.1%})"), "<= 10 s",
         verdict(synthetic["total_s"] <= 10) if not args.quick else "(quick)"),
        ("synthetic: redundancy ranking (outpatient pooling)", "same", f"{synthetic['redundancy_s']:.2f} s", "", ""),
        ("synthetic: peak memory", "whole process, baseline assessment included", f"{synthetic['peak_mb']:,.0f} MB",
         "", ""),
    ]
    command = "python benchmarks/bench_scenario.py" + (" --quick" if args.quick else "")
    table = [f"Reproduce: `{command}` (Python {sys.version.split()[0]}, medians of {repeats} repeats on the demo)", "",
             "| case | size | measured | target | |", "|---|---|---|---|---|"]
    table += [f"| {' | '.join(row)} |" for row in rows]
    print("\n".join(table))


if __name__ == "__main__":
    main()
