#!/usr/bin/python3
"""bench-figures: every figure of BENCHMARKS.md, from build/annal-bench.

Runs each workload 3 times and keeps the median of each number, sweeps W1
over the number of clients, loads 10,000,000 events to measure annald's
memory at rest and its restart time, and draws the plots with gnuplot.
Writes docs/bench/runs.jsonl (every run), docs/bench/medians.json,
docs/bench/*.png, and prints the table. Called by `./dev bench`.

With --pg, under tests/pg_cluster.sh (`./dev bench-pg`), the PostgreSQL
figures instead: W1, W2 and W5 against one and against two annald on one
database of that throwaway server (fsync and synchronous_commit on,
shared_buffers 64MB, a Unix socket), each run on a new database; writes
docs/bench/pg-runs.jsonl and docs/bench/pg-medians.json."""
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(ROOT, "build", "annal-bench")
ANNALD = os.path.join(ROOT, "build", "annald")
OUT = os.path.join(ROOT, "docs", "bench")
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
DURATION = os.environ.get("BENCH_DURATION", "5")
LOAD = int(os.environ.get("BENCH_LOAD", "10000000"))


def bench(*args):
    """One annal-bench invocation: its JSON lines."""
    out = subprocess.run([BENCH, *args, "--json", "--duration", DURATION],
                         capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def median_of(rows):
    """The median of every number across runs of one workload."""
    m = dict(rows[0])
    for k, v in rows[0].items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            m[k] = statistics.median(r[k] for r in rows)
    m["runs"] = len(rows)
    return m


def pg_bench(brokers, *args):
    """One annal-bench invocation against `brokers` annald sharing a new
    database of the server at $ANNAL_TEST_PG."""
    pg = os.environ["ANNAL_TEST_PG"]
    name = "bench_" + os.urandom(4).hex()
    subprocess.run(["psql", pg, "-qc", f"CREATE DATABASE {name}"], check=True)
    store = pg.replace("/postgres?", f"/{name}?", 1)
    procs, endpoints = [], []
    try:
        for _ in range(brokers):
            p = subprocess.Popen([ANNALD, "--store", store, "--commands", "tcp://127.0.0.1:*",
                                  "--events", "tcp://127.0.0.1:*", "--max-body", "8388608"],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            procs.append(p)
            m = re.search(r"commands (\S+) events", p.stdout.readline())
            if not m:
                raise SystemExit("bench-figures: annald did not start on PostgreSQL")
            endpoints.append(m.group(1))
        rows = bench(*args, "--connect", ",".join(endpoints))
    finally:
        for p in procs:
            p.terminate()
            p.wait(30)
    for r in rows:
        r["brokers"] = brokers
    return rows


def measure(name, *args, log, runner=bench):
    """Runs a workload RUNS times; returns the medians, one per label."""
    by_label = {}
    for i in range(RUNS):
        for row in runner(*args):
            row["set"] = name
            log.write(json.dumps(row) + "\n")
            log.flush()
            by_label.setdefault(row["label"], []).append(row)
        print(f"  {name}: run {i + 1}/{RUNS}", file=sys.stderr)
    return [median_of(rows) for rows in by_label.values()]


def call(sock, body):
    import msgpack
    sock.send(msgpack.packb(body))
    return msgpack.unpackb(sock.recv())


def load_and_restart():
    """Loads LOAD events, then: RssAnon at rest, and the time from a
    SIGKILL'd annald's restart to its first answer. One run."""
    import zmq
    data = tempfile.mkdtemp(prefix="annal-figures-", dir=os.environ.get("TMPDIR", "/tmp"))
    cmd, ev = "tcp://127.0.0.1:17731", "tcp://127.0.0.1:17732"
    argv = [ANNALD, "--data", data, "--commands", cmd, "--events", ev]
    d = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.RCVTIMEO, 60000)
    s.connect(cmd)
    try:
        head, started = 0, time.time()
        while head < LOAD:
            subprocess.run([BENCH, "W3", "--batch", "1000", "--duration", "10", "--connect", cmd],
                           capture_output=True, check=True)
            head = call(s, {"type": "status", "msg_id": 1})["head_sequence"]
            print(f"  load: {head} events", file=sys.stderr)
        load_s = time.time() - started
        time.sleep(3)  # a checkpoint and a trim happen on the idle heartbeats
        with open(f"/proc/{d.pid}/status") as f:
            st = dict(line.split(":", 1) for line in f if ":" in line)
        anon = int(st["RssAnon"].split()[0])
        d.send_signal(signal.SIGKILL)
        d.wait()
        t0 = time.time()
        d = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        s.close(0)
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.RCVTIMEO, 60000)
        s.connect(cmd)
        again = call(s, {"type": "status", "msg_id": 2})["head_sequence"]
        restart = time.time() - t0
        size = sum(os.path.getsize(os.path.join(data, f)) for f in os.listdir(data))
        return {"set": "load", "events": head, "load_s": round(load_s, 1),
                "rss_anon_kib_at_rest": anon, "restart_to_first_reply_s": round(restart, 3),
                "head_after_restart": again, "store_bytes": size}
    finally:
        s.close(0)
        ctx.term()
        d.kill()
        d.wait()
        shutil.rmtree(data, ignore_errors=True)


def plot(medians):
    sweep = sorted((m for m in medians if m["set"].startswith("W1-sweep") or m["set"] == "W1"),
                   key=lambda m: m["clients"])
    if not shutil.which("gnuplot") or not sweep:
        return
    dat = os.path.join(OUT, "w1-sweep.dat")
    with open(dat, "w") as f:
        f.write("# clients events_per_s p50_ms p99_ms p999_ms (W1 msgpack, depth 16, medians)\n")
        for m in sweep:
            f.write(f"{m['clients']} {m['events_per_s']} {m['p50_ms']} {m['p99_ms']} {m['p999_ms']}\n")
    script = f"""
set terminal pngcairo size 800,480 noenhanced
set datafile commentschars '#'
set grid
set key left top
set logscale x 2
set xlabel 'clients (16 requests in flight each)'
set output '{OUT}/w1-throughput.png'
set title 'annal W1: durable single-event appends/s against clients (median of {RUNS})'
set ylabel 'events/s'
set yrange [0:*]
plot '{dat}' using 1:2 with linespoints lw 2 title 'annald, msgpack'
set output '{OUT}/w1-latency.png'
set title 'annal W1: append latency percentiles against clients (median of {RUNS})'
set ylabel 'ms'
set logscale y
set yrange [*:*]
plot '{dat}' using 1:3 with linespoints lw 2 title 'p50', \\
     '{dat}' using 1:4 with linespoints lw 2 title 'p99', \\
     '{dat}' using 1:5 with linespoints lw 2 title 'p99.9'
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=True)


def main():
    os.makedirs(OUT, exist_ok=True)
    medians = []
    with open(os.path.join(OUT, "runs.jsonl"), "w") as log:
        plan = [("DISK", "DISK"), ("ZMQ-64x16", "ZMQ"), ("ZMQ-1x1", "ZMQ", "--clients", "1", "--depth", "1"),
                ("W1", "W1"), ("W1-json", "W1", "--encoding", "json"), ("W2", "W2"), ("W3", "W3"),
                ("W4", "W4"), ("W5", "W5"), ("W6", "W6"), ("W7", "W7"), ("W8", "W8"),
                ("W9", "W9")]
        plan += [(f"W1-sweep-{c}", "W1", "--clients", str(c)) for c in (1, 4, 16)]
        for name, *args in plan:
            for m in measure(name, *args, log=log):
                m["set"] = name
                medians.append(m)
        if LOAD:
            row = load_and_restart()
            log.write(json.dumps(row) + "\n")
            medians.append(row)
    with open(os.path.join(OUT, "medians.json"), "w") as f:
        json.dump(medians, f, indent=1)
    plot(medians)
    print("| set | workload | label | events/s | p50 ms | p99 ms | p99.9 ms | errors | RssAnon KiB | extra |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for m in medians:
        if m["set"] == "load":
            print(f"| load | | {m['events']} events in {m['load_s']} s | | | | | | "
                  f"{m['rss_anon_kib_at_rest']} at rest | restart to first reply "
                  f"{m['restart_to_first_reply_s']} s; store {m['store_bytes']} bytes |")
            continue
        extra = ", ".join(f"{k} {m[k]}" for k in ("conflicts_per_s", "lost", "speedup", "appended_per_s",
                                                  "lag_max", "lag_at_end", "drain_s")
                          if k in m)
        print(f"| {m['set']} | {m['workload']} | {m['label']} | {m['events_per_s']:,.0f} | "
              f"{m['p50_ms']} | {m['p99_ms']} | {m['p999_ms']} | {m['errors']} | "
              f"{m['broker_rss_anon_kib']} | {extra} |")


def main_pg():
    os.makedirs(OUT, exist_ok=True)
    medians = []
    with open(os.path.join(OUT, "pg-runs.jsonl"), "w") as log:
        for brokers in (1, 2):
            plan = [("W1", "W1"), ("W1-json", "W1", "--encoding", "json"), ("W2", "W2"),
                    ("W5", "W5")]
            for name, *args in plan:
                for m in measure(f"{name} on {brokers}", *args, log=log,
                                 runner=lambda *a, b=brokers: pg_bench(b, *a)):
                    m["set"] = name
                    medians.append(m)
    with open(os.path.join(OUT, "pg-medians.json"), "w") as f:
        json.dump(medians, f, indent=1)
    print("| set | brokers | label | events/s | p50 ms | p99 ms | p99.9 ms | errors |")
    print("|---|---|---|---|---|---|---|---|")
    for m in medians:
        print(f"| {m['set']} | {m['brokers']} | {m['label']} | {m['events_per_s']:,.0f} | "
              f"{m['p50_ms']} | {m['p99_ms']} | {m['p999_ms']} | {m['errors']} |")


if __name__ == "__main__":
    main_pg() if sys.argv[1:] == ["--pg"] else main()
