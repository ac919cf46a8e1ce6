// Group against a real annald: every group call, a long poll that holds up
// nothing (the same client's requests included), and consume() with three
// competing consumers losing nothing, keeping each aggregate in order and
// parking what fails for good.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Client, InvalidRequest, NotFound, PermanentError } from "../dist/index.js";
import { skip, useAnnald } from "./annald.js";

describe("group", { skip }, () => {
  const ctx = useAnnald(before, after, Client);

  test("every call", async () => {
    const { d, c } = ctx;
    for (let i = 0; i < 4; i++) await c.append(`user-${i % 2}`, "UserCreated", { i });
    await c.append("order-1", "Placed", {});
    const g = c.group("mailer");
    const err = await g.info().catch((e) => e);
    assert.ok(err instanceof NotFound);
    assert.equal(err.code, 20);
    const settings = { prefix: "user-", maxDeliveries: 2, ackTimeoutMs: 100 };
    assert.equal(await g.create(settings), 1);
    assert.equal(await g.create(settings), 1); // the same settings: found
    await assert.rejects(g.create({ prefix: "other-" }), InvalidRequest);
    const batch = await g.fetch("w1", { maxCount: 10 });
    // ordering by aggregate: one event of each aggregate at a time
    assert.deepEqual(batch.map((e) => [e.sequenceNumber, e.delivery]), [[1, 1], [2, 1]]);
    assert.deepEqual(await g.fetch("w2"), []);
    assert.equal(await g.ack("w1", [1]), 1);
    assert.equal(await g.ack("w2", [2]), 0); // not w2's
    assert.equal(await g.nack("w1", [2], "park", "bad address"), 1);
    assert.deepEqual((await g.fetch("w2", { maxCount: 10 })).map((e) => e.sequenceNumber), [3, 4]);
    const info = await g.info();
    assert.deepEqual([info.ackedThrough, info.leased, info.parked, info.headSequence, info.lag],
      [2, 2, 1, 5, 3]);
    const parked = [];
    for await (const e of g.parked()) parked.push([e.sequenceNumber, e.reason]);
    assert.deepEqual(parked, [[2, "bad address"]]);
    assert.equal(await g.replayParked(), 1);
    assert.equal((await g.info()).parked, 0);
    // the lease of 3 ends (100 ms): it is fetched again, with delivery 2
    const again = await g.fetch("w3", { maxCount: 10, waitMs: 2000 });
    assert.ok(again.some((e) => e.sequenceNumber === 2));
    assert.ok(again.some((e) => e.delivery === 2));
    assert.deepEqual((await c.groups()).map((i) => i.group), ["mailer"]);
    await g.delete();
    await assert.rejects(g.fetch("w1"), NotFound);
    assert.throws(() => g.nack("w1", [1], "drop"), TypeError);
  });

  test("a long poll holds up nothing, and is answered by an append", async () => {
    const { d, c } = ctx;
    const g = c.group("poll");
    await g.create({ prefix: "poll-", fromSequence: "end" });
    const t0 = performance.now();
    const waiting = g.fetch("w1", { waitMs: 5000 });
    await c.status(); // the same client, while the fetch waits
    const statusMs = performance.now() - t0;
    assert.ok(statusMs < 2000, `status took ${statusMs} ms behind a waiting fetch`);
    await c.append("poll-1", "T", { n: 1 });
    const got = await waiting;
    assert.deepEqual(got.map((e) => e.aggregateId), ["poll-1"]);
    assert.ok(performance.now() - t0 < 4000, "the append answered the fetch before its wait ended");
    await g.delete();
  });

  test("consume with three competing consumers", async () => {
    const { d, c } = ctx;
    for (let i = 0; i < 300; i++) await c.append(`acct-${i % 10}`, "T", { i });
    await c.group("work").create({ prefix: "acct-", ordering: "aggregate" });
    const handled = [];
    const failedOnce = new Set();
    const stop = new AbortController();
    const handler = async (e) => {
      if (e.eventData.i === 13) throw new PermanentError("never works");
      if (e.eventData.i % 50 === 7 && !failedOnce.has(e.sequenceNumber)) {
        failedOnce.add(e.sequenceNumber);
        throw new Error("try again");
      }
      await new Promise((r) => setImmediate(r)); // let the others run
      handled.push([e.aggregateId, e.version]);
      if (handled.length >= 299) stop.abort();
    };
    const workers = ["w0", "w1", "w2"].map(async (name) => {
      const wc = new Client({ commands: d.commands });
      try {
        return await wc.group("work").consume(name, handler,
          { maxCount: 7, waitMs: 200, signal: stop.signal });
      } finally {
        wc.close();
      }
    });
    const counts = await Promise.all(workers);
    assert.equal(handled.length, 299);
    assert.equal(new Set(handled.map(([a, v]) => `${a}/${v}`)).size, 299);
    assert.ok(counts.filter((n) => n > 0).length >= 2, `one consumer took them all: ${counts}`);
    for (const agg of new Set(handled.map(([a]) => a))) {
      const versions = handled.filter(([a]) => a === agg).map(([, v]) => v);
      assert.deepEqual(versions, [...versions].sort((x, y) => x - y));
    }
    const info = await c.group("work").info();
    assert.deepEqual([info.parked, info.lag], [1, 0]);
    const parked = [];
    for await (const p of c.group("work").parked()) parked.push([p.eventData, p.reason]);
    assert.deepEqual(parked, [[{ i: 13 }, "never works"]]);
  });
});
