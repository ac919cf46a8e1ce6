"""The conformance driver for the Python package (tests/conformance/README.md
gives the line protocol every client's driver speaks).

driver.py COMMANDS EVENTS: one JSON operation per line on stdin, run
through the annal package's public API only, one JSON result line on
stdout, flushed, before the next is read."""
import json
import sys

import annal


class UnknownOp(Exception):
    pass


def error(err):
    kinds = [(annal.ConcurrencyError, "concurrency"), (annal.Unavailable, "unavailable"),
             (annal.InvalidRequest, "invalid"), (annal.NotFound, "not_found"),
             (annal.Gone, "gone")]
    kind = next((k for cls, k in kinds if isinstance(err, cls)), "other")
    return {"error": {"kind": kind, "code": err.code,
                      "actual_version": getattr(err, "actual_version", None)}}


def record(e):
    return {k: getattr(e, k) for k in ("sequence_number", "event_id", "aggregate_id", "version",
                                       "event_type", "event_data", "metadata", "recorded_at")}


def handle(e):
    """The handler every driver runs (see README.md)."""
    if e.event_data.get("park"):
        raise annal.PermanentError("park requested")
    if e.event_data.get("fail_once") and e.delivery == 1:
        raise RuntimeError("first delivery fails")


def run(c, op):
    kind = op["op"]
    if kind == "append":
        a = c.append(op["aggregate_id"], op["event_type"], op["event_data"],
                     expected_version=op.get("expected_version", "any"),
                     event_id=op.get("event_id"))
        return {"sequence_number": a.sequence_number, "event_id": a.event_id}
    if kind == "append_batch":
        b = c.append_batch(op["aggregate_id"], op["events"],
                           expected_version=op.get("expected_version", "any"))
        return {"first_sequence_number": b.first_sequence_number,
                "last_sequence_number": b.last_sequence_number, "version": b.version}
    if kind == "read":
        return [record(e) for e in c.read(op["aggregate_id"], op.get("from_version"),
                                          op.get("direction", "forward"),
                                          op.get("page_size", 1000))]
    if kind == "read_all":
        return [record(e) for e in c.read_all(op.get("from_sequence", 1), op.get("prefix"),
                                              op.get("event_types"), op.get("page_size", 1000))]
    if kind == "create_snapshot":
        s = (c.create_snapshot(op["aggregate_id"], op["state"]) if "state" in op
             else c.create_snapshot(op["aggregate_id"]))
        return {"version": s.version}
    if kind == "get_snapshot":
        s = c.get_snapshot(op["aggregate_id"])
        return {"version": s.version, "state": s.state}
    if kind == "delete":
        d = c.delete_aggregate(op["aggregate_id"], expected_version=op["expected_version"],
                               hard=op.get("hard", False))
        return {"version": d.version, "sequence_number": d.sequence_number}
    if kind == "subscribe":
        seen = []
        with c.subscribe(op.get("prefix", ""), op.get("from_sequence", "end"),
                         queue=op.get("queue") or 10000) as sub:
            for e in sub.events(idle_timeout=op.get("timeout_ms", 30000) / 1000):
                seen.append([e.sequence_number, e.aggregate_id, e.event_type])
                if len(seen) >= op.get("count", 1):
                    break
        return seen
    if kind == "group_create":
        start = c.group(op["group"]).create(prefix=op.get("prefix", ""),
                                            ordering=op.get("ordering", "aggregate"),
                                            ack_timeout_ms=op.get("ack_timeout_ms", 30000),
                                            max_deliveries=op.get("max_deliveries", 5))
        return {"start_sequence": start}
    if kind == "consume":
        handled = []

        def record_ok(e):
            handle(e)
            handled.append([e.sequence_number, e.aggregate_id, e.version, e.delivery])
        c.group(op["group"]).consume(op["consumer"], record_ok, max_count=10, wait_ms=200,
                                     max_events=op.get("count", 1))
        return handled
    if kind == "group_info":
        i = c.group(op["group"]).info()
        return {"acked_through": i.acked_through, "leased": i.leased, "parked": i.parked,
                "lag": i.lag}
    raise UnknownOp(kind)


def main():
    commands, events = sys.argv[1:3]
    with annal.Client(commands, events, timeout=2.0) as c:
        for line in sys.stdin:
            op = json.loads(line)
            try:
                result = {"ok": run(c, op)}
            except annal.AnnalError as err:
                result = error(err)
            except UnknownOp:
                result = {"error": {"kind": "unknown_op", "code": None, "actual_version": None}}
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
