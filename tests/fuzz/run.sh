#!/bin/sh
# run.sh TARGET SEEDS: fuzzes TARGET from a scratch copy of the SEEDS folder;
# crash inputs land in the current folder. With ANNAL_FUZZ_RUNS=N it runs N
# inputs from the fixed seed ANNAL_FUZZ_SEED (default 1): the same inputs on
# every machine, so the test command fails only on a change, never on a new
# random find. Otherwise it fuzzes for ANNAL_FUZZ_SECONDS (default 20) from a
# random seed, to find new inputs (./dev fuzz).
set -eu
target=$1 seeds=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$seeds"/. "$work"/
if [ -n "${ANNAL_FUZZ_RUNS:-}" ]; then
    budget="-runs=$ANNAL_FUZZ_RUNS -seed=${ANNAL_FUZZ_SEED:-1}"
else
    budget="-max_total_time=${ANNAL_FUZZ_SECONDS:-20}"
fi
# shellcheck disable=SC2086 # $budget is two options
exec "$target" $budget -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$(pwd)/" "$work"
