"""Shared fixtures: where the real OSM extracts live, a private network cache per test session, and the
demo assessment (made once per session: assessments are immutable, and scenarios never touch their baseline)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests import oracle.py as a plain module

ROOT = Path(__file__).resolve().parents[1]
OSM_DIR = ROOT.parent / "shared" / "data" / "osm"


@pytest.fixture(autouse=True, scope="session")
def _private_network_cache(tmp_path_factory):
    """Tests never touch the user's ~/.cache: the network cache goes to a temporary folder."""
    mp = pytest.MonkeyPatch()
    mp.setenv("PHARMACY_PLANNER_CACHE", str(tmp_path_factory.mktemp("network-cache")))
    yield
    mp.undo()


@pytest.fixture
def osm_path():
    """Path of a real extract in ../shared/data/osm; skips the test with a clear reason when absent."""

    def find(name: str) -> Path:
        path = OSM_DIR / f"{name}.osm"
        if not path.is_file():
            pytest.skip(f"real OSM extract {path} is absent (../shared/data/osm beside the repo)")
        return path

    return find


@pytest.fixture(scope="session")
def demo(_private_network_cache):
    """The demo region assessed under the default policy (network loaded through the private cache)."""
    from planning.assess import assess
    from planning.demo import load_demo_region
    from planning.network import load_network

    region = load_demo_region()
    return assess(region, load_network(region.network_path))
