#!/usr/bin/env bash
# Install everything the tests need, then run them. This is the README's test command and what CI runs.
#   bash scripts/test.sh            # the whole suite
#   bash scripts/test.sh -k access  # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet -e ".[dev]"

# The real-browser test drives Debian's chromium (never a downloaded browser build); a CJK font makes
# its screenshots legible.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt_get="apt-get"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    apt_get="sudo apt-get"
  else
    apt_get=""
    echo "chromium is not installed and this user cannot install Debian packages: the browser test will be skipped" >&2
  fi
  if [ -n "$apt_get" ]; then
    $apt_get update -qq
    DEBIAN_FRONTEND=noninteractive $apt_get install -y -qq chromium fonts-wqy-microhei >/dev/null
  fi
fi

python3 -m pytest "$@"
