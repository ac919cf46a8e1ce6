# node_package.sh, sourced by the tests of clients/node with NODE_SRC set to
# clients/node: builds a copy of the package as its README says (npm ci
# from package-lock.json, then npm run build: tsc --strict to ESM with
# declarations) in $NODE_PKG, under a temporary folder $TMP that is removed
# on exit. Exits 77 (skipped), saying
# why, without node and npm or when the npm registry is out of reach.
for c in node npm; do
    if ! command -v $c >/dev/null 2>&1; then
        echo "skipped: $c is not installed (./dev test installs Debian's nodejs and npm)"
        exit 77
    fi
done
if ! npm ping >/dev/null 2>&1; then
    echo "skipped: the npm registry ($(npm config get registry)) does not answer"
    exit 77
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
NODE_PKG=$TMP/src
mkdir "$NODE_PKG"
(cd "$NODE_SRC" && tar cf - --exclude=node_modules --exclude=dist .) \
    | (cd "$NODE_PKG" && tar xf -)
(cd "$NODE_PKG" && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
