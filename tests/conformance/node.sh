#!/bin/sh
# node.sh BIN PYTHON...: the conformance suite against the Node.js package:
# builds it (../node_package.sh; skips, 77, without node, npm or the npm
# registry) and runs driver.mjs from inside the built package, where
# `import "annal"` resolves to it through its own exports.
set -eu
BIN=$1
shift
HERE=$(cd "$(dirname "$0")" && pwd)
NODE_SRC=$HERE/../../clients/node
. "$HERE/../node_package.sh"
cp "$HERE/driver.mjs" "$NODE_PKG/conformance-driver.mjs"
"$@" "$HERE/conformance.py" "$BIN" node "$NODE_PKG/conformance-driver.mjs"
