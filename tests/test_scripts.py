"""The README's app command, ``bash scripts/app.sh``, run as a new user would: from a fresh copy of the
repository, it starts the server, which answers its health check; the test then stops it by its process id.

To stay within a minute the copy reuses an installed virtual environment (``PHARMACY_PLANNER_VENV``):
the one running these tests when ``scripts/test.sh`` made it, else the repository's ``.venv``. With
``PHARMACY_PLANNER_SMOKE_FRESH=1`` it creates a new one instead (the full pip install, minutes).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def project_venv_with_this_pyproject() -> Path | None:
    """A virtual environment the scripts made and stamped for this pyproject.toml, or None. Only such a
    venv is reused: the script would otherwise pip-install the temporary copy into someone's venv."""
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    candidates = [Path(sys.prefix)] if sys.prefix != sys.base_prefix else []
    candidates.append(ROOT / ".venv")
    for venv in candidates:
        stamp = venv / ".pharmacy-planner-installed"
        if stamp.is_file() and any(line.startswith(f"{digest} ") for line in stamp.read_text().splitlines()):
            return venv
    return None


def copy_of_repository(target: Path) -> Path:
    """The working copy's files that git tracks or would track (a fresh clone plus uncommitted work), copied
    to ``target``: no virtual environment, caches or test artifacts."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, check=False)
    if listed.returncode != 0:
        pytest.skip(f"git cannot list the repository's files: {listed.stderr.decode(errors='replace').strip()}")
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = ROOT / name
        if source.is_symlink():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).symlink_to(os.readlink(source))
        elif source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def test_app_script_starts_the_server_from_a_fresh_copy(tmp_path):
    if shutil.which("bash") is None:
        pytest.skip("bash is not available")
    if os.environ.get("PHARMACY_PLANNER_SMOKE_FRESH") == "1":
        venv = tmp_path / "venv"  # does not exist: the script creates it (needs python3-venv and a package index)
    else:
        venv = project_venv_with_this_pyproject()
        if venv is None:
            pytest.skip("no virtual environment made by scripts/test.sh or scripts/app.sh for this pyproject.toml "
                        "to reuse (run the tests through `bash scripts/test.sh`, or set PHARMACY_PLANNER_SMOKE_FRESH=1 "
                        "to let the script create one, which takes minutes)")
    repo = copy_of_repository(tmp_path / "repo")
    port = free_port()
    env = {**os.environ, "PHARMACY_PLANNER_VENV": str(venv), "PHARMACY_PLANNER_NO_APT": "1",
           "PHARMACY_PLANNER_CACHE": str(tmp_path / "cache")}
    log = tmp_path / "app.log"
    with log.open("wb") as out:
        process = subprocess.Popen(["bash", str(repo / "scripts" / "app.sh"), "--server.port", str(port)],
                                   cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + (900 if os.environ.get("PHARMACY_PLANNER_SMOKE_FRESH") == "1" else 60)
        healthy = False
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
                    healthy = response.status == 200 and response.read().strip() == b"ok"
                    break
            except OSError:
                time.sleep(0.5)
        text = log.read_text(encoding="utf-8", errors="replace")
        if not healthy:
            pytest.fail(f"the app did not answer its health check (exit code {process.poll()}):\n{text[-3000:]}")
        # The script says what it does, and the server runs the copy's app.py under the script's own id.
        assert "[pharmacy-planner]" in text and str(venv) in text
        cmdline = Path(f"/proc/{process.pid}/cmdline")
        if cmdline.exists():
            assert b"streamlit" in cmdline.read_bytes()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            assert response.status == 200
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)  # by the id the test started, never by name
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
    assert process.returncode is not None
