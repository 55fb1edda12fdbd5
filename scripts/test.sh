#!/usr/bin/env bash
# The test command (README): installs what the tests need, then runs them.
#   - Debian packages for the real peers (FreeRDP 2, Xvfb) and the kernel network tools, when root
#   - this package with its test extras
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

echo "== installing rdplab with its test extras"
python3 -m pip install -q --disable-pip-version-check -e '.[test,vagrant]'

echo "== ruff"
python3 -m ruff check harness tests benchmarks

echo "== pytest"
python3 -m pytest -p no:cacheprovider -q -n 2 --dist loadgroup "$@"
