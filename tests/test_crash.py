"""Crash test: SIGKILL annald while clients append concurrently (JSON and
MessagePack, single and batch), restart it, and find every acknowledged
event with its sequence number and version; sequences dense, versions
dense, and appends go on."""
import random
import shutil
import signal
import tempfile
import threading
import time

from annal_harness import Annald, Client, check, run

CYCLES = 5
WRITERS = 6


def writer(endpoint, k, acked, stop, expected):
    """Appends to its own aggregate with exact versions; records each ack."""
    c = Client(endpoint, "json" if k % 2 else "msgpack", timeout=2000)
    agg = f"crash-{k}"
    rng = random.Random(k)
    version = expected[k]
    while not stop.is_set():
        n = rng.choice([1, 1, 2, 5])
        if n == 1:
            body = {"type": "append", "aggregate_id": agg, "event_type": "T",
                    "event_data": {"v": version + 1, "pad": "x" * rng.randint(0, 300)}, "version": version}
        else:
            body = {"type": "append", "aggregate_id": agg, "version": version,
                    "events": [{"event_type": "B", "event_data": {"v": version + i + 1}} for i in range(n)]}
        try:
            r = c.call(body)
        except Exception:
            break  # annald is gone: this append's outcome is unknown
        if r["type"] != "appended":
            acked.append(("error", k, r))
            break
        if n == 1:
            acked.append((agg, version + 1, r["sequence_number"], r["event_id"]))
        else:
            for i in range(n):
                acked.append((agg, version + i + 1, r["first_sequence_number"] + i, r["event_ids"][i]))
        version += n
    c.close()


def t_kill9_cycles():
    # ipc endpoints of this test's own: with wildcard TCP ports another
    # test's annald can take the killed one's port, and a DEALER's queued
    # request then reaches that other store ("Expected version 1063, got 0")
    sockets = tempfile.mkdtemp(prefix="annal-crash-")
    ipc = ("--commands", f"ipc://{sockets}/commands", "--events", f"ipc://{sockets}/events")
    first = Annald(args=ipc)
    data = first.data
    d = first
    expected = {k: 0 for k in range(WRITERS)}
    all_acked = []
    try:
        for cycle in range(CYCLES):
            stop = threading.Event()
            acked = []
            threads = [threading.Thread(target=writer, args=(d.commands, k, acked, stop, expected))
                       for k in range(WRITERS)]
            for t in threads:
                t.start()
            time.sleep(random.uniform(0.3, 0.9))
            d.proc.send_signal(signal.SIGKILL)
            d.proc.wait()
            stop.set()
            for t in threads:
                t.join()
            errors = [a for a in acked if a[0] == "error"]
            check(not errors, errors[:3])
            check(len(acked) > 0, "some appends were acknowledged before the kill")
            all_acked += acked
            if d is not first:
                d.cleanup()
            d = Annald(data=data, args=ipc)
            c = Client(d.commands)
            events, nxt = [], 1
            while True:
                r = c.call({"type": "read_all", "from_sequence": nxt, "max_count": 10000})
                if not r["events"]:
                    break
                events += r["events"]
                nxt = r["next_sequence"]
            seqs = [e["sequence_number"] for e in events]
            check(seqs == list(range(1, len(events) + 1)), "dense sequences after restart")
            by_id = {e["event_id"]: e for e in events}
            for agg, version, seq, eid in all_acked:
                e = by_id.get(eid)
                check(e is not None, f"acknowledged event {eid} lost (cycle {cycle})")
                check((e["aggregate_id"], e["version"], e["sequence_number"]) == (agg, version, seq), e)
            versions = {}
            for e in events:
                versions.setdefault(e["aggregate_id"], []).append(e["version"])
            for agg, vs in versions.items():
                check(vs == list(range(1, len(vs) + 1)), f"dense versions of {agg}")
                check(all(e["event_data"]["v"] == e["version"] for e in events if e["aggregate_id"] == agg))
            for k in range(WRITERS):
                expected[k] = len(versions.get(f"crash-{k}", []))
            c.close()
        check(d.stop() == 0, d.stderr())
    finally:
        if d is not first:
            d.cleanup()
        first.cleanup()
        shutil.rmtree(sockets, ignore_errors=True)


run([("kill9_cycles", t_kill9_cycles)])
