"""Deletion (docs/protocol.md, section 7): delete_aggregate, soft and hard,
with the version check, and what every read sees afterwards, in JSON and
MessagePack, through real sockets; removals that survive a SIGKILL, and
the sweep that frees the removed events' space."""
import functools
import os
import shutil
import signal
import subprocess
import tempfile
import time

from annal_harness import (BIN, PG, RFC3339, UUID, Annald, Client, append, broker, check,
                           new_store, run)

DELETED = ["type", "in_reply_to", "aggregate_id", "version", "sequence_number"]


def delete(c, agg, version, hard=None):
    body = {"type": "delete_aggregate", "aggregate_id": agg, "version": version}
    if hard is not None:
        body["hard"] = hard
    return c.call(body)


def deleted(c, agg, version, hard=None):
    """A delete that succeeds; its reply."""
    r = delete(c, agg, version, hard)
    check(r["type"] == "aggregate_deleted" and list(r) == DELETED and r["aggregate_id"] == agg, r)
    return r


def fill(c, *aggs):
    """One event per item, data {"n": i}; their sequences."""
    out = []
    for i, agg in enumerate(aggs):
        r = append(c, agg, data={"n": i, "secret": f"marker-{agg}-{i}"})
        check(r["type"] == "appended", r)
        out.append(r["sequence_number"])
    return out


def read(c, agg, **kw):
    r = c.call({"type": "read", "aggregate_id": agg, **kw})
    check(r["type"] == "events", r)
    return r


def read_all(c, **kw):
    r = c.call({"type": "read_all", **kw})
    check(r["type"] == "events", r)
    return r


def seqs(r):
    return [e["sequence_number"] for e in r["events"]]


def refused(r, code, what=""):
    check(r["type"] == "error" and r["code"] == code and r["text"], (what, r))


def t_soft(enc):
    """A soft delete appends $deleted at W and removes every earlier event and
    snapshot: read, read_all (filtered or not), replay, get_state and
    get_snapshot see none of them; the aggregate takes appends from W + 1."""
    with broker() as d:
        c = Client(d.commands, enc)
        x1, y1, x2, x3 = fill(c, "x-1", "y-1", "x-1", "x-1")
        check(c.call({"type": "create_snapshot", "aggregate_id": "x-1"})["type"]
              == "snapshot_created")
        r = deleted(c, "x-1", 3)
        check(r["version"] == 4 and r["sequence_number"] == x3 + 1, r)
        s = r["sequence_number"]
        got = read(c, "x-1")
        check(got["version"] == 4 and len(got["events"]) == 1, got)
        e = got["events"][0]
        check(e["event_type"] == "$deleted" and e["version"] == 4 and e["sequence_number"] == s
              and e["event_data"] == {"hard": False, "through_version": 3}
              and e["metadata"] == {} and UUID.match(e["event_id"])
              and RFC3339.match(e["recorded_at"]), e)
        check(seqs(read(c, "x-1", from_version=2)) == [s], "from inside the removed range")
        check(seqs(read(c, "x-1", direction="backward")) == [s])
        check(seqs(read(c, "x-1", direction="backward", from_version=3)) == [],
              "backward from a removed version: nothing at or below it")
        check(seqs(read_all(c)) == [y1, s])
        check(seqs(read_all(c, prefix="x-")) == [s])
        check(seqs(read_all(c, event_types=["Happened"])) == [y1])
        r = read_all(c, from_sequence=x2, max_count=1)
        check(seqs(r) == [s] and r["next_sequence"] == s + 1, ("holes are skipped", r))
        refused(c.call({"type": "get_snapshot", "aggregate_id": "x-1"}), 20, "snapshot removed")
        r = c.call({"type": "replay", "aggregate_id": "x-1"})
        check(r["state"] == {} and r["version"] == 4 and r["events_replayed"] == 1, r)
        r = c.call({"type": "get_state", "aggregate_id": "x-1",
                    "timestamp": "2999-01-01T00:00:00Z"})
        check(r["state"] == {} and r["version"] == 4, r)
        st = c.call({"type": "status"})
        check(st["events"] == 2 and st["head_sequence"] == s and st["snapshots"] == 0, st)
        # soft: appends go on from W + 1; the fold starts again from {} at $deleted
        r = append(c, "x-1", version=4, data={"b": 1})
        check(r["type"] == "appended", r)
        r = c.call({"type": "replay", "aggregate_id": "x-1"})
        check(r["state"] == {"b": 1} and r["version"] == 5, r)
        check(c.call({"type": "replay", "aggregate_id": "y-1"})["state"]["secret"]
              == "marker-y-1-1", "other aggregates keep their events")


def t_hard(enc):
    """A hard delete is a delete after which every append or delete of the
    aggregate is error 21, with nothing written; reads still answer."""
    with broker() as d:
        c = Client(d.commands, enc)
        fill(c, "h-1", "h-1")
        r = deleted(c, "h-1", "exists", hard=True)
        check(r["version"] == 3, r)
        e = read(c, "h-1")["events"]
        check(len(e) == 1 and e[0]["event_data"] == {"hard": True, "through_version": 2}, e)
        head = c.call({"type": "status"})["head_sequence"]
        refused(append(c, "h-1"), 21, "append after a hard delete")
        refused(append(c, "h-1", version=3), 21, "even at the right version")
        refused(delete(c, "h-1", "any"), 21, "delete after a hard delete")
        refused(delete(c, "h-1", "any", hard=True), 21)
        check(c.call({"type": "status"})["head_sequence"] == head, "nothing written")
        check(read(c, "h-1")["version"] == 3)
        # a hard delete of an aggregate that never had events reserves its id
        r = deleted(c, "never-1", 0, hard=True)
        check(r["version"] == 1, r)
        refused(append(c, "never-1", version=1), 21)


def t_version_check(enc):
    """delete_aggregate's version is append's: a mismatch is a
    concurrency_error and nothing is written or removed."""
    with broker() as d:
        c = Client(d.commands, enc)
        fill(c, "v-1", "v-1")
        r = delete(c, "v-1", 1)
        check(r["type"] == "concurrency_error" and r["error"] == "Expected version 1, got 2"
              and r["actual_version"] == 2, r)
        r = delete(c, "empty-1", "exists")
        check(r["type"] == "concurrency_error" and r["error"] == "Expected version exists, got 0",
              r)
        check(len(read(c, "v-1")["events"]) == 2 and read(c, "empty-1")["version"] == 0)
        check(c.call({"type": "status"})["head_sequence"] == 2)
        check(deleted(c, "v-1", "any")["version"] == 3)
        check(deleted(c, "v-1", 3)["version"] == 4, "a second soft delete")
        e = read(c, "v-1")["events"]
        check([x["event_data"]["through_version"] for x in e] == [3], e)


def t_retry(enc):
    """A delete_aggregate with an event_id, sent again, is answered as the
    first time and writes nothing (annal's own field: docs/protocol.md)."""
    with broker() as d:
        c = Client(d.commands, enc)
        fill(c, "t-1", "t-1")
        body = {"type": "delete_aggregate", "aggregate_id": "t-1", "version": 2,
                "event_id": "01a2b000-0000-7000-8000-00000000abcd"}
        first = c.call(body)
        check(first["type"] == "aggregate_deleted" and first["version"] == 3, first)
        fill(c, "t-1")
        again = c.call(body)
        check(again["type"] == "aggregate_deleted"
              and (again["version"], again["sequence_number"])
              == (first["version"], first["sequence_number"]), (first, again))
        e = read(c, "t-1")["events"]
        check([x["version"] for x in e] == [3, 4] and e[0]["event_id"] == body["event_id"], e)
        r = c.call(dict(body, aggregate_id="other-1", version="any"))
        refused(r, 12, "the id is another aggregate's")
        refused(c.call(dict(body, event_id="not-a-uuid")), 12)


def t_bad(enc):
    """Bad delete and retention requests are error 12, with nothing written."""
    with broker() as d:
        c = Client(d.commands, enc)
        fill(c, "b-1")
        for body in ({"type": "delete_aggregate", "aggregate_id": "b-1"},
                     {"type": "delete_aggregate", "aggregate_id": "b-1", "version": -1},
                     {"type": "delete_aggregate", "aggregate_id": "b-1", "version": "all"},
                     {"type": "delete_aggregate", "aggregate_id": "b-1", "version": 1,
                      "hard": "yes"},
                     {"type": "delete_aggregate", "aggregate_id": "$b", "version": "any"},
                     {"type": "delete_aggregate", "version": "any"},
                     {"type": "set_retention", "aggregate_id": "b-1", "max_count": 0},
                     {"type": "set_retention", "aggregate_id": "b-1", "max_age_s": "1d"},
                     {"type": "append", "aggregate_id": "b-1", "event_type": "$deleted",
                      "event_data": {}, "version": "any"}):
            refused(c.call(body), 12, body)
        check(len(read(c, "b-1")["events"]) == 1)


def t_groups(enc):
    """A $deleted event is a group event like any; a removed one leaves the
    group as if acked (tests/test_groups.py removed_events has more)."""
    with broker() as d:
        c = Client(d.commands, enc)
        x1, x2 = fill(c, "x-1", "x-1")
        r = c.call({"type": "group_create", "group": "g"})
        check(r["type"] == "group_created", r)
        s = deleted(c, "x-1", "any")["sequence_number"]
        r = c.call({"type": "group_fetch", "group": "g", "consumer": "w"})
        check([e["sequence_number"] for e in r["events"]] == [s], r)


def t_survives_kill():
    """A removal acknowledged is a removal after a SIGKILL right after its
    reply: reads skip the removed events, the sweep (done or not before the
    kill) has freed them soon after the restart, and a hard delete holds."""
    store = new_store()
    try:
        d = Annald(data=store)
        try:
            c = Client(d.commands, "msgpack")
            fill(c, *["k-1"] * 50, "k-2", "k-2")
            deleted(c, "k-1", 50)
            deleted(c, "k-2", 2, hard=True)
            d.stop(signal.SIGKILL)
        finally:
            d.cleanup()
        d = Annald(data=store)
        try:
            c = Client(d.commands, "json")
            check([e["version"] for e in read(c, "k-1")["events"]] == [51])
            check(seqs(read_all(c)) == [53, 54], read_all(c))
            refused(append(c, "k-2"), 21)
            deadline = time.monotonic() + 10
            while c.call({"type": "status"})["events"] != 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            check(c.call({"type": "status"})["events"] == 2)
            check(d.stop() == 0, d.stderr())
        finally:
            d.cleanup()
        if not PG:
            # the sweep freed them: the events database holds two records
            out = subprocess.run(["mdb_stat", "-s", "events", store], capture_output=True,
                                 text=True)
            if out.returncode == 0:
                check("Entries: 2" in out.stdout, out.stdout)
            else:
                print("  (mdb_stat not found: the sweep's count not checked on disk)")
    finally:
        if not PG:
            shutil.rmtree(store, ignore_errors=True)


def t_kill_mid_sweep():
    """A SIGKILL while the sweep frees a big removal: after the restart no
    removed event is read, the sweep goes on from where it was, and the
    events kept are all there."""
    store = new_store()
    try:
        d = Annald(data=store)
        try:
            c = Client(d.commands, "msgpack")
            for _ in range(20):
                r = c.call({"type": "append", "aggregate_id": "big-1", "version": "any",
                            "events": [{"event_type": "T", "event_data": {"p": "x" * 100}}
                                       for _ in range(1000)]})
                check(r["type"] == "appended", r)
            kept = fill(c, "keep-1", "keep-2")
            s = deleted(c, "big-1", "any")["sequence_number"]
            time.sleep(0.05)  # the sweep under way (LMDB: 500 events a step)
            d.stop(signal.SIGKILL)
        finally:
            d.cleanup()
        d = Annald(data=store)
        try:
            c = Client(d.commands, "json")
            check(seqs(read_all(c, max_count=10)) == kept + [s])
            check([e["version"] for e in read(c, "big-1")["events"]] == [20001])
            check(c.call({"type": "status"})["events"] == 3, "status counts what is readable")
            t0 = time.monotonic()
            while not PG:  # the sweep goes on: data.mdb (checkpointed) holds 3 events
                out = subprocess.run(["mdb_stat", "-s", "events", store], capture_output=True,
                                     text=True)
                if out.returncode != 0 or "Entries: 3\n" in out.stdout:
                    break
                check(time.monotonic() - t0 < 15, ("swept", out.stdout))
                time.sleep(0.2)
            check(d.stop() == 0, d.stderr())
        finally:
            d.cleanup()
    finally:
        if not PG:
            shutil.rmtree(store, ignore_errors=True)


def t_sweep_many():
    """A removal of many events is swept in steps while appends go on: every
    append is answered, and the removed ones are freed within 10 s."""
    with broker() as d:
        c = Client(d.commands, "msgpack")
        for _ in range(20):
            r = c.call({"type": "append", "aggregate_id": "m-1", "version": "any",
                        "events": [{"event_type": "T", "event_data": {"i": i}}
                                   for i in range(1000)]})
            check(r["type"] == "appended", r)
        t0 = time.monotonic()
        deleted(c, "m-1", 20000)
        n = 0
        while c.call({"type": "status"})["events"] != 1 + n:
            check(append(c, "other-1")["type"] == "appended")
            n += 1
            check(time.monotonic() - t0 < 10, "not swept within 10 s")
        check(c.call({"type": "status"})["events"] == 1 + n)
        check(seqs(read_all(c, max_count=5)) == [20001] + list(range(20002, 20002 + min(n, 4))))


RETENTION = ["type", "in_reply_to", "aggregate_id", "max_count", "max_age_s"]


def retention(c, agg, kind="set_retention", **limits):
    r = c.call({"type": kind, "aggregate_id": agg, **limits})
    want = "retention_set" if kind == "set_retention" else "retention"
    check(r["type"] == want and list(r) == RETENTION and r["aggregate_id"] == agg, r)
    return r


def versions(c, agg, **kw):
    return [e["version"] for e in read(c, agg, **kw)["events"]]


def t_retention_count(enc):
    """max_count: from the reply on only the last N events of the aggregate
    are read, by every read, as appends go on; snapshots stay; replay folds
    what is left; the sweep frees the rest."""
    with broker() as d:
        c = Client(d.commands, enc)
        for i in range(10):
            append(c, "r-1", data={"n": i, f"k{i}": True})
        o1 = fill(c, "o-1")[0]
        check(c.call({"type": "create_snapshot", "aggregate_id": "r-1"})["type"]
              == "snapshot_created")
        r = retention(c, "r-1", kind="get_retention")
        check(r["max_count"] is None and r["max_age_s"] is None, r)
        r = retention(c, "r-1", max_count=3)
        check(r["max_count"] == 3 and r["max_age_s"] is None, r)
        check(retention(c, "r-1", kind="get_retention") == dict(r, type="retention",
                                                              in_reply_to=r["in_reply_to"] + 1))
        check(versions(c, "r-1") == [8, 9, 10] and versions(c, "r-1", from_version=2) == [8, 9, 10])
        check(versions(c, "r-1", direction="backward") == [10, 9, 8])
        check(versions(c, "r-1", direction="backward", from_version=7) == [])
        check(seqs(read_all(c)) == [8, 9, 10, o1])
        r = c.call({"type": "replay", "aggregate_id": "r-1"})
        check(r["version"] == 10 and r["events_replayed"] == 3 and "k0" not in r["state"]
              and r["state"]["k9"] and r["state"]["n"] == 9, r)
        r = c.call({"type": "replay", "aggregate_id": "r-1", "use_snapshot": True})
        check(r["snapshot_version"] == 10 and r["state"]["k0"], ("snapshots stay", r))
        check(c.call({"type": "status"})["events"] == 4)
        append(c, "r-1")
        append(c, "r-1")
        check(versions(c, "r-1") == [10, 11, 12], "as appends go on")
        check(c.call({"type": "status"})["events"] == 4)
        time.sleep(1.5)  # the sweep has freed them: the same answers
        check(versions(c, "r-1") == [10, 11, 12] and c.call({"type": "status"})["events"] == 4)


def t_retention_age(enc):
    """max_age_s: events recorded that long ago are removed, but the newest;
    a policy dropped (null) keeps removed what it removed."""
    with broker() as d:
        c = Client(d.commands, enc)
        fill(c, "a-1", "a-1", "a-1")
        retention(c, "a-1", max_age_s=1)
        check(versions(c, "a-1") == [1, 2, 3], "not a second old yet")
        time.sleep(1.2)
        append(c, "a-1")
        check(versions(c, "a-1") == [4] and seqs(read_all(c)) == [4])
        time.sleep(1.2)
        check(versions(c, "a-1") == [4], "the newest is always kept")
        fill(c, "a-1")
        r = retention(c, "a-1", max_age_s=None)
        check(r["max_count"] is None and r["max_age_s"] is None, r)
        check(versions(c, "a-1") == [5], "removed stays removed")
        time.sleep(1.2)
        fill(c, "a-1")
        check(versions(c, "a-1") == [5, 6], "no policy: nothing more removed")


def marked_files(folder, marker):
    """The files under folder that hold marker, with how many times."""
    found = {}
    for root, _, files in os.walk(folder):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                n = fh.read().count(marker)
            if n:
                found[os.path.relpath(os.path.join(root, f), folder)] = n
    return found


def t_gone():
    """Removed means gone (LMDB): after the sweep and a checkpoint, no file
    of the store and no backup holds a byte of a removed event's data, with
    annald running, after more writes, and after a restart."""
    if PG:
        print("  (PostgreSQL: its files are PostgreSQL's; see the README's Deleting data)")
        return
    store, copy = new_store(), tempfile.mkdtemp(prefix="annal-gone-")
    marker = b"GONE-MARKER-7f3a"
    try:
        d = Annald(data=store)
        try:
            c = Client(d.commands, "msgpack")
            for i in range(300):
                append(c, "p-1", data={"secret": marker.decode() + f"-{i}", "pad": "x" * 300})
                append(c, "keep-1", data={"pad": "y" * 300, "i": i})
            check(c.call({"type": "create_snapshot", "aggregate_id": "p-1"})["type"]
                  == "snapshot_created")
            check(sum(marked_files(store, marker).values()) > 0, "the marker is written")
            deleted(c, "p-1", "any")
            t0 = time.monotonic()
            while c.call({"type": "status"})["events"] != 301:
                check(time.monotonic() - t0 < 10, "swept within 10 s")
                time.sleep(0.1)
            append(c, "keep-1")  # a batch after the sweep: the next checkpoint is due
            time.sleep(2.5)      # a checkpoint (at most a second after a batch) and its scrub
            out = subprocess.run([os.path.join(BIN, "annal-admin"), "backup", "--data", store,
                                  os.path.join(copy, "b")], capture_output=True, text=True)
            check(out.returncode == 0, out.stderr)
            check(marked_files(copy, marker) == {}, marked_files(copy, marker))
            check(marked_files(store, marker) == {}, ("running", marked_files(store, marker)))
            for i in range(200):  # more writes: new pages, none with removed bytes
                append(c, "keep-1", data={"pad": "z" * 300, "i": i})
            time.sleep(1.5)
            check(marked_files(store, marker) == {}, ("written", marked_files(store, marker)))
            check(d.stop() == 0, d.stderr())
        finally:
            d.cleanup()
        d = Annald(data=store)  # opening checkpoints, and scrubs what is left
        try:
            check(d.stop() == 0, d.stderr())
        finally:
            d.cleanup()
        check(marked_files(store, marker) == {}, marked_files(store, marker))
        d = Annald(data=os.path.join(copy, "b"))  # the backup serves what was kept
        try:
            c = Client(d.commands)
            check(c.call({"type": "status"})["events"] == 302)  # as of the backup
            check(d.stop() == 0, d.stderr())
        finally:
            d.cleanup()
    finally:
        shutil.rmtree(store, ignore_errors=True)
        shutil.rmtree(copy, ignore_errors=True)


def admin(*args):
    p = subprocess.run([os.path.join(BIN, "annal-admin"), *args], capture_output=True, text=True,
                       timeout=120)
    return p.returncode, p.stdout, p.stderr


def t_compact_pg():
    """On PostgreSQL, annal-admin compact is VACUUM FULL, with annald running:
    the table's new file holds no byte of the removed events (its old one
    held them all), and the events kept are served as before."""
    store = new_store()
    marker = b"PG-GONE-MARKER"
    d = Annald(data=store)
    try:
        c = Client(d.commands, "msgpack")
        for i in range(200):
            append(c, "p-1", data={"secret": marker.decode() + f"-{i}", "pad": "x" * 300})
            append(c, "k-1", data={"pad": "y" * 300})
        deleted(c, "p-1", "any")

        def table_markers():
            subprocess.run(["psql", store, "-qc", "CHECKPOINT"], check=True)
            rel = subprocess.run(["psql", store, "-Atc",
                                  "SELECT pg_relation_filepath('annal_events')"],
                                 capture_output=True, text=True, check=True).stdout.strip()
            path = os.path.join(os.environ["ANNAL_TEST_PG_DIR"], "data", rel)
            return subprocess.run(["cat", path], capture_output=True, check=True).stdout.count(
                marker)
        check(table_markers() == 200, "PostgreSQL keeps the dead rows' bytes")
        rc, out, err = admin("compact", "--data", store)
        check(rc == 0 and out.startswith("compacted "), (rc, out, err))
        check(table_markers() == 0, "VACUUM FULL left none")
        st = c.call({"type": "status"})
        check(st["events"] == 201, st)
        check(versions(c, "k-1")[-1] == 200 and append(c, "k-1")["type"] == "appended")
        check(d.stop() == 0, d.stderr())
    finally:
        d.cleanup()


def t_compact():
    """annal-admin compact gives the space of removed events back to the file
    system, refused while annald serves the store; the store is served as it
    was afterwards."""
    if PG:
        t_compact_pg()
        return
    store = new_store()
    try:
        d = Annald(data=store)
        try:
            c = Client(d.commands, "msgpack")
            for _ in range(20):
                r = c.call({"type": "append", "aggregate_id": "big-1", "version": "any",
                            "events": [{"event_type": "T", "event_data": {"pad": "x" * 500}}
                                       for _ in range(1000)]})
                check(r["type"] == "appended", r)
            fill(c, "keep-1", "keep-1")
            deleted(c, "big-1", "any")
            time.sleep(2)
            rc, _, err = admin("compact", "--data", store)
            check(rc == 1 and "in use by another annal process" in err, ("refused", rc, err))
            check(d.stop() == 0, d.stderr())
        finally:
            d.cleanup()
        size = os.path.getsize(os.path.join(store, "data.mdb"))
        rc, out, err = admin("compact", "--data", store)
        check(rc == 0 and out.startswith("compacted "), (rc, out, err))
        now = os.path.getsize(os.path.join(store, "data.mdb"))
        check(now * 4 < size, ("the space went back", size, now))
        check(os.path.getsize(os.path.join(store, "annal.journal")) == 0)
        d = Annald(data=store)
        try:
            c = Client(d.commands)
            st = c.call({"type": "status"})
            check(st["events"] == 3 and st["head_sequence"] == 20003, st)
            check(versions(c, "keep-1") == [1, 2] and versions(c, "big-1") == [20001])
            check(append(c, "keep-1", version=2)["type"] == "appended")
            check(d.stop() == 0, d.stderr())
        finally:
            d.cleanup()
        rc, _, err = admin("compact")
        check(rc == 2 and "usage: annal-admin compact" in err, (rc, err))
        rc, _, err = admin("compact", "--data", store + "-none")
        check(rc == 1 and "not an annal store" in err, (rc, err))
    finally:
        if not PG:
            shutil.rmtree(store, ignore_errors=True)


def each_encoding(name, fn):
    return [(f"{name}.{enc}", functools.partial(fn, enc)) for enc in ("json", "msgpack")]


def served():
    with broker() as d:
        r = Client(d.commands).call({"type": "delete_aggregate", "aggregate_id": "p",
                                     "version": "any"})
    return not (r["type"] == "error" and r["code"] == 10)


def retains():
    with broker() as d:
        r = Client(d.commands).call({"type": "get_retention", "aggregate_id": "p"})
    return not (r["type"] == "error" and r["code"] == 10)


if not served():
    print("skipped: this store does not serve delete_aggregate yet")
    raise SystemExit(77)
RETAINS = retains()
if not RETAINS:
    print("retention_*: skipped, this store does not serve set_retention yet")
run([
    *each_encoding("soft", t_soft),
    *each_encoding("hard", t_hard),
    *each_encoding("version_check", t_version_check),
    *each_encoding("bad", t_bad),
    *each_encoding("retry", t_retry),
    *each_encoding("groups", t_groups),
    ("survives_kill", t_survives_kill),
    ("sweep_many", t_sweep_many),
    ("kill_mid_sweep", t_kill_mid_sweep),
    ("gone", t_gone),
    ("compact", t_compact),
    *(each_encoding("retention_count", t_retention_count) if RETAINS else []),
    *(each_encoding("retention_age", t_retention_age) if RETAINS else []),
])
