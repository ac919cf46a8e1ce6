"""kill -9 soak: SIGKILL annald at random moments, 50 times, under concurrent
JSON and MessagePack load (single appends, batch appends, some with the
client's own event ids, and snapshots). After each restart: every
acknowledged event is there with its sequence number and version; sequences
and versions are dense; every aggregate's latest snapshot is the fold of its
events up to the snapshot's version, and a replay from it equals a full
replay; and the next cycle's appends go on from there.

ANNAL_SOAK_CYCLES overrides the number of cycles (for a longer run)."""
import os
import random
import shutil
import signal
import tempfile
import threading
import time
import uuid

import zmq

from annal_harness import Annald, Client, check, run

CYCLES = int(os.environ.get("ANNAL_SOAK_CYCLES", "50"))
WRITERS = 4


def call(c, body, stop):
    """Sends body and waits for its reply; None when annald is gone (the
    outcome is unknown) or the cycle is over."""
    try:
        msg_id = c.send(body)
    except zmq.ZMQError:
        return None
    deadline = time.time() + 5
    while time.time() < deadline:
        if c.sock.poll(50):
            reply = c.recv()
            check(reply.get("in_reply_to") == msg_id, reply)
            return reply
        if stop.is_set():
            return None
    return None


def writer(endpoint, k, version, acked, snaps, problems, stop, seed):
    """Appends to aggregate soak-k at exact versions; now and then asks for
    a snapshot. Records every acknowledgement."""
    rng = random.Random(seed)
    c = Client(endpoint, "json" if k % 2 else "msgpack")
    agg = f"soak-{k}"
    while not stop.is_set():
        roll = rng.random()
        if roll < 0.1:
            r = call(c, {"type": "create_snapshot", "aggregate_id": agg}, stop)
            if r is None:
                break
            if r["type"] != "snapshot_created":
                problems.append((agg, r))
                break
            snaps.append((agg, r["version"]))
            continue
        n = 1 if roll < 0.6 else rng.randint(2, 5)
        events = [{"event_type": "S" if n == 1 else "B",
                   "event_data": {"v": version + i + 1, "k": k, "pad": "x" * rng.randint(0, 200)}}
                  for i in range(n)]
        if rng.random() < 0.3:
            for e in events:
                e["event_id"] = str(uuid.uuid4())
        body = {"type": "append", "aggregate_id": agg, "version": version}
        if n == 1:
            body.update(events[0])
        else:
            body["events"] = events
        r = call(c, body, stop)
        if r is None:
            break
        if r["type"] != "appended":
            problems.append((agg, r))
            break
        ids = [r["event_id"]] if n == 1 else r["event_ids"]
        first = r["sequence_number"] if n == 1 else r["first_sequence_number"]
        for i in range(n):
            acked.append((ids[i], agg, version + i + 1, first + i))
            if "event_id" in events[i]:
                check(ids[i] == events[i]["event_id"], (ids[i], events[i]))
        version += n
    c.close()


def read_everything(c):
    events, nxt = [], 1
    while True:
        r = c.call({"type": "read_all", "from_sequence": nxt, "max_count": 10000})
        check(r["type"] == "events", r)
        if not r["events"]:
            return events
        events += r["events"]
        nxt = r["next_sequence"]


def verify(c, acked, snaps, cycle):
    """Checks the store after a restart; returns each aggregate's version."""
    # A commit the killed annald had sent may still land (PostgreSQL finishes
    # a transaction whose client is gone): the head must hold still first.
    head, t0 = None, time.monotonic()
    while time.monotonic() - t0 < 10:
        now = c.call({"type": "status"})["head_sequence"]
        if now == head:
            break
        head = now
        time.sleep(0.3)
    events = read_everything(c)
    check([e["sequence_number"] for e in events] == list(range(1, len(events) + 1)),
          f"dense sequences after restart {cycle}")
    by_id = {e["event_id"]: e for e in events}
    for eid, agg, version, seq in acked:
        e = by_id.get(eid)
        check(e is not None, f"acknowledged event {eid} lost (cycle {cycle})")
        check((e["aggregate_id"], e["version"], e["sequence_number"]) == (agg, version, seq), e)
    versions = {}
    for e in events:
        versions.setdefault(e["aggregate_id"], []).append(e["version"])
        check(e["event_data"]["v"] == e["version"], e)
    for agg, vs in versions.items():
        check(vs == list(range(1, len(vs) + 1)), f"dense versions of {agg} (cycle {cycle})")
    for agg in {a for a, _ in snaps}:
        newest = max(v for a, v in snaps if a == agg)
        s = c.call({"type": "get_snapshot", "aggregate_id": agg})
        check(s["type"] == "snapshot" and s["version"] >= newest, (agg, newest, s))
        full = c.call({"type": "replay", "aggregate_id": agg, "version": s["version"]})
        check(full["type"] == "replayed" and full["state"] == s["state"],
              f"snapshot of {agg} at {s['version']} differs from the fold of its events")
        fast = c.call({"type": "replay", "aggregate_id": agg, "use_snapshot": True})
        slow = c.call({"type": "replay", "aggregate_id": agg})
        check(fast["state"] == slow["state"] and fast["version"] == slow["version"]
              == len(versions.get(agg, [])), (agg, fast, slow))
    return {agg: len(vs) for agg, vs in versions.items()}


def t_soak():
    sockets = tempfile.mkdtemp(prefix="annal-soak-")
    ipc = ("--commands", f"ipc://{sockets}/commands", "--events", f"ipc://{sockets}/events")
    first = Annald(args=ipc)
    d = first
    rng = random.Random(os.getpid())
    versions = {}
    acked, snaps = [], []
    try:
        for cycle in range(CYCLES):
            stop = threading.Event()
            problems = []
            threads = [threading.Thread(target=writer, args=(
                d.commands, k, versions.get(f"soak-{k}", 0), acked, snaps, problems, stop,
                rng.random())) for k in range(WRITERS)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.05, 0.6))
            d.proc.send_signal(signal.SIGKILL)
            d.proc.wait()
            stop.set()
            for t in threads:
                t.join()
            check(not problems, problems[:3])
            if d is not first:
                d.cleanup()
            d = Annald(data=first.data, args=ipc)
            c = Client(d.commands, "msgpack")
            versions = verify(c, acked, snaps, cycle)
            c.close()
        check(sum(versions.values()) >= CYCLES, f"appends went on: {versions}")
        check(d.stop() == 0, d.stderr())
    finally:
        if d is not first:
            d.cleanup()
        first.cleanup()
        shutil.rmtree(sockets, ignore_errors=True)


run([("soak", t_soak)])
