#!/bin/sh
# pg_cluster.sh COMMAND...: runs COMMAND with ANNAL_TEST_PG set to the URI of
# a throwaway PostgreSQL server: initdb in a temporary folder, reachable only
# through a Unix socket in that folder, stopped and removed afterwards. As
# root, the server runs as the postgres user (PostgreSQL refuses root). The
# test command installs PostgreSQL (./dev); without it this exits 77 (skip).
set -eu
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
    echo "pg_cluster: PostgreSQL is not installed" >&2
    exit 77
fi
dir=$(mktemp -d /tmp/annal-pg-XXXXXX)
chmod 755 "$dir"
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}
[ "$(id -u)" -ne 0 ] || chown postgres "$dir"
stop() {
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap stop EXIT INT TERM
as_owner "$bindir/initdb" -D "$dir/data" -A trust -U annal -E UTF8 --no-sync >/dev/null
as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w -s \
    -o "-k $dir -c listen_addresses= -c max_connections=200 -c shared_buffers=64MB" start
export ANNAL_TEST_PG="postgresql:///postgres?host=$dir&user=annal"
export ANNAL_TEST_PG_DIR="$dir" ANNAL_TEST_PG_BIN="$bindir"
"$@"
