#!/usr/bin/env python3
"""Optimistic concurrency done right, with the annal package: two writers
increment one counter 20 times each, each time reading the state, deciding
and appending at the version read; on a conflict they read again. The
final value is 40 whatever the interleaving, and a subscriber sees every
increment once, in order.

    python3 counter.py COMMANDS EVENTS     # prints {"counter": ..., "version": ..., "seen": [...]}
"""
import json
import sys
import threading

import annal


def increment(c, counter):
    """Read, decide, append at the version read; again on a conflict."""
    while True:
        r = c.replay(counter)
        try:
            return c.append(counter, "Incremented", {"n": r.state.get("n", 0) + 1},
                            expected_version=r.version)
        except annal.ConcurrencyError:
            continue  # another writer was first: decide again on the new state


def main():
    commands, events = sys.argv[1:3]
    seen = []
    with annal.Client(commands, events) as c:
        with c.subscribe(prefix="counter-", from_sequence=1) as sub:
            def writer():
                with annal.Client(commands) as w:
                    for _ in range(20):
                        increment(w, "counter-1")
            writers = [threading.Thread(target=writer) for _ in range(2)]
            for t in writers:
                t.start()
            for e in sub.events(idle_timeout=10):
                seen.append(e.sequence_number)
                if len(seen) == 40:
                    break
            for t in writers:
                t.join()
        r = c.replay("counter-1")
        print(json.dumps({"counter": r.state, "version": r.version, "seen": seen}))


if __name__ == "__main__":
    main()
