"""annal.Subscription against a real annald: history then live, exactly
once and in order across a SIGKILL and restart of annald, a forced PUB
drop, holes left by a deletion, a prefix, and "end"."""
import threading
import time
import unittest

import annal
from annald import Annald, AnnaldCase


def collect(sub, want, idle=10.0):
    """The sequences of the first `want` events (or what came before idle)."""
    got = []
    for e in sub.events(idle_timeout=idle):
        got.append(e.sequence_number)
        if len(got) >= want:
            break
    return got


class SubscriptionTest(AnnaldCase):
    timeout = 2

    def test_history_then_live(self):
        for i in range(5):
            self.c.append(f"a-{i % 2}", "T", {"i": i})
        with self.c.subscribe() as sub:
            def later():
                time.sleep(0.5)
                with annal.Client(self.d.commands) as w:
                    for i in range(5):
                        w.append("b-1", "T", {"i": i})
            t = threading.Thread(target=later)
            t.start()
            self.assertEqual(collect(sub, 10), list(range(1, 11)))
            t.join()
            self.assertEqual(sub.position, 11)
            self.assertEqual(sub.stats.read + sub.stats.live, 10)

    def test_prefix_and_end(self):
        for i in range(4):
            self.c.append("user-1" if i % 2 else "order-1", "T", {})
        with self.c.subscribe(prefix="user-") as sub:
            self.assertEqual(collect(sub, 2), [2, 4])
            self.c.append("order-1", "T", {})
            self.c.append("user-2", "T", {})
            self.assertEqual(collect(sub, 1), [6])
        with self.c.subscribe(from_sequence="end") as sub:
            first = collect(sub, 1, idle=1.0)
            self.assertEqual(first, [])  # nothing new yet
            self.c.append("x-1", "T", {})
            self.assertEqual(collect(sub, 1), [7])

    def test_exactly_once_across_sigkill_and_restart(self):
        got = []
        stop = threading.Event()
        done = threading.Event()

        def consume():
            with annal.Client(self.d.commands, self.d.events, timeout=1) as c:
                with c.subscribe() as sub:
                    for e in sub.events(idle_timeout=30):
                        got.append(e.sequence_number)
                        if len(got) >= 300 or stop.is_set():
                            break
            done.set()

        t = threading.Thread(target=consume)
        t.start()
        for i in range(100):
            self.c.append(f"k-{i % 7}", "T", {"i": i})
        self.d.kill()
        time.sleep(0.5)
        self.d.start()
        writer = annal.Client(self.d.commands, timeout=5)
        for i in range(100, 300):
            writer.append(f"k-{i % 7}", "T", {"i": i})
            if i == 200:
                self.d.kill()
                self.d.start()
                writer.close()
                writer = annal.Client(self.d.commands, timeout=5)
        writer.close()
        done.wait(60)
        stop.set()
        t.join(10)
        self.assertEqual(got, list(range(1, 301)))

    def test_forced_pub_drop(self):
        self.d.cleanup()
        self.d = Annald("--pub-hwm", "10")
        self.c.close()
        self.c = annal.Client(self.d.commands, self.d.events, timeout=5)
        with self.c.subscribe(queue=10) as sub:
            self.assertEqual(collect(sub, 1, idle=1.0), [])  # caught up, live
            for i in range(40):
                self.c.append_batch(f"z-{i}", [{"event_type": "T", "event_data": {"n": n}}
                                               for n in range(100)])
            got = collect(sub, 4000)
            self.assertEqual(got, list(range(1, 4001)))
            # PUB dropped most of them: reads filled the gaps
            self.assertGreater(sub.stats.read, 0)
            self.assertGreater(sub.stats.reads, 1)

    def test_a_store_behind_the_position_stops_it(self):
        for i in range(5):
            self.c.append("s-1", "T", {})
        with self.c.subscribe(from_sequence=100) as sub:  # a checkpoint of another store
            with self.assertRaises(annal.StoreChanged):
                collect(sub, 1)
            self.assertEqual(sub.position, 100)  # nothing skipped

    def test_holes_from_a_deletion(self):
        for i in range(6):
            self.c.append("h-1" if i < 3 else "h-2", "T", {"i": i})
        self.c.delete_aggregate("h-1", expected_version=3)  # removes 1..3, $deleted is 7
        with self.c.subscribe() as sub:
            self.assertEqual(collect(sub, 4), [4, 5, 6, 7])
            self.assertEqual(sub.stats.skipped, 3)
            self.assertEqual(collect(sub, 1, idle=1.0), [])  # caught up: live now
            # an event published before its deletion was handed over live;
            # its $deleted follows, in order
            self.c.append("h-3", "T", {})
            self.c.delete_aggregate("h-3", expected_version=1)
            self.c.append("h-4", "T", {})
            self.assertEqual(collect(sub, 3), [8, 9, 10])
        with self.c.subscribe(from_sequence=8) as sub:  # 8 is removed by now
            self.assertEqual(collect(sub, 2), [9, 10])


if __name__ == "__main__":
    unittest.main()
