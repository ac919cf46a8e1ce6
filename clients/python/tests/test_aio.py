"""annal.aio against a real annald: the calls, the async iterators, a
subscription across a SIGKILL, and consume() with an async handler."""
import asyncio
import unittest

import annal
import annal.aio
from annald import Annald


class AioTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        self.d = Annald()
        self.c = annal.aio.Client(self.d.commands, self.d.events, timeout=2)

    async def asyncTearDown(self):
        await self.c.close()
        self.d.cleanup()

    async def test_calls(self):
        a = await self.c.append("a-1", "T", {"x": 1}, expected_version=0)
        self.assertEqual(a.sequence_number, 1)
        with self.assertRaises(annal.ConcurrencyError) as cm:
            await self.c.append("a-1", "T", {}, expected_version=0)
        self.assertEqual(cm.exception.actual_version, 1)
        await self.c.append_batch("a-1", [{"event_type": "T", "event_data": {"x": n}}
                                          for n in range(2, 6)], expected_version=1)
        self.assertEqual([e.version async for e in self.c.read("a-1", page_size=2)],
                         [1, 2, 3, 4, 5])
        self.assertEqual([e.sequence_number async for e in self.c.read_all(page_size=2)],
                         [1, 2, 3, 4, 5])
        self.assertEqual((await self.c.replay("a-1")).state, {"x": 5})
        with self.assertRaises(annal.NotFound):
            await self.c.get_snapshot("a-1")
        self.assertEqual((await self.c.status()).head_sequence, 5)
        # concurrent calls on one client are serialised, each gets its reply
        heads = await asyncio.gather(*(self.c.read_page("a-1", from_version=v, max_count=1)
                                       for v in range(1, 6)))
        self.assertEqual([p.events[0].version for p in heads], [1, 2, 3, 4, 5])
        dead = annal.aio.Client(f"ipc://{self.d.data}-nobody", timeout=0.3)
        with self.assertRaises(annal.Unavailable):
            await dead.status()
        await dead.close()

    async def test_subscription_across_sigkill(self):
        for i in range(50):
            await self.c.append(f"k-{i % 3}", "T", {"i": i})
        got = []

        async def consume():
            async with annal.aio.Client(self.d.commands, self.d.events, timeout=1) as c:
                async with c.subscribe() as sub:
                    async for e in sub.events(idle_timeout=20):
                        got.append(e.sequence_number)
                        if len(got) >= 150:
                            return

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.3)
        self.d.kill()
        self.d.start()
        async with annal.aio.Client(self.d.commands, timeout=5) as w:
            for i in range(50, 150):
                await w.append(f"k-{i % 3}", "T", {"i": i})
        await asyncio.wait_for(task, 60)
        self.assertEqual(got, list(range(1, 151)))

    async def test_consume(self):
        for i in range(60):
            await self.c.append(f"acct-{i % 4}", "T", {"i": i})
        await self.c.group("g").create(ordering="none")
        seen = []
        stop = asyncio.Event()

        async def handler(e):
            if e.event_data["i"] == 5:
                raise annal.PermanentError("no")
            seen.append(e.sequence_number)
            if len(seen) == 59:
                stop.set()

        clients = [annal.aio.Client(self.d.commands, timeout=5) for _ in range(3)]
        workers = [asyncio.create_task(c.group("g").consume(
            f"w{n}", handler, max_count=5, wait_ms=200, stop=stop)) for n, c in enumerate(clients)]
        await asyncio.wait_for(stop.wait(), 30)
        await asyncio.gather(*workers)
        for c in clients:
            await c.close()
        self.assertEqual(sorted(seen), [s for s in range(1, 61) if s != 6])
        info = await self.c.group("g").info()
        self.assertEqual((info.parked, info.lag), (1, 0))


if __name__ == "__main__":
    unittest.main()
