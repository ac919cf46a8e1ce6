// Subscription against a real annald: history then live, exactly once and in
// order across a SIGKILL and restart of annald, a forced PUB drop, holes left
// by a deletion, a prefix, "end", a store behind the position, and leaving a
// for-await loop.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, test } from "node:test";
import { Client, StoreChanged } from "../dist/index.js";
import { Annald, collect, range, skip } from "./annald.js";

describe("subscription", { skip }, () => {
  let d, c;
  const open = async (...args) => {
    d = await Annald.start(...args);
    c = new Client({ commands: d.commands, events: d.events, timeoutMs: 2000 });
  };
  afterEach(async () => {
    c?.close();
    await d?.cleanup();
  });

  test("history, then live", async () => {
    await open();
    for (let i = 0; i < 5; i++) await c.append(`a-${i % 2}`, "T", { i });
    const sub = c.subscribe();
    const later = (async () => {
      await sleep(500);
      for (let i = 0; i < 5; i++) await c.append("b-1", "T", { i });
    })();
    assert.deepEqual(await collect(sub, 10), range(1, 11));
    await later;
    assert.equal(sub.position, 11);
    assert.equal(sub.stats.read + sub.stats.live, 10);
    assert.ok(sub.stats.live > 0, "the events appended later came live");
    sub.close();
  });

  test("a prefix, and from the end", async () => {
    await open();
    for (let i = 0; i < 4; i++) await c.append(i % 2 ? "user-1" : "order-1", "T", {});
    const users = c.subscribe({ prefix: "user-" });
    assert.deepEqual(await collect(users, 2), [2, 4]);
    await c.append("order-1", "T", {});
    await c.append("user-2", "T", {});
    assert.deepEqual(await collect(users, 1), [6]);
    users.close();
    const end = c.subscribe({ fromSequence: "end" });
    assert.deepEqual(await collect(end, 1, 1000), []); // nothing new yet
    await c.append("x-1", "T", {});
    assert.deepEqual(await collect(end, 1), [7]);
    end.close();
  });

  test("exactly once across a SIGKILL and restart of annald", async () => {
    await open();
    const reader = new Client({ commands: d.commands, events: d.events, timeoutMs: 1000 });
    const got = [];
    const consumed = (async () => {
      for await (const e of reader.subscribe().events({ idleTimeoutMs: 30000 })) {
        got.push(e.sequenceNumber);
        if (got.length >= 300) break;
      }
    })();
    for (let i = 0; i < 100; i++) await c.append(`k-${i % 7}`, "T", { i });
    await d.kill();
    await sleep(500);
    await d.start();
    let writer = new Client({ commands: d.commands });
    for (let i = 100; i < 300; i++) {
      await writer.append(`k-${i % 7}`, "T", { i });
      if (i === 200) {
        await d.kill();
        await d.start();
        writer.close();
        writer = new Client({ commands: d.commands });
      }
    }
    writer.close();
    await consumed;
    reader.close();
    assert.deepEqual(got, range(1, 301));
  });

  test("a forced PUB drop: reads fill the gaps", async () => {
    await open("--pub-hwm", "10");
    const sub = c.subscribe({ queue: 10 });
    assert.deepEqual(await collect(sub, 1, 1000), []); // caught up, live
    for (let i = 0; i < 40; i++) {
      await c.appendBatch(`z-${i}`, range(0, 100).map((n) => ({ eventType: "T", eventData: { n } })));
    }
    assert.deepEqual(await collect(sub, 4000), range(1, 4001));
    assert.ok(sub.stats.read > 0, "PUB dropped some: a read delivered them");
    assert.ok(sub.stats.reads > 1);
    sub.close();
  });

  test("a store behind the position stops it", async () => {
    await open();
    for (let i = 0; i < 5; i++) await c.append("s-1", "T", {});
    const sub = c.subscribe({ fromSequence: 100 }); // a checkpoint of another store
    await assert.rejects(collect(sub, 1), StoreChanged);
    assert.equal(sub.position, 100); // nothing skipped
    sub.close();
  });

  test("holes from a deletion", async () => {
    await open();
    for (let i = 0; i < 6; i++) await c.append(i < 3 ? "h-1" : "h-2", "T", { i });
    await c.deleteAggregate("h-1", { expectedVersion: 3 }); // removes 1..3, $deleted is 7
    const sub = c.subscribe();
    assert.deepEqual(await collect(sub, 4), [4, 5, 6, 7]);
    assert.equal(sub.stats.skipped, 3);
    assert.deepEqual(await collect(sub, 1, 1000), []); // caught up: live now
    await c.append("h-3", "T", {});
    await c.deleteAggregate("h-3", { expectedVersion: 1 });
    await c.append("h-4", "T", {});
    assert.deepEqual(await collect(sub, 3), [8, 9, 10]);
    sub.close();
    const from8 = c.subscribe({ fromSequence: 8 }); // 8 is removed by now
    assert.deepEqual(await collect(from8, 2), [9, 10]);
    from8.close();
  });

  test("leaving a for-await loop closes the subscription", async () => {
    await open();
    await c.append("f-1", "T", {});
    await c.append("f-1", "T", {});
    const sub = c.subscribe();
    for await (const e of sub) {
      assert.equal(e.sequenceNumber, 1);
      break;
    }
    assert.equal(sub.closed, true);
    assert.equal(sub.position, 2); // resume from here
  });
});
