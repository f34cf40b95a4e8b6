"""A throwaway PostgreSQL server for the workspace tests: initdb into a temporary folder, started on a free
loopback port with trust authentication, stopped and removed at the end of the test session.

PostgreSQL refuses to run as root, so as root (CI containers) the server runs as the ``postgres`` system
user that Debian's package creates. Without the server binaries (``initdb``, ``pg_ctl``) the tests that
need it skip with that reason; ``scripts/test.sh`` installs Debian's ``postgresql`` package when it can.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

NO_SERVER = ("PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's postgresql package "
             "(scripts/test.sh does when apt-get can be used)")


def server_binaries() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl`` (PATH first, then Debian's /usr/lib/postgresql/N/bin)."""
    found = shutil.which("initdb"), shutil.which("pg_ctl")
    if all(found):
        return Path(os.path.realpath(found[0])).parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(folder, "initdb").exists() and Path(folder, "pg_ctl").exists():
            return Path(folder)
    return None


class ThrowawayPostgres:
    """``start()`` returns the server's URL (user ``planner``, database ``postgres``); ``stop()`` ends it."""

    def __init__(self, binaries: Path) -> None:
        self.binaries = binaries
        self.folder = Path(tempfile.mkdtemp(prefix="planner-pg-"))
        self.port = _free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise RuntimeError("running as root and no postgres system user to run the server as") from exc
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *arguments: str) -> None:
        subprocess.run([*self.as_user, *arguments], check=True, capture_output=True, timeout=120)

    def start(self) -> str:
        data = self.folder / "data"
        self._run(str(self.binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "planner", "-E", "UTF8",
                  "--no-locale")
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(str(self.binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(self.folder / "log"),
                  "-w", "-t", "60", "start")
        return f"postgresql://planner@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        try:
            self._run(str(self.binaries / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
