"""The CLI in tests: running it, writing its input sheets, reading its summary."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """``python -m planning ARGS`` from the repository root (text output, 300 s at most)."""
    return subprocess.run([sys.executable, "-m", "planning", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)


def write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8-sig") -> Path:
    """A CSV sheet as a bureau saves it (``encoding``: utf-8-sig, gbk, ...)."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def summary_blocks(stdout: str, *, judged_only: bool = False) -> str:
    """The per-service blocks of ``pharmacy-plan assess``'s summary: from the first service heading to the
    completeness table or the list of written files (the region's name and row counts may differ).
    ``judged_only``: without the lines listing rules not judged for missing data."""
    summary = stdout[stdout.index("【"):]
    for end in ("\ndata completeness:", "\n\n数据完整性", "\n  /"):
        summary = summary.split(end, 1)[0]
    lines = summary.strip().splitlines()
    if judged_only:
        lines = [line for line in lines if not line.startswith(("  not judged", "  未判定"))]
    return "\n".join(lines)
