"""The notebooks in notebooks/ run top to bottom (executed with nbclient, not just parsed) and are stored
without outputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat (a dev dependency) is not installed")
nbclient = pytest.importorskip("nbclient", reason="nbclient (a dev dependency) is not installed")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXPECTED = {"01_quick_start", "02_what_if", "03_site_suggestion", "04_bring_your_own_city", "05_project_and_register"}
EXPORTING = {"01_quick_start", "02_what_if", "04_bring_your_own_city", "05_project_and_register"}


def test_the_notebooks_exist():
    assert EXPECTED <= {p.stem for p in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: a code cell keeps outputs (strip them before committing)"
            assert cell.execution_count is None, f"{path.name}: a code cell keeps its execution count"


def run(notebook, monkeypatch, tmp_path):
    """Execute a notebook in a fresh python3 kernel started in notebooks/ (relative paths as for a user) that
    imports this checkout's ``planning``; the kernel inherits the session's private network cache (conftest)
    and writes its files under tmp_path."""
    assert os.environ.get("PHARMACY_PLANNER_CACHE"), "conftest should point the network cache at a temporary folder"
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    # The kernel imports this checkout's planning/, not whichever copy is installed in site-packages.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    client.execute()
    return [output for cell in notebook.cells if cell.cell_type == "code"
            for output in cell.outputs if output.output_type == "error"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, monkeypatch, tmp_path):
    assert not run(nbformat.read(path, as_version=4), monkeypatch, tmp_path)
    if path.stem in EXPORTING:
        assert any(tmp_path.iterdir())  # its exports went to the temporary folder, not into the repository
    stored = nbformat.read(path, as_version=4)
    assert all(cell.outputs == [] for cell in stored.cells if cell.cell_type == "code")  # nothing written back


def test_bring_your_own_city_writes_its_own_osm_file_without_the_extract(monkeypatch, tmp_path):
    """Where ../shared/data/osm is absent, the notebook writes a tiny OSM street grid and runs on it."""
    notebook = nbformat.read(NOTEBOOK_DIR / "04_bring_your_own_city.ipynb", as_version=4)
    replaced = 0
    for cell in notebook.cells:
        if cell.cell_type == "code" and "nanjing_xuanwu.osm" in cell.source:
            cell.source = cell.source.replace("../../shared/data/osm/nanjing_xuanwu.osm", str(tmp_path / "absent.osm"))
            replaced += 1
    assert replaced == 1
    assert not run(notebook, monkeypatch, tmp_path)
    assert list(tmp_path.glob("my-city-*/tiny_city.osm"))
