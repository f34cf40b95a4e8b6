"""How fast the readers refuse files past their reading limits (issue 14, item 5), and at what memory.

Cases, each built here and read once in a fresh child process (peak RSS from ``resource.getrusage``):

* a 1,000,000-row pharmacy CSV (refused at the 500,001st row while streaming);
* an XLSX bomb: a real one-row workbook whose sheet carries a 688 MiB XML comment (a few MiB zipped),
  refused from the zip directory before openpyxl opens it;
* for scale, a 100,000-row CSV under the limits (read in full).

Reproduce (from the repository root)::

    python benchmarks/bench_reading_limits.py

The machine is shared: quote the ratios between rows of one run, not the seconds alone.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

CHILD = r"""
import resource, sys, time
from planning import ingest
from planning.errors import PlanningError
start = time.perf_counter()
try:
    result = ingest.read_pharmacies(sys.argv[1], crs="wgs84")
    outcome = f"read {result.n_in:,} rows"
except PlanningError as exc:
    outcome = "refused: " + exc.message_en
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{seconds:.1f}\t{peak:.0f}\t{outcome}")
"""


def pharmacy_csv(path: Path, rows: int) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["编号", "名称", "地址", "经度", "纬度", "门诊统筹"])
        for i in range(rows):
            writer.writerow([f"P{i:07d}", f"药店{i}", f"人民路{i}号", f"{111.5 + (i % 1000) * 1e-4:.6f}",
                             f"{27.2 + (i // 1000 % 1000) * 1e-4:.6f}", "是"])
    return path


def xlsx_bomb(path: Path, padding_mib: int) -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    book.active.append(["编号", "名称", "地址", "经度", "纬度", "门诊统筹"])
    book.active.append(["P1", "药店", "人民路1号", 111.6, 27.3, "是"])
    plain = io.BytesIO()
    book.save(plain)
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bomb:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                head, found, body = data.partition(b"<sheetData")
                with bomb.open(info.filename, "w", force_zip64=True) as member:
                    member.write(head + b"<!--")
                    chunk = b" " * 2**20
                    for _ in range(padding_mib):
                        member.write(chunk)
                    member.write(b"-->" + found + body)
            else:
                bomb.writestr(info.filename, data)
    return path


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        cases = [("100,000-row CSV (under the limits)", pharmacy_csv(folder / "100k.csv", 100_000)),
                 ("1,000,000-row CSV", pharmacy_csv(folder / "1m.csv", 1_000_000)),
                 ("XLSX bomb, sheet 688 MiB uncompressed", xlsx_bomb(folder / "bomb.xlsx", 688))]
        print("| case | file size | seconds | peak RSS (MiB) | outcome |")
        print("|---|---|---|---|---|")
        for label, path in cases:
            run = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, cwd=root)
            if run.returncode:
                print(run.stderr, file=sys.stderr)
                continue
            seconds, peak, outcome = run.stdout.strip().split("\t", 2)
            size = f"{path.stat().st_size / 2**20:.1f} MiB"
            print(f"| {label} | {size} | {seconds} | {peak} | {outcome[:110]} |")


if __name__ == "__main__":
    main()
