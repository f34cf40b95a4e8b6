"""Benchmark: 100,000 pharmacies end to end (read, assess, every output), this tree against main.

Reproduce (from the repository root):

    python benchmarks/bench_large.py                  # this tree and main, 100,000 pharmacies
    python benchmarks/bench_large.py --no-baseline    # this tree only
    python benchmarks/bench_large.py --pharmacies 20000 --side 150   # smaller

Input (synthetic, generated once, not timed): a jittered street grid of ``--side`` x ``--side`` nodes
(planning.synthetic.street_grid, 60 m spacing; 250 gives 62,500 nodes over about 15 x 15 km), 9 counties
of 16 sub-districts, and ``--pharmacies`` pharmacies on random streets written as a CSV (经度/纬度 in
WGS84, 是/否 service flags) with the boundaries as GeoJSON. Each code tree runs in its own fresh
process (so peak RSS is its own) and does what ``pharmacy-plan assess`` does, through the library:

- read: ``build_region`` of the CSV and the two GeoJSON files (datum auto-detected, as the CLI's default);
- assess: ``assess`` plus every polygon layer (zones, circles, uncovered areas);
- outputs: gap_report.geojson, tables.xlsx + CSVs, walk-time GeoTIFFs, map.html (as the CLI writes them).

"main" is the ``main`` branch of this repository (``git archive``), so old and new run in one session on
the same input. Targets (issue 14): <= 30 s end to end and <= 2 GB peak RSS. The table goes to
benchmarks/results/large.md. The machine may be shared: compare the two columns, not absolute seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from publish import publish_table  # noqa: E402  (benchmarks/, the script's own folder)

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("read", "assess", "gap_report", "tables", "walk_time_grids", "map_html")


def make_inputs(folder: Path, side: int, n_pharmacies: int) -> None:
    """The synthetic input files in ``folder`` (see the module docstring)."""
    import pandas as pd

    from planning.model import SERVICE_COLUMNS
    from planning.synthetic import street_grid, synthetic_region

    network = street_grid(side)
    region = synthetic_region(network, counties_per_side=3, subdistricts_per_county_side=4,
                              n_pharmacies=n_pharmacies, seed=1)
    p = region.pharmacies
    words = {True: "是", False: "否"}
    table = pd.DataFrame({"药店编码": p["pharmacy_id"], "药店名称": p["name"], "地址": p["address"],
                          "经度": p.geometry.x.round(7), "纬度": p.geometry.y.round(7),
                          **{column: p[column].map(words) for column in SERVICE_COLUMNS},
                          "chain": p["chain"].map(words)})
    table.to_csv(folder / "pharmacies.csv", index=False, encoding="utf-8")
    region.subdistricts.to_file(folder / "subdistricts.geojson")
    region.counties.to_file(folder / "counties.geojson")


def run_case(folder: Path, side: int, out: Path) -> dict:
    """One code tree (the one on ``sys.path``) through read, assess and every output; seconds per stage."""
    from planning import report
    from planning.assess import assess
    from planning.ingest import build_region
    from planning.synthetic import street_grid

    network = street_grid(side)  # the same grid make_inputs drew (seeded), not timed
    seconds = {}

    def stage(name, function):
        start = time.perf_counter()
        result = function()
        seconds[name] = time.perf_counter() - start
        return result

    region = stage("read", lambda: build_region(
        pharmacies=folder / "pharmacies.csv", subdistricts=folder / "subdistricts.geojson",
        counties=folder / "counties.geojson", network=network))

    def full_assessment():
        assessment = assess(region, network)
        assessment.zones, assessment.circles, assessment.uncovered  # noqa: B018 - built for the timing
        return assessment

    assessment = stage("assess", full_assessment)
    stage("gap_report", lambda: report.write_gap_report(assessment, out / "gap_report.geojson"))
    stage("tables", lambda: report.write_tables(assessment, out))
    stage("walk_time_grids", lambda: report.write_walk_time_grids(assessment, out / "walk_time"))
    stage("map_html", lambda: report.write_html_map(assessment, out / "map.html"))
    sizes = {name: (out / name).stat().st_size for name in ("gap_report.geojson", "map.html", "tables.xlsx")}
    return {"seconds": seconds, "total_s": sum(seconds.values()), "pharmacies": len(region.pharmacies),
            "rejected": len(region.rejected), "sizes": sizes,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main_tree(folder: Path) -> Path:
    """The ``main`` branch's files (``git archive``) unpacked in ``folder``."""
    archive = folder / "main.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", "-o", str(archive), "main"], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder / "main", filter="data")
    return folder / "main"


def child(tree: Path, folder: Path, side: int) -> dict:
    out = Path(tempfile.mkdtemp(prefix="bench-large-out-", dir=folder))
    completed = subprocess.run([sys.executable, __file__, "--child", str(tree), str(folder), str(side), str(out)],
                               capture_output=True, text=True, cwd=tree,
                               env={**os.environ, "PYTHONPATH": str(tree), "PYTHONWARNINGS": "ignore"})
    if completed.returncode:
        raise SystemExit(f"{tree}: {completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pharmacies", type=int, default=100_000)
    parser.add_argument("--side", type=int, default=250, help="street grid nodes per side (default 250)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the main branch")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        tree, folder, side, out = args.child
        sys.path.insert(0, tree)
        print(json.dumps(run_case(Path(folder), int(side), Path(out))))
        return

    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix="bench-large-") as tmp:
        folder = Path(tmp)
        make_inputs(folder, args.side, args.pharmacies)
        cases = {"this tree": child(ROOT, folder, args.side)}
        if not args.no_baseline:
            cases = {"main": child(main_tree(folder), folder, args.side), **cases}

    names = list(cases)
    lines = [f"{args.pharmacies:,} pharmacies, {args.side}x{args.side}-node street grid "
             f"({args.side * args.side:,} nodes); kept {cases[names[-1]]['pharmacies']:,}, rejected "
             f"{cases[names[-1]]['rejected']:,}", "",
             "| stage | " + " | ".join(names) + (" | ratio |" if len(names) == 2 else " |"),
             "|---|" + "---|" * (len(names) + (len(names) == 2))]

    def row(label: str, values: list[float], unit: str, digits: int = 1) -> str:
        ratio = f" {values[0] / values[1]:.1f}x |" if len(values) == 2 and values[1] else (" |" if len(values) == 2 else "")
        return f"| {label} | " + " | ".join(f"{v:,.{digits}f} {unit}" for v in values) + " |" + ratio

    for stage in STAGES:
        lines.append(row(stage, [cases[n]["seconds"][stage] for n in names], "s"))
    lines.append(row("**end to end** (target <= 30 s)", [cases[n]["total_s"] for n in names], "s"))
    lines.append(row("peak RSS (target <= 2,048 MB)", [cases[n]["peak_mb"] for n in names], "MB", 0))
    for name in ("gap_report.geojson", "map.html", "tables.xlsx"):
        lines.append(row(name, [cases[n]["sizes"][name] / 1e6 for n in names], "MB"))
    text = "\n".join(lines)
    publish_table(text, "large.md")


if __name__ == "__main__":
    main()
