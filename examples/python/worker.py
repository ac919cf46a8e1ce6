#!/usr/bin/env python3
"""A worker of a consumer group, with the annal package: run several (in
processes, or on several machines) with different names and annald shares
the `user-` events among them, each one aggregate's events in order. A
worker killed mid-run loses nothing: what it had leased comes back to the
others when its lease ends.

The "work" is a line of JSON per event on stdout (a real worker would send
the e-mail; --work-ms pretends it takes that long); an event of type Poison
fails for good and is parked.

    ANNAL_COMMANDS=tcp://127.0.0.1:5555 python3 worker.py w1 [--work-ms 5]
"""
import argparse
import json
import os
import signal
import sys
import threading
import time

import annal


def handle(e, work_s):
    if e.event_type == "Poison":
        raise annal.PermanentError("cannot be handled")
    time.sleep(work_s)
    print(json.dumps({"sequence_number": e.sequence_number, "aggregate_id": e.aggregate_id,
                      "version": e.version, "delivery": e.delivery}), flush=True)


def main():
    ap = argparse.ArgumentParser(description="a worker of the consumer group 'mailer'")
    ap.add_argument("name", help="this worker's consumer name, unique in the group")
    ap.add_argument("--work-ms", type=float, default=0, help="time each event takes")
    args = ap.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with annal.Client(os.environ.get("ANNAL_COMMANDS", "tcp://127.0.0.1:5555")) as c:
        group = c.group("mailer")
        group.create(prefix="user-", ack_timeout_ms=2000)  # the same settings at every start
        print(f"{args.name}: consuming", file=sys.stderr, flush=True)
        group.consume(args.name, lambda e: handle(e, args.work_ms / 1000), wait_ms=500,
                      stop=stop)


if __name__ == "__main__":
    main()
