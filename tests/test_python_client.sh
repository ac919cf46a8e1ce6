#!/bin/sh
# test_python_client.sh BIN: installs clients/python as its README says (a
# venv on Debian's python3 with its system packages, pip install
# --no-build-isolation: nothing is downloaded) from a copy of the source,
# then runs the package's own tests against BIN/annald, warnings of
# unclosed sockets counted as failures; and mypy --strict on the package.
set -eu
BIN=$1
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$HERE/../clients/python
for m in venv pip setuptools zmq msgpack; do
    if ! /usr/bin/python3 -c "import $m" 2>/dev/null; then
        echo "skipped: Debian's python3 lacks the module $m (./dev test installs it)"
        exit 77
    fi
done
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cp -r "$SRC" "$TMP/src"
/usr/bin/python3 -m venv --system-site-packages "$TMP/venv"
"$TMP/venv/bin/pip" install -q --no-build-isolation --no-index "$TMP/src" 2>&1 \
    | grep -v "^WARNING: Running pip as the 'root' user" || true
"$TMP/venv/bin/python" -c "import annal, annal.aio" # installed, or the tests would not run
if command -v mypy >/dev/null; then # typed (py.typed): strictly, for the oldest Python it takes
    MYPYPATH=$TMP/src/src mypy --strict --ignore-missing-imports --python-version 3.9 \
        --cache-dir "$TMP/mypy" -p annal
else
    echo "mypy is not installed (./dev test installs it): the type check is not run"
fi
cd "$TMP/src/tests"
ANNALD=$BIN/annald exec "$TMP/venv/bin/python" -W error::ResourceWarning -m unittest -v \
    test_client test_subscription test_group test_aio test_curve
