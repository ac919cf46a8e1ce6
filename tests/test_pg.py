"""Several annald brokers on one PostgreSQL database (run under
tests/pg_cluster.sh): they start together on an empty database, optimistic
concurrency holds across them, and the global sequence stays dense and in
commit order, which a reader on another broker checks while they write."""
import os
import re
import subprocess
import threading
import time
import uuid

from annal_harness import PG, Annald, Client, brokers, check, new_store, run, stop_all


def t_start_together():
    store = new_store()
    procs = brokers(3, store)
    try:
        for d in procs:
            r = Client(d.commands).call({"type": "status"})
            check(r["type"] == "status_ok" and r["store"] == "postgresql", r)
    finally:
        stop_all(procs)


def t_one_winner():
    """Brokers appending to one aggregate at the same expected version:
    exactly one succeeds each round, the others get concurrency_error."""
    procs = brokers(3, new_store())
    try:
        clients = [Client(d.commands, "msgpack") for d in procs]
        for version in range(30):
            replies = [None] * len(clients)

            def go(i):
                replies[i] = clients[i].call(
                    {"type": "append", "aggregate_id": "race-1", "event_type": "T",
                     "event_data": {"by": i}, "version": version})
            threads = [threading.Thread(target=go, args=(i,)) for i in range(len(clients))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            kinds = sorted(r["type"] for r in replies)
            check(kinds == ["appended", "concurrency_error", "concurrency_error"], replies)
            for r in replies:
                if r["type"] == "concurrency_error":
                    check(r["error"] == f"Expected version {version}, got {version + 1}", r)
        r = clients[0].call({"type": "read", "aggregate_id": "race-1"})
        check([e["version"] for e in r["events"]] == list(range(1, 31)), r)
    finally:
        stop_all(procs)


def t_global_order():
    """Writers on two brokers, a reader on a third: every page the reader
    gets continues exactly where the last one ended (no gap that fills in
    later), and the log ends dense with every acknowledged event."""
    procs = brokers(3, new_store())
    acked, lock, done = {}, threading.Lock(), threading.Event()
    problems = []

    def writer(d, w):
        c = Client(d.commands, "msgpack")
        for i in range(150):
            eid = str(uuid.uuid4())
            events = [{"event_type": "T", "event_data": {"w": w, "i": i}, "event_id": eid}]
            if i % 5 == 0:  # batches too
                events += [{"event_type": "T", "event_data": {"w": w, "i": i, "k": k},
                            "event_id": str(uuid.uuid4())} for k in range(3)]
            r = c.call({"type": "append", "aggregate_id": f"o-{w}-{i % 4}", "version": "any",
                        "events": events})
            if r["type"] != "appended":
                problems.append(r)
                return
            with lock:
                acked[eid] = r["first_sequence_number"]

    def reader(d):
        c = Client(d.commands, "msgpack")
        nxt = 1
        while not done.is_set() or nxt <= c.call({"type": "status"})["head_sequence"]:
            r = c.call({"type": "read_all", "from_sequence": nxt, "max_count": 50})
            seqs = [e["sequence_number"] for e in r["events"]]
            if seqs != list(range(nxt, nxt + len(seqs))):
                problems.append(("the reader met a gap or a step back", nxt, seqs[:5]))
                return
            nxt += len(seqs)
        reader.seen = nxt - 1

    try:
        threads = [threading.Thread(target=writer, args=(procs[w % 2], w)) for w in range(4)]
        rt = threading.Thread(target=reader, args=(procs[2],))
        rt.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        done.set()
        rt.join(60)
        check(not problems, problems[:3])
        c = Client(procs[2].commands, "msgpack")
        head = c.call({"type": "status"})["head_sequence"]
        check(head == 4 * 150 + 4 * 30 * 3 and reader.seen == head, (head, reader.seen))
        seen = {}
        nxt = 1
        while nxt <= head:
            r = c.call({"type": "read_all", "from_sequence": nxt, "max_count": 1000})
            for e in r["events"]:
                seen[e["event_id"]] = e["sequence_number"]
            nxt = r.get("next_sequence", head + 1)
        check(all(seen.get(eid) == seq for eid, seq in acked.items()),
              "an acknowledged event moved")
        check(sorted(seen.values()) == list(range(1, head + 1)), "gaps")
    finally:
        stop_all(procs)


def t_every_pub():
    """Each broker's PUB carries every committed event, those appended
    through the other brokers too, once each and in sequence order."""
    import msgpack
    import zmq
    from annal_harness import CTX
    procs = brokers(3, new_store())
    subs = []
    try:
        for d in procs:
            sub = CTX.socket(zmq.SUB)
            sub.setsockopt(zmq.SUBSCRIBE, b"")
            sub.connect(d.events)
            subs.append(sub)
        time.sleep(0.5)  # the subscriptions reach PUB

        def writer(d, w):
            c = Client(d.commands, "msgpack")
            for i in range(200):
                events = [{"event_type": "T", "event_data": i}] * (1 + (i % 3 == 0) * 4)
                r = c.call({"type": "append", "aggregate_id": f"p-{w}", "version": "any",
                            "events": events})
                check(r["type"] == "appended", r)
        threads = [threading.Thread(target=writer, args=(procs[w % 3], w)) for w in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        head = Client(procs[0].commands).call({"type": "status"})["head_sequence"]
        check(head == 3 * (200 + 67 * 4), head)
        for b, sub in enumerate(subs):
            seqs, deadline = [], time.time() + 15  # $head comes every second: a deadline
            while len(seqs) < head and time.time() < deadline:
                if not sub.poll(1000):
                    continue
                topic, body = sub.recv_multipart()
                if topic != b"$head":
                    seqs.append(msgpack.unpackb(body, raw=False)["sequence_number"])
            check(seqs == list(range(1, head + 1)),
                  (b, len(seqs), [x for i, x in enumerate(seqs) if x != i + 1][:5]))
    finally:
        for sub in subs:
            sub.close(0)
        stop_all(procs)


def t_like_lmdb():
    """Bursts of mixed requests (appends right, stale and of every expect
    kind; retries, in the same batch too; repeated ids; reads between
    them), sent without waiting so that the broker batches many appends
    together (the PostgreSQL fast path): every reply as on LMDB."""
    import random
    import tempfile
    rng = random.Random(7)
    # names that array literals and COPY rows must quote or escape
    aggs = [f"f-{i}" for i in range(6)] + ["b\\c", "q\"x", "{br,}", "c,d", "NULL", "tr\\",
                                          "dé\x7f"]
    sent_ids, bursts = [], []
    for _ in range(40):
        burst = []
        for _ in range(rng.randint(4, 60)):
            agg, kind = rng.choice(aggs), rng.random()
            if kind < 0.1:
                burst.append({"type": "read", "aggregate_id": agg})
                continue
            if kind < 0.2:
                body = {"type": "read_all", "from_sequence": rng.randint(0, 60)}
                if rng.random() < 0.5:
                    body["max_count"] = rng.randint(1, 20)
                if rng.random() < 0.3:
                    body["prefix"] = rng.choice(["f-1", "f-", "g"])
                if rng.random() < 0.3:
                    body["event_types"] = rng.choice([["T"], ["X"], ["X", "T"]])
                burst.append(body)
                continue
            version = rng.choice(["any", "any", "exists", 0, 1, 2, 3, 5, 8, 13])
            n = rng.choice([1, 1, 1, 2, 3])
            events = []
            for k in range(n):
                ev = {"event_type": "T", "event_data": {"k": k, "r": rng.random()}}
                r = rng.random()
                if r < 0.5:
                    ev["event_id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                    sent_ids.append(ev["event_id"])
                elif r < 0.6 and sent_ids:
                    ev["event_id"] = rng.choice(sent_ids[-40:])  # a retry, or a misuse
                events.append(ev)
            if n > 1 and rng.random() < 0.05:
                events[1] = dict(events[1], event_id=events[0].get("event_id") or
                                 str(uuid.UUID(int=rng.getrandbits(128), version=4)))
            burst.append({"type": "append", "aggregate_id": agg, "version": version,
                          "events": events})
        bursts.append(burst)
    # an id noted by a refused append, then stored by annal_append with a
    # new one, which a third append names
    ab, ad = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(2)]
    d = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    sent_ids += [ab, ad, d]
    ev = [{"event_type": "T", "event_data": {}, "event_id": i} for i in (ab, ad, d)]
    bursts.insert(0, [{"type": "append", "aggregate_id": "f-0", "version": 99,
                       "events": [ev[0], ev[1]]},
                      {"type": "append", "aggregate_id": "f-0", "version": "any",
                       "events": [ev[0], ev[2]]},
                      {"type": "append", "aggregate_id": "f-1", "version": "any",
                       "events": [ev[2]]},
                      {"type": "append", "aggregate_id": "f-2", "version": "any",
                       "events": [{"event_type": "T", "event_data": {}}]}])
    client_ids = set(sent_ids)

    def normal(v, names):
        """recorded_at and generated ids replaced by stand-ins."""
        if isinstance(v, dict):
            return {k: "T" if k == "recorded_at" else normal(x, names) for k, x in v.items()}
        if isinstance(v, list):
            return [normal(x, names) for x in v]
        if isinstance(v, str) and len(v) == 36 and v.count("-") == 4 and v not in client_ids:
            return names.setdefault(v, f"generated-{len(names)}")
        return v

    def play(d):
        c, names, out = Client(d.commands, "msgpack"), {}, []
        for burst in bursts:
            ids = [c.send(body) for body in burst]
            replies = {}
            for _ in ids:
                r = c.recv()
                replies[r["in_reply_to"]] = r
            out += [normal(replies[i], names) for i in ids]
        return out

    folder = tempfile.mkdtemp(prefix="annal-it-")
    a, b = Annald(data=folder), Annald()
    try:
        ra, rb = play(a), play(b)
        kinds = {r["type"] for r in ra}
        check({"appended", "concurrency_error", "error", "events"} <= kinds, kinds)
        for i, (x, y) in enumerate(zip(ra, rb)):
            check(x == y, (i, x, y))
    finally:
        for d in (a, b):
            check(d.stop() == 0, d.stderr())
            d.cleanup()
        import shutil
        shutil.rmtree(folder, ignore_errors=True)


def t_snapshot_and_append():
    """Batches that write a snapshot and append, in opposite orders, on two
    brokers at once: every request succeeds (no deadlock between them)."""
    procs = brokers(2, new_store())
    problems = []
    try:
        c = Client(procs[0].commands, "msgpack")
        for i in range(3):
            check(c.call({"type": "append", "aggregate_id": "s-1", "event_type": "T",
                          "event_data": {"i": i}, "version": "any"})["type"] == "appended")
        snap = {"type": "create_snapshot", "aggregate_id": "s-1"}
        add = {"type": "append", "aggregate_id": "s-2", "event_type": "T", "event_data": {},
               "version": "any"}
        clients = [Client(d.commands, "msgpack") for d in procs]
        barrier = threading.Barrier(2)

        def go(i, rounds=60):
            c = clients[i]
            for _ in range(rounds):
                barrier.wait()
                ids = [c.send(b) for b in ([snap, add] if i == 0 else [add, snap])]
                for _ in ids:
                    r = c.recv()
                    if r["type"] not in ("appended", "snapshot_created"):
                        problems.append(r)
        threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check(not problems, problems[:3])
    finally:
        stop_all(procs)


def t_silent_server():
    """A server that accepts connections and never answers: annald gives up
    after 5 s (or the URI's connect_timeout) and says why, not hang."""
    import socket
    from annal_harness import ANNALD
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    port = s.getsockname()[1]
    try:
        for query, limit in (("", 5), ("?connect_timeout=2", 2)):
            start = time.time()
            p = subprocess.run([ANNALD, "--store", f"postgresql://annal@127.0.0.1:{port}/x{query}",
                                "--commands", "tcp://127.0.0.1:*", "--events", "tcp://127.0.0.1:*"],
                               capture_output=True, text=True, timeout=30)
            took = time.time() - start
            check(p.returncode == 1 and "timeout expired" in p.stderr, p.stderr)
            check(limit - 0.5 < took < limit + 3, (query, took))
    finally:
        s.close()


def t_kill_one():
    """One of two brokers SIGKILLed under load (pipelined appends, so that
    batches take the fast path): the other goes on serving, and its PUB
    carries every committed event once, in order, those of the killed
    broker too; the killed one restarts on the same database, and every
    acknowledged event is there once, dense."""
    import signal
    import msgpack
    import zmq
    from annal_harness import CTX
    procs = brokers(2, new_store())
    acked, lock, stop = {}, threading.Lock(), threading.Event()
    sub = CTX.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(procs[1].events)
    time.sleep(0.5)  # the subscription reaches PUB

    def writer(d, w):
        c = Client(d.commands, "msgpack", timeout=2000)
        i = 0
        while not stop.is_set():
            sent = {}
            for _ in range(8):
                eid = str(uuid.uuid4())
                sent[c.send({"type": "append", "aggregate_id": f"k-{w}", "event_type": "T",
                             "event_data": i, "version": "any", "event_id": eid})] = eid
                i += 1
            try:
                for _ in sent:
                    r = c.recv()
                    if r["type"] == "appended":
                        with lock:
                            acked[sent[r["in_reply_to"]]] = r["sequence_number"]
            except Exception:  # the killed broker does not answer
                return

    try:
        threads = [threading.Thread(target=writer, args=(procs[w % 2], w)) for w in range(4)]
        for t in threads:
            t.start()
        time.sleep(1)
        procs[0].proc.send_signal(signal.SIGKILL)
        procs[0].proc.wait(10)
        time.sleep(1)
        with lock:
            before = len(acked)
        time.sleep(1)
        with lock:
            check(len(acked) > before, "the other broker stopped serving")
        stop.set()
        for t in threads:
            t.join(30)
        procs[0].cleanup()
        procs[0] = Annald(data=procs[1].data)
        c = Client(procs[0].commands, "msgpack")
        head = c.call({"type": "status"})["head_sequence"]
        seen, nxt = {}, 1
        while nxt <= head:
            r = c.call({"type": "read_all", "from_sequence": nxt, "max_count": 5000})
            seen.update({e["event_id"]: e["sequence_number"] for e in r["events"]})
            nxt = r.get("next_sequence", head + 1)
        check(sorted(seen.values()) == list(range(1, head + 1)), "gaps")
        check(all(seen.get(e) == q for e, q in acked.items()), "an acknowledged event is missing")
        pubs, deadline = [], time.time() + 15  # $head comes every second: a deadline
        while len(pubs) < head and time.time() < deadline:
            if sub.poll(1000):
                topic, body = sub.recv_multipart()
                if topic != b"$head":
                    ev = msgpack.unpackb(body, raw=False)
                    pubs.append((ev["sequence_number"], ev["event_id"]))
        by_seq = {q: e for e, q in seen.items()}
        check([q for q, _ in pubs] == list(range(1, head + 1)),
              ("the survivor's PUB", len(pubs), head,
               [x for i, (x, _) in enumerate(pubs) if x != i + 1][:5]))
        check(all(by_seq[q] == e for q, e in pubs), "PUB and the log disagree")
    finally:
        stop.set()
        sub.close(0)
        stop_all(procs)


def t_one_snapshot_per_reply():
    """A reader on one broker while others write through another: each
    reply's events never go past the head or version it reports (its
    statements once came from two snapshots: 339 of 2,600 replies)."""
    procs = brokers(2, new_store())
    stop = threading.Event()

    def writer():
        c = Client(procs[0].commands, "msgpack")
        while not stop.is_set():
            c.call({"type": "append", "aggregate_id": "s-1", "event_type": "T",
                    "event_data": 1, "version": "any"})
    threads = [threading.Thread(target=writer) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        c, bad, replies = Client(procs[1].commands), [], 0
        end = time.time() + 3
        while time.time() < end:
            head = c.call({"type": "status"})["head_sequence"]
            r = c.call({"type": "read_all", "from_sequence": max(1, head - 5), "max_count": 1000})
            if r["events"] and r["events"][-1]["sequence_number"] > r["head_sequence"]:
                bad.append(("read_all", r["events"][-1]["sequence_number"], r["head_sequence"]))
            r = c.call({"type": "read", "aggregate_id": "s-1", "from_version": max(1, head - 5)})
            if r["events"] and r["events"][-1]["version"] > r["version"]:
                bad.append(("read", r["events"][-1]["version"], r["version"]))
            replies += 2
        check(replies > 100 and not bad, (replies, bad[:3]))
    finally:
        stop.set()
        for t in threads:
            t.join()
        stop_all(procs)


def t_lock_timeout():
    """A write that fails waiting for the writers' lock (lock_timeout) is
    answered with an error, and the broker serves again once the lock is
    free (its connection was once left in an aborted transaction)."""
    store = new_store()
    d = Annald(data=store + "&options=-c%20lock_timeout%3D300")
    try:
        c = Client(d.commands)
        check(c.call({"type": "append", "aggregate_id": "l-1", "event_type": "T",
                      "event_data": 1, "version": 0})["type"] == "appended")
        holder = subprocess.Popen(["psql", store, "-qc", "BEGIN; SELECT * FROM annal_head"
                                   " FOR UPDATE; SELECT pg_sleep(2); COMMIT"],
                                  stdout=subprocess.DEVNULL)
        time.sleep(0.5)
        r = c.call({"type": "append", "aggregate_id": "l-1", "event_type": "T",
                    "event_data": 2, "version": 1})
        check(r["type"] == "error" and r["code"] == 11, r)  # a lock timeout: retry later
        holder.wait(20)
        r = c.call({"type": "append", "aggregate_id": "l-1", "event_type": "T",
                    "event_data": 2, "version": 1})
        check(r["type"] == "appended" and r["sequence_number"] == 2, r)
        check(c.call({"type": "status"})["head_sequence"] == 2)
        check(d.stop() == 0, d.stderr())
    finally:
        d.cleanup()


def t_fast_path_refused():
    """A burst that takes the fast path while another session holds a lock
    it needs (lock_timeout 300 ms): annal_events in SHARE mode (its rows
    cannot be written), or annal_head (the writers' lock cannot be taken):
    every append is told nothing was written (11), the read among them is
    answered, and once the lock is gone the same burst is stored whole."""
    for lock in ("LOCK TABLE annal_events IN SHARE MODE",
                 "SELECT * FROM annal_head FOR UPDATE"):
        fast_path_refused(lock)


def fast_path_refused(lock):
    store = new_store()
    d = Annald(data=store + "&options=-c%20lock_timeout%3D300")
    try:
        c = Client(d.commands, "msgpack", timeout=30000)
        check(c.call({"type": "append", "aggregate_id": "w", "event_type": "T", "event_data": 0,
                      "version": "any"})["type"] == "appended")
        reqs = [{"type": "append", "aggregate_id": f"a{i}", "event_type": "T", "event_data": i,
                 "version": 0} for i in range(6)]
        reqs.insert(3, {"type": "read_all", "from_sequence": 1})

        def play():
            ids = [c.send(b) for b in reqs]
            replies = {}
            for _ in ids:
                r = c.recv()
                replies[r["in_reply_to"]] = r
            return [replies[i] for i in ids]
        holder = subprocess.Popen(["psql", store, "-qc", f"BEGIN; {lock};"
                                   " SELECT pg_sleep(3); COMMIT"], stdout=subprocess.DEVNULL)
        time.sleep(0.5)
        got = play()
        for body, r in zip(reqs, got):
            if body["type"] == "read_all":
                check(r["type"] == "events" and len(r["events"]) == 1, (lock, r))
            else:
                check(r["type"] == "error" and r["code"] == 11
                      and "nothing was written" in r["text"], (lock, r))
        holder.wait(20)
        got = play()
        check([r["type"] for r in got] == ["appended"] * 3 + ["events"] + ["appended"] * 3, got)
        check(c.call({"type": "status"})["head_sequence"] == 7)
        check(d.stop() == 0, d.stderr())
    finally:
        d.cleanup()


def t_schema_1():
    """A database at schema 1 (annal_append with p_now, as first shipped; no
    consumer groups, no deletion, no retention) is migrated at start-up, step by step to the newest, and
    served."""
    store = new_store()
    d = Annald(data=store)
    check(d.stop() == 0)
    d.cleanup()
    subprocess.run(["psql", store, "-qc",
                    "DROP FUNCTION annal_append(text, int, bigint, bigint, bigint, uuid[],"
                    " boolean[], text[], bytea[], bytea[]);"
                    " CREATE FUNCTION annal_append(p_agg text, p_expect int, p_expected bigint,"
                    " p_now bigint, p_ids uuid[], p_client boolean[], p_types text[],"
                    " p_data bytea[], p_meta bytea[], OUT status int) LANGUAGE sql"
                    " AS 'SELECT 3';"
                    " DROP TABLE annal_group_leases, annal_group_marks, annal_groups;"
                    " DROP SEQUENCE annal_group_versions;"
                    " ALTER TABLE annal_aggregates DROP COLUMN gone;"
                    " ALTER TABLE annal_head DROP COLUMN removed;"
                    " DROP TABLE annal_retention;"
                    " UPDATE annal_schema SET version = 1"], check=True)
    d = Annald(data=store)
    try:
        r = Client(d.commands).call({"type": "append", "aggregate_id": "m-1", "event_type": "T",
                                     "event_data": 1, "version": 0})
        check(r["type"] == "appended", r)
        out = subprocess.run(["psql", store, "-Atc", "SELECT version FROM annal_schema"],
                             capture_output=True, text=True, check=True)
        check(out.stdout.strip() == "5", out.stdout)
        r = Client(d.commands).call({"type": "group_create", "group": "g"})
        check(r["type"] == "group_created", r)
        check(d.stop() == 0, d.stderr())
    finally:
        d.cleanup()


def pg_ctl(*args):
    """pg_ctl on the throwaway server, as its owner."""
    cmd = [os.path.join(os.environ["ANNAL_TEST_PG_BIN"], "pg_ctl"), "-D",
           os.path.join(os.environ["ANNAL_TEST_PG_DIR"], "data"), *args]
    if os.getuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)


def t_server_restart():
    """PostgreSQL stopped under load: requests get error 11 (nothing else),
    annald connects again once it is back, and every acknowledged event is
    there, dense, with the appends after it."""
    d = Annald()
    try:
        c = Client(d.commands, "msgpack")
        acked, codes, n = {}, set(), 0

        def append():
            nonlocal n
            eid = str(uuid.uuid4())
            r = c.call({"type": "append", "aggregate_id": f"r-{n % 3}", "event_type": "T",
                        "event_data": n, "version": "any", "event_id": eid})
            n += 1
            if r["type"] == "appended":
                acked[eid] = r["sequence_number"]
            else:
                codes.add(r.get("code"))
            return r

        for _ in range(50):
            check(append()["type"] == "appended")
        pg_ctl("-m", "fast", "-w", "stop")
        for _ in range(20):
            r = append()
            check(r["type"] == "error" and r["code"] == 11, r)
        r = c.call({"type": "status"})
        check(r["type"] == "error" and r["code"] == 11, r)
        pg_ctl("-w", "-o", f"-k {os.environ['ANNAL_TEST_PG_DIR']} -c listen_addresses=",
               "-l", os.path.join(os.environ["ANNAL_TEST_PG_DIR"], "log"), "start")
        deadline = time.time() + 20
        while append()["type"] != "appended":
            check(time.time() < deadline, "annald did not come back")
            time.sleep(0.1)
        for _ in range(50):
            check(append()["type"] == "appended")
        check(codes == {11}, codes)
        r = c.call({"type": "read_all", "max_count": 10000})
        seen = {e["event_id"]: e["sequence_number"] for e in r["events"]}
        check(seen == acked, (len(seen), len(acked)))
        check(sorted(seen.values()) == list(range(1, len(seen) + 1)), "gaps")
        check(d.stop() == 0, d.stderr())
    finally:
        d.cleanup()


if not PG:
    print("skipped: run under tests/pg_cluster.sh")
    raise SystemExit(77)
run([
    ("silent_server", t_silent_server),
    ("snapshot_and_append", t_snapshot_and_append),
    ("like_lmdb", t_like_lmdb),
    ("start_together", t_start_together),
    ("one_winner", t_one_winner),
    ("global_order", t_global_order),
    ("every_pub", t_every_pub),
    ("kill_one", t_kill_one),
    ("one_snapshot_per_reply", t_one_snapshot_per_reply),
    ("lock_timeout", t_lock_timeout),
    ("fast_path_refused", t_fast_path_refused),
    ("schema_1", t_schema_1),
    ("server_restart", t_server_restart),
])
