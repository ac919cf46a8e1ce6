"""Every settable limit of annald, at the limit and one past it, in JSON and
MessagePack: past it is error 12 (or, for max_count, the protocol's cap),
nothing is written, and annald goes on serving."""
import subprocess

from annal_harness import ANNALD, Client, broker, check, run

ENCODINGS = ("json", "msgpack")


def head(c):
    return c.call({"type": "status"})["head_sequence"]


def append_body(agg="a-1", event_type="T", data=1, version="any", **extra):
    return dict({"type": "append", "aggregate_id": agg, "event_type": event_type,
                 "event_data": data, "version": version}, **extra)


def expect_ok(c, body):
    r = c.call(body)
    check(r["type"] in ("appended", "events", "replayed", "snapshot_created"), (body, r))
    return r


def expect_error(c, body, code=12, words=""):
    before = head(c)
    r = c.call(body)
    check(r["type"] == "error" and r["code"] == code and words in r["text"], (body, r))
    check(head(c) == before, "a refused request wrote something")
    return r


def sized(c, size):
    """An append whose encoded body is exactly size bytes."""
    body = append_body(data="", msg_id=1)
    pad = size - len(c.encode(body))
    body["event_data"] = "x" * pad
    # a longer string may take a longer MessagePack header: shrink to fit
    while len(c.encode(body)) > size:
        body["event_data"] = body["event_data"][:-1]
    check(len(c.encode(body)) == size, (size, len(c.encode(body))))
    return body


def t_body():
    with broker("--max-body", "1000") as d:
        for enc in ENCODINGS:
            c = Client(d.commands, enc)
            c.send(sized(c, 1000))
            check(c.recv()["type"] == "appended")
            c.send(sized(c, 1001))
            r = c.recv()
            check(r["code"] == 12 and "limit of 1000 bytes" in r["text"], r)
            # answered in kind, and to its msg_id when MessagePack shows it cheaply
            check(r["in_reply_to"] == (None if enc == "json" else 1), r)
            check(head(c) == (1 if enc == "json" else 2), "the oversized body was written")


def t_names():
    with broker("--max-aggregate-id", "16", "--max-event-type", "8") as d:
        for enc in ENCODINGS:
            c = Client(d.commands, enc)
            expect_ok(c, append_body(agg="a" * 16, event_type="E" * 8))
            expect_error(c, append_body(agg="a" * 17), words="the limit is 16")
            expect_error(c, append_body(event_type="E" * 9), words="the limit is 8")
            expect_error(c, {"type": "read", "aggregate_id": "a" * 17})
            expect_error(c, {"type": "replay", "aggregate_id": "a" * 17})
            expect_error(c, {"type": "read_all", "event_types": ["E" * 9]})
            expect_ok(c, {"type": "read", "aggregate_id": "a" * 16})


def t_batch():
    with broker("--max-batch", "5") as d:
        for enc in ENCODINGS:
            c = Client(d.commands, enc)
            events = [{"event_type": "T", "event_data": i} for i in range(6)]
            r = expect_ok(c, {"type": "append", "aggregate_id": "b-" + enc, "version": 0,
                              "events": events[:5]})
            expect_error(c, {"type": "append", "aggregate_id": "b-" + enc, "version": 5,
                             "events": events}, words="limit of 5")
            check(c.call({"type": "read", "aggregate_id": "b-" + enc})["version"] == 5, r)


def nest(levels, leaf=1):
    for _ in range(levels):
        leaf = [leaf]
    return leaf


def t_depth():
    """--max-depth 8: a body nests at most 8 levels (the body is level 1) and
    a stored value at most 8 - 4 = 4."""
    with broker("--max-depth", "8") as d:
        for enc in ENCODINGS:
            c = Client(d.commands, enc)
            # 4 levels of value is the limit: [[[1]]] inside an object
            expect_ok(c, append_body(data={"a": nest(3)}))
            expect_error(c, append_body(data={"a": nest(4)}), words="deeper than 4")
            # an empty container is a level too, in both encodings
            expect_ok(c, append_body(data=nest(3, {})))
            expect_error(c, append_body(data=nest(4, {})), words="deeper than 4")
            # the body itself: an unknown field nesting 7 more levels is level 8
            expect_ok(c, dict(append_body(), extra=nest(6, {})))
            r = expect_error(c, dict(append_body(), extra=nest(7, {}), msg_id=99))
            check(r["in_reply_to"] == 99 and "nesting too deep" in r["text"], r)


def t_max_count():
    """Past --max-count, read and read_all answer the cap and say where to go on
    (docs/protocol.md: max_count is capped by the server)."""
    with broker("--max-count", "7") as d:
        for enc in ENCODINGS:
            c = Client(d.commands, enc)
            agg = "m-" + enc
            expect_ok(c, {"type": "append", "aggregate_id": agg, "version": "any",
                          "events": [{"event_type": "T", "event_data": i} for i in range(10)]})
            r = c.call({"type": "read", "aggregate_id": agg, "max_count": 7})
            check(len(r["events"]) == 7 and r["next_version"] == 8, r)
            r = c.call({"type": "read", "aggregate_id": agg, "max_count": 8})
            check(len(r["events"]) == 7 and r["next_version"] == 8, r)
            r = c.call({"type": "read_all", "max_count": 8})
            check(len(r["events"]) == 7 and r["next_sequence"] == 8, r)


def t_client_hwm():
    """Past --client-hwm a client's requests wait in ZeroMQ (backpressure):
    200 pipelined requests against a queue of 4 are all answered, in order,
    and other clients are served meanwhile."""
    with broker("--client-hwm", "4") as d:
        for enc in ENCODINGS:
            c = Client(d.commands, enc)
            ids = [c.send(append_body(agg="h-" + enc)) for _ in range(200)]
            other = Client(d.commands, enc)
            check(other.call({"type": "status"})["type"] == "status_ok")
            replies = [c.recv() for _ in ids]
            check([r["in_reply_to"] for r in replies] == ids, "out of order or lost")
            check(all(r["type"] == "appended" for r in replies), replies[:3])
            seqs = [r["sequence_number"] for r in replies]
            check(seqs == list(range(seqs[0], seqs[0] + 200)), seqs[:5])


def t_flags():
    for bad in (["--max-aggregate-id", "257"], ["--max-event-type", "0"], ["--max-depth", "4"],
                ["--max-depth", "33"], ["--max-batch", "0"], ["--client-hwm", "x"],
                ["--max-count", "-1"]):
        p = subprocess.run([ANNALD, *bad], capture_output=True, text=True, timeout=20)
        check(p.returncode == 2 and bad[0] in p.stderr, (bad, p.returncode, p.stderr))


run([
    ("body", t_body),
    ("names", t_names),
    ("batch", t_batch),
    ("depth", t_depth),
    ("max_count", t_max_count),
    ("client_hwm", t_client_hwm),
    ("flags", t_flags),
])
