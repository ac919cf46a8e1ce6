// Client against a real annald: appends and conflicts, batches, reads across
// pages, snapshots, replay, state, status, errors, deletion and retention,
// many requests in flight, a late reply, and an idle client that lets Node.js
// exit.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, before, describe, test } from "node:test";
import {
  AnnalError, Client, ConcurrencyError, Gone, InvalidRequest, NotFound, Unavailable,
} from "../dist/index.js";
import { range, skip, useAnnald } from "./annald.js";

describe("client", { skip }, () => {
  const ctx = useAnnald(before, after, Client);

  test("append and conflict", async () => {
    const { d, c } = ctx;
    const a = await c.append("acc-1", "Opened", { owner: "ann" }, { expectedVersion: 0 });
    assert.equal(a.sequenceNumber, 1);
    assert.match(a.eventId, /^[0-9a-f-]{36}$/);
    const b = await c.append("acc-1", "Deposited", { amount: 5 },
      { expectedVersion: 1, metadata: { by: "test" } });
    assert.equal(b.sequenceNumber, 2);
    const err = await c.append("acc-1", "Deposited", {}, { expectedVersion: 1 }).catch((e) => e);
    assert.ok(err instanceof ConcurrencyError && err instanceof AnnalError);
    assert.equal(err.actualVersion, 2);
    assert.equal(err.code, null);
    assert.match(err.message, /version/);
    const e2 = await c.append("acc-new", "T", {}, { expectedVersion: "exists" }).catch((e) => e);
    assert.ok(e2 instanceof ConcurrencyError);
    assert.equal(e2.actualVersion, 0);
    const events = [];
    for await (const e of c.read("acc-1")) events.push(e);
    assert.deepEqual(events.map((e) => [e.version, e.eventType, e.sequenceNumber]),
      [[1, "Opened", 1], [2, "Deposited", 2]]);
    assert.deepEqual(events[1].eventData, { amount: 5 });
    assert.deepEqual(events[1].metadata, { by: "test" });
    assert.equal(events[0].aggregateId, "acc-1");
    assert.match(events[0].recordedAt, /^\d{4}-\d\d-\d\dT/);
  });

  test("an append sent again with its eventId is written once", async () => {
    const { d, c } = ctx;
    const id = "6f1a0c52-1d7e-4c3b-9a53-0d2e7f7f0a11";
    const first = await c.append("idem-1", "T", { n: 1 }, { eventId: id });
    const again = await c.append("idem-1", "T", { n: 1 }, { eventId: id });
    assert.deepEqual(again, first);
    assert.equal((await c.readPage("idem-1")).events.length, 1);
  });

  test("batch", async () => {
    const { d, c } = ctx;
    const b = await c.appendBatch("bat-1", [
      { eventType: "A", eventData: { i: 1 } }, { eventType: "B", eventData: { i: 2 }, metadata: { m: 1 } },
    ], { expectedVersion: 0 });
    assert.equal(b.version, 2);
    assert.equal(b.lastSequenceNumber, b.firstSequenceNumber + 1);
    assert.equal(b.eventIds.length, 2);
    const err = await c.appendBatch("bat-1", [{ eventType: "C", eventData: {} }],
      { expectedVersion: 0 }).catch((e) => e);
    assert.ok(err instanceof ConcurrencyError);
    assert.equal((await c.readPage("bat-1")).version, 2); // nothing written
    assert.throws(() => c.appendBatch("bat-1", [{ eventData: {} }]), TypeError);
  });

  test("reads follow every page, forward and backward, and read_all filters", async () => {
    const { d, c } = ctx;
    await c.appendBatch("pg-1", range(0, 25).map((i) => ({ eventType: i % 2 ? "Odd" : "Even",
      eventData: { i } })));
    const fwd = [];
    for await (const e of c.read("pg-1", { pageSize: 4 })) fwd.push(e.version);
    assert.deepEqual(fwd, range(1, 26));
    const back = [];
    for await (const e of c.read("pg-1", { direction: "backward", pageSize: 7 })) back.push(e.version);
    assert.deepEqual(back, range(1, 26).reverse());
    const from = [];
    for await (const e of c.read("pg-1", { fromVersion: 20 })) from.push(e.version);
    assert.deepEqual(from, [20, 21, 22, 23, 24, 25]);
    assert.deepEqual((await c.readPage("nobody-1")).events, []);
    const all = [];
    for await (const e of c.readAll({ pageSize: 3, prefix: "pg-", eventTypes: ["Odd"] })) all.push(e.eventData.i);
    assert.deepEqual(all, range(0, 25).filter((i) => i % 2));
    const head = (await c.status()).headSequence;
    const everything = [];
    for await (const e of c.readAll({ pageSize: 10 })) everything.push(e.sequenceNumber);
    assert.deepEqual(everything, range(1, head + 1));
  });

  test("snapshots, replay, state, status", async () => {
    const { d, c } = ctx;
    await assert.rejects(c.getSnapshot("snap-1"), NotFound);
    await c.append("snap-1", "T", { a: 1, b: 1 });
    await c.append("snap-1", "T", { b: null, c: 3 });
    assert.equal((await c.createSnapshot("snap-1")).version, 2);
    const s = await c.getSnapshot("snap-1");
    assert.deepEqual([s.version, s.state], [2, { a: 1, c: 3 }]);
    await c.saveSnapshot("snap-1", { mine: true });
    assert.deepEqual((await c.getSnapshot("snap-1")).state, { mine: true });
    const r = await c.replay("snap-1", { version: 1 });
    assert.deepEqual([r.version, r.state, r.eventsReplayed], [1, { a: 1, b: 1 }, 1]);
    const now = new Date(Date.now() + 1000).toISOString();
    const st = await c.getState("snap-1", now);
    assert.deepEqual([st.version, st.state], [2, { a: 1, c: 3 }]);
    const status = await c.status();
    assert.equal(status.store, "lmdb");
    assert.ok(status.headSequence >= 2 && status.snapshots >= 1);
    await assert.rejects(c.replay("snap-1", { version: 9 }), NotFound);
  });

  test("errors", async () => {
    const { d, c } = ctx;
    const bad = await c.append("$bad", "T", {}).catch((e) => e);
    assert.ok(bad instanceof InvalidRequest);
    assert.equal(bad.code, 12);
    await assert.rejects(c.append("a-1", "$deleted", {}), InvalidRequest);
    assert.throws(() => c.append("a-1", "T", {}, { expectedVersion: -1 }), TypeError);
    assert.throws(() => c.append("a-1", "T", {}, { expectedVersion: "some" }), TypeError);
    const dead = new Client({ commands: `ipc://${d.data}-nobody`, timeoutMs: 300 });
    const t = performance.now();
    const err = await dead.status().catch((e) => e);
    assert.ok(err instanceof Unavailable);
    assert.equal(err.code, 11);
    assert.equal(err.mayBeWritten, true);
    assert.ok(performance.now() - t < 3000);
    dead.close();
    await assert.rejects(dead.status(), Unavailable);
  });

  test("many requests in flight on one client", async () => {
    const { d, c } = ctx;
    const replies = await Promise.all(range(0, 300).map((i) =>
      c.append(`fly-${i % 10}`, "T", { i })));
    const seqs = replies.map((r) => r.sequenceNumber);
    assert.equal(new Set(seqs).size, 300);
    const data = [];
    for await (const e of c.readAll({ prefix: "fly-" })) data.push(e.eventData.i);
    assert.deepEqual(data.sort((a, b) => a - b), range(0, 300));
  });

  test("a late reply answers nothing", async () => {
    const { d, c } = ctx;
    await c.append("late-1", "T", {});
    const fast = new Client({ commands: d.commands, timeoutMs: 300 });
    try {
      await d.pause();
      try {
        const [r1, r2] = await Promise.allSettled([fast.readPage("late-1"), fast.status()]);
        assert.ok(r1.reason instanceof Unavailable && r2.reason instanceof Unavailable, `${r1.status} ${r1.reason} ${r2.status} ${r2.reason}`);
      } finally {
        d.resume();
      }
      // the late read's reply must not answer these
      const head = (await c.status()).headSequence;
      const slow = new Client({ commands: d.commands, timeoutMs: 5000 });
      fast.close();
      assert.equal((await slow.status()).headSequence, head);
      assert.equal((await slow.append("late-1", "T", {})).sequenceNumber, head + 1);
      slow.close();
    } finally {
      fast.close();
    }
  });

  test("delete and retention", async () => {
    const { d, c } = ctx;
    for (let i = 0; i < 3; i++) await c.append("p-1", "T", { i });
    await c.createSnapshot("p-1");
    await assert.rejects(c.deleteAggregate("p-1", { expectedVersion: 2 }), ConcurrencyError);
    const del = await c.deleteAggregate("p-1", { expectedVersion: 3 });
    assert.equal(del.version, 4);
    const left = [];
    for await (const e of c.read("p-1")) left.push([e.version, e.eventType]);
    assert.deepEqual(left, [[4, "$deleted"]]);
    await assert.rejects(c.getSnapshot("p-1"), NotFound);
    await c.append("p-1", "T", { again: 1 });
    assert.deepEqual((await c.replay("p-1")).state, { again: 1 });
    await c.deleteAggregate("p-1", { expectedVersion: "any", hard: true });
    const gone = await c.append("p-1", "T", {}).catch((e) => e);
    assert.ok(gone instanceof Gone);
    assert.equal(gone.code, 21);
    const r = await c.setRetention("m-1", { maxCount: 2 });
    assert.deepEqual([r.maxCount, r.maxAgeS], [2, null]);
    for (let i = 0; i < 5; i++) await c.append("m-1", "T", { i });
    const kept = [];
    for await (const e of c.read("m-1")) kept.push(e.eventData.i);
    assert.deepEqual(kept, [3, 4]);
    assert.deepEqual(await c.getRetention("m-1"), r);
    assert.equal((await c.getRetention("none-1")).maxCount, null);
  });

  test("an idle client does not keep Node.js running", () => {
    const { d } = ctx;
    const script = `import { Client } from ${JSON.stringify(new URL("../dist/index.js", import.meta.url).href)};
      const c = new Client({ commands: ${JSON.stringify(d.commands)} });
      console.log((await c.status()).store);`;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script],
      { encoding: "utf8", timeout: 10000 });
    assert.equal(r.signal, null, "node did not exit on its own");
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), "lmdb");
  });
});
