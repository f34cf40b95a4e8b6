"""Reading the CLI's summary in tests."""

from __future__ import annotations


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
