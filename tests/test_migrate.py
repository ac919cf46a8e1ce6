"""annal migrate (run under tests/pg_cluster.sh): an LMDB store copied into
an empty PostgreSQL database answers every read exactly as the original
does, takes retries of its old appends as retries, and goes on from the same
head; a non-empty target, a served folder and a killed migration leave the
target as it was."""
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

from annal_harness import BIN, PG, Annald, Client, check, new_store, run

ADMIN = os.path.join(BIN, "annal-admin")


def migrate(src, dst, wait=True):
    p = subprocess.Popen([ADMIN, "migrate", "--from", src, "--to", dst],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not wait:
        return p
    out, err = p.communicate(timeout=300)
    return p.returncode, out, err


def head(store):
    d = Annald(data=store)
    try:
        return Client(d.commands).call({"type": "status"})["head_sequence"]
    finally:
        d.stop()
        d.cleanup()


def fill(c):
    """A store with every kind of thing migrate must keep; returns the
    batch appends sent with client ids, to retry later."""
    batches = []
    odd = ["plain-1", "kö/ünïcode-2", "back\\slash-3", "quote\"-4", "sp ace-5"]
    for i, agg in enumerate(odd):
        for v in range(3):
            r = c.call({"type": "append", "aggregate_id": agg, "event_type": f"T{v} \\",
                        "event_data": {"": v, "s": "a\\b\tc\nd\re", "n": [i, 1.5, None, True]},
                        "metadata": {"by": agg}, "version": v})
            check(r["type"] == "appended", (agg, r))
    for i in range(40):
        body = {"type": "append", "aggregate_id": f"order-{i % 7}", "version": "any",
                "events": [{"event_type": "Added", "event_data": {"i": i, "k": k},
                            "event_id": str(uuid.uuid4())} for k in range(1 + i % 4)]}
        r = c.call(body)
        check(r["type"] == "appended", r)
        batches.append((body, r))
    for agg in ["order-1", "order-2", odd[1]]:
        r = c.call({"type": "create_snapshot", "aggregate_id": agg})
        check(r["type"] == "snapshot_created", r)
    r = c.call({"type": "create_snapshot", "aggregate_id": "order-3",
                "state": {"client": "state", "x": [1, 2]}})
    check(r["type"] == "snapshot_created", r)
    for i in range(200):  # enough for a few pages
        r = c.call({"type": "append", "aggregate_id": f"bulk-{i % 13}", "event_type": "B",
                    "event_data": {"i": i}, "version": "any"})
        check(r["type"] == "appended", r)
    return odd, batches


def same(a, b, bodies):
    """Both brokers answer every body alike."""
    for body in bodies:
        ra, rb = a.call(body), b.call(body)
        check(ra == rb, (body, ra, rb))


def t_round_trip():
    src, dst = tempfile.mkdtemp(prefix="annal-mig-"), new_store()
    try:
        d = Annald(data=src)
        c = Client(d.commands, "msgpack")
        odd, batches = fill(c)
        last = c.call({"type": "read_all", "from_sequence": 1, "max_count": 1})
        check(d.stop() == 0, d.stderr())
        d.cleanup()
        rc, _, err = migrate(src, dst)
        check(rc == 0, err)
        lines = err.splitlines()
        check(lines[0].startswith("annal-admin: migrate: 0 of 315 events (0%), 0 snapshots"), err)
        check(any(ln.startswith("annal-admin: migrate: 315 of 315 events (100%), 4 snapshots")
                  for ln in lines), err)
        check(lines[-1].startswith("annal-admin: migrate: done in "), err)

        a, b = Annald(data=src), Annald(data=dst)
        try:
            for enc in ("json", "msgpack"):
                ca, cb = Client(a.commands, enc), Client(b.commands, enc)
                sa, sb = ca.call({"type": "status"}), cb.call({"type": "status"})
                for k in ("head_sequence", "aggregates", "events", "snapshots"):
                    check(sa[k] == sb[k], (k, sa, sb))
                check(sb["store"] == "postgresql" and sb["head_sequence"] == 315, sb)
                aggs = odd + [f"order-{i}" for i in range(7)] + [f"bulk-{i}" for i in range(13)]
                bodies = [{"type": "read_all", "from_sequence": s, "max_count": 100}
                          for s in (0, 1, 50, 315, 316)]
                bodies += [{"type": "read_all", "from_sequence": 1, "prefix": "order-",
                            "event_types": ["Added"]}]
                for agg in aggs + ["missing"]:
                    bodies += [{"type": "read", "aggregate_id": agg},
                               {"type": "read", "aggregate_id": agg, "direction": "backward"},
                               {"type": "get_snapshot", "aggregate_id": agg},
                               {"type": "replay", "aggregate_id": agg, "use_snapshot": True},
                               {"type": "replay", "aggregate_id": agg, "version": 2}]
                same(ca, cb, bodies)
                ca.close()
                cb.close()
            # the old appends, sent again, are retries on the copy too
            ca, cb = Client(a.commands), Client(b.commands)
            for body, first in batches:
                ra, rb = ca.call(body), cb.call(body)
                check(rb == ra and rb["first_sequence_number"] == first["first_sequence_number"],
                      (body, ra, rb))
            # and the wrong retries are refused alike (what is kept of each
            # event's place in its append decides the reply)
            for body, _ in batches:
                evs = body["events"]
                if len(evs) > 1:
                    same(ca, cb, [dict(body, events=v)
                                  for v in (evs[:1], evs[1:], evs[1:] + evs[:1])])
            # and both go on from the same head, in time order
            stale = {"type": "append", "aggregate_id": "order-0", "event_type": "Next",
                     "event_data": {}, "version": 0}
            ra, rb = ca.call(stale), cb.call(stale)
            check(ra["type"] == "concurrency_error" and rb == ra, (ra, rb))
            n = cb.call({"type": "read", "aggregate_id": "order-0"})["events"][-1]["version"]
            rb = cb.call({"type": "append", "aggregate_id": "order-0", "event_type": "Next",
                          "event_data": {}, "version": n})
            check(rb["type"] == "appended" and rb["sequence_number"] == 316, rb)
            new = cb.call({"type": "read_all", "from_sequence": 315})["events"]
            check([e["sequence_number"] for e in new] == [315, 316], new)
            check(new[1]["recorded_at"] >= new[0]["recorded_at"] >= last["events"][0]
                  ["recorded_at"], new)
        finally:
            for d in (a, b):
                check(d.stop() == 0, d.stderr())
                d.cleanup()
    finally:
        shutil.rmtree(src, ignore_errors=True)


def t_refusals():
    """A target that holds anything, a folder annald serves, a folder that is
    no store: each refused, with the target unchanged and no folder made."""
    src, dst = tempfile.mkdtemp(prefix="annal-mig-"), new_store()
    try:
        d = Annald(data=src)
        c = Client(d.commands)
        for i in range(5):
            r = c.call({"type": "append", "aggregate_id": "a-1", "event_type": "T",
                        "event_data": {"i": i}, "version": "any"})
            check(r["type"] == "appended", r)
        rc, _, err = migrate(src, dst)  # annald still serves it
        check(rc == 1 and "annal-admin: migrate: " in err and "target is unchanged" in err, err)
        check(d.stop() == 0, d.stderr())
        d.cleanup()
        check(head(dst) == 0)
        rc, _, err = migrate(src, dst)
        check(rc == 0, err)
        rc, _, err = migrate(src, dst)
        check(rc == 1 and "already holds 5 events and 0 snapshots" in err, err)
        check(head(dst) == 5)
        missing = src + "-missing"
        rc, _, err = migrate(missing, new_store())
        check(rc == 1 and "not an annal LMDB folder" in err and not os.path.exists(missing), err)
        rc, _, err = migrate(src, tempfile.gettempdir())
        check(rc == 1 and "must be a PostgreSQL database" in err, err)
    finally:
        shutil.rmtree(src, ignore_errors=True)


def t_killed():
    """SIGKILL in the middle of a migration: the target is still empty, and
    a second run copies everything."""
    src, dst = tempfile.mkdtemp(prefix="annal-mig-"), new_store()
    try:
        d = Annald(data=src)
        c = Client(d.commands, "msgpack")
        total = 0
        for i in range(200):
            r = c.call({"type": "append", "aggregate_id": f"k-{i}", "version": "any",
                        "events": [{"event_type": "K", "event_data": {"i": i, "k": k,
                                                                      "pad": "x" * 200}}
                                   for k in range(1000)]})
            check(r["type"] == "appended", r)
            total += 1000
        check(d.stop() == 0, d.stderr())
        d.cleanup()
        p = migrate(src, dst, wait=False)
        first = p.stderr.readline()
        check("0 of 200000 events" in first, first)
        time.sleep(1.0)
        check(p.poll() is None, "migration ended before the kill: make the store bigger")
        p.send_signal(signal.SIGKILL)
        p.wait()
        check(head(dst) == 0)
        rc, _, err = migrate(src, dst)
        check(rc == 0, err)
        check(head(dst) == total)
        # a filtered read_all examines at most 100,000 events, alike on both
        a, b = Annald(data=src), Annald(data=dst)
        try:
            same(Client(a.commands), Client(b.commands),
                 [{"type": "read_all", "from_sequence": f, "prefix": p, "max_count": 5}
                  for f in (0, 1, 150000) for p in ("zzz", "k-199")])
        finally:
            for d in (a, b):
                check(d.stop() == 0, d.stderr())
                d.cleanup()
    finally:
        shutil.rmtree(src, ignore_errors=True)


if __name__ == "__main__":
    if not PG:
        print("ANNAL_TEST_PG is not set: run under tests/pg_cluster.sh")
        raise SystemExit(77)
    run([("round_trip", t_round_trip), ("refusals", t_refusals), ("killed", t_killed)])
