"""Reading the CLI's summary in tests."""

from __future__ import annotations


def summary_blocks(stdout: str) -> str:
    """The per-service blocks of ``pharmacy-plan assess``'s summary: from the first service heading to the
    completeness table or the list of written files (the region's name and row counts may differ)."""
    summary = stdout[stdout.index("【"):]
    for end in ("\ndata completeness:", "\n\n数据完整性", "\n  /"):
        summary = summary.split(end, 1)[0]
    return summary.strip()
