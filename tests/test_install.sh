#!/usr/bin/env bash
# Installs the build into a temporary prefix and builds a program against
# libannal with pkg-config alone, then runs it (it must report annald
# unreachable on a closed port, as a value, not a crash).
set -euo pipefail
build=$1
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
cat >"$prefix/app.c" <<'C'
#include <annal.h>
#include <stdio.h>
int main(void)
{
    annal_client_t *c = annal_client_new("tcp://127.0.0.1:9", 200);
    annal_result_t res;
    annal_status_t st = annal_client_status(c, NULL, &res);
    printf("status %d: %s\n", (int) st, res.text);
    annal_client_destroy(&c);
    return st == ANNAL_TIMEOUT ? 0 : 1;
}
C
cc "$prefix/app.c" $(pkg-config --cflags --libs annal) -o "$prefix/app"
LD_LIBRARY_PATH=$prefix/lib "$prefix/app"
test -x "$prefix/bin/annal" && test -x "$prefix/bin/annald" && test -f "$prefix/lib/libannal.a"
echo "1 passed, 0 failed"
