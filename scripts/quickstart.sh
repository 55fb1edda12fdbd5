#!/usr/bin/env bash
# The README's first command: a virtual environment (.venv), rdplab installed in it, and the
# validated fix matrix, in one line. Arguments go to `rdplab matrix`, e.g.
#   bash scripts/quickstart.sh --backend loopback --html matrix.html
# --no-run only sets up (CI jobs then call .venv/bin/rdplab themselves).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh
rdplab_venv ""
if [ "${1:-}" = "--no-run" ]; then
  echo "== ready: . $VENV/bin/activate && rdplab matrix"
  exit 0
fi
echo "== rdplab matrix $*"
exec "$VENV/bin/rdplab" matrix "$@"
