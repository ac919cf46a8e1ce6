"""The conformance suite: the same cases against every client's driver.

conformance.py BIN DRIVER...: runs each case on a fresh annald (BIN/annald)
with one or more processes of DRIVER (the command that starts a driver;
it gets the command and event endpoints as its last two arguments),
and checks what the driver reports against what the protocol says. The
drivers' line protocol is in README.md. A case that fails says which and
why; the status is 1 if any failed."""
import json
import os
import re
import subprocess
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from annal_harness import Annald, Client, new_endpoints  # noqa: E402

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
RECORDED_AT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
DRIVER = []


class Driver:
    """One driver process on annald d's endpoints (or on the ones given)."""

    def __init__(self, d=None, endpoints=None):
        commands, events = endpoints or (d.commands, d.events)
        self.proc = subprocess.Popen([*DRIVER, commands, events], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def send(self, **op):
        self.proc.stdin.write(json.dumps(op) + "\n")
        self.proc.stdin.flush()

    def answer(self):
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"the driver ended (status {self.proc.wait()})")
        return json.loads(line)

    def do(self, **op):
        self.send(**op)
        return self.answer()

    def ok(self, **op):
        r = self.do(**op)
        expect("ok" in r, f"{op['op']}: {r}")
        return r["ok"]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(30)


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def fails(r, kind, code=None):
    expect("error" in r and r["error"]["kind"] == kind
           and (code is None or r["error"]["code"] == code), f"want {kind} {code}: {r}")
    return r["error"]


def write(d, aggregate, n, start=0, batch=1):
    """n events appended through the harness's raw client (not the driver)."""
    c = Client(d.commands)
    for i in range(start, start + n, batch):
        events = [{"event_type": "T", "event_data": {"i": j}} for j in range(i, i + batch)]
        r = c.call({"type": "append", "aggregate_id": aggregate(i), "version": "any",
                       "events": events})
        expect(r["type"] == "appended", r)
    c.close()


def case_appends_and_conflicts(d):
    dr = Driver(d)
    a = dr.ok(op="append", aggregate_id="user-1", event_type="UserCreated",
              event_data={"name": "Ada"}, expected_version=0)
    expect(a["sequence_number"] == 1 and UUID.match(a["event_id"]), a)
    e = fails(dr.do(op="append", aggregate_id="user-1", event_type="T", event_data={},
                    expected_version=0), "concurrency")
    expect(e["actual_version"] == 1 and e["code"] is None, e)
    e = fails(dr.do(op="append", aggregate_id="user-2", event_type="T", event_data={},
                    expected_version="exists"), "concurrency")
    expect(e["actual_version"] == 0, e)
    eid = "6f1c2a3b-4d5e-4f60-8a1b-2c3d4e5f6a7b"
    first = dr.ok(op="append", aggregate_id="user-1", event_type="T", event_data={"n": 2},
                  expected_version=1, event_id=eid)
    again = dr.ok(op="append", aggregate_id="user-1", event_type="T", event_data={"n": 2},
                  expected_version=1, event_id=eid)
    expect(first == again == {"sequence_number": 2, "event_id": eid}, (first, again))
    b = dr.ok(op="append_batch", aggregate_id="order-1", expected_version=0,
              events=[{"event_type": "A", "event_data": {"a": 1}},
                      {"event_type": "B", "event_data": None}])
    expect(b == {"first_sequence_number": 3, "last_sequence_number": 4, "version": 2}, b)
    fails(dr.do(op="append_batch", aggregate_id="order-1", expected_version=1,
                events=[{"event_type": "C", "event_data": {}}]), "concurrency")
    everything = dr.ok(op="read_all")
    expect([e["sequence_number"] for e in everything] == [1, 2, 3, 4], everything)
    # code 12 from annald, or no code from a client that refuses it before sending
    for agg, type_ in (("$bad", "T"), ("a-1", "$deleted")):
        e = fails(dr.do(op="append", aggregate_id=agg, event_type=type_, event_data={}),
                  "invalid")
        expect(e["code"] in (12, None), e)
    dr.close()
    away = Driver(endpoints=new_endpoints())  # nobody there
    fails(away.do(op="append", aggregate_id="a-1", event_type="T", event_data={}),
          "unavailable", 11)
    away.close()


def case_reads_and_paging(d):
    dr = Driver(d)
    for i in range(5):
        dr.ok(op="append", aggregate_id="c-1", event_type=f"E{i}", event_data={"i": i})
        dr.ok(op="append", aggregate_id="d-1", event_type="Other", event_data={"i": i})
    fwd = dr.ok(op="read", aggregate_id="c-1", page_size=2)
    expect([e["version"] for e in fwd] == [1, 2, 3, 4, 5], fwd)
    e = fwd[0]
    expect(e["sequence_number"] == 1 and e["aggregate_id"] == "c-1" and e["event_type"] == "E0"
           and e["event_data"] == {"i": 0} and e["metadata"] == {}
           and UUID.match(e["event_id"]) and RECORDED_AT.match(e["recorded_at"]), e)
    back = dr.ok(op="read", aggregate_id="c-1", direction="backward", page_size=2)
    expect([e["version"] for e in back] == [5, 4, 3, 2, 1], back)
    expect([e["version"] for e in dr.ok(op="read", aggregate_id="c-1", from_version=4)]
           == [4, 5], "from_version")
    expect(dr.ok(op="read", aggregate_id="nobody") == [], "an empty aggregate reads as []")
    seqs = [e["sequence_number"] for e in dr.ok(op="read_all", page_size=3)]
    expect(seqs == list(range(1, 11)), seqs)
    seqs = [e["sequence_number"] for e in dr.ok(op="read_all", prefix="d-", page_size=2)]
    expect(seqs == [2, 4, 6, 8, 10], seqs)
    types = [e["event_type"] for e in dr.ok(op="read_all", event_types=["E1", "E3"])]
    expect(types == ["E1", "E3"], types)
    seqs = [e["sequence_number"] for e in dr.ok(op="read_all", from_sequence=9)]
    expect(seqs == [9, 10], seqs)
    dr.close()


def case_snapshots(d):
    dr = Driver(d)
    fails(dr.do(op="get_snapshot", aggregate_id="s-1"), "not_found", 20)
    dr.ok(op="append", aggregate_id="s-1", event_type="A", event_data={"a": 1, "b": {"c": 1}})
    dr.ok(op="append", aggregate_id="s-1", event_type="B", event_data={"a": None, "b": {"d": 2}})
    expect(dr.ok(op="create_snapshot", aggregate_id="s-1") == {"version": 2}, "default fold")
    expect(dr.ok(op="get_snapshot", aggregate_id="s-1")
           == {"version": 2, "state": {"b": {"c": 1, "d": 2}}}, "the default fold's state")
    dr.ok(op="create_snapshot", aggregate_id="s-1", state={"mine": [1, 2]})
    expect(dr.ok(op="get_snapshot", aggregate_id="s-1") == {"version": 2, "state": {"mine": [1, 2]}},
           "a client state")
    dr.close()


def case_subscription_across_sigkill(d):
    write(d, lambda i: f"k-{i % 3}", 50)
    dr = Driver(d)
    dr.send(op="subscribe", prefix="", from_sequence=1, count=150, timeout_ms=60000)
    time.sleep(0.5)
    d.proc.kill()
    d.proc.wait()
    time.sleep(0.3)
    d2 = Annald(data=d.data, args=("--commands", d.commands, "--events", d.events))
    try:
        write(d2, lambda i: f"k-{i % 3}", 100, start=50)
        got = dr.answer()
        expect("ok" in got, got)
        expect([s for s, _, _ in got["ok"]] == list(range(1, 151)), got["ok"])
        dr.close()
    finally:
        d2.cleanup()


def case_forced_pub_drop(_):
    d = Annald(args=("--pub-hwm", "10"))
    try:
        dr = Driver(d)
        dr.send(op="subscribe", prefix="", from_sequence=1, count=4000, queue=10,
                timeout_ms=60000)
        time.sleep(0.5)
        write(d, lambda i: f"z-{i // 100}", 4000, batch=100)
        got = dr.answer()
        expect("ok" in got, got)
        seqs = [s for s, _, _ in got["ok"]]
        expect(seqs == list(range(1, 4001)), f"{len(seqs)} events, first {seqs[:5]}")
        dr.close()
    finally:
        d.cleanup()


def case_hole_from_a_deletion(d):
    dr = Driver(d)
    for i in range(6):
        dr.ok(op="append", aggregate_id="h-1" if i < 3 else "h-2", event_type="T",
              event_data={"i": i})
    deleted = dr.ok(op="delete", aggregate_id="h-1", expected_version=3)
    expect(deleted == {"version": 4, "sequence_number": 7}, deleted)
    got = dr.ok(op="subscribe", prefix="", from_sequence=1, count=4, timeout_ms=20000)
    expect(got == [[4, "h-2", "T"], [5, "h-2", "T"], [6, "h-2", "T"], [7, "h-1", "$deleted"]],
           got)
    got = dr.ok(op="subscribe", prefix="h-1", from_sequence=2, count=1, timeout_ms=20000)
    expect(got == [[7, "h-1", "$deleted"]], got)
    expect([e["version"] for e in dr.ok(op="read", aggregate_id="h-1")] == [4], "read after")
    fails(dr.do(op="delete", aggregate_id="h-2", expected_version=2), "concurrency")
    dr.ok(op="delete", aggregate_id="h-2", expected_version=3, hard=True)
    fails(dr.do(op="append", aggregate_id="h-2", event_type="T", event_data={}), "gone", 21)
    dr.close()


def case_groups(d):
    dr = Driver(d)
    specials = {7: {"park": True}, 11: {"fail_once": True}, 23: {"fail_once": True}}
    for i in range(30):
        dr.ok(op="append", aggregate_id=f"acct-{i % 5}", event_type="T",
              event_data=dict(specials.get(i, {}), i=i))
    dr.ok(op="append", aggregate_id="other-1", event_type="T", event_data={})
    expect(dr.ok(op="group_create", group="g", prefix="acct-") == {"start_sequence": 1}, "create")
    calls = 30 + 2  # each fail_once event is handled twice
    workers = [Driver(d) for _ in range(3)]
    shares = [11, 11, 10]
    for n, (w, share) in enumerate(zip(workers, shares)):
        w.send(op="consume", group="g", consumer=f"w{n}", count=share)
    handled = []
    for w in workers:
        r = w.answer()
        expect("ok" in r, r)
        handled.append(r["ok"])
        w.close()
    done = [h for hs in handled for h in hs]
    seqs = sorted(s for s, _, _, _ in done)
    expect(seqs == [i + 1 for i in range(30) if i != 7], f"handled {seqs}")
    for hs in handled:  # each worker saw each aggregate's events in version order
        for agg in {a for _, a, _, _ in hs}:
            versions = [v for _, a, v, _ in hs if a == agg]
            expect(versions == sorted(versions), (agg, versions))
    retried = sorted(s for s, _, _, delivery in done if delivery == 2)
    expect(retried == [12, 24], f"second deliveries {retried}")
    info = dr.ok(op="group_info", group="g")
    expect(info == {"acked_through": 31, "leased": 0, "parked": 1, "lag": 0}, info)
    expect(sum(len(h) for h in handled) == calls - 3, "handled OK: all but the retried and parked")
    dr.close()


CASES = [case_appends_and_conflicts, case_reads_and_paging, case_snapshots,
         case_subscription_across_sigkill, case_forced_pub_drop, case_hole_from_a_deletion,
         case_groups]


def main():
    DRIVER.extend(sys.argv[2:])
    failed = 0
    for case in CASES:
        d = Annald()
        t = time.monotonic()
        try:
            case(d)
            print(f"ok   {case.__name__[5:]} ({time.monotonic() - t:.1f} s)", flush=True)
        except Exception:  # noqa: BLE001: every case runs, each failure is told
            failed += 1
            print(f"FAIL {case.__name__[5:]}\n{traceback.format_exc()}", flush=True)
        finally:
            d.cleanup()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
