"""annal.Group against a real annald: every group call, and consume() with
three competing consumers losing nothing and parking what fails for good."""
import threading
import unittest

import annal
from annald import AnnaldCase


class GroupTest(AnnaldCase):

    def test_calls(self):
        for i in range(4):
            self.c.append(f"user-{i % 2}", "UserCreated", {"i": i})
        self.c.append("order-1", "Placed", {})
        g = self.c.group("mailer")
        with self.assertRaises(annal.NotFound) as cm:
            g.info()
        self.assertEqual(cm.exception.code, 20)
        self.assertEqual(g.create(prefix="user-", max_deliveries=2, ack_timeout_ms=100), 1)
        self.assertEqual(g.create(prefix="user-", max_deliveries=2, ack_timeout_ms=100), 1)
        with self.assertRaises(annal.InvalidRequest):
            g.create(prefix="other-")
        batch = g.fetch("w1", max_count=10)
        # ordering by aggregate: one event of each aggregate at a time
        self.assertEqual([(e.sequence_number, e.delivery) for e in batch], [(1, 1), (2, 1)])
        self.assertEqual(g.fetch("w2"), [])
        self.assertEqual(g.ack("w1", [1]), 1)
        self.assertEqual(g.ack("w2", [2]), 0)  # not w2's
        self.assertEqual(g.nack("w1", [2], "park", "bad address"), 1)
        self.assertEqual([e.sequence_number for e in g.fetch("w2", 10)], [3, 4])
        info = g.info()
        self.assertEqual((info.acked_through, info.leased, info.parked, info.head_sequence,
                          info.lag), (2, 2, 1, 5, 3))
        [parked] = list(g.parked())
        self.assertEqual((parked.sequence_number, parked.reason), (2, "bad address"))
        self.assertEqual(g.replay_parked(), 1)
        self.assertEqual(g.info().parked, 0)
        # the lease of 3 ends (100 ms): it is fetched again with delivery 2
        again = g.fetch("w3", 10, wait_ms=2000)
        self.assertIn(2, [e.sequence_number for e in again])
        self.assertEqual([i.group for i in self.c.groups()], ["mailer"])
        g.delete()
        with self.assertRaises(annal.NotFound):
            g.fetch("w1")

    def test_consume_with_three_competing_consumers(self):
        for i in range(300):
            self.c.append(f"acct-{i % 10}", "T", {"i": i})
        self.c.group("work").create(prefix="acct-", ordering="aggregate")
        handled = []
        lock = threading.Lock()
        stop = threading.Event()
        failed_once = set()

        def handler(e):
            if e.event_data["i"] == 13:
                raise annal.PermanentError("never works")
            if e.event_data["i"] % 50 == 7 and e.sequence_number not in failed_once:
                failed_once.add(e.sequence_number)
                raise RuntimeError("try again")
            with lock:
                handled.append((e.aggregate_id, e.version))
                if len(handled) >= 299:
                    stop.set()

        def worker(name):
            with annal.Client(self.d.commands, timeout=5) as c:
                c.group("work").consume(name, handler, max_count=7, wait_ms=200, stop=stop)

        threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(3)]
        for t in threads:
            t.start()
        stop.wait(60)
        for t in threads:
            t.join(10)
        self.assertEqual(len(handled), 299)
        self.assertEqual(len(set(handled)), 299)
        # within an aggregate, in version order, whoever handled them
        for agg in {a for a, _ in handled}:
            versions = [v for a, v in handled if a == agg]
            self.assertEqual(versions, sorted(versions))
        info = self.c.group("work").info()
        self.assertEqual((info.parked, info.lag), (1, 0))
        [p] = list(self.c.group("work").parked())
        self.assertEqual((p.event_data, p.reason), ({"i": 13}, "never works"))


if __name__ == "__main__":
    unittest.main()
