#!/bin/sh
# test_node_client.sh BIN: builds clients/node from a copy of the source as
# its README says (npm ci from package-lock.json, npm run build: tsc --strict
# to ESM with declarations), runs the package's own tests (node --test)
# against BIN/annald, then packs it and installs the tarball into an empty
# project whose TypeScript imports it through its exports, as a user would.
# Skips (77) without node and npm, or when the npm registry is out of reach.
set -eu
BIN=$1
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$HERE/../clients/node
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
mkdir "$TMP/src"
(cd "$SRC" && tar cf - --exclude=node_modules --exclude=dist .) | (cd "$TMP/src" && tar xf -)
cd "$TMP/src"
npm ci --no-audit --no-fund --loglevel=error
npm run --silent build
ANNALD=$BIN/annald npm test

# the package as a dependency: the files it ships, its exports, its types
npm pack --silent --pack-destination "$TMP" >/dev/null
mkdir "$TMP/app"
cd "$TMP/app"
echo '{"name": "app", "version": "1.0.0", "type": "module", "private": true}' > package.json
npm install --no-audit --no-fund --loglevel=error --prefer-offline "$TMP"/annal-*.tgz
cat > app.ts <<'TS'
import { Client, ConcurrencyError, type Event } from "annal";
import { getEventStore } from "annal/emmett";
const c = new Client({ commands: "ipc:///nowhere", timeoutMs: 100 });
const store = getEventStore(c);
const f = (e: Event): number => e.sequenceNumber;
console.log(typeof f, typeof store.appendToStream, ConcurrencyError.name);
c.close();
TS
"$TMP/src/node_modules/.bin/tsc" --strict --noEmit --module nodenext --moduleResolution nodenext \
    --target es2022 --types node --typeRoots "$TMP/src/node_modules/@types" app.ts
node -e 'import("annal").then((m) => { if (!m.Client || !m.Subscription) process.exit(1); })'
echo "test_node_client: the packed package installs, imports and type-checks"
