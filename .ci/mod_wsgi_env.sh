#!/usr/bin/env bash
# Build the environment the server matrix's mod_wsgi-express rows run in when mod_wsgi-express
# runs as root and must drop to another user (--user nobody --group nogroup): that daemon user
# has to read the Python, the packages and the app, which under /root (mode 700) it cannot.
#
#   .ci/mod_wsgi_env.sh DEST [CONSTRAINTS]
#
# DEST (created, mode 755; every folder above it must let others in) gets:
#   venv/  a venv of a world-readable Python (A2WSGI_MOD_WSGI_PYTHON, default /usr/bin/python3)
#          with mod_wsgi, fastapi, starlette and this checkout's a2wsgi, compiled speedups
#          required; CONSTRAINTS (a pip constraints file, e.g. the main venv's `pip freeze`)
#          pins them to the versions the rest of the suite uses
#   app/   a copy of tests/integration/matrix_asgi_app.py, the module the rows load
#   run/   the rows' server roots and marker folders
# Then point the tests at it: A2WSGI_MOD_WSGI_ENV=DEST (tests/integration/test_matrix_asgi_side.py).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST=${1:?usage: $0 DEST [CONSTRAINTS]}
CONSTRAINTS=${2:-}
PYTHON=${A2WSGI_MOD_WSGI_PYTHON:-/usr/bin/python3}
umask 022

case "$DEST" in /*) ;; *) DEST=$(pwd)/$DEST ;; esac
rm -rf "$DEST"
mkdir -p "$DEST"
chmod 755 "$DEST"
dir=$DEST
while [ "$dir" != / ]; do
    [ "$(( 0$(stat -c %a "$dir") & 1 ))" -ne 0 ] || {
        echo "error: $dir does not let others in (mode $(stat -c %a "$dir")): mod_wsgi's daemon user could not reach $DEST" >&2
        exit 1
    }
    dir=$(dirname "$dir")
done

"$PYTHON" -m venv "$DEST/venv"
"$DEST/venv/bin/python" -m pip install -q --upgrade pip
constraint=()
[ -z "$CONSTRAINTS" ] || constraint=(-c "$CONSTRAINTS")
A2WSGI_REQUIRE_SPEEDUPS=1 "$DEST/venv/bin/python" -m pip install -q "${constraint[@]}" \
    "$ROOT" mod_wsgi fastapi starlette
mkdir -p "$DEST/app" "$DEST/run"
cp "$ROOT/tests/integration/matrix_asgi_app.py" "$DEST/app/"
chmod -R a+rX "$DEST"

(cd "$DEST/app" && env -u A2WSGI_PURE "$DEST/venv/bin/python" -c '
import a2wsgi, importlib.metadata as m
assert a2wsgi.SPEEDUPS is True, a2wsgi._hot.REASON
print("mod_wsgi environment: %s; a2wsgi %s (%s), mod_wsgi %s, fastapi %s, starlette %s" % (
    __import__("sys").version.split()[0], a2wsgi.__version__, a2wsgi._hot.REASON, m.version("mod_wsgi"),
    m.version("fastapi"), m.version("starlette")))')
echo "mod_wsgi environment ready: A2WSGI_MOD_WSGI_ENV=$DEST"
