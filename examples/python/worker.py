#!/usr/bin/env python3
"""A worker of a consumer group, with the annal package: run several (in
processes, or on several machines) with different names and annald shares
the `user-` events among them, each one aggregate's events in order. A
worker killed mid-run loses nothing: what it had leased comes back to the
others when its lease ends.

The "work" is a line of JSON per event on stdout (a real worker would send
the e-mail); an event of type Poison fails for good and is parked.

    ANNAL_COMMANDS=tcp://127.0.0.1:5555 python3 worker.py w1
"""
import json
import os
import signal
import sys
import threading

import annal


def handle(e):
    if e.event_type == "Poison":
        raise annal.PermanentError("cannot be handled")
    print(json.dumps({"sequence_number": e.sequence_number, "aggregate_id": e.aggregate_id,
                      "version": e.version, "delivery": e.delivery}), flush=True)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: worker.py NAME")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with annal.Client(os.environ.get("ANNAL_COMMANDS", "tcp://127.0.0.1:5555")) as c:
        group = c.group("mailer")
        group.create(prefix="user-", ack_timeout_ms=2000)  # the same settings at every start
        group.consume(sys.argv[1], handle, wait_ms=500, stop=stop)


if __name__ == "__main__":
    main()
