#!/usr/bin/env bash
# Start the planner app on the embedded demo region (示例市, fictional) at http://127.0.0.1:8501.
# Creates or reuses the project's virtual environment (.venv, or PHARMACY_PLANNER_VENV), installs the
# project into it, installs a Chinese font from Debian when missing and allowed, then runs Streamlit.
#   bash scripts/app.sh                        # the app on 127.0.0.1:8501
#   bash scripts/app.sh --server.port 8600     # extra arguments go to `streamlit run`
# See scripts/venv.sh for the environment variables (PHARMACY_PLANNER_VENV, PHARMACY_PLANNER_PYTHON, ...).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/venv.sh
. scripts/venv.sh

ensure_venv ""
ensure_cjk_font
say "starting the app: $VENV/bin/python -m streamlit run app.py $* (settings in .streamlit/config.toml; Ctrl+C stops it)"
# exec: the app runs under this script's process id, so whoever started the script can stop it by that id.
exec "$VENV/bin/python" -m streamlit run app.py "$@"
