# Sourced by quickstart.sh and test.sh: make ./.venv (or $RDPLAB_VENV) with this package
# installed, so a fresh Debian 12 / Ubuntu 24.04 works as written (PEP 668: the system Python
# refuses `pip install`; a virtual environment is the supported way).
#   rdplab_venv EXTRAS   e.g. rdplab_venv "" or rdplab_venv "[test,vagrant]"
rdplab_venv() {
  local extras="$1"
  VENV="${RDPLAB_VENV:-$PWD/.venv}"
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
      echo "== installing python3-venv (Debian/Ubuntu)"
      timeout 600 apt-get update -qq
      DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq --no-install-recommends python3-venv
    else
      echo "python3 cannot create a virtual environment: install it with" >&2
      echo "  sudo apt-get install python3-venv" >&2
      return 2
    fi
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    echo "== creating the virtual environment $VENV"
    python3 -m venv "$VENV"
  fi
  echo "== installing rdplab${extras} into $VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".${extras}"
}
