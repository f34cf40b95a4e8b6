"""Where benchmark tables go: printed, and kept in ``benchmarks/results/`` (git-ignored) for the README."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def publish_table(text: str, file_name: str) -> Path:
    """Print the Markdown ``text`` and write it to ``benchmarks/results/<file_name>``; returns that path."""
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / file_name
    path.write_text(text + "\n", encoding="utf-8")
    return path
