#!/usr/bin/env bash
# Install everything the tests need, then run them. This is the README's test command and what CI runs.
#   bash scripts/test.sh            # the whole suite
#   bash scripts/test.sh -k access  # extra arguments go to pytest
# Creates or reuses the project's virtual environment (.venv, or PHARMACY_PLANNER_VENV) with the
# project and its dev extras; then, each on its own and only when missing, Debian's chromium (browser
# test), a CJK font, LibreOffice Writer and poppler-utils (the Word report rendered to PDF and PNG), and
# PostgreSQL's server (the workspace tests on a throwaway server).
# When apt-get cannot be used, only the tests needing that package skip, each saying why.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/venv.sh
. scripts/venv.sh

ensure_venv dev

# The real-browser test drives Debian's chromium (never a downloaded browser build).
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  say "chromium: $(command -v chromium || command -v chromium-browser)"
else
  apt_install "the real-browser test" chromium || say "tests/test_browser.py will be skipped: chromium is not installed"
fi
ensure_cjk_font
if command -v libreoffice >/dev/null 2>&1 || command -v soffice >/dev/null 2>&1; then
  say "LibreOffice: $(command -v libreoffice || command -v soffice)"
else
  apt_install "the Word report rendered to PDF in its test" libreoffice-writer-nogui ||
    say "the report's PDF rendering test will be skipped: LibreOffice is not installed"
fi
# The PostgreSQL workspace tests start a throwaway server of their own (tests/pg_server.py).
if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  say "PostgreSQL server: $(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb | tail -1)"
else
  apt_install "the PostgreSQL workspace tests" postgresql ||
    say "tests/test_workspace_pg.py and the PostgreSQL runs of tests/test_workspace.py will be skipped: no PostgreSQL server"
fi
if command -v pdftoppm >/dev/null 2>&1; then
  say "pdftoppm: $(command -v pdftoppm)"
else
  apt_install "the report's first page as PNG" poppler-utils ||
    say "the report's PNG rendering will be skipped: pdftoppm is not installed"
fi

say "running: $VENV/bin/python -m pytest $*"
exec "$VENV/bin/python" -m pytest "$@"
