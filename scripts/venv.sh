# Shared by scripts/app.sh and scripts/test.sh (sourced, not run): find a Python >= 3.11, create or reuse
# the project's virtual environment, install the project into it, and install Debian packages when this
# user may. Every step prints what it does.
#
# Environment variables:
#   PHARMACY_PLANNER_VENV    the virtual environment to create or reuse (default: .venv in the repository)
#   PHARMACY_PLANNER_PYTHON  the Python that creates it (default: the first of python3, python3.13,
#                            python3.12, python3.11 that is >= 3.11); Debian's own, pyenv and conda all work
#   PHARMACY_PLANNER_NO_APT  set to 1 to never call apt-get (Debian packages are then only reported)

say() { printf '[pharmacy-planner] %s\n' "$*" >&2; }

# --- the Python that creates the venv ------------------------------------------------------------------
pick_python() {
  local candidates
  if [ -n "${PHARMACY_PLANNER_PYTHON:-}" ]; then
    candidates="$PHARMACY_PLANNER_PYTHON"
  else
    candidates="python3 python3.13 python3.12 python3.11"
  fi
  local py
  for py in $candidates; do
    if command -v "$py" >/dev/null 2>&1 &&
       "$py" -c 'import sys; raise SystemExit(sys.version_info < (3, 11))' 2>/dev/null; then
      BASE_PYTHON="$(command -v "$py")"
      say "Python: $BASE_PYTHON ($("$py" -c 'import sys; print(sys.version.split()[0])'))"
      return 0
    fi
  done
  say "no Python >= 3.11 found (tried: $candidates). Install one (Debian 12: apt-get install python3), or set"
  say "PHARMACY_PLANNER_PYTHON to its path."
  return 1
}

# --- Debian packages (only as root or with password-less sudo; never fatal) ------------------------------
APT_UPDATED=""
apt_prefix() {
  if [ "${PHARMACY_PLANNER_NO_APT:-0}" = 1 ] || ! command -v apt-get >/dev/null 2>&1; then
    return 1
  elif [ "$(id -u)" = 0 ]; then
    APT_GET="apt-get"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    APT_GET="sudo -n apt-get"
  else
    return 1
  fi
}

# apt_install WHY PACKAGE... : install Debian packages; returns non-zero (with a message) when it cannot.
apt_install() {
  local why="$1"; shift
  if ! apt_prefix; then
    if [ "${PHARMACY_PLANNER_NO_APT:-0}" = 1 ]; then
      say "not installing $* ($why): PHARMACY_PLANNER_NO_APT=1"
    elif ! command -v apt-get >/dev/null 2>&1; then
      say "not installing $* ($why): this system has no apt-get"
    else
      say "not installing $* ($why): this user is not root and has no password-less sudo"
    fi
    return 1
  fi
  if [ -z "$APT_UPDATED" ]; then
    say "apt-get update (package lists)"
    if $APT_GET update -qq >/dev/null 2>&1; then
      APT_UPDATED=ok
    else
      APT_UPDATED=failed
      say "apt-get update failed (no mirror reachable?); trying the package lists already on this machine"
    fi
  fi
  say "apt-get install $* ($why)"
  if DEBIAN_FRONTEND=noninteractive $APT_GET install -y -qq --no-install-recommends "$@" >/dev/null 2>&1; then
    return 0
  fi
  say "could not install $* with apt-get"
  return 1
}

have_cjk_font() {
  command -v fc-list >/dev/null 2>&1 && [ -n "$(fc-list :lang=zh family 2>/dev/null | head -n 1)" ]
}

ensure_cjk_font() {
  if have_cjk_font; then
    return 0
  fi
  apt_install "a Chinese font for the report's maps and the browser screenshots" fonts-wqy-microhei ||
    say "no CJK font: Chinese text in the Word report's maps will show as boxes (a warning says so)"
}

# --- the virtual environment -------------------------------------------------------------------------
venv_python_ok() {
  [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys; raise SystemExit(sys.prefix == sys.base_prefix)' 2>/dev/null
}

create_venv() {
  say "creating the virtual environment $VENV"
  local log
  log="$(mktemp)"
  if "$BASE_PYTHON" -m venv "$VENV" >"$log" 2>&1; then
    rm -f "$log"
    return 0
  fi
  # Debian and Ubuntu split venv (ensurepip) out of python3: the package is python3.X-venv.
  local version
  version="$("$BASE_PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
  if grep -q "ensurepip" "$log"; then
    rm -rf "$VENV"
    say "$BASE_PYTHON has no venv module (Debian splits it into the package python$version-venv)"
    if apt_install "python -m venv for $BASE_PYTHON" "python$version-venv" ||
       apt_install "python -m venv for $BASE_PYTHON" python3-venv; then
      if "$BASE_PYTHON" -m venv "$VENV" >"$log" 2>&1; then
        rm -f "$log"
        return 0
      fi
    else
      say "install it (sudo apt-get install python$version-venv) or choose another Python with PHARMACY_PLANNER_PYTHON"
    fi
  fi
  cat "$log" >&2
  rm -f "$log"
  say "could not create $VENV"
  return 1
}

# ensure_venv EXTRAS : create or reuse $VENV and install the project with EXTRAS ("" or "dev") into it.
# Reused without pip when the stamp says this pyproject.toml with these extras is installed already.
ensure_venv() {
  local extras="$1"
  VENV="${PHARMACY_PLANNER_VENV:-$ROOT/.venv}"
  if venv_python_ok; then
    say "reusing the virtual environment $VENV"
  else
    if [ -e "$VENV" ]; then
      if [ -n "${PHARMACY_PLANNER_VENV:-}" ]; then
        say "$VENV exists but is not a working virtual environment; remove it or point PHARMACY_PLANNER_VENV elsewhere"
        return 1
      fi
      say "$VENV exists but its Python does not run (moved, or its base Python removed): making it again"
      rm -rf "$VENV"
    fi
    pick_python || return 1
    create_venv || return 1
  fi
  local stamp="$VENV/.pharmacy-planner-installed" hash wanted
  hash="$("$VENV/bin/python" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest()[:16])' "$ROOT/pyproject.toml")"
  wanted="$hash ${extras:-base}"
  if [ -f "$stamp" ] && { grep -qx "$wanted" "$stamp" || { [ -z "$extras" ] && grep -q "^$hash " "$stamp"; }; }; then
    say "the project and its packages are installed in $VENV already (pyproject.toml unchanged)"
    if [ "$(sed -n 's/^root //p' "$stamp")" != "$ROOT" ]; then
      say "(installed from $(sed -n 's/^root //p' "$stamp"); the app and the tests run the code in $ROOT)"
    fi
    return 0
  fi
  local target="."
  [ -n "$extras" ] && target=".[$extras]"
  say "installing the project ($target) into $VENV with pip (packages from PyPI, or this machine's pip settings)"
  (cd "$ROOT" && "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$target") || {
    say "pip could not install the project into $VENV"
    return 1
  }
  { printf 'root %s\n' "$ROOT"; { grep "^$hash " "$stamp" 2>/dev/null || true; } | { grep -vx "$wanted" || true; }
    echo "$wanted"; } > "$stamp.new"
  mv "$stamp.new" "$stamp"
}
