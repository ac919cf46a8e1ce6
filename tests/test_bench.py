"""annal-bench runs each quick workload against its own annald and reports
JSON with no errors (a smoke test: the figures themselves are the
benchmark's business, not a test's)."""
import json
import os
import subprocess

from annal_harness import BIN, check, run


def bench(*args):
    p = subprocess.run([os.path.join(BIN, "annal-bench"), *args, "--json", "--duration", "0.5"],
                       capture_output=True, text=True, timeout=120)
    check(p.returncode == 0, p.stderr)
    return [json.loads(l) for l in p.stdout.splitlines()]


def t_workloads():
    for workload, args in [("W1", ("--clients", "4", "--depth", "4")), ("W2", ()),
                           ("W3", ("--batch", "10", "--clients", "2")), ("W4", ("--writers", "3")),
                           ("W6", ()), ("W7", ("--clients", "2", "--subscribers", "2")), ("W8", ()),
                           ("W9", ("--clients", "2", "--consumers", "2", "--fetch", "50"))]:
        rows = bench(workload, *args)
        check(rows and all(r["workload"] == workload for r in rows), rows)
        for r in rows:
            check(r["errors"] == 0 and r["events_per_s"] > 0, r)
            for key in ("p50_ms", "p99_ms", "p999_ms", "broker_rss_kib"):
                check(key in r, (key, r))
    check(bench("W1", "--encoding", "json", "--clients", "2")[0]["encoding"] == "json")
    # W9: the group keeps up (annal-bench fails when it is not 0 behind within 30 s of the
    # load's end), in both encodings
    for enc in ("msgpack", "json"):
        r = bench("W9", "--encoding", enc, "--clients", "2", "--consumers", "3")[0]
        check(r["consumers"] == 3 and r["lag_at_end"] >= 0 and r["lag_max"] >= r["lag_at_end"], r)
        check(r["drain_s"] >= 0 and r["events_per_s"] > 0 and r["appended_per_s"] > 0, r)
        check(r["e2e_p50_ms"] > 0 and isinstance(r["lag_per_s"], list), r)


def t_usage():
    p = subprocess.run([os.path.join(BIN, "annal-bench"), "W10"], capture_output=True, text=True)
    check(p.returncode == 2)


run([("workloads", t_workloads), ("usage", t_usage)])
