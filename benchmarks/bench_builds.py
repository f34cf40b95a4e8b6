"""Benchmark: the app's four downloads on the demo and the 2,000 service circles on the 302,500-node grid,
this tree against main, in one run.

Reproduce (from the repository root):

    python benchmarks/bench_builds.py                 # this tree and main, 3 fresh processes each
    python benchmarks/bench_builds.py --baseline ce76801   # this tree and another commit
    python benchmarks/bench_builds.py --no-baseline   # this tree only
    python benchmarks/bench_builds.py --repeats 5
    python benchmarks/bench_builds.py --cases downloads   # the downloads only (no 302,500-node grid)

Cases, each in a fresh process per repeat (so first-use costs and peak RSS are the case's own), the code
trees alternating (main, this tree, main, ...) so both meet the same load on a shared machine:

- downloads (issue 15, target <= 3 s each in the app): the demo assessed as the app does at its default
  settings (the widest assessment, then 15 minutes at 75 m/min reusing it, the outpatient-pooling map
  layers built), then the builders the download buttons call, in the app's order: gap report GeoJSON,
  tables.xlsx, the Word report, the offline HTML map. Wall and CPU seconds of each build. The browser
  figure (button pressed to file saved) is ``benchmarks/bench_app.py``'s;
- circles (issue 13, target <= 3 s first call, peak <= 2 GB): ``planning.synthetic.street_grid(550)`` with
  2,000 sites near random streets (seeded), ``service_access`` at 15 minutes, then
  ``walk_surface(access).polygon(15)`` on the fresh network (first call: the cell snap and the segment
  samples are built) and again (warm); peak RSS of the process (ru_maxrss).

The outputs are compared between the trees: the GeoJSON bytes, the Word report's paragraphs and tables
and the PNG pixels of its maps, and the circle surface, must be equal (when the baseline holds no change
of its own to them). The baseline is ``--baseline`` (default the ``main`` branch), unpacked with ``git
archive``. Medians of the repeats; the table goes to benchmarks/results/builds.md.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from publish import publish_table  # noqa: E402  (benchmarks/, the script's own folder)

ROOT = Path(__file__).resolve().parents[1]
DOWNLOADS = ("geojson", "xlsx", "docx", "html")
CASES = ("downloads", "circles")
#: What each case compares between the trees.
OUTPUTS = {"downloads": "GeoJSON bytes, Word text, tables and map pixels", "circles": "circle surface"}


def downloads_case() -> dict:
    """The four download builders on the demo (the tree on ``sys.path``); seconds and output digests."""
    import time
    import warnings

    warnings.simplefilter("ignore")
    from planning import report
    from planning.assess import assess
    from planning.demo import load_demo_region
    from planning.maps import DEFAULT_LAYERS, assessment_layers
    from planning.model import Service
    from planning.network import load_network
    from planning.policy import load_policy

    region = load_demo_region()
    network = load_network(region.network_path)
    widest = assess(region, network, load_policy().with_changes(walk_minutes=30, speed_m_per_min=120.0))
    assessment = assess(region, network, load_policy("default").with_changes(walk_minutes=15.0, speed_m_per_min=75.0),
                        reuse=widest)
    service = Service.OUTPATIENT_POOLING
    assessment_layers(assessment, service=service, lang="zh", layers=DEFAULT_LAYERS)  # the map shown
    builders = {"geojson": lambda: report.gap_report_bytes(assessment),
                "xlsx": lambda: report.tables_xlsx_bytes(assessment, lang="zh"),
                "docx": lambda: report.docx_bytes(assessment, lang="zh"),
                "html": lambda: report.html_map_string(assessment, service=service, lang="zh").encode("utf-8")}
    result = {}
    for name in DOWNLOADS:
        wall, cpu = time.perf_counter(), time.process_time()
        data = builders[name]()
        result[name] = {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu, "bytes": len(data)}
        if name == "geojson":
            result[name]["sha256"] = hashlib.sha256(data).hexdigest()
        if name == "docx":
            result[name]["sha256"] = docx_content_digest(data)
    return result


def docx_content_digest(data: bytes) -> str:
    """A digest of a Word file's paragraphs, table cells and image pixels (not its zip timestamps)."""
    import docx
    import numpy as np
    from PIL import Image

    document = docx.Document(io.BytesIO(data))
    digest = hashlib.sha256()
    for paragraph in document.paragraphs:
        digest.update(paragraph.text.encode("utf-8") + b"\n")
    for table in document.tables:
        for row in table.rows:
            digest.update("\t".join(cell.text for cell in row.cells).encode("utf-8") + b"\n")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in sorted(n for n in archive.namelist() if n.startswith("word/media/")):
            digest.update(np.asarray(Image.open(io.BytesIO(archive.read(name))).convert("RGBA")).tobytes())
    return digest.hexdigest()


def circles_case() -> dict:
    """2,000 service circles on the 302,500-node grid (the tree on ``sys.path``): first and warm call."""
    import resource
    import time

    import numpy as np
    import shapely

    from planning.access import service_access
    from planning.isochrones import walk_surface
    from planning.synthetic import street_grid

    network = street_grid(550)
    rng = np.random.default_rng(0)
    edges = rng.integers(0, network.n_edges, 2000)
    along = shapely.line_interpolate_point(network.edge_lines[edges], rng.uniform(0, 1, 2000), normalized=True)
    sites = network.snap(shapely.get_coordinates(along) + rng.normal(0, 30.0, size=(2000, 2)))
    access = service_access(network, sites, max_minutes=15)
    wall, cpu = time.perf_counter(), time.process_time()
    surface = walk_surface(access)
    polygon = surface.polygon(15)
    first = {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}
    wall = time.perf_counter()
    walk_surface(access).polygon(15)
    return {"first": first, "warm_s": time.perf_counter() - wall,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "area_km2": polygon.area / 1e6, "sha256": hashlib.sha256(surface.distance_m.tobytes()).hexdigest()}


def baseline_tree(revision: str, folder: Path) -> Path:
    """The files of ``revision`` of this repository (``git archive``) unpacked in ``folder``."""
    archive = folder / "baseline.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", "-o", str(archive), revision], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder / "baseline", filter="data")
    return folder / "baseline"


def child(tree: Path, case: str) -> dict:
    """One repeat of ``case`` in a fresh process importing ``tree``'s planning."""
    completed = subprocess.run([sys.executable, __file__, "--child", case], capture_output=True, text=True, cwd=tree,
                               env={**os.environ, "PYTHONPATH": str(tree), "PYTHONWARNINGS": "ignore"})
    if completed.returncode:
        raise SystemExit(f"{tree} {case}: {completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="main", help="git revision to compare with (default main)")
    parser.add_argument("--no-baseline", action="store_true", help="this tree only")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per tree and case (default 3)")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES),
                        help="the cases to run (default both)")
    parser.add_argument("--child", choices=CASES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(downloads_case() if args.child == "downloads" else circles_case()))
        return
    with tempfile.TemporaryDirectory(prefix="bench-builds-") as tmp:
        trees = {} if args.no_baseline else {args.baseline: baseline_tree(args.baseline, Path(tmp))}
        trees["this tree"] = ROOT
        runs = {(name, case): [] for name in trees for case in args.cases}
        for case in args.cases:
            for _ in range(args.repeats):
                for name, tree in trees.items():
                    runs[name, case].append(child(tree, case))
    names = list(trees)

    def median(values) -> float:
        return statistics.median(values)

    def row(label: str, values: dict, unit: str, digits: int) -> str:
        cells = [f"{values[n]:,.{digits}f} {unit}" for n in names]
        ratio = f"{values[names[0]] / values[names[-1]]:.2f}×" if len(names) > 1 and values[names[-1]] else ""
        return f"| {label} | " + " | ".join(cells) + (f" | {ratio} |" if len(names) > 1 else " |")

    lines = [f"Median of {args.repeats} fresh processes per tree (alternating); ratio = {names[0]} / this tree.", "",
             "| build | " + " | ".join(names) + (" | ratio |" if len(names) > 1 else " |"),
             "|---|" + "---|" * (len(names) + (len(names) > 1))]
    same = True
    if "downloads" in args.cases:
        for name in DOWNLOADS:
            for measure in ("wall_s", "cpu_s"):
                values = {n: median([r[name][measure] for r in runs[n, "downloads"]]) for n in names}
                lines.append(row(f"demo download {name}: built ({measure[:-2]})", values, "s", 2))
        digests = {(n, k): {r[k]["sha256"] for r in runs[n, "downloads"]} for n in names for k in ("geojson", "docx")}
        same = all(len({frozenset(digests[n, k]) for n in names}) == 1 for k in ("geojson", "docx"))
    if "circles" in args.cases:
        for label, pick, unit, digits in (
                ("2,000 circles, 302,500 nodes: first call (wall)", lambda r: r["first"]["wall_s"], "s", 2),
                ("2,000 circles, 302,500 nodes: first call (cpu)", lambda r: r["first"]["cpu_s"], "s", 2),
                ("2,000 circles, 302,500 nodes: warm call", lambda r: r["warm_s"], "s", 2),
                ("2,000 circles: peak RSS of the process", lambda r: r["peak_mb"], "MB", 0)):
            lines.append(row(label, {n: median([pick(r) for r in runs[n, "circles"]]) for n in names}, unit, digits))
        circles = {n: {r["sha256"] for r in runs[n, "circles"]} for n in names}
        same = same and len({frozenset(circles[n]) for n in names}) == 1
    lines += ["", f"Outputs equal between the trees ({', '.join(OUTPUTS[c] for c in args.cases)}): "
              f"{'yes' if same else 'NO'}"]
    publish_table("\n".join(lines), "builds.md")


if __name__ == "__main__":
    main()
