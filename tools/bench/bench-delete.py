#!/usr/bin/python3
"""bench-delete: what deletion costs on the embedded store (docs/protocol.md,
section 7), for BENCHMARKS.md.

In one run, on one annald over ipc:// with its store on the same disk:
1. loads N events (default 1,000,000) into one aggregate, plus 10,000 into
   others, in batches of 1,000;
2. W2 before: one client appending one event at a time (~250 bytes), each
   answered after its flush, for S seconds: p50 / p99 / max;
3. delete_aggregate of the big aggregate: the reply's latency;
4. W2 during the sweep: the same client, from the reply until data.mdb
   holds no removal left to sweep (mdb_stat, every 50 ms; data.mdb is
   checkpointed every second, so the time is an upper bound by up to a
   second): p50 / p99 / max, and the sweep's rate;
5. the same for an aggregate of 100,000 events (the delete's reply alone).
Prints one JSON object. Usage: bench-delete.py [N] [S]."""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import msgpack
import zmq

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ANNALD = os.path.join(ROOT, "build", "annald")
N = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
PAD = "x" * 200


class Client:
    def __init__(self, endpoint):
        self.s = zmq.Context.instance().socket(zmq.DEALER)
        self.s.connect(endpoint)
        self.id = 0

    def call(self, body):
        self.id += 1
        self.s.send(msgpack.packb(dict(body, msg_id=self.id)))
        return msgpack.unpackb(self.s.recv())


def load(c, agg, n):
    for start in range(0, n, 1000):
        r = c.call({"type": "append", "aggregate_id": agg, "version": "any",
                    "events": [{"event_type": "Loaded", "event_data": {"i": start + i, "pad": PAD}}
                               for i in range(min(1000, n - start))]})
        assert r["type"] == "appended", r


def w2(c, until):
    """Appends one event at a time until until() is true; latencies in ms."""
    lat = []
    while not until():
        t = time.perf_counter()
        r = c.call({"type": "append", "aggregate_id": "w2-1", "event_type": "T",
                    "event_data": {"pad": PAD}, "version": "any"})
        lat.append((time.perf_counter() - t) * 1000)
        assert r["type"] == "appended", r
    return lat


def summary(lat):
    lat = sorted(lat)
    return {"count": len(lat), "p50_ms": round(statistics.median(lat), 3),
            "p99_ms": round(lat[int(len(lat) * 0.99) - 1], 3), "max_ms": round(lat[-1], 3)}


def main():
    tmp = tempfile.mkdtemp(prefix="annal-bench-delete-", dir=os.path.join(ROOT, "build"))
    proc = subprocess.Popen([ANNALD, "--data", os.path.join(tmp, "data"), "--commands",
                             f"ipc://{tmp}/c", "--events", f"ipc://{tmp}/e"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        proc.stdout.readline()
        c = Client(f"ipc://{tmp}/c")
        out = {"events": N}
        t = time.perf_counter()
        load(c, "big-1", N)
        load(c, "other-1", 10000)
        out["load_s"] = round(time.perf_counter() - t, 1)
        time.sleep(2)  # the load's checkpoints
        t_end = time.perf_counter() + SECONDS
        out["w2_before"] = summary(w2(c, lambda: time.perf_counter() > t_end))
        before = c.call({"type": "status"})["events"]
        t = time.perf_counter()
        r = c.call({"type": "delete_aggregate", "aggregate_id": "big-1", "version": "any"})
        out["delete_reply_ms"] = round((time.perf_counter() - t) * 1000, 3)
        assert r["type"] == "aggregate_deleted", r
        t0 = time.perf_counter()
        done = []

        def watch():
            """When data.mdb (checkpointed every second) has held the removal
            and holds it no more: the sweep is over."""
            seen = False
            while not done:
                st = subprocess.run(["mdb_stat", "-s", "removals", os.path.join(tmp, "data")],
                                    capture_output=True, text=True).stdout
                empty = "Entries: 0" in st
                seen |= not empty
                if (seen and empty) or time.perf_counter() - t0 > 120:
                    done.append(time.perf_counter() - t0)
                time.sleep(0.05)

        watcher = threading.Thread(target=watch)
        watcher.start()
        lat = w2(c, lambda: bool(done))
        watcher.join()
        sweep_s = done[0]
        out["w2_during_sweep"] = summary(lat)
        out["sweep_s"] = round(sweep_s, 2)
        out["sweep_events_per_s"] = round(N / sweep_s)
        load(c, "hundred-1", 100000)
        time.sleep(2)
        t = time.perf_counter()
        r = c.call({"type": "delete_aggregate", "aggregate_id": "hundred-1", "version": "any"})
        out["delete_100k_reply_ms"] = round((time.perf_counter() - t) * 1000, 3)
        print(json.dumps(out))
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


main()
