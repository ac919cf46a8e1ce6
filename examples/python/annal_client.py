#!/usr/bin/env python3
"""A small Python client for annal, on Debian's python3-zmq and python3-msgpack.

    client = AnnalClient("tcp://127.0.0.1:5555")
    client.append("user-1", "UserCreated", {"name": "Jo"}, expected=0)
    client.update("counter-1", lambda state, version: [("Incremented", {"n": state.get("n", 0) + 1})])
    for event in client.read("user-1"): ...
    subscribe("tcp://127.0.0.1:5555", "tcp://127.0.0.1:5556", print, prefix="user-")

`update` is the read-decide-append loop with optimistic concurrency: it
retries on concurrency_error with the fresh state. `subscribe` is a
catch-up subscription: history through read_all, then the live PUB
stream, every event exactly once and in order (lost live events are found
from sequence numbers and the $head heartbeat and read again).

Run `python3 annal_client.py demo COMMANDS EVENTS` for a demonstration.
"""
import itertools
import sys
import threading
import time
import uuid

import msgpack
import zmq


class AnnalError(Exception):
    """annald answered an error: .code is the protocol's code (10, 11, 12, 13, 20)."""

    def __init__(self, code, text):
        super().__init__(f"{code}: {text}")
        self.code = code


class ConcurrencyError(Exception):
    """The aggregate was not at the expected version; nothing was written."""


class AnnalClient:
    def __init__(self, commands="tcp://127.0.0.1:5555", timeout_ms=5000, context=None):
        self.sock = (context or zmq.Context.instance()).socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(commands)
        self.timeout_ms = timeout_ms
        self.ids = itertools.count(1)

    def call(self, **body):
        """Sends one request and returns its reply (errors raise)."""
        body["msg_id"] = msg_id = next(self.ids)
        self.sock.send(msgpack.packb(body, use_bin_type=True))
        deadline = time.monotonic() + self.timeout_ms / 1000
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self.sock.poll(int(left * 1000)):
                raise TimeoutError("no reply from annald in time")
            reply = msgpack.unpackb(self.sock.recv(), raw=False)
            if reply.get("in_reply_to") != msg_id:
                continue  # a late reply to an earlier call
            if reply["type"] == "error":
                raise AnnalError(reply["code"], reply["text"])
            if reply["type"] == "concurrency_error":
                raise ConcurrencyError(reply["error"])
            return reply

    def append(self, aggregate_id, event_type, data, expected="any", metadata=None, event_id=None):
        """Appends one event; an event_id is made here so a retry cannot write it twice."""
        return self.call(type="append", aggregate_id=aggregate_id, event_type=event_type,
                         event_data=data, version=expected, metadata=metadata or {},
                         event_id=event_id or str(uuid.uuid4()))

    def append_batch(self, aggregate_id, events, expected="any"):
        """Appends [(event_type, data)] atomically."""
        return self.call(type="append", aggregate_id=aggregate_id, version=expected,
                         events=[{"event_type": t, "event_data": d, "event_id": str(uuid.uuid4())}
                                 for t, d in events])

    def state(self, aggregate_id):
        """(state, version) by the default fold."""
        r = self.call(type="replay", aggregate_id=aggregate_id, use_snapshot=True)
        return r["state"], r["version"]

    def update(self, aggregate_id, decide, retries=50):
        """Read, decide, append at the version read; on a conflict, again."""
        for _ in range(retries):
            state, version = self.state(aggregate_id)
            events = decide(state, version)
            if not events:
                return None
            try:
                return self.append_batch(aggregate_id, events, expected=version)
            except ConcurrencyError:
                continue
        raise ConcurrencyError(f"gave up on {aggregate_id} after {retries} conflicts")

    def read(self, aggregate_id, page=1000):
        """Every event of one aggregate, in version order."""
        version = 1
        while True:
            r = self.call(type="read", aggregate_id=aggregate_id, from_version=version, max_count=page)
            yield from r["events"]
            if "next_version" not in r:
                return
            version = r["next_version"]

    def read_all(self, from_sequence=1, prefix=None, max_count=1000):
        body = dict(type="read_all", from_sequence=from_sequence, max_count=max_count)
        if prefix:
            body["prefix"] = prefix
        return self.call(**body)

    def close(self):
        self.sock.close(0)


def subscribe(commands, events, handler, prefix="", from_sequence=1, stop=lambda: False,
              context=None):
    """Calls handler(event) for every event of aggregates starting with prefix,
    from from_sequence on, exactly once, in sequence order, until stop() is
    true. Returns the next sequence to consider (save it to resume)."""
    ctx = context or zmq.Context.instance()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, prefix.encode())
    if prefix:
        sub.setsockopt(zmq.SUBSCRIBE, b"$head")
    sub.connect(events)  # before the first read: nothing slips between history and live
    client = AnnalClient(commands, context=ctx)
    position, catch_up, last_beat = from_sequence, True, time.monotonic()
    try:
        while not stop():
            if catch_up or time.monotonic() - last_beat > 3:
                try:
                    r = client.read_all(position, prefix)
                except (TimeoutError, AnnalError):
                    time.sleep(0.2)  # annald away: try again
                    continue
                for event in r["events"]:
                    if event["sequence_number"] >= position:
                        handler(event)
                        position = event["sequence_number"] + 1
                position = max(position, r["next_sequence"])
                catch_up = bool(r["events"]) or position <= r["head_sequence"]
                last_beat = time.monotonic()
                continue
            if not sub.poll(200):
                continue
            topic, body = sub.recv_multipart()
            msg = msgpack.unpackb(body, raw=False) if body[:1] != b"{" else __import__("json").loads(body)
            if topic == b"$head":
                last_beat = time.monotonic()
                catch_up = msg["head_sequence"] >= position
            elif msg["sequence_number"] == position:
                handler(msg)
                position += 1
            elif msg["sequence_number"] > position:
                catch_up = True  # a hole: lost, or other aggregates; a read settles it
    finally:
        sub.close(0)
        client.close()
    return position


def demo(commands, events):
    """Two writers increment one counter with retries while a subscriber
    watches; prints a JSON summary line."""
    import json
    client = AnnalClient(commands)
    client.append("demo-user-1", "UserCreated", {"name": "Jo"}, expected=0)
    seen = []
    done = threading.Event()
    watcher = threading.Thread(target=lambda: subscribe(
        commands, events, seen.append, prefix="demo-", stop=lambda: done.is_set() and len(seen) >= 41))
    watcher.start()

    def writer():
        c = AnnalClient(commands)
        for _ in range(20):
            c.update("demo-counter", lambda s, v: [("Incremented", {"n": s.get("n", 0) + 1})])
        c.close()

    writers = [threading.Thread(target=writer) for _ in range(2)]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    done.set()
    watcher.join(30)
    state, version = client.state("demo-counter")
    print(json.dumps({"counter": state, "version": version,
                      "user": [e["event_data"] for e in client.read("demo-user-1")],
                      "seen": [e["sequence_number"] for e in seen]}))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "demo":
        demo(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
