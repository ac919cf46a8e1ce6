#!/usr/bin/env bash
# Installs the build into a temporary prefix and builds a program against
# libannal with pkg-config alone, and again with CMake's find_package(annal),
# then runs them (each must report annald unreachable on a closed port, as a
# value, not a crash). The user programs are in bin, the bench and the
# bridge are not.
set -euo pipefail
build=$1
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
# lib, or lib/x86_64-linux-gnu in a build for prefix /usr (GNUInstallDirs)
libdir=$prefix/$(sed -n 's/^CMAKE_INSTALL_LIBDIR:PATH=//p' "$build/CMakeCache.txt")
export PKG_CONFIG_PATH=$libdir/pkgconfig
cat >"$prefix/app.c" <<'C'
#include <annal/annal.h>
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
LD_LIBRARY_PATH=$libdir "$prefix/app"
mkdir "$prefix/cmake-app"
cat >"$prefix/cmake-app/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.18)
project(app C)
find_package(annal 0.1 REQUIRED)
add_executable(app ../app.c)
target_link_libraries(app PRIVATE annal::annal)
add_executable(app_static ../app.c)
target_link_libraries(app_static PRIVATE annal::annal_static)
CMAKE
cmake -S "$prefix/cmake-app" -B "$prefix/cmake-app/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$prefix/cmake-app/build" >/dev/null
LD_LIBRARY_PATH=$libdir "$prefix/cmake-app/build/app"
"$prefix/cmake-app/build/app_static"
for p in annal annald annal-admin; do test -x "$prefix/bin/$p"; done
for p in annal-bench annal-bridge; do test ! -e "$prefix/bin/$p" && test -x "$prefix/libexec/annal/$p"; done
test -f "$libdir/libannal.a" && test -f "$prefix/include/annal/annal.h"
echo "1 passed, 0 failed"
