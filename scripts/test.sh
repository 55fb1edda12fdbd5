#!/usr/bin/env bash
# The test command (README): installs what the tests need, then runs them.
#   - Debian packages for the real peers (FreeRDP 2, Xvfb) and the kernel network tools, when root
#   - a virtual environment (.venv, or $RDPLAB_VENV) with this package and its test extras:
#     a fresh Debian 12 / Ubuntu 24.04 refuses pip on the system Python (PEP 668)
# Extra arguments go to pytest, e.g. scripts/test.sh -k probe
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(freerdp2-x11 freerdp2-shadow-x11 winpr-utils xvfb nftables iproute2 faketime
             rdesktop xrdp krb5-kdc krb5-admin-server krb5-user libkrb5-dev tshark chromium)
missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "== installing Debian packages: ${missing[*]}"
    timeout 600 apt-get update -qq
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "== not root: tests that need ${missing[*]} will be skipped with the reason"
  fi
fi

. scripts/venv.sh
rdplab_venv "[test,vagrant]"
export VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH"  # subprocesses find this rdplab and python

echo "== ruff"
"$VENV/bin/python" -m ruff check harness tests benchmarks

echo "== pytest"
"$VENV/bin/python" -m pytest -p no:cacheprovider -q -n 2 --dist loadgroup "$@"
