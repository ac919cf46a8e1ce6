#!/bin/sh
# run.sh TARGET SEEDS: fuzzes TARGET for ANNAL_FUZZ_SECONDS (default 20) from
# a scratch copy of the SEEDS folder; crash inputs land in the current folder.
set -eu
target=$1 seeds=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$seeds"/. "$work"/
exec "$target" -max_total_time="${ANNAL_FUZZ_SECONDS:-20}" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$(pwd)/" "$work"
