// The conformance driver for the Node.js package (tests/conformance/README.md
// gives the line protocol every client's driver speaks).
//
// node driver.mjs COMMANDS EVENTS: one JSON operation per line on stdin, run
// through the annal package's public API only, one JSON result line on
// stdout before the next is read. The package is imported by name: run it
// where `annal` resolves (test_node_conformance.sh links a built copy).
import { createInterface } from "node:readline";
import * as annal from "annal";

class UnknownOp extends Error {}

const KINDS = [
  [annal.ConcurrencyError, "concurrency"], [annal.Unavailable, "unavailable"],
  [annal.InvalidRequest, "invalid"], [annal.NotFound, "not_found"], [annal.Gone, "gone"],
];

function error(err) {
  if (err instanceof UnknownOp) return { kind: "unknown_op", code: null, actual_version: null };
  // arguments the client refuses before sending anything
  if (err instanceof TypeError) return { kind: "invalid", code: null, actual_version: null };
  if (!(err instanceof annal.AnnalError)) throw err;
  const kind = KINDS.find(([cls]) => err instanceof cls)?.[1] ?? "other";
  return { kind, code: err.code, actual_version: err.actualVersion ?? null };
}

const record = (e) => ({
  sequence_number: e.sequenceNumber, event_id: e.eventId, aggregate_id: e.aggregateId,
  version: e.version, event_type: e.eventType, event_data: e.eventData,
  metadata: e.metadata, recorded_at: e.recordedAt,
});

const collect = async (iterable, f) => {
  const out = [];
  for await (const e of iterable) out.push(f(e));
  return out;
};

/** The handler every driver runs (see README.md). */
function handle(e) {
  if (e.eventData?.park) throw new annal.PermanentError("park requested");
  if (e.eventData?.fail_once && e.delivery === 1) throw new Error("first delivery fails");
}

async function run(c, op) {
  switch (op.op) {
    case "append": {
      const a = await c.append(op.aggregate_id, op.event_type, op.event_data,
        { expectedVersion: op.expected_version ?? "any", eventId: op.event_id });
      return { sequence_number: a.sequenceNumber, event_id: a.eventId };
    }
    case "append_batch": {
      const events = op.events.map((e) => ({ eventType: e.event_type, eventData: e.event_data }));
      const b = await c.appendBatch(op.aggregate_id, events,
        { expectedVersion: op.expected_version ?? "any" });
      return { first_sequence_number: b.firstSequenceNumber,
        last_sequence_number: b.lastSequenceNumber, version: b.version };
    }
    case "read":
      return collect(c.read(op.aggregate_id, { fromVersion: op.from_version ?? undefined,
        direction: op.direction ?? "forward", pageSize: op.page_size ?? 1000 }), record);
    case "read_all":
      return collect(c.readAll({ fromSequence: op.from_sequence ?? 1, prefix: op.prefix ?? undefined,
        eventTypes: op.event_types ?? undefined, pageSize: op.page_size ?? 1000 }), record);
    case "create_snapshot": {
      const s = "state" in op ? await c.saveSnapshot(op.aggregate_id, op.state)
        : await c.createSnapshot(op.aggregate_id);
      return { version: s.version };
    }
    case "get_snapshot": {
      const s = await c.getSnapshot(op.aggregate_id);
      return { version: s.version, state: s.state };
    }
    case "delete": {
      const d = await c.deleteAggregate(op.aggregate_id,
        { expectedVersion: op.expected_version, hard: op.hard ?? false });
      return { version: d.version, sequence_number: d.sequenceNumber };
    }
    case "subscribe": {
      const seen = [];
      const sub = c.subscribe({ prefix: op.prefix ?? "", fromSequence: op.from_sequence ?? "end",
        queue: op.queue || 10000 });
      try {
        for await (const e of sub.events({ idleTimeoutMs: op.timeout_ms ?? 30000 })) {
          seen.push([e.sequenceNumber, e.aggregateId, e.eventType]);
          if (seen.length >= (op.count ?? 1)) break;
        }
      } finally {
        sub.close();
      }
      return seen;
    }
    case "group_create": {
      const start = await c.group(op.group).create({ prefix: op.prefix ?? "",
        ordering: op.ordering ?? "aggregate", ackTimeoutMs: op.ack_timeout_ms ?? 30000,
        maxDeliveries: op.max_deliveries ?? 5 });
      return { start_sequence: start };
    }
    case "consume": {
      const handled = [];
      await c.group(op.group).consume(op.consumer, (e) => {
        handle(e);
        handled.push([e.sequenceNumber, e.aggregateId, e.version, e.delivery]);
      }, { maxCount: 10, waitMs: 200, maxEvents: op.count ?? 1 });
      return handled;
    }
    case "group_info": {
      const i = await c.group(op.group).info();
      return { acked_through: i.ackedThrough, leased: i.leased, parked: i.parked, lag: i.lag };
    }
    default:
      throw new UnknownOp(op.op);
  }
}

const [commands, events] = process.argv.slice(2);
const c = new annal.Client({ commands, events, timeoutMs: 2000 });
const write = (line) => new Promise((done) => process.stdout.write(line + "\n", done));
for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  if (!line.trim()) continue;
  const op = JSON.parse(line);
  let result;
  try {
    result = { ok: await run(c, op) };
  } catch (err) {
    result = { error: error(err) };
  }
  await write(JSON.stringify(result));
}
c.close();
