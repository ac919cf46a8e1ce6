"""annal.Client against a real annald: every call, its errors, and the
channel's rule that a late reply never answers a later request."""
import signal
import time
import unittest
import uuid

import annal
from annald import AnnaldCase


class ClientTest(AnnaldCase):

    def test_append_and_conflict(self):
        a = self.c.append("user-1", "UserCreated", {"name": "Ada"}, expected_version=0,
                          metadata={"correlation_id": "r-1"})
        self.assertEqual(a.sequence_number, 1)
        uuid.UUID(a.event_id)
        with self.assertRaises(annal.ConcurrencyError) as cm:
            self.c.append("user-1", "UserRenamed", {}, expected_version=0)
        self.assertEqual(cm.exception.actual_version, 1)
        self.assertIsNone(cm.exception.code)
        self.assertIn("Expected version 0, got 1", str(cm.exception))
        self.assertIsInstance(cm.exception, annal.AnnalError)
        with self.assertRaises(annal.ConcurrencyError):
            self.c.append("user-2", "T", {}, expected_version="exists")
        self.assertEqual(self.c.append("user-1", "T", {}, expected_version="exists").sequence_number, 2)
        [e1, e2] = list(self.c.read("user-1"))
        self.assertEqual((e1.version, e1.event_type, e1.event_data, e1.metadata),
                         (1, "UserCreated", {"name": "Ada"}, {"correlation_id": "r-1"}))
        self.assertRegex(e1.recorded_at, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
        self.assertEqual(e2.aggregate_id, "user-1")
        with self.assertRaises(ValueError):
            self.c.append("user-1", "T", {}, expected_version=-1)

    def test_retry_with_event_id_is_written_once(self):
        eid = str(uuid.uuid4())
        first = self.c.append("order-1", "Placed", {"n": 1}, expected_version=0, event_id=eid)
        again = self.c.append("order-1", "Placed", {"n": 1}, expected_version=0, event_id=eid)
        self.assertEqual(first, again)
        self.assertEqual(self.c.status().events, 1)

    def test_batch(self):
        b = self.c.append_batch("order-7", [
            {"event_type": "OrderPlaced", "event_data": {"total": 30}},
            {"event_type": "OrderPaid", "event_data": {"paid": True}, "metadata": {"m": 1}}],
            expected_version=0)
        self.assertEqual((b.first_sequence_number, b.last_sequence_number, b.version), (1, 2, 2))
        self.assertEqual(len(b.event_ids), 2)
        with self.assertRaises(annal.ConcurrencyError):
            self.c.append_batch("order-7", [{"event_type": "X", "event_data": 1}],
                                expected_version=1)
        self.assertEqual(self.c.status().head_sequence, 2)
        with self.assertRaises(ValueError):
            self.c.append_batch("order-7", [{"event_type": "X"}])

    def test_reads_follow_every_page(self):
        for i in range(5):
            self.c.append("c-1", f"E{i}", {"i": i})
            self.c.append("d-1", "Other", {"i": i})
        self.assertEqual([e.version for e in self.c.read("c-1", page_size=2)], [1, 2, 3, 4, 5])
        self.assertEqual([e.version for e in self.c.read("c-1", direction="backward",
                                                         page_size=2)], [5, 4, 3, 2, 1])
        self.assertEqual([e.version for e in self.c.read("c-1", from_version=4)], [4, 5])
        page = self.c.read_page("c-1", max_count=2)
        self.assertEqual((page.version, page.next_version), (5, 3))
        self.assertEqual(list(self.c.read("nobody")), [])
        self.assertEqual([e.sequence_number for e in self.c.read_all(page_size=3)],
                         list(range(1, 11)))
        self.assertEqual([e.sequence_number for e in self.c.read_all(prefix="d-", page_size=2)],
                         [2, 4, 6, 8, 10])
        self.assertEqual([e.event_type for e in self.c.read_all(event_types=["E1", "E3"])],
                         ["E1", "E3"])
        self.assertEqual([e.sequence_number for e in self.c.read_all(from_sequence=9)], [9, 10])

    def test_snapshots_replay_state_status(self):
        self.c.append("s-1", "A", {"a": 1, "b": {"c": 1}})
        self.c.append("s-1", "B", {"b": {"d": 2}, "a": None})
        self.assertEqual(self.c.replay("s-1").state, {"b": {"c": 1, "d": 2}})
        self.assertEqual(self.c.replay("s-1", version=1).state, {"a": 1, "b": {"c": 1}})
        with self.assertRaises(annal.NotFound) as cm:
            self.c.get_snapshot("s-1")
        self.assertEqual(cm.exception.code, 20)
        self.assertEqual(self.c.create_snapshot("s-1").version, 2)
        self.assertEqual(self.c.create_snapshot("s-1", state={"mine": True}).version, 2)
        self.assertEqual(self.c.get_snapshot("s-1").state, {"mine": True})
        self.assertEqual(self.c.create_snapshot("s-1", version=1).version, 1)
        r = self.c.replay("s-1", use_snapshot=True)
        self.assertEqual((r.version, r.snapshot_version, r.events_replayed), (2, 2, 0))
        st = self.c.get_state("s-1", "2999-01-01T00:00:00Z")
        self.assertEqual((st.version, st.state), (2, {"b": {"c": 1, "d": 2}}))
        self.assertEqual(self.c.get_state("s-1", "2000-01-01T00:00:00Z").version, 0)
        s = self.c.status()
        self.assertEqual((s.head_sequence, s.aggregates, s.events, s.snapshots, s.store),
                         (2, 1, 2, 2, "lmdb"))

    def test_errors(self):
        with self.assertRaises(annal.InvalidRequest) as cm:
            self.c.append("$bad", "T", {})
        self.assertEqual(cm.exception.code, 12)
        with self.assertRaises(annal.InvalidRequest):
            self.c.append("a-1", "$deleted", {})
        with self.assertRaises(annal.NotFound):
            self.c.replay("a-1", version=3)
        with annal.Client(f"ipc://{self.d.data}-nobody", timeout=0.3) as dead:
            t = time.monotonic()
            with self.assertRaises(annal.Unavailable) as cm:
                dead.status()
            self.assertEqual(cm.exception.code, 11)
            self.assertTrue(cm.exception.may_be_written)
            self.assertLess(time.monotonic() - t, 3)

    def test_a_late_reply_answers_nothing(self):
        self.c.append("late-1", "T", {})
        fast = annal.Client(self.d.commands, timeout=0.3)
        try:
            self.d.signal(signal.SIGSTOP)
            try:
                with self.assertRaises(annal.Unavailable):
                    fast.read_page("late-1")  # answered once annald runs again
            finally:
                self.d.signal(signal.SIGCONT)
            fast.timeout = 5
            fast._channel.timeout = 5
            self.assertEqual(fast.status().head_sequence, 1)  # a status, not the late read
            self.assertEqual(fast.append("late-1", "T", {}).sequence_number, 2)
        finally:
            fast.close()

    def test_delete_and_retention(self):
        for i in range(3):
            self.c.append("p-1", "T", {"i": i})
        self.c.create_snapshot("p-1")
        with self.assertRaises(annal.ConcurrencyError):
            self.c.delete_aggregate("p-1", expected_version=2)
        d = self.c.delete_aggregate("p-1", expected_version=3)
        self.assertEqual((d.version, d.sequence_number), (4, 4))
        self.assertEqual([(e.version, e.event_type) for e in self.c.read("p-1")],
                         [(4, "$deleted")])
        with self.assertRaises(annal.NotFound):
            self.c.get_snapshot("p-1")
        self.assertEqual(self.c.append("p-1", "T", {"again": 1}).sequence_number, 5)
        self.assertEqual(self.c.replay("p-1").state, {"again": 1})
        self.c.delete_aggregate("p-1", expected_version="any", hard=True)
        with self.assertRaises(annal.Gone) as cm:
            self.c.append("p-1", "T", {})
        self.assertEqual(cm.exception.code, 21)
        # a hard delete removes the first $deleted too: only its own is left
        self.assertEqual([e.sequence_number for e in self.c.read_all()], [6])
        r = self.c.set_retention("m-1", max_count=2)
        self.assertEqual((r.max_count, r.max_age_s), (2, None))
        for i in range(5):
            self.c.append("m-1", "T", {"i": i})
        self.assertEqual([e.event_data["i"] for e in self.c.read("m-1")], [3, 4])
        self.assertEqual(self.c.get_retention("m-1"), r)
        self.assertEqual(self.c.get_retention("none-1").max_count, None)


if __name__ == "__main__":
    unittest.main()
