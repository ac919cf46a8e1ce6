"""annald over real sockets: JSON and MessagePack, DEALER and REQ,
pipelining, PUB prefix subscriptions, the heartbeat, every error code,
flags, signals and the data-folder lock."""
import json
import subprocess
import threading
import time

import msgpack
import zmq

from annal_harness import (ANNALD, CTX, PG, RFC3339, UUID, Annald, Client, append, broker,
                           check, run)


def roundtrip(encoding):
    with broker() as d:
        c = Client(d.commands, encoding)
        r = append(c, "user-1", 0, {"name": "John", "tags": ["a", 1, 2.5, None, True]},
                   "UserCreated", metadata={"correlation_id": "c-1"})
        check(r["type"] == "appended" and r["sequence_number"] == 1, r)
        check(UUID.match(r["event_id"]), r)
        check(list(r) == ["type", "in_reply_to", "event_id", "sequence_number"], list(r))
        r2 = append(c, "user-1", 1, {"name": None}, "UserRenamed")
        check(r2["sequence_number"] == 2, r2)
        r = c.call({"type": "read", "aggregate_id": "user-1"})
        check(r["type"] == "events" and r["version"] == 2 and "next_version" not in r, r)
        e = r["events"][0]
        check(list(e) == ["sequence_number", "event_id", "aggregate_id", "version", "event_type",
                          "event_data", "metadata", "recorded_at"], list(e))
        check(e["event_data"] == {"name": "John", "tags": ["a", 1, 2.5, None, True]}, e)
        check(e["metadata"] == {"correlation_id": "c-1"} and RFC3339.match(e["recorded_at"]), e)
        check(r["events"][1]["metadata"] == {}, r)
        r = c.call({"type": "replay", "aggregate_id": "user-1"})
        check(r == {"type": "replayed", "in_reply_to": r["in_reply_to"], "aggregate_id": "user-1",
                    "events_replayed": 2, "state": {"tags": ["a", 1, 2.5, None, True]},
                    "version": 2}, r)
        r = c.call({"type": "status"})
        check(r["type"] == "status_ok" and r["head_sequence"] == 2 and r["events"] == 2
              and r["aggregates"] == 1 and r["store"] == ("postgresql" if PG else "lmdb"), r)
        c.close()


def t_json():
    roundtrip("json")


def t_msgpack():
    roundtrip("msgpack")
    with broker() as d:
        c = Client(d.commands, "msgpack")
        # bin carrying UTF-8 is accepted where a string goes, and comes back a string
        r = c.call({"type": "append", "aggregate_id": b"bin-1", "event_type": b"T",
                    "event_data": {"k": b"v"}, "version": 0})
        check(r["type"] == "appended", r)
        r = c.call({"type": "read", "aggregate_id": "bin-1"})
        check(r["events"][0]["event_data"] == {"k": "v"}, r)
        # a JSON client reads what a MessagePack client wrote
        j = Client(d.commands, "json")
        check(j.call({"type": "read", "aggregate_id": "bin-1"})["events"][0]["event_type"] == "T")


def t_req_socket():
    with broker() as d:
        c = Client(d.commands, "json", kind=zmq.REQ)
        r = append(c, "req-1", 0)
        check(r["type"] == "appended", r)
        r = c.call({"type": "status"})
        check(r["head_sequence"] == 1, r)


def t_pipelined():
    with broker() as d:
        c = Client(d.commands, "msgpack")
        n = 600
        ids = [c.send({"type": "append", "aggregate_id": f"p-{i % 7}", "event_type": "T",
                       "event_data": {"i": i}, "version": "any"}) for i in range(n)]
        replies = {}
        for _ in range(n):
            r = c.recv()
            replies[r["in_reply_to"]] = r
        check(set(replies) == set(ids), "every request answered once")
        seqs = sorted(r["sequence_number"] for r in replies.values())
        check(seqs == list(range(1, n + 1)), "dense sequences")
        # each client's requests are applied in the order sent
        check([replies[i]["sequence_number"] for i in ids] == list(range(1, n + 1)))


def t_many_clients():
    """Concurrent clients with exact expected versions: group commit keeps
    each client's order, every append succeeds."""
    with broker() as d:
        errors = []

        def worker(k):
            c = Client(d.commands, "json" if k % 2 else "msgpack")
            for v in range(40):
                c.send({"type": "append", "aggregate_id": f"w-{k}", "event_type": "T",
                        "event_data": {"v": v}, "version": v})
            for v in range(40):
                r = c.recv()
                if r["type"] != "appended":
                    errors.append(r)
            c.close()

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check(not errors, errors[:3])
        c = Client(d.commands)
        r = c.call({"type": "status"})
        check(r["head_sequence"] == 640 and r["aggregates"] == 16, r)


def subscriber(endpoint, *prefixes):
    s = CTX.socket(zmq.SUB)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, 5000)
    for p in prefixes + ("$head",):
        s.setsockopt(zmq.SUBSCRIBE, p.encode())
    s.connect(endpoint)
    # wait for a heartbeat: the subscription is live from here on
    while True:
        topic, _ = s.recv_multipart()
        if topic == b"$head":
            return s


def collect(sock, decode, count):
    got = []
    while len(got) < count:
        topic, body = sock.recv_multipart()
        if topic != b"$head":
            got.append((topic.decode(), decode(body)))
    return got


def t_pub_prefix():
    with broker() as d:
        users = subscriber(d.events, "user-")
        everyone = subscriber(d.events, "")
        c = Client(d.commands)
        for agg in ["user-1", "order-1", "user-2", "order-1", "user-1"]:
            check(append(c, agg)["type"] == "appended")
        dec = lambda b: msgpack.unpackb(b, raw=False)
        got = collect(users, dec, 3)
        check([t for t, _ in got] == ["user-1", "user-2", "user-1"], got)
        check([e["sequence_number"] for _, e in got] == [1, 3, 5], got)
        check(got[2][1]["version"] == 2 and got[0][1]["event_type"] == "Happened", got)
        alls = collect(everyone, dec, 5)
        check([e["sequence_number"] for _, e in alls] == [1, 2, 3, 4, 5], alls)
        # batches publish each event, in order
        c.call({"type": "append", "aggregate_id": "user-9", "version": 0,
                "events": [{"event_type": "A", "event_data": 1}, {"event_type": "B", "event_data": 2}]})
        got = collect(users, dec, 2)
        check([(e["sequence_number"], e["version"]) for _, e in got] == [(6, 1), (7, 2)], got)
        # an idempotent retry publishes nothing new; the next event is 8
        first = append(c, "user-5", event_id="5f0e7c1a-1111-4222-8333-444455556666")
        again = append(c, "user-5", event_id="5f0e7c1a-1111-4222-8333-444455556666")
        check(first == dict(again, in_reply_to=first["in_reply_to"]), (first, again))
        append(c, "user-6")
        got = collect(users, dec, 2)
        check([e["sequence_number"] for _, e in got] == [8, 9], got)


def t_heartbeat_json():
    with broker("--pub-format", "json") as d:
        s = subscriber(d.events, "")
        c = Client(d.commands)
        append(c, "hb-1")
        t0 = time.time()
        heads = []
        while len(heads) < 2:
            topic, body = s.recv_multipart()
            check(body[:1] == b"{", body)
            msg = json.loads(body)
            if topic == b"$head":
                heads.append(msg)
            else:
                check(msg["aggregate_id"] == "hb-1", msg)
        check(heads[-1] == {"head_sequence": 1}, heads)
        check(time.time() - t0 < 3.5, "two heartbeats in under 3.5 s")


def t_errors():
    with broker("--max-body", "2000") as d:
        c = Client(d.commands)
        append(c, "e-1", 0)
        cases = [
            ({"type": "nope"}, 10),
            ({"type": "append", "aggregate_id": "e-1", "event_type": "T", "event_data": 1}, 12),
            ({"type": "append", "aggregate_id": "$sys", "event_type": "T", "event_data": 1, "version": 0}, 12),
            ({"type": "append", "aggregate_id": "a" * 257, "event_type": "T", "event_data": 1, "version": 0}, 12),
            ({"type": "append", "aggregate_id": "e-1", "event_type": "T", "event_data": 1, "version": 0,
              "event_id": "xyz"}, 12),
            ({"type": "append", "aggregate_id": "e-1", "event_type": "", "event_data": 1, "version": 0}, 12),
            ({"type": "append", "aggregate_id": "e-1", "event_type": "$deleted", "event_data": 1,
              "version": 1}, 12),
            # consumer groups: checked field by field (tests/test_groups.py has the rest)
            ({"type": "group_create", "group": "$g"}, 12),
            ({"type": "group_ack", "group": "g", "consumer": "c", "sequences": [0]}, 12),
            ({"type": "append", "aggregate_id": "e-1", "version": 1,
              "events": [{"event_type": "T", "event_data": 1}, {"event_type": "$x", "event_data": 1}]}, 12),
            ({"type": "append", "aggregate_id": "e-1", "event_type": "T", "event_data": {"x": "y" * 3000},
              "version": 1}, 12),
            ({"type": "get_snapshot", "aggregate_id": "e-1"}, 20),
            ({"type": "replay", "aggregate_id": "e-1", "version": 5}, 20),
            ({"type": "create_snapshot", "aggregate_id": "e-1", "version": 2}, 20),
            ({"type": "get_state", "aggregate_id": "e-1", "timestamp": "noon"}, 12),
            ({"type": "read", "aggregate_id": "e-1", "max_count": -1}, 12),
        ]
        for body, code in cases:
            r = c.call(body)
            check(r["type"] == "error" and r["code"] == code and r["text"], (body, r))
            check(list(r) == ["type", "in_reply_to", "code", "text"], r)
        for raw in [b"", b"\x00", b"[1]", b"{\"type\":", b"\x81\xa4type", b"{\"type\":\"status\"}",
                    b"{\"type\":\"status\",\"msg_id\":\"7\"}", b"\x93\x01\x02\x03"]:
            c.send_raw(raw)
            out = c.sock.recv()  # answered in kind: MessagePack when it looked like a map
            r = msgpack.unpackb(out, raw=False) if raw[:1] == b"\x81" else json.loads(out)
            check(r["type"] == "error" and r["code"] == 12 and r["in_reply_to"] is None, (raw, r))
        m = Client(d.commands, "msgpack")
        m.send_raw(b"\x82\xa4type\xa6status\xa6msg_id\xdd\xff\xff\xff\xff")
        r = m.recv()
        check(r["code"] == 12 and r["in_reply_to"] is None, r)
        r = m.call({"type": "append", "aggregate_id": "e-1", "event_type": "T",
                    "event_data": msgpack.ExtType(1, b"x"), "version": 1})
        check(r["code"] == 12, r)
        # error texts that echo input stay valid UTF-8, whatever the input
        r = c.call({"type": "a" + "\u00e9" * 40})
        check(r["code"] == 10 and r["text"].startswith("unknown type 'a"), r)
        r = m.call({"type": "append", "aggregate_id": "e-1", "event_type": "T", "event_data": 1,
                    "version": 1, "event_id": b"\xff" * 36})
        check(r["code"] == 12 and "UUID" in r["text"], r)
        m.send_raw(b"\x82\xa4type\xa4\xff\xfe\xfd\xfc\xa6msg_id\x05")
        r = msgpack.unpackb(m.sock.recv(), raw=False)  # raises on invalid UTF-8
        check(r["code"] == 10 and r["in_reply_to"] == 5, r)
        # a NUL in a map key would make the event unreadable as JSON
        r = m.call({"type": "append", "aggregate_id": "e-1", "event_type": "T",
                    "event_data": {"a\x00b": 1}, "version": 1})
        check(r["code"] == 12, r)
        # too deep: still answered to its msg_id
        deep = 1
        for _ in range(40):
            deep = [deep]
        for client in (c, m):
            r = client.call({"type": "append", "aggregate_id": "e-1", "event_type": "T",
                             "event_data": deep, "version": 1, "msg_id": 77})
            check(r["code"] == 12 and r["in_reply_to"] == 77, r)
        # stored values nest at most 28 levels, so every reply that carries them stays readable
        for levels, code in ((28, None), (29, 12)):
            value = 1
            for _ in range(levels):
                value = {"a": value}
            r = m.call({"type": "append", "aggregate_id": "deep-1", "event_type": "T",
                        "event_data": value, "version": "any"})
            check(r.get("code") == code, (levels, r))
        r = m.call({"type": "read_all", "prefix": "deep-"})
        check(len(r["events"]) == 1, r)
        r = c.call({"type": "create_snapshot", "aggregate_id": "e-1", "state": {}, "version": 0})
        check(r["code"] == 12, r)
        # an envelope frame too large to be an identity is refused, not echoed
        c.sock.send_multipart([b"x" * 1000, b'{"type":"status","msg_id":3}'])
        r = json.loads(c.sock.recv())
        check(r["code"] == 12, r)
        r = c.call({"type": "append", "aggregate_id": "e-1", "event_type": "T", "event_data": 1,
                    "version": 5})
        check(r == {"type": "concurrency_error", "in_reply_to": r["in_reply_to"],
                    "error": "Expected version 5, got 1", "actual_version": 1}, r)
        check(list(r) == ["type", "in_reply_to", "error", "actual_version"], list(r))
        for client in (c, m):
            r = client.call({"type": "append", "aggregate_id": "e-2", "event_type": "T",
                             "event_data": 1, "version": "exists"})
            check(r["error"] == "Expected version exists, got 0" and r["actual_version"] == 0, r)
            r = client.call({"type": "append", "aggregate_id": "e-1", "event_type": "T",
                             "events": [{"event_type": "T", "event_data": 1}], "version": 0})
            check(r["type"] == "concurrency_error" and r["actual_version"] == 1, r)
        # nothing written by any of that
        r = c.call({"type": "status"})
        check(r["head_sequence"] == 2 and r["aggregates"] == 2, r)


def t_reads():
    with broker("--max-count", "10") as d:
        c = Client(d.commands)
        for i in range(25):
            append(c, "r-1" if i % 5 else "s-1", event_type="Odd" if i % 2 else "Even", data={"i": i})
        r = c.call({"type": "read", "aggregate_id": "r-1", "max_count": 100})
        check(len(r["events"]) == 10 and r["next_version"] == 11 and r["version"] == 20, r)
        r = c.call({"type": "read", "aggregate_id": "r-1", "from_version": 11, "max_count": 10})
        check([e["version"] for e in r["events"]] == list(range(11, 21)) and "next_version" not in r, r)
        r = c.call({"type": "read", "aggregate_id": "r-1", "direction": "backward", "max_count": 3})
        check([e["version"] for e in r["events"]] == [20, 19, 18] and r["next_version"] == 17, r)
        r = c.call({"type": "read", "aggregate_id": "r-1", "direction": "backward", "from_version": 2})
        check([e["version"] for e in r["events"]] == [2, 1] and "next_version" not in r, r)
        r = c.call({"type": "read", "aggregate_id": "nobody"})
        check(r["events"] == [] and r["version"] == 0 and "next_version" not in r, r)
        seen, nxt = [], 1
        while True:
            r = c.call({"type": "read_all", "from_sequence": nxt, "max_count": 4})
            check(r["head_sequence"] == 25, r)
            if not r["events"]:
                break
            seen += [e["sequence_number"] for e in r["events"]]
            nxt = r["next_sequence"]
        check(seen == list(range(1, 26)) and nxt == 26, seen)
        r = c.call({"type": "read_all", "prefix": "s-", "event_types": ["Even"]})
        check([e["event_data"]["i"] for e in r["events"]] == [0, 10, 20], r)
        check(r["next_sequence"] == 26, r)


def t_reply_budget():
    """A read stops at about 16 MiB of stored events and says where to go on."""
    with broker("--max-body", str(4 << 20)) as d:
        c = Client(d.commands, "msgpack")
        big = "x" * (3 << 20)
        for v in range(7):
            check(append(c, "big-1", v, {"blob": big})["type"] == "appended")
        r = c.call({"type": "read", "aggregate_id": "big-1"})
        check(len(r["events"]) == 5 and r["next_version"] == 6, (len(r["events"]), r.get("next_version")))
        r = c.call({"type": "read_all", "from_sequence": 1})
        check(len(r["events"]) == 5 and r["next_sequence"] == 6, r["next_sequence"])
        r = c.call({"type": "read", "aggregate_id": "big-1", "from_version": 6})
        check([e["version"] for e in r["events"]] == [6, 7] and "next_version" not in r)
        # over twice the body limit: the connection is dropped, annald goes on
        c.send_raw(msgpack.packb({"type": "status", "msg_id": 1, "pad": "y" * (9 << 20)}))
        fresh = Client(d.commands)
        check(fresh.call({"type": "status"})["head_sequence"] == 7)


def t_snapshots_state():
    with broker() as d:
        c = Client(d.commands)
        append(c, "acc-1", 0, {"balance": 10, "owner": {"name": "A"}})
        append(c, "acc-1", 1, {"balance": 20})
        t_mid = c.call({"type": "read", "aggregate_id": "acc-1"})["events"][1]["recorded_at"]
        time.sleep(0.01)
        append(c, "acc-1", 2, {"owner": {"name": None, "id": 7}})
        r = c.call({"type": "create_snapshot", "aggregate_id": "acc-1", "version": 2})
        check(r == {"type": "snapshot_created", "in_reply_to": r["in_reply_to"],
                    "aggregate_id": "acc-1", "version": 2}, r)
        r = c.call({"type": "get_snapshot", "aggregate_id": "acc-1"})
        check(r["state"] == {"balance": 20, "owner": {"name": "A"}} and r["version"] == 2, r)
        r = c.call({"type": "replay", "aggregate_id": "acc-1", "use_snapshot": True})
        check(r["events_replayed"] == 1 and r["snapshot_version"] == 2 and r["version"] == 3, r)
        check(r["state"] == {"balance": 20, "owner": {"id": 7}}, r)
        full = c.call({"type": "replay", "aggregate_id": "acc-1"})
        check(full["state"] == r["state"] and full["events_replayed"] == 3, full)
        # a client's own state is stored as given and replay starts from it
        r = c.call({"type": "create_snapshot", "aggregate_id": "acc-1", "state": {"custom": True}})
        check(r["version"] == 3, r)
        r = c.call({"type": "replay", "aggregate_id": "acc-1", "use_snapshot": True})
        check(r["state"] == {"custom": True} and r["events_replayed"] == 0, r)
        r = c.call({"type": "replay", "aggregate_id": "acc-1", "version": 1})
        check(r["state"] == {"balance": 10, "owner": {"name": "A"}} and r["version"] == 1, r)
        r = c.call({"type": "get_state", "aggregate_id": "acc-1", "timestamp": t_mid})
        check(r["state"] == {"balance": 20, "owner": {"name": "A"}} and r["version"] == 2, r)
        check(r["timestamp"] == t_mid, r)
        r = c.call({"type": "get_state", "aggregate_id": "acc-1", "timestamp": "2999-01-01T00:00:00+05:00"})
        check(r["version"] == 3, r)
        r = c.call({"type": "create_snapshot", "aggregate_id": "empty-1"})
        check(r["version"] == 0, r)
        r = c.call({"type": "get_snapshot", "aggregate_id": "empty-1"})
        check(r["state"] == {} and r["version"] == 0, r)
        check(c.call({"type": "status"})["snapshots"] == 3)


def t_restart_keeps_data():
    d = Annald()
    try:
        c = Client(d.commands, "msgpack")
        for i in range(5):
            append(c, f"k-{i}", 0)
        c.call({"type": "create_snapshot", "aggregate_id": "k-1"})
        check(d.stop() == 0, d.stderr())
        d2 = Annald(data=d.data)
        c2 = Client(d2.commands)
        r = c2.call({"type": "status"})
        check(r["head_sequence"] == 5 and r["snapshots"] == 1, r)
        check(append(c2, "k-1", 1)["sequence_number"] == 6)
        check(d2.stop() == 0)
        d2.cleanup()
    finally:
        d.cleanup()


def t_flags():
    def rc(*args):
        p = subprocess.run([ANNALD, *args], capture_output=True, text=True, timeout=20)
        return p.returncode, p.stdout + p.stderr
    code, out = rc("--help")
    check(code == 0 and "--data" in out, out)
    code, out = rc("--version")
    check(code == 0 and "annald" in out, out)
    for bad in (["--bogus"], ["--pub-format", "xml"], ["--max-body", "abc"], ["--max-body", "-5"],
                ["--data"], ["extra"]):
        code, out = rc(*bad)
        check(code == 2 and out, (bad, code, out))


def t_folder_locked():
    if PG:
        return  # LMDB's folder lock; PostgreSQL takes any number of brokers
    with broker() as d:
        other = Annald(data=d.data, ready=False)
        code = other.proc.wait(20)
        check(code == 1 and "in use" in other.stderr(), (code, other.stderr()))
        other.cleanup()
        check(Client(d.commands).call({"type": "status"})["type"] == "status_ok")


def t_bad_folder():
    import os, tempfile, shutil
    d = tempfile.mkdtemp(prefix="annal-bad-")
    try:
        with open(os.path.join(d, "data.mdb"), "wb") as f:
            f.write(b"this is not a database" * 1000)
        other = Annald(data=d, ready=False)
        code = other.proc.wait(20)
        check(code == 1 and "not an annal store" in other.stderr(), (code, other.stderr()))
        other.cleanup()
    finally:
        shutil.rmtree(d)


run([
    ("json", t_json),
    ("msgpack", t_msgpack),
    ("req_socket", t_req_socket),
    ("pipelined", t_pipelined),
    ("many_clients", t_many_clients),
    ("pub_prefix", t_pub_prefix),
    ("heartbeat_json", t_heartbeat_json),
    ("errors", t_errors),
    ("reads", t_reads),
    ("reply_budget", t_reply_budget),
    ("snapshots_state", t_snapshots_state),
    ("restart_keeps_data", t_restart_keeps_data),
    ("flags", t_flags),
    ("folder_locked", t_folder_locked),
    ("bad_folder", t_bad_folder),
])
