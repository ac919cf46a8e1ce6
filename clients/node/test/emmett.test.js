// The Emmett-style event store (annal/emmett) against a real annald:
// appendToStream with each kind of expected stream version, readStream's
// range, aggregateStream's fold (started again at $deleted), and conflicts
// as ExpectedVersionConflictError.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Client, ConcurrencyError } from "../dist/index.js";
import {
  ExpectedVersionConflictError, NO_CONCURRENCY_CHECK, STREAM_DOES_NOT_EXIST, STREAM_EXISTS,
  getEventStore,
} from "../dist/emmett.js";
import { skip, useAnnald } from "./annald.js";

const added = (n) => ({ type: "ProductItemAdded", data: { productId: `p${n}`, quantity: n } });
const evolve = (state, e) => (e.type === "ProductItemAdded"
  ? { ...state, items: state.items + e.data.quantity } : { ...state, confirmed: true });
const initialState = () => ({ items: 0, confirmed: false });

describe("emmett", { skip }, () => {
  const ctx = useAnnald(before, after, Client);

  test("appendToStream, readStream and aggregateStream", async () => {
    const store = getEventStore(ctx.c);
    const first = await store.appendToStream("cart-1", [added(1), added(2)],
      { expectedStreamVersion: STREAM_DOES_NOT_EXIST });
    assert.deepEqual(first, { nextExpectedStreamVersion: 2n, lastEventGlobalPosition: 2n,
      createdNewStream: true });
    const conflict = await store.appendToStream("cart-1", [added(3)],
      { expectedStreamVersion: 1n }).catch((e) => e);
    assert.ok(conflict instanceof ExpectedVersionConflictError);
    assert.ok(conflict instanceof ConcurrencyError);
    assert.deepEqual([conflict.current, conflict.expected], [2n, 1n]);
    await assert.rejects(store.appendToStream("cart-2", [added(1)],
      { expectedStreamVersion: STREAM_EXISTS }), ExpectedVersionConflictError);
    const more = await store.appendToStream("cart-1",
      [{ type: "Confirmed", data: {}, metadata: { by: "ann" } }], { expectedStreamVersion: 2n });
    assert.deepEqual([more.nextExpectedStreamVersion, more.createdNewStream], [3n, false]);
    await store.appendToStream("cart-1", [added(4)], { expectedStreamVersion: NO_CONCURRENCY_CHECK });

    const all = await store.readStream("cart-1");
    assert.equal(all.currentStreamVersion, 4n);
    assert.equal(all.streamExists, true);
    assert.deepEqual(all.events.map((e) => [e.type, e.metadata.streamPosition]),
      [["ProductItemAdded", 1n], ["ProductItemAdded", 2n], ["Confirmed", 3n], ["ProductItemAdded", 4n]]);
    const confirmed = all.events[2];
    assert.equal(confirmed.metadata.by, "ann");
    assert.equal(confirmed.metadata.streamName, "cart-1");
    assert.equal(confirmed.metadata.globalPosition, 3n);
    assert.match(confirmed.metadata.eventId, /^[0-9a-f-]{36}$/);
    const some = await store.readStream("cart-1", { from: 2n, to: 3n });
    assert.deepEqual(some.events.map((e) => e.metadata.streamPosition), [2n, 3n]);
    const two = await store.readStream("cart-1", { maxCount: 2n });
    assert.deepEqual(two.events.map((e) => e.metadata.streamPosition), [1n, 2n]);
    await assert.rejects(store.readStream("cart-1", { expectedStreamVersion: 3n }),
      ExpectedVersionConflictError);
    const none = await store.readStream("cart-none");
    assert.deepEqual([none.currentStreamVersion, none.events, none.streamExists], [0n, [], false]);

    const agg = await store.aggregateStream("cart-1", { evolve, initialState });
    assert.deepEqual(agg, { currentStreamVersion: 4n, state: { items: 7, confirmed: true },
      streamExists: true });
    const early = await store.aggregateStream("cart-1", { evolve, initialState, read: { to: 2n } });
    assert.deepEqual(early.state, { items: 3, confirmed: false });
  });

  test("a deleted stream folds from the initial state again", async () => {
    const store = getEventStore(ctx.c);
    await store.appendToStream("cart-9", [added(5)]);
    await ctx.c.deleteAggregate("cart-9", { expectedVersion: 1 });
    await store.appendToStream("cart-9", [added(2)], { expectedStreamVersion: 2n });
    const agg = await store.aggregateStream("cart-9", { evolve, initialState });
    assert.deepEqual([agg.currentStreamVersion, agg.state], [3n, { items: 2, confirmed: false }]);
  });

  test("an expected version that is none of the kinds is refused before sending", async () => {
    const store = getEventStore(ctx.c);
    await assert.rejects(store.appendToStream("cart-3", [added(1)], { expectedStreamVersion: 1 }),
      TypeError);
    await assert.rejects(store.appendToStream("cart-3", [added(1)], { expectedStreamVersion: -1n }),
      TypeError);
  });
});
