#!/bin/sh
# test_exports.sh LIBANNAL.so HEADERS_DIR: libannal.so exports exactly the
# functions its installed headers declare with ANNAL_EXPORT, nothing else
# (the codec, the client's internals and the wire helpers stay hidden).
set -eu
lib=$1 headers=$2
command -v nm >/dev/null || { echo "skipped: nm (binutils) is missing"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
nm -D --defined-only "$lib" | awk '$2 == "T" || $2 == "D" || $2 == "B" || $2 == "R" {print $3}' \
    | sort -u >"$work/exported"
# the name before the first "(" of every ANNAL_EXPORT declaration
sed -n 's/^ANNAL_EXPORT[^(]*[^a-z0-9_(]\([a-z0-9_]*\)(.*/\1/p' "$headers"/*.h | sort -u >"$work/api"
if [ ! -s "$work/api" ]; then
    echo "no ANNAL_EXPORT declaration found in $headers"
    exit 1
fi
if ! diff -u "$work/api" "$work/exported" >"$work/diff"; then
    echo "libannal.so's exports differ from the API (- declared only, + exported only):"
    cat "$work/diff"
    echo "0 passed, 1 failed"
    exit 1
fi
echo "$(wc -l <"$work/api") functions exported, as declared"
echo "1 passed, 0 failed"
