"""Consumer groups (PROTOCOL.md section 6, issue 14) over real sockets, in
JSON and MessagePack, on LMDB and (under tests/pg_cluster.sh) PostgreSQL:
group_create and its settings, group_fetch with its long poll, leases and
their expiry, ordering "aggregate" under competing consumers, acks, nacks,
parking at max_deliveries, group_info's exact low-water mark, group_list,
group_delete, parked events and their replay, durability across SIGKILL,
and several brokers sharing one group on one PostgreSQL database.

Written before the implementation, against the contract. Where the contract
is silent or ambiguous the case says which reading it holds annald to
("Reading:" comments); each is listed in the commit that added this file.
Until annald serves groups this test skips (exit 77)."""
import collections
import functools
import random
import re
import shutil
import signal
import threading
import time

from annal_harness import (PG, Annald, Client, append, broker, brokers, check, new_store, run,
                           stop_all)

EVENT = ["sequence_number", "event_id", "aggregate_id", "version", "event_type", "event_data",
         "metadata", "recorded_at"]
# Replies are checked with their keys in the order the contract lists them,
# as test_broker checks the replies of section 4.
ERROR = ["type", "in_reply_to", "code", "text"]
CREATED = ["type", "in_reply_to", "group", "start_sequence"]
EVENTS = ["type", "in_reply_to", "group", "events", "head_sequence"]
ACKED = ["type", "in_reply_to", "group", "acked"]
NACKED = ["type", "in_reply_to", "group", "count"]
INFO = ["type", "in_reply_to", "group", "prefix", "event_types", "ordering", "ack_timeout_ms",
        "max_deliveries", "start_sequence", "acked_through", "leased", "parked", "head_sequence",
        "lag"]
DEFAULTS = {"prefix": "", "event_types": None, "ordering": "aggregate", "ack_timeout_ms": 30000,
            "max_deliveries": 5}
SOON = 1.0    # s: a waiting fetch is answered this soon after what makes events ready
SLACK = 0.02  # s: a timer may fire this much before its time (clock granularity)


# ---- requests, each reply checked for its shape -------------------------------------------

def refused(r, code, what=None):
    check(r["type"] == "error" and r["code"] == code and r["text"] and list(r) == ERROR,
          (what, r))


def create(c, group="g", **settings):
    """Creates a group; returns its start_sequence."""
    r = c.call({"type": "group_create", "group": group, **settings})
    check(r == {"type": "group_created", "in_reply_to": r.get("in_reply_to"), "group": group,
                "start_sequence": r.get("start_sequence")} and list(r) == CREATED, r)
    check(isinstance(r["start_sequence"], int), r)
    return r["start_sequence"]


def fetch_body(consumer, group="g", **kw):
    return {"type": "group_fetch", "group": group, "consumer": consumer, **kw}


def events_reply(r, group="g"):
    check(r["type"] == "group_events" and list(r) == EVENTS and r["group"] == group, r)
    for e in r["events"]:
        check(list(e) == EVENT + ["delivery"], list(e))
    return r


def fetch(c, consumer, group="g", **kw):
    return events_reply(c.call(fetch_body(consumer, group, **kw)), group)


def got(r):
    """[(sequence, delivery)] of a group_events or parked reply."""
    return [(e["sequence_number"], e["delivery"]) for e in r["events"]]


def ack(c, consumer, sequences, group="g"):
    r = c.call({"type": "group_ack", "group": group, "consumer": consumer,
                "sequences": sequences})
    check(r["type"] == "group_acked" and list(r) == ACKED and r["group"] == group, r)
    return r["acked"]


def nack(c, consumer, sequences, action, reason="test", group="g"):
    r = c.call({"type": "group_nack", "group": group, "consumer": consumer,
                "sequences": sequences, "action": action, "reason": reason})
    check(r["type"] == "group_nacked" and list(r) == NACKED and r["group"] == group, r)
    return r["count"]


def info(c, group="g", **expect):
    """group_info, checked for its shape and for the fields given."""
    r = c.call({"type": "group_info", "group": group})
    check(r["type"] == "group" and list(r) == INFO and r["group"] == group, r)
    # annal's own field: the sequences between acked_through and the head
    check(r["lag"] == max(0, r["head_sequence"] - r["acked_through"]), r)
    for k, v in expect.items():
        check(r[k] == v, (k, v, r))
    return r


def parked(c, group="g", **kw):
    r = c.call({"type": "group_parked", "group": group, **kw})
    keys = ["type", "in_reply_to", "group", "events"]
    check(r["type"] == "parked" and list(r) in (keys, keys + ["next_sequence"])
          and r["group"] == group, r)
    for e in r["events"]:
        check(list(e) == EVENT + ["delivery", "reason"], list(e))
    return r


def replay_parked(c, group="g", **kw):
    r = c.call({"type": "group_replay_parked", "group": group, **kw})
    check(r["type"] == "group_replayed" and list(r) == NACKED and r["group"] == group, r)
    return r["count"]


def fill(c, *events):
    """Appends one event per item ("aggregate" or ("aggregate", "Type"));
    returns their sequences."""
    out = []
    for ev in events:
        agg, event_type = (ev, "T") if isinstance(ev, str) else ev
        r = append(c, agg, event_type=event_type, data={"i": len(out)})
        check(r["type"] == "appended", r)
        out.append(r["sequence_number"])
    return out


def stored(c):
    """{sequence: event record} of the whole (small) log, as read_all gives it."""
    r = c.call({"type": "read_all", "from_sequence": 1, "max_count": 10000})
    return {e["sequence_number"]: e for e in r["events"]}


def same_records(c, events, *extra):
    """Each event is the stored record plus the fields named in extra."""
    log = stored(c)
    for e in events:
        check(e == dict(log[e["sequence_number"]], **{k: e[k] for k in extra}),
              (e, log.get(e["sequence_number"])))


# ---- long polls -------------------------------------------------------------------------

def start_wait(c, consumer, wait_ms, group="g", **kw):
    """Sends a fetch with wait_ms and, pipelined behind it on the same DEALER,
    a status: the status must be answered first, and at once (a waiting fetch
    holds up no request of its own client). Returns (msg_id, when sent)."""
    t0 = time.monotonic()
    fid = c.send(fetch_body(consumer, group, wait_ms=wait_ms, **kw))
    sid = c.send({"type": "status"})
    r = c.recv()
    check(r["in_reply_to"] == sid and r["type"] == "status_ok",
          ("the status behind a waiting fetch was not answered first", r))
    check(time.monotonic() - t0 < SOON, "the status behind a waiting fetch was held up")
    return fid, t0


def end_wait(c, fid, group="g"):
    """The waiting fetch's reply and when it came."""
    r = c.recv()
    check(r["in_reply_to"] == fid, r)
    return events_reply(r, group), time.monotonic()


# ---- group_create ---------------------------------------------------------------------------

def t_create_defaults(enc):
    with broker() as d:
        c = Client(d.commands, enc)
        fill(c, "a-1", "a-2", "b-1")
        first = c.call({"type": "group_create", "group": "g"})
        check(first == {"type": "group_created", "in_reply_to": first["in_reply_to"],
                        "group": "g", "start_sequence": 1} and list(first) == CREATED, first)
        r = info(c)
        check(r == dict({"type": "group", "in_reply_to": r["in_reply_to"], "group": "g"},
                        **DEFAULTS, start_sequence=1, acked_through=0, leased=0, parked=0,
                        head_sequence=3, lag=3), r)
        # the same settings again, bare or spelled out, after more appends: the same reply.
        # Reading: a setting given with its default value is the same setting as leaving
        # it out (as a JetStream consumer config with its defaults filled in).
        fill(c, "a-3")
        explicit = {"prefix": "", "from_sequence": 1, "ordering": "aggregate",
                    "ack_timeout_ms": 30000, "max_deliveries": 5}
        for settings in ({}, explicit):
            r = c.call({"type": "group_create", "group": "g", **settings})
            check(r == dict(first, in_reply_to=r["in_reply_to"]), (settings, r))
        # the defaults at work: every event from 1, of any aggregate and type
        check(got(fetch(c, "w1")) == [(1, 1), (2, 1), (3, 1), (4, 1)])
        check(c.call({"type": "group_list"})["groups"] == [
            {k: v for k, v in info(c).items() if k not in ("type", "in_reply_to")}])


def t_create_end(enc):
    with broker() as d:
        c = Client(d.commands, enc)
        check(create(c, "empty", from_sequence="end") == 1, "end of an empty store")
        info(c, "empty", start_sequence=1, acked_through=0, head_sequence=0)
        fill(c, "a-1", "a-2", "a-3")
        first = c.call({"type": "group_create", "group": "g", "from_sequence": "end"})
        check(first["type"] == "group_created" and first["start_sequence"] == 4, first)
        info(c, start_sequence=4, acked_through=3, leased=0, head_sequence=3)
        check(fetch(c, "w1")["events"] == [], "events before the start")
        new = fill(c, "a-1", "a-4")
        # Reading: "end" again is the same setting whatever the head is now, so a
        # create-if-missing at every start-up keeps working; the reply is as first made.
        r = c.call({"type": "group_create", "group": "g", "from_sequence": "end"})
        check(r == dict(first, in_reply_to=r["in_reply_to"]), r)
        r = fetch(c, "w1")
        check(got(r) == [(new[0], 1), (new[1], 1)] and r["head_sequence"] == 5, r)
        same_records(c, r["events"], "delivery")
        # a start past the head: acked_through is S - 1, above the head
        check(create(c, "later", from_sequence=10) == 10)
        info(c, "later", start_sequence=10, acked_through=9, head_sequence=5)
        check(fetch(c, "w1", "later")["events"] == [])


def t_create_conflict(enc):
    with broker() as d:
        c = Client(d.commands, enc)
        fill(c, "a-1")
        # no default among them, so that leaving any out is a change too; a start
        # past head + 1, so that "end" differs from it however "end" is compared
        settings = {"prefix": "a-", "event_types": ["T"], "from_sequence": 5,
                    "ordering": "none", "ack_timeout_ms": 1000, "max_deliveries": 3}
        create(c, **settings)
        before = info(c)
        for change in ({"prefix": "b-"}, {"prefix": ""}, {"event_types": ["U"]},
                       {"event_types": ["T", "U"]}, {"from_sequence": 1},
                       {"from_sequence": 4}, {"from_sequence": "end"},
                       {"ordering": "aggregate"},
                       {"ack_timeout_ms": 2000}, {"max_deliveries": 4}):
            r = c.call({"type": "group_create", "group": "g", **settings, **change})
            refused(r, 12, change)
        # a setting left out means its default, which differs here too
        for left_out in ("prefix", "event_types", "from_sequence", "ordering",
                         "ack_timeout_ms", "max_deliveries"):
            body = dict({"type": "group_create", "group": "g"}, **settings)
            del body[left_out]
            refused(c.call(body), 12, left_out)
        after = info(c)
        check(after == dict(before, in_reply_to=after["in_reply_to"]), (before, after))


def t_create_bad(enc):
    with broker() as d:
        c = Client(d.commands, enc)
        fill(c, "a-1")
        g = {"type": "group_create", "group": "g"}
        bodies = [
            {"type": "group_create"},                       # no group
            dict(g, group=""),
            dict(g, group="a" * 257),
            dict(g, group="\u00e9" * 128 + "a"),            # 257 bytes of UTF-8
            dict(g, group="a\x00b"),
            dict(g, group="a\x01b"),
            dict(g, group="a\x1f"),
            dict(g, group="line\n"),
            dict(g, group="$sys"),
            dict(g, group="$"),
            dict(g, group=5),
            dict(g, group=["g"]),
            dict(g, prefix=5),
            dict(g, event_types="T"),                       # not a list
            dict(g, event_types={"T": 1}),
            dict(g, event_types=[1]),
            dict(g, from_sequence=0),
            dict(g, from_sequence=-1),
            dict(g, from_sequence="start"),
            dict(g, from_sequence="1"),
            dict(g, from_sequence=1.5),
            dict(g, ordering="x"),
            dict(g, ordering="Aggregate"),
            dict(g, ordering=1),
            dict(g, ack_timeout_ms=99),
            dict(g, ack_timeout_ms=3600001),
            dict(g, ack_timeout_ms=0),
            dict(g, ack_timeout_ms="30000"),
            dict(g, max_deliveries=0),
            dict(g, max_deliveries=1001),
            dict(g, max_deliveries=-5),
            dict(g, max_deliveries=True),
        ]
        if enc == "msgpack":
            bodies += [dict(g, group=b"g\xff"),             # bin that is not UTF-8
                       dict(g, event_types=[b"\xfe"])]
        for body in bodies:
            refused(c.call(body), 12, body)
        r = c.call({"type": "group_list"})
        check(r == {"type": "groups", "in_reply_to": r["in_reply_to"], "groups": []}, r)
        refused(c.call({"type": "group_info", "group": "g"}), 20)


def t_create_bounds(enc):
    """Names and settings at their limits are taken, and group_info says them back."""
    with broker() as d:
        c = Client(d.commands, enc)
        names = ["a" * 256, "\u00e9" * 128, "d\u00e9\x7f", "x", "g-$"]
        for name in names:
            check(create(c, name) == 1)
            info(c, name, **DEFAULTS)
        if enc == "msgpack":  # bin carrying UTF-8 is taken where a string goes
            r = c.call({"type": "group_create", "group": b"bin-g", "event_types": [b"T"]})
            check(r["type"] == "group_created" and r["group"] == "bin-g", r)
            info(c, "bin-g", event_types=["T"])
        create(c, "low", ack_timeout_ms=100, max_deliveries=1, ordering="none", prefix="p-",
               event_types=["A", "B"], from_sequence=7)
        info(c, "low", ack_timeout_ms=100, max_deliveries=1, ordering="none", prefix="p-",
             event_types=["A", "B"], start_sequence=7, acked_through=6, head_sequence=0)
        create(c, "high", ack_timeout_ms=3600000, max_deliveries=1000)
        info(c, "high", ack_timeout_ms=3600000, max_deliveries=1000)


# ---- group_fetch ------------------------------------------------------------------------

def t_fetch_filter(enc):
    """Only the group's events (prefix, event_types, sequence >= start),
    lowest first, up to max_count, each the stored record plus delivery 1,
    and each now leased."""
    with broker() as d:
        c = Client(d.commands, enc)
        fill(c, ("user-1", "A"), ("user-2", "B"), ("order-1", "A"), ("user-1", "C"),
             ("user-3", "A"), ("user-2", "B"), ("users", "A"), ("xuser-1", "A"))
        create(c, prefix="user-", event_types=["A", "B"], from_sequence=2, ordering="none")
        r = fetch(c, "w1", max_count=2)
        check(got(r) == [(2, 1), (5, 1)] and r["head_sequence"] == 8, r)
        same_records(c, r["events"], "delivery")
        r = fetch(c, "w2", max_count=2)
        check(got(r) == [(6, 1)], r)
        check(fetch(c, "w1")["events"] == [], "all leased")
        info(c, leased=3, parked=0, acked_through=1, head_sequence=8)
        new = fill(c, ("user-9", "A"), ("user-9", "Z"))
        r = fetch(c, "w3", max_count=100, wait_ms=30000)  # ready: answered at once
        check(got(r) == [(new[0], 1)] and r["head_sequence"] == 10, r)
        same_records(c, r["events"], "delivery")
        info(c, leased=4)


def fill_many(c, n, agg="m-1"):
    r = c.call({"type": "append", "aggregate_id": agg, "version": "any",
                "events": [{"event_type": "T", "event_data": i} for i in range(n)]})
    check(r["type"] == "appended", r)


def t_fetch_max_count(enc):
    """max_count defaults to 100 and is capped like read's (--max-count)."""
    with broker() as d:
        c = Client(d.commands, enc)
        fill_many(c, 150)
        create(c, ordering="none")
        check(got(fetch(c, "w1")) == [(s, 1) for s in range(1, 101)], "default 100")
        check(got(fetch(c, "w1", max_count=7)) == [(s, 1) for s in range(101, 108)])
        info(c, leased=107)
    with broker("--max-count", "10") as d:
        c = Client(d.commands, enc)
        fill_many(c, 30)
        create(c, ordering="none")
        check(got(fetch(c, "w1", max_count=50)) == [(s, 1) for s in range(1, 11)], "capped")
        check(got(fetch(c, "w1")) == [(s, 1) for s in range(11, 21)], "default capped")


def t_fetch_errors(enc):
    with broker() as d:
        c = Client(d.commands, enc)
        fill(c, "a-1")
        create(c)
        f = fetch_body("w1")
        for body in ({"type": "group_fetch", "consumer": "w1"},
                     {"type": "group_fetch", "group": "g"},
                     dict(f, consumer=""), dict(f, consumer="$w"), dict(f, consumer="a" * 257),
                     dict(f, consumer="w\x02"), dict(f, consumer=7),
                     dict(f, max_count=-1), dict(f, max_count="5"),
                     dict(f, wait_ms=-1), dict(f, wait_ms="100"),
                     # Reading: "at most 30000" makes a longer wait a malformed request
                     # (12), not one silently cut to 30 s.
                     dict(f, wait_ms=30001)):
            refused(c.call(body), 12, body)
        a = {"type": "group_ack", "group": "g", "consumer": "w1", "sequences": [1]}
        n = dict(a, type="group_nack", action="retry", reason="r")
        for body in (dict(a, consumer=""), dict(a, consumer="$w"), {k: a[k] for k in a
                     if k != "sequences"}, dict(a, sequences=1), dict(a, sequences=["1"]),
                     dict(n, action="drop"), dict(n, action=None),
                     {k: n[k] for k in n if k != "action"}):
            refused(c.call(body), 12, body)
        info(c, leased=0)  # none of that leased anything
        for body in (fetch_body("w1", "nope"), fetch_body("w1", "nope", wait_ms=1000),
                     dict(a, group="nope"), dict(n, group="nope"),
                     {"type": "group_info", "group": "nope"},
                     {"type": "group_delete", "group": "nope"},
                     # Reading: the parked commands of an unknown group are error 20 too
                     # (section 5: "no such consumer group").
                     {"type": "group_parked", "group": "nope"},
                     {"type": "group_replay_parked", "group": "nope"}):
            refused(c.call(body), 20, body)
        check(ack(c, "w1", []) == 0, "an empty ack")


# ---- long poll --------------------------------------------------------------------------

def t_wait_append(enc):
    """A waiting fetch is answered soon after an append that matches, not
    at one that does not (which makes nothing ready)."""
    with broker() as d:
        c, w = Client(d.commands, enc), Client(d.commands, enc)
        create(c, prefix="w-")
        fid, _ = start_wait(c, "w1", 2000)
        fill(w, "other-1")
        t_append = time.monotonic()
        seq = fill(w, "w-1")[0]
        r, t_reply = end_wait(c, fid)
        check(got(r) == [(seq, 1)] and r["head_sequence"] == 2, r)
        check(t_reply - t_append < SOON, ("answered late", t_reply - t_append))
        same_records(c, r["events"], "delivery")


def t_wait_timeout(enc):
    """Nothing comes: [] after wait_ms, and meanwhile the same client's
    other requests (status, a non-matching append, a read) are answered at
    once, in order, before it. A fetch still waiting when annald is told to
    stop holds up no stop."""
    with broker() as d:
        c = Client(d.commands, enc)
        fill(c, "a-1")
        create(c, prefix="w-")
        fid, t0 = start_wait(c, "w1", 700)
        ids = [c.send({"type": "append", "aggregate_id": "a-2", "event_type": "T",
                       "event_data": {}, "version": "any"}),
               c.send({"type": "read_all", "from_sequence": 1})]
        for i, kind in zip(ids, ("appended", "events")):
            r = c.recv()
            check(r["in_reply_to"] == i and r["type"] == kind, ("held up behind the fetch", r))
        check(time.monotonic() - t0 < SOON, "the requests behind a waiting fetch were held up")
        r, t1 = end_wait(c, fid)
        check(r["events"] == [] and r["head_sequence"] == 2, r)
        check(0.7 - SLACK <= t1 - t0 < 0.7 + SOON, ("wait_ms 700 took", t1 - t0))
        r = fetch(c, "w1", wait_ms=300)  # again with a plain call: [] after 300 ms
        check(r["events"] == [] and time.monotonic() - t1 >= 0.3 - SLACK, r)
        # Reading: a fetch still waiting when annald gets SIGTERM is dropped (or
        # answered); the stop is not delayed until its wait ends.
        start_wait(c, "w1", 30000)
        t_stop = time.monotonic()
        rc = d.stop()
        check(rc == 0 and time.monotonic() - t_stop < 5, ("stop with a fetch waiting", rc))


def t_wait_two_waiters(enc):
    """Two consumers waiting, max_count 1 each; one append makes two events
    ready: both are answered soon, with one event each."""
    with broker() as d:
        a, b, w = (Client(d.commands, enc) for _ in range(3))
        create(a, ordering="none")
        fa, _ = start_wait(a, "wa", 3000, max_count=1)
        fb, _ = start_wait(b, "wb", 3000, max_count=1)
        t_append = time.monotonic()
        fill_many(w, 2, "w-1")
        ra, ta = end_wait(a, fa)
        rb, tb = end_wait(b, fb)
        check(sorted(got(ra) + got(rb)) == [(1, 1), (2, 1)], (ra, rb))
        check(max(ta, tb) - t_append < SOON, ("a waiter answered late", ta - t_append,
                                              tb - t_append))
        info(a, leased=2)


def t_wait_ack_nack(enc):
    """A waiting fetch is answered soon after an ack frees the aggregate
    (ordering "aggregate") and after a nack retry makes an event ready."""
    with broker() as d:
        a, b = Client(d.commands, enc), Client(d.commands, enc)
        s1, s2 = fill(a, "x-1", "x-1")
        create(a)
        check(got(fetch(a, "wa")) == [(s1, 1)], "x-1's second event waits for its first")
        fb, _ = start_wait(b, "wb", 3000)
        t_ack = time.monotonic()
        check(ack(a, "wa", [s1]) == 1)
        r, t = end_wait(b, fb)
        check(got(r) == [(s2, 1)] and t - t_ack < SOON, (r, t - t_ack))
        fa, _ = start_wait(a, "wa", 3000)
        t_nack = time.monotonic()
        check(nack(b, "wb", [s2], "retry", "try again") == 1)
        r, t = end_wait(a, fa)
        check(got(r) == [(s2, 2)] and t - t_nack < SOON, (r, t - t_nack))
        same_records(a, r["events"], "delivery")


# ---- ordering ---------------------------------------------------------------------------

def t_ordering_rule(enc):
    """ordering "aggregate": only an aggregate's first event not acked or
    parked can be leased; "none": any ready event."""
    with broker() as d:
        c = Client(d.commands, enc)
        x1, x2, y1, x3, y2 = fill(c, "x-1", "x-1", "y-1", "x-1", "y-1")
        create(c)
        check(got(fetch(c, "a", max_count=10)) == [(x1, 1), (y1, 1)])
        check(fetch(c, "b", max_count=10)["events"] == [], "x-1 and y-1 are taken")
        check(ack(c, "a", [x1]) == 1)
        check(got(fetch(c, "b", max_count=10)) == [(x2, 1)])
        check(nack(c, "a", [y1], "park", "bad") == 1)  # parked frees y-1 as acked does
        check(got(fetch(c, "b", max_count=10)) == [(y2, 1)])
        check(nack(c, "b", [x2], "skip") == 1)
        check(got(fetch(c, "a", max_count=10)) == [(x3, 1)])
        # a retried event is the lowest ready one again
        check(nack(c, "a", [x3], "retry") == 1)
        check(got(fetch(c, "b", max_count=10)) == [(x3, 2)])
        create(c, "free", ordering="none")
        r = fetch(c, "a", "free", max_count=10)
        check(got(r) == [(s, 1) for s in (x1, x2, y1, x3, y2)], r)
        info(c, "free", leased=5, ordering="none")


def t_ordering_after_expiry(enc):
    """ordering "aggregate" across a lease expiry: the expired event comes
    again (delivery 2), not the aggregate's next one."""
    with broker() as d:
        a, b = Client(d.commands, enc), Client(d.commands, enc)
        s1, s2 = fill(a, "x-1", "x-1")
        create(a, ack_timeout_ms=300)
        t0 = time.monotonic()
        check(got(fetch(a, "wa")) == [(s1, 1)])
        fb, _ = start_wait(b, "wb", 3000)
        r, t1 = end_wait(b, fb)
        check(got(r) == [(s1, 2)], r)
        check(0.3 - SLACK <= t1 - t0 < 0.3 + SOON, ("the lease ended after", t1 - t0))
        check(ack(b, "wb", [s1]) == 1)
        check(got(fetch(b, "wb")) == [(s2, 1)])


def compete(clients, total, ordering, group="g"):
    """One thread per client, each its own consumer, fetching (max_count 3,
    wait_ms 200) and acking until `total` events are acked. Checked as the
    replies come: no event is delivered twice (no lease expires: ack_timeout
    is 30 s) and, with ordering "aggregate", no aggregate has two events
    leased at once. A consumer marks its events done before it sends their
    ack, so the server's next lease of an aggregate is always seen after.
    Returns {aggregate: [versions in the order they were done]}."""
    lock, finished = threading.Lock(), threading.Event()
    holder, seen, acked, problems = {}, collections.Counter(), set(), []
    done = collections.defaultdict(list)
    deadline = time.monotonic() + 60

    def consumer(i, c):
        rng, name = random.Random(i), f"c{i}"
        try:
            while not finished.is_set() and time.monotonic() < deadline:
                r = c.call(fetch_body(name, group, max_count=3, wait_ms=200))
                if r["type"] != "group_events":
                    problems.append(r)
                    return
                evs = r["events"]
                with lock:
                    for e in evs:
                        s, agg = e["sequence_number"], e["aggregate_id"]
                        seen[s] += 1
                        if seen[s] > 1 or e["delivery"] != 1:
                            problems.append(("delivered again", s, e["delivery"], name))
                        if ordering == "aggregate":
                            if agg in holder:
                                problems.append(("two events of one aggregate leased",
                                                 agg, holder[agg], s, name))
                            holder[agg] = s
                time.sleep(rng.random() * 0.004)  # the work
                with lock:
                    for e in evs:
                        if holder.get(e["aggregate_id"]) == e["sequence_number"]:
                            del holder[e["aggregate_id"]]
                        done[e["aggregate_id"]].append(e["version"])
                        acked.add(e["sequence_number"])
                if evs:
                    r = c.call({"type": "group_ack", "group": group, "consumer": name,
                                "sequences": [e["sequence_number"] for e in evs]})
                    if r.get("acked") != len(evs):
                        problems.append(("ack", r))
                with lock:
                    if len(acked) >= total:
                        finished.set()
        except Exception as x:  # a timeout, say: reported below
            problems.append(repr(x))

    threads = [threading.Thread(target=consumer, args=(i, c)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    check(not problems, problems[:5])
    check(len(acked) == total and set(seen) == acked, (len(acked), total))
    return done


def interleaved(c, aggs, per):
    """per events for each of aggs, appended round-robin."""
    fill(c, *[a for _ in range(per) for a in aggs])


def t_ordering_compete():
    """3 consumers (JSON and MessagePack) fetching at once over 6 aggregates
    of 8 events: never two events of one aggregate leased at once, and each
    aggregate's events done in version order."""
    with broker() as d:
        c = Client(d.commands, "msgpack")
        aggs = [f"o-{i}" for i in range(6)]
        interleaved(c, aggs, 8)
        create(c)
        clients = [Client(d.commands, enc) for enc in ("json", "msgpack", "json")]
        done = compete(clients, 48, "aggregate")
        check(all(done[a] == list(range(1, 9)) for a in aggs), dict(done))
        info(c, acked_through=48, leased=0, parked=0)


# ---- leases, acks, nacks ------------------------------------------------------------------

def t_ordering_far_behind():
    """An aggregate with thousands of events pending holds up only itself: a
    fetch finds another aggregate's event far behind them in the log."""
    with broker() as d:
        c = Client(d.commands, "msgpack")
        for _ in range(3):
            fill_many(c, 1000, "a-1")
        other = fill(c, "b-1")[0]
        create(c)
        check(got(fetch(c, "w1", max_count=5)) == [(1, 1), (other, 1)])
        check(got(fetch(c, "w2", max_count=5)) == [], "a-1 and b-1 are both leased")


def t_lease_expiry(enc):
    """ack_timeout_ms 300, max_deliveries 2: an unacked event comes again
    after ~300 ms with delivery 2; when that lease ends too it is parked
    with reason "max deliveries", not delivered again; replayed, it starts
    again at delivery 1."""
    with broker() as d:
        a, b = Client(d.commands, enc), Client(d.commands, enc)
        s = fill(a, "x-1")[0]
        create(a, ack_timeout_ms=300, max_deliveries=2)
        t0 = time.monotonic()
        check(got(fetch(a, "wa")) == [(s, 1)])
        check(fetch(b, "wb")["events"] == [], "leased to wa")
        info(a, leased=1, parked=0, acked_through=0)
        fb, _ = start_wait(b, "wb", 3000)
        r, t1 = end_wait(b, fb)
        check(got(r) == [(s, 2)], r)
        check(0.3 - SLACK <= t1 - t0 < 0.3 + SOON, ("the lease ended after", t1 - t0))
        same_records(a, r["events"], "delivery")
        # the last delivery's lease ends unacked: parked, so this wait sees nothing
        r = fetch(a, "wa", wait_ms=1000)
        check(r["events"] == [] and time.monotonic() - t1 >= 1.0 - SLACK, r)
        info(a, leased=0, parked=1, acked_through=s, head_sequence=s)
        r = parked(a)
        check(got(r) == [(s, 2)] and r["events"][0]["reason"] == "max deliveries"
              and "next_sequence" not in r, r)
        same_records(a, r["events"], "delivery", "reason")
        check(ack(b, "wb", [s]) == 0, "a parked event is not acked")
        check(replay_parked(a) == 1)
        info(a, leased=0, parked=0, acked_through=s - 1)
        check(got(fetch(b, "wb")) == [(s, 1)], "replayed: delivery counted from 0 again")
        check(ack(b, "wb", [s]) == 1)
        info(a, leased=0, parked=0, acked_through=s)


def t_ack_rules(enc):
    """An ack counts for an event leased to that consumer, or ready after
    its own lease ended with nobody leasing it since; any other is ignored
    (not an error). Acked events are never delivered again."""
    with broker() as d:
        c = Client(d.commands, enc)
        s0, s1, s2, s3, s4, s5 = fill(c, "a-0", "a-1", "a-2", "a-3", "a-4", "b-1")
        # leases of 1 s: the checks before they end take a few round trips
        create(c, prefix="a-", from_sequence=2, ordering="none", ack_timeout_ms=1000)
        check(got(fetch(c, "A", max_count=2)) == [(s1, 1), (s2, 1)])
        check(got(fetch(c, "B", max_count=1)) == [(s3, 1)])
        # s1 is A's; s3 is B's; s4 ready, never A's; s0 before the start and s5 of
        # another prefix are not group events; 99 is no event. Reading: a sequence
        # named twice in one ack counts once.
        check(ack(c, "A", [s1, s3, s4, s0, s5, 99, s1]) == 1)
        check(ack(c, "A", [s1]) == 0, "acked already")
        check(ack(c, "B", [s2]) == 0, "leased to A")
        info(c, leased=2, acked_through=s1)
        time.sleep(1.15)  # the leases of s2 (A) and s3 (B) end
        info(c, leased=0)
        check(ack(c, "A", [s2]) == 1, "A's lease of s2 ended and nobody leased it since")
        check(got(fetch(c, "C", max_count=10)) == [(s3, 2), (s4, 1)])
        check(ack(c, "B", [s3]) == 0, "B's lease ended and C has leased it since")
        check(ack(c, "C", [s3, s4]) == 2)
        info(c, leased=0, parked=0, acked_through=s5, head_sequence=s5)
        # never again, though C's leases would have ended by now
        r = fetch(c, "A", wait_ms=1200)
        check(r["events"] == [], r)


def t_nack_rules(enc):
    """retry: ready now, delivered again with delivery + 1; park: parked with
    the reason; skip: as acked. Only the consumer's own events count."""
    with broker() as d:
        c = Client(d.commands, enc)
        s1, s2, s3 = fill(c, "a-1", "a-2", "a-3")
        create(c, ordering="none")
        check(got(fetch(c, "A", max_count=3)) == [(s1, 1), (s2, 1), (s3, 1)])
        check(nack(c, "B", [s1, s2, s3], "retry") == 0, "leased to A")
        check(nack(c, "A", [s1], "retry", "try again") == 1)
        check(got(fetch(c, "B")) == [(s1, 2)], "ready at once")
        check(nack(c, "A", [s1], "park", "not mine now") == 0, "leased to B now")
        check(nack(c, "A", [s2], "park", "bad address") == 1)
        check(nack(c, "A", [s3, 99], "skip", "") == 1)
        info(c, leased=1, parked=1, acked_through=s1 - 1)
        r = parked(c)
        check(got(r) == [(s2, 1)] and r["events"][0]["reason"] == "bad address", r)
        same_records(c, r["events"], "delivery", "reason")
        check(ack(c, "B", [s1]) == 1)
        info(c, leased=0, parked=1, acked_through=s3)
        for action in ("retry", "park", "skip"):
            check(nack(c, "A", [s1, s2, s3], action) == 0, ("acked or parked", action))
        check(fetch(c, "A")["events"] == [], "nothing ready")
        check(parked(c)["events"][0]["reason"] == "bad address", "a second park changed it")


def t_nack_retry_counts(enc):
    """Reading (as EventStoreDB's nack retry and JetStream's Nak): a retry
    ends a delivery, so a retried last delivery is parked with reason
    "max deliveries"."""
    with broker() as d:
        c = Client(d.commands, enc)
        s = fill(c, "a-1")[0]
        create(c, max_deliveries=2)
        check(got(fetch(c, "A")) == [(s, 1)])
        check(nack(c, "A", [s], "retry") == 1)
        check(got(fetch(c, "A")) == [(s, 2)])
        check(nack(c, "A", [s], "retry") == 1)
        check(fetch(c, "A")["events"] == [], "delivered max_deliveries times")
        info(c, parked=1, leased=0, acked_through=s)
        r = parked(c)
        check(got(r) == [(s, 2)] and r["events"][0]["reason"] == "max deliveries", r)


# ---- group_info, group_list, group_delete ----------------------------------------------------

def t_acked_through(enc):
    """acked_through is the highest sequence such that every group event up
    to it is acked or parked: S - 1 at first, past a non-group event only
    with the group events before it, never past an event ready or leased
    (retried or replayed ones too: it moves back)."""
    with broker() as d:
        c = Client(d.commands, enc)
        s1, b1, s3, s4, s5 = fill(c, "a-1", "b-1", "a-2", "a-3", "a-4")
        create(c, prefix="a-", ordering="none")
        info(c, acked_through=0, leased=0, parked=0, head_sequence=5)
        check(got(fetch(c, "A", max_count=3)) == [(s1, 1), (s3, 1), (s4, 1)])
        check(ack(c, "A", [s3]) == 1)
        info(c, acked_through=0, leased=2)
        check(ack(c, "A", [s1]) == 1)
        info(c, acked_through=s3, leased=1)  # b-1 (2) is no group event
        check(nack(c, "A", [s4], "park", "p") == 1)
        info(c, acked_through=s4, leased=0, parked=1)  # s5 is ready: no further
        check(got(fetch(c, "A")) == [(s5, 1)])
        check(nack(c, "A", [s5], "retry") == 1)
        info(c, acked_through=s4)
        check(got(fetch(c, "A")) == [(s5, 2)])
        check(ack(c, "A", [s5]) == 1)
        info(c, acked_through=s5, leased=0, parked=1, head_sequence=5)
        # Reading: past the last group event every later sequence qualifies up to the
        # head, so a group with nothing to do has acked_through == head (lag 0).
        b2 = fill(c, "b-2")[0]
        info(c, acked_through=b2, head_sequence=b2)
        # Reading (the definition taken literally): a replayed event is ready, not acked
        # or parked, so acked_through moves back below it.
        check(replay_parked(c, sequences=[s4]) == 1)
        info(c, acked_through=s3, parked=0)


def t_list_delete(enc):
    with broker() as d:
        c = Client(d.commands, enc)
        r = c.call({"type": "group_list"})
        check(r == {"type": "groups", "in_reply_to": r["in_reply_to"], "groups": []}, r)
        fill(c, "a-1", "b-1")
        create(c, "g1")
        create(c, "g2", prefix="b-", event_types=["T"], ordering="none", ack_timeout_ms=500,
               max_deliveries=9, from_sequence="end")
        create(c, "g3", from_sequence=2)
        check(got(fetch(c, "w", "g1")) == [(1, 1), (2, 1)])
        check(ack(c, "w", [1], "g1") == 1)
        r = c.call({"type": "group_list"})
        check(r["type"] == "groups" and list(r) == ["type", "in_reply_to", "groups"], r)
        # Reading: the contract gives no order for the list; compared by name
        listed = {g["group"]: g for g in r["groups"]}
        check(len(r["groups"]) == 3 and set(listed) == {"g1", "g2", "g3"}, r)
        for name in listed:
            full = info(c, name)
            want = {k: v for k, v in full.items() if k not in ("type", "in_reply_to")}
            check(listed[name] == want and list(listed[name]) == INFO[2:], (listed[name], want))
        check(listed["g1"]["acked_through"] == 1 and listed["g1"]["leased"] == 1, listed)
        r = c.call({"type": "group_delete", "group": "g1"})
        check(r == {"type": "group_deleted", "in_reply_to": r["in_reply_to"], "group": "g1"}
              and list(r) == ["type", "in_reply_to", "group"], r)
        for body in ({"type": "group_info", "group": "g1"}, fetch_body("w", "g1"),
                     {"type": "group_ack", "group": "g1", "consumer": "w", "sequences": [2]},
                     {"type": "group_delete", "group": "g1"}):
            refused(c.call(body), 20, body)
        check({g["group"] for g in c.call({"type": "group_list"})["groups"]} == {"g2", "g3"})
        # Reading: a group made again under a deleted one's name is a new group, with
        # none of the old one's acks (as deleting and re-adding a JetStream consumer).
        check(create(c, "g1", ordering="none") == 1)
        check(got(fetch(c, "w", "g1")) == [(1, 1), (2, 1)])


# ---- parked events --------------------------------------------------------------------

def t_parked_replay(enc):
    with broker() as d:
        c = Client(d.commands, enc)
        s = fill(c, "a-1", "a-2", "a-3", "a-4", "a-5")
        create(c, ordering="none")
        r = parked(c)
        check(r["events"] == [] and "next_sequence" not in r, r)
        check(len(fetch(c, "A", max_count=5)["events"]) == 5)
        for seq in (s[0], s[2], s[4]):
            check(nack(c, "A", [seq], "park", f"r{seq}") == 1)
        check(ack(c, "A", [s[1], s[3]]) == 2)
        info(c, parked=3, leased=0, acked_through=s[4])
        r = parked(c)  # defaults: from 1, up to 1000
        check(got(r) == [(s[0], 1), (s[2], 1), (s[4], 1)] and "next_sequence" not in r, r)
        check([e["reason"] for e in r["events"]] == [f"r{s[0]}", f"r{s[2]}", f"r{s[4]}"], r)
        same_records(c, r["events"], "delivery", "reason")
        r = parked(c, from_sequence=1, max_count=2)
        # Reading: next_sequence is where to go on, past the last one given (as
        # read_all's); any value up to the next parked one is taken.
        check(got(r) == [(s[0], 1), (s[2], 1)] and s[2] < r.get("next_sequence", 0) <= s[4], r)
        r = parked(c, from_sequence=r["next_sequence"], max_count=2)
        check(got(r) == [(s[4], 1)] and "next_sequence" not in r, r)
        # Reading: a full page that ends the list has no next_sequence (as read's).
        r = parked(c, from_sequence=s[1], max_count=2)
        check(got(r) == [(s[2], 1), (s[4], 1)] and "next_sequence" not in r, r)
        # Reading: "sequences": [] names none (only a missing list means all); sequences
        # that are not parked are not counted.
        check(replay_parked(c, sequences=[]) == 0)
        check(replay_parked(c, sequences=[s[2], s[1], 99]) == 1)
        check(got(parked(c)) == [(s[0], 1), (s[4], 1)])
        info(c, parked=2, acked_through=s[1])
        check(got(fetch(c, "B")) == [(s[2], 1)], "replayed: ready, delivery counted from 0")
        check(replay_parked(c) == 2)
        info(c, parked=0, leased=1, acked_through=s[0] - 1)
        check(got(fetch(c, "B")) == [(s[0], 1), (s[4], 1)])
        check(parked(c)["events"] == [])
        check(ack(c, "B", [s[0], s[2], s[4]]) == 3)
        info(c, parked=0, leased=0, acked_through=s[4])


# ---- durability -----------------------------------------------------------------------

def t_durable():
    """Acks, parks, skips, creates and deletes survive a SIGKILL; leases do not."""
    store = new_store()
    try:
        d = Annald(data=store)
        try:
            c = Client(d.commands, "msgpack")
            x1, x2, x3, y1, z1, w1 = fill(c, "x-1", "x-1", "x-1", "y-1", "z-1", "w-1")
            create(c)
            check(create(c, "h", from_sequence="end") == 7)
            create(c, "k")
            check(c.call({"type": "group_delete", "group": "k"})["type"] == "group_deleted")
            check(got(fetch(c, "A", max_count=10)) == [(x1, 1), (y1, 1), (z1, 1), (w1, 1)])
            check(ack(c, "A", [x1]) == 1)
            check(nack(c, "A", [y1], "park", "bad") == 1)
            check(nack(c, "A", [z1], "skip") == 1)
            check(got(fetch(c, "A", max_count=10)) == [(x2, 1)])  # x2 and w1 leased to A
            d.stop(signal.SIGKILL)
        finally:
            d.cleanup()
        d = Annald(data=store)
        try:
            c = Client(d.commands, "json")
            r = info(c)
            check(r == dict({"type": "group", "in_reply_to": r["in_reply_to"], "group": "g"},
                            **DEFAULTS, start_sequence=1, acked_through=x1, leased=0,
                            parked=1, head_sequence=6, lag=6 - x1), r)
            info(c, "h", start_sequence=7, acked_through=6)
            refused(c.call({"type": "group_info", "group": "k"}), 20, "deleted before the kill")
            r = fetch(c, "B", max_count=10)
            # the leases were lost: x2 (x3 waits behind it) and w1 are ready again.
            # Reading: whether a delivery count survives a restart is not said (leases
            # live in memory); 1 or 2 is taken.
            check([s for s, _ in got(r)] == [x2, w1] and all(n in (1, 2) for _, n in got(r)), r)
            r = parked(c)
            check(got(r) == [(y1, 1)] and r["events"][0]["reason"] == "bad", r)
            check(ack(c, "B", [x2, w1]) == 2)
            d.stop(signal.SIGKILL)
        finally:
            d.cleanup()
        d = Annald(data=store)
        try:
            c = Client(d.commands)
            check(got(fetch(c, "C", max_count=10)) == [(x3, 1)])
            info(c, acked_through=x2, leased=1, parked=1)
            check(ack(c, "C", [x3]) == 1)
            info(c, acked_through=w1, leased=0, parked=1)
            check(d.stop() == 0, d.stderr())
        finally:
            d.cleanup()
    finally:
        if not PG:
            shutil.rmtree(store, ignore_errors=True)


# ---- section 7: removed events --------------------------------------------------------

def t_removed_events():
    """A group event removed by delete_aggregate before it is acked leaves
    the group as if acked; the $deleted event is a group event like any."""
    with broker() as d:
        c = Client(d.commands, "msgpack")
        x1, x2, y1 = fill(c, "x-1", "x-1", "y-1")
        create(c)
        check(got(fetch(c, "A", max_count=10)) == [(x1, 1), (y1, 1)])
        r = c.call({"type": "delete_aggregate", "aggregate_id": "x-1", "version": "any"})
        if r["type"] == "error" and r["code"] == 10:
            print("  (delete_aggregate is not served yet: not checked)")
            return
        check(r["type"] == "aggregate_deleted" and r["version"] == 3, r)
        deleted = r["sequence_number"]
        info(c, acked_through=x2, leased=1)  # x1 and x2 as if acked; y1 leased
        check(ack(c, "A", [x1]) == 0, "removed: as if acked")
        r = fetch(c, "B", max_count=10)
        check(got(r) == [(deleted, 1)] and r["events"][0]["event_type"] == "$deleted", r)
        check(ack(c, "A", [y1]) == 1 and ack(c, "B", [deleted]) == 1)
        info(c, acked_through=deleted, leased=0)


# ---- several brokers on one PostgreSQL database ----------------------------------------

def t_pg_one_lease():
    """Two brokers share each group: a create on both at once makes one
    group; consumers on both, fetching at once, never get one event while
    another holds it (ordering "none" and "aggregate"); a lease taken
    through A holds on B until it ends."""
    procs = brokers(2, new_store())
    try:
        a, b = (Client(d.commands, "msgpack") for d in procs)
        aggs = [f"p-{i}" for i in range(8)]
        interleaved(a, aggs, 8)
        replies = [None, None]

        def make(i, c):
            replies[i] = c.call({"type": "group_create", "group": "both", "ordering": "none"})
        threads = [threading.Thread(target=make, args=(i, c)) for i, c in enumerate((a, b))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check(all(r and r["type"] == "group_created" and r["start_sequence"] == 1
                  for r in replies), replies)
        check(len(b.call({"type": "group_list"})["groups"]) == 1)
        clients = [Client(d.commands, enc) for d in procs for enc in ("json", "msgpack")]
        compete(clients, 64, "none", "both")
        info(b, "both", acked_through=64, leased=0)
        create(b, "ordered")
        done = compete(clients, 64, "aggregate", "ordered")
        check(all(done[x] == list(range(1, 9)) for x in aggs), dict(done))
        info(a, "ordered", acked_through=64, leased=0)
        s = fill(a, "q-1")[0]
        create(a, "short", from_sequence=s, ack_timeout_ms=1000)  # 1 s: checks within it
        t0 = time.monotonic()
        check(got(fetch(a, "wa", "short")) == [(s, 1)])
        check(fetch(b, "wb", "short")["events"] == [], "leased through the other broker")
        info(b, "short", leased=1)
        fb, _ = start_wait(b, "wb", 3000, "short")
        r, t1 = end_wait(b, fb, "short")
        check(got(r) == [(s, 2)] and 1.0 - SLACK <= t1 - t0 < 1.0 + SOON, (r, t1 - t0))
        check(ack(a, "wa", [s], "short") == 0, "wa's lease ended and wb leased it since")
        check(ack(b, "wb", [s], "short") == 1)
    finally:
        stop_all(procs)


def t_pg_wait_across():
    """A fetch waiting on broker A is answered soon after an append through
    broker B makes an event ready."""
    procs = brokers(2, new_store())
    try:
        a, b = Client(procs[0].commands, "json"), Client(procs[1].commands, "msgpack")
        create(b, prefix="w-")
        fid, _ = start_wait(a, "wa", 3000)
        fill(b, "other-1")
        t_append = time.monotonic()
        s = fill(b, "w-1")[0]
        r, t = end_wait(a, fid)
        check(got(r) == [(s, 1)] and t - t_append < SOON, (r, t - t_append))
        same_records(a, r["events"], "delivery")
    finally:
        stop_all(procs)


def t_pg_wake_across():
    """A fetch waiting on broker A is answered soon after an ack or a nack
    through broker B frees the aggregate it waits behind, and a replay
    through B of an event parked through A is seen by A at once."""
    procs = brokers(2, new_store())
    try:
        a, b = Client(procs[0].commands, "msgpack"), Client(procs[1].commands, "json")
        x1, x2, x3 = fill(a, "x-1", "x-1", "x-1")
        create(a)
        check(got(fetch(b, "wb")) == [(x1, 1)])
        fid, _ = start_wait(a, "wa", 3000)  # x2 waits behind x1, leased through B
        t_ack = time.monotonic()
        check(ack(b, "wb", [x1]) == 1)
        r, t = end_wait(a, fid)
        check(got(r) == [(x2, 1)] and t - t_ack < SOON, (r, t - t_ack))
        fid, _ = start_wait(b, "wb", 3000)  # x3 waits behind x2, leased through A
        t_nack = time.monotonic()
        check(nack(a, "wa", [x2], "park", "bad") == 1)
        r, t = end_wait(b, fid)
        check(got(r) == [(x3, 1)] and t - t_nack < SOON, (r, t - t_nack))
        info(a, leased=1, parked=1, acked_through=x2)
        check(replay_parked(b) == 1)
        info(a, leased=1, parked=0, acked_through=x1)
        check(ack(b, "wb", [x3]) == 1)
        check(got(fetch(a, "wa")) == [(x2, 1)], "replayed through B: ready on A, delivery 0")
        check(ack(a, "wa", [x2]) == 1)
        info(b, leased=0, parked=0, acked_through=x3, lag=0)
    finally:
        stop_all(procs)


def t_pg_broker_dies():
    """The leases taken through a broker that is killed end with it: a
    broker that loads the group afterwards finds those events ready at once,
    long before their ack timeout, and the consumer may still ack them (its
    lease ended and nobody leased them since); acks through it survive."""
    store = new_store()
    procs = brokers(2, store)
    try:
        a, b = (Client(d.commands, "msgpack") for d in procs)
        y1, z1, w1 = fill(a, "y-1", "z-1", "w-1")
        create(b, ack_timeout_ms=60000)
        check(got(fetch(a, "wa", max_count=3)) == [(y1, 1), (z1, 1), (w1, 1)])
        check(ack(a, "wa", [y1]) == 1)
        procs[0].stop(signal.SIGKILL)
        procs[0].cleanup()
        procs = procs[1:]
        c = Annald(data=store)
        procs.append(c)
        c = Client(c.commands, "json")
        info(c, leased=0, acked_through=y1)
        check(ack(c, "wa", [z1]) == 1, "wa's lease ended with its broker; nobody leased it since")
        check(got(fetch(c, "wc", max_count=3)) == [(w1, 2)])
        check(ack(c, "wc", [w1]) == 1)
        info(c, leased=0, acked_through=w1)
    finally:
        stop_all(procs)


def t_pg_removed_across():
    """Events removed by a delete_aggregate through broker A are never handed
    out by broker B, whose copy of the group held them already."""
    procs = brokers(2, new_store())
    try:
        a, b = Client(procs[0].commands, "json"), Client(procs[1].commands, "msgpack")
        x1, x2, y1 = fill(a, "x-1", "x-1", "y-1")
        create(a, ordering="none")
        check(got(fetch(b, "wb", max_count=1)) == [(x1, 1)])  # B's copy holds x1, x2, y1
        r = a.call({"type": "delete_aggregate", "aggregate_id": "x-1", "version": 2})
        check(r["type"] == "aggregate_deleted", r)
        check(got(fetch(b, "wb", max_count=10)) == [(y1, 1), (r["sequence_number"], 1)])
        check(ack(b, "wb", [y1, r["sequence_number"]]) == 2)
    finally:
        stop_all(procs)


# ---- the table ------------------------------------------------------------------------------

def served():
    """Whether this annald serves consumer groups (a probe group on a fresh one)."""
    with broker() as d:
        r = Client(d.commands).call({"type": "group_create", "group": "probe"})
    return not (r["type"] == "error" and r["code"] == 10)


def each_encoding(name, fn):
    return [(f"{name}.{enc}", functools.partial(fn, enc)) for enc in ("json", "msgpack")]


if not served():
    print("skipped: annald does not serve consumer groups yet (issue 14)")
    raise SystemExit(77)
if not PG:
    print("pg_*: several brokers on one PostgreSQL database (run under tests/pg_cluster.sh)")
run([
    *each_encoding("create_defaults", t_create_defaults),
    *each_encoding("create_end", t_create_end),
    *each_encoding("create_conflict", t_create_conflict),
    *each_encoding("create_bad", t_create_bad),
    *each_encoding("create_bounds", t_create_bounds),
    *each_encoding("fetch_filter", t_fetch_filter),
    *each_encoding("fetch_max_count", t_fetch_max_count),
    *each_encoding("fetch_errors", t_fetch_errors),
    *each_encoding("wait_append", t_wait_append),
    *each_encoding("wait_timeout", t_wait_timeout),
    *each_encoding("wait_two_waiters", t_wait_two_waiters),
    *each_encoding("wait_ack_nack", t_wait_ack_nack),
    *each_encoding("ordering_rule", t_ordering_rule),
    *each_encoding("ordering_after_expiry", t_ordering_after_expiry),
    ("ordering_compete", t_ordering_compete),
    ("ordering_far_behind", t_ordering_far_behind),
    *each_encoding("lease_expiry", t_lease_expiry),
    *each_encoding("ack_rules", t_ack_rules),
    *each_encoding("nack_rules", t_nack_rules),
    *each_encoding("nack_retry_counts", t_nack_retry_counts),
    *each_encoding("acked_through", t_acked_through),
    *each_encoding("list_delete", t_list_delete),
    *each_encoding("parked_replay", t_parked_replay),
    ("durable", t_durable),
    ("removed_events", t_removed_events),
    *([("pg_one_lease", t_pg_one_lease), ("pg_wait_across", t_pg_wait_across),
       ("pg_wake_across", t_pg_wake_across), ("pg_broker_dies", t_pg_broker_dies),
       ("pg_removed_across", t_pg_removed_across)]
      if PG else []),
])
