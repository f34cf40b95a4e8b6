"""Shared fixtures: where the real OSM extracts live, a private network cache per test session, and the
demo assessment (made once per session: assessments are immutable, and scenarios never touch their baseline)."""

from __future__ import annotations

import os
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


@pytest.fixture(scope="session")
def postgres_url():
    """The URL of a throwaway PostgreSQL server for this session (tests/pg_server.py); skips with the reason
    when no server can be started or psycopg is missing, and fails instead where
    ``$PHARMACY_PLANNER_TEST_POSTGRES=required`` (CI, whose scripts install the server)."""
    from pg_server import NO_SERVER, ThrowawayPostgres, server_binaries

    unavailable = pytest.fail if os.environ.get("PHARMACY_PLANNER_TEST_POSTGRES") == "required" else pytest.skip
    try:
        import psycopg  # noqa: F401
    except ImportError:
        unavailable("psycopg is not installed (pip install -e '.[postgres]')")
    binaries = server_binaries()
    if binaries is None:
        unavailable(NO_SERVER)
    server = ThrowawayPostgres(binaries)
    try:
        url = server.start()
    except Exception as exc:  # noqa: BLE001 - any failure to start is a reason to skip, said in full
        server.stop()
        unavailable(f"a throwaway PostgreSQL server could not be started: {exc}")
    yield url
    server.stop()
