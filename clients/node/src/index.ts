/**
 * annal for Node.js: a client of the annal event store (docs/protocol.md).
 *
 * ```ts
 * import { Client } from "annal";
 * const c = new Client({ commands: "tcp://127.0.0.1:5555", events: "tcp://127.0.0.1:5556" });
 * await c.append("order-1", "Created", { total: 5 }, { expectedVersion: 0 });
 * for await (const e of c.subscribe({ prefix: "order-" })) console.log(e.sequenceNumber);
 * ```
 */
export { Client, Group, Subscription } from "./client.js";
export type {
  AppendOptions, ClientOptions, ConsumeOptions, Handler, ReadAllOptions, ReadOptions,
  SubscribeOptions,
} from "./client.js";
export { StoreChanged, type Stats } from "./catchup.js";
export { loadCurve, type CurveKeys } from "./channel.js";
export {
  AnnalError, ConcurrencyError, Gone, InvalidRequest, NotFound, PermanentError, Unavailable,
  Unsupported,
} from "./errors.js";
export type {
  Direction, ExpectedVersion, GroupSettings, NackAction, NewEvent,
} from "./protocol.js";
export type {
  Appended, BatchAppended, Deleted, Event, GroupInfo, Page, Replayed, Retention, Snapshot,
  SnapshotCreated, State, Status,
} from "./records.js";
