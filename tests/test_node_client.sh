#!/bin/sh
# test_node_client.sh BIN: builds clients/node (node_package.sh), runs the
# package's own tests (node --test) against BIN/annald, then packs it and
# installs the tarball into an empty project whose TypeScript imports it
# through its exports, as a user would.
set -eu
BIN=$1
HERE=$(cd "$(dirname "$0")" && pwd)
NODE_SRC=$HERE/../clients/node
. "$HERE/node_package.sh"
cd "$NODE_PKG"
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
"$NODE_PKG/node_modules/.bin/tsc" --strict --noEmit --module nodenext --moduleResolution nodenext \
    --target es2022 --types node --typeRoots "$NODE_PKG/node_modules/@types" app.ts
node -e 'import("annal").then((m) => { if (!m.Client || !m.Subscription) process.exit(1); })'
echo "test_node_client: the packed package installs, imports and type-checks"
