/**
 * What annal's calls resolve to: plain objects whose fields are the
 * protocol's (docs/protocol.md) in camelCase, so that the protocol's
 * document is also this package's reference.
 *
 * Invariant: a record is built from a reply by taking the fields it knows
 * and ignoring the others, so a newer annald that adds reply fields does
 * not break an older client; a reply that lacks a field a record needs is
 * an AnnalError, never a record with holes.
 */
import { AnnalError, type Reply } from "./errors.js";

/** One event, as reads, subscriptions and groups hand it over. `delivery`
 * is set by group fetches (1 the first time), `reason` by parked(). */
export interface Event {
  sequenceNumber: number;
  eventId: string;
  aggregateId: string;
  version: number;
  eventType: string;
  eventData: unknown;
  metadata: Record<string, unknown>;
  recordedAt: string;
  delivery?: number;
  reason?: string;
}

export interface Appended {
  eventId: string;
  sequenceNumber: number;
}

/** A batch append: the ids in order, the sequences they took and the
 * aggregate's version after the last. */
export interface BatchAppended {
  eventIds: string[];
  firstSequenceNumber: number;
  lastSequenceNumber: number;
  version: number;
}

/** delete_aggregate: the version and sequence of its `$deleted` event. */
export interface Deleted {
  aggregateId: string;
  version: number;
  sequenceNumber: number;
}

/** create_snapshot: the version the snapshot is as of. */
export interface SnapshotCreated {
  aggregateId: string;
  version: number;
}

export interface Snapshot {
  aggregateId: string;
  version: number;
  state: unknown;
}

/** replay: the default fold as of `version`; `snapshotVersion` only when a
 * snapshot was asked for (and there was one). */
export interface Replayed {
  aggregateId: string;
  eventsReplayed: number;
  state: unknown;
  version: number;
  snapshotVersion?: number;
}

/** get_state: the default fold of the events recorded at or before
 * `timestamp`. */
export interface State {
  aggregateId: string;
  timestamp: string;
  state: unknown;
  version: number;
}

export interface Status {
  headSequence: number;
  aggregates: number;
  events: number;
  snapshots: number;
  store: string;
  version: string;
  uptimeS: number;
}

/** An aggregate's retention policy; null is no limit. */
export interface Retention {
  aggregateId: string;
  maxCount: number | null;
  maxAgeS: number | null;
}

/** One reply of read or read_all. read: `version` (the aggregate's) and
 * `nextVersion` (null at the end); read_all and parked: `nextSequence` and
 * `headSequence`. */
export interface Page {
  events: Event[];
  version: number | null;
  nextVersion: number | null;
  nextSequence: number | null;
  headSequence: number | null;
}

/** group_info: a consumer group's settings and progress. `lag` is the
 * number of sequences the group is behind the head (exact). */
export interface GroupInfo {
  group: string;
  prefix: string;
  eventTypes: string[] | null;
  ordering: "aggregate" | "none";
  ackTimeoutMs: number;
  maxDeliveries: number;
  startSequence: number;
  ackedThrough: number;
  leased: number;
  parked: number;
  headSequence: number;
  lag: number | null;
}

function num(r: Reply, name: string): number {
  const v = r[name];
  if (typeof v !== "number") throw new AnnalError(`annald's reply lacks ${name}`);
  return v;
}

function str(r: Reply, name: string): string {
  const v = r[name];
  if (typeof v !== "string") throw new AnnalError(`annald's reply lacks ${name}`);
  return v;
}

const optNum = (r: Reply, name: string): number | null =>
  typeof r[name] === "number" ? (r[name] as number) : null;
const numOr = (r: Reply, name: string, dflt: number): number => optNum(r, name) ?? dflt;
const strOr = (r: Reply, name: string, dflt: string): string =>
  typeof r[name] === "string" ? (r[name] as string) : dflt;

export function event(raw: unknown): Event {
  if (typeof raw !== "object" || raw === null) throw new AnnalError("an event is not a map");
  const r = raw as Reply;
  const e: Event = {
    sequenceNumber: num(r, "sequence_number"),
    eventId: str(r, "event_id"),
    aggregateId: str(r, "aggregate_id"),
    version: num(r, "version"),
    eventType: str(r, "event_type"),
    eventData: r.event_data,
    metadata: typeof r.metadata === "object" && r.metadata !== null
      ? (r.metadata as Record<string, unknown>) : {},
    recordedAt: strOr(r, "recorded_at", ""),
  };
  if (typeof r.delivery === "number") e.delivery = r.delivery;
  if (typeof r.reason === "string") e.reason = r.reason;
  return e;
}

export function page(r: Reply): Page {
  const events = Array.isArray(r.events) ? r.events.map(event) : [];
  return {
    events,
    version: optNum(r, "version"),
    nextVersion: optNum(r, "next_version"),
    nextSequence: optNum(r, "next_sequence"),
    headSequence: optNum(r, "head_sequence"),
  };
}

export const appended = (r: Reply): Appended =>
  ({ eventId: str(r, "event_id"), sequenceNumber: num(r, "sequence_number") });

export function batchAppended(r: Reply): BatchAppended {
  if (!Array.isArray(r.event_ids)) throw new AnnalError("annald's reply lacks event_ids");
  return {
    eventIds: r.event_ids.map(String),
    firstSequenceNumber: num(r, "first_sequence_number"),
    lastSequenceNumber: num(r, "last_sequence_number"),
    version: num(r, "version"),
  };
}

export const deleted = (r: Reply): Deleted => ({
  aggregateId: str(r, "aggregate_id"), version: num(r, "version"),
  sequenceNumber: num(r, "sequence_number"),
});

export const snapshotCreated = (r: Reply): SnapshotCreated =>
  ({ aggregateId: str(r, "aggregate_id"), version: num(r, "version") });

export const snapshot = (r: Reply): Snapshot =>
  ({ aggregateId: str(r, "aggregate_id"), version: num(r, "version"), state: r.state ?? null });

export function replayed(r: Reply): Replayed {
  const out: Replayed = {
    aggregateId: str(r, "aggregate_id"), eventsReplayed: num(r, "events_replayed"),
    state: r.state ?? null, version: num(r, "version"),
  };
  const sv = optNum(r, "snapshot_version");
  if (sv !== null) out.snapshotVersion = sv;
  return out;
}

export const state = (r: Reply): State => ({
  aggregateId: str(r, "aggregate_id"), timestamp: str(r, "timestamp"), state: r.state ?? null,
  version: num(r, "version"),
});

export const status = (r: Reply): Status => ({
  headSequence: num(r, "head_sequence"), aggregates: numOr(r, "aggregates", 0),
  events: numOr(r, "events", 0), snapshots: numOr(r, "snapshots", 0),
  store: strOr(r, "store", ""), version: strOr(r, "version", ""), uptimeS: numOr(r, "uptime_s", 0),
});

export const retention = (r: Reply): Retention => ({
  aggregateId: str(r, "aggregate_id"), maxCount: optNum(r, "max_count"),
  maxAgeS: optNum(r, "max_age_s"),
});

export const groupInfo = (r: Reply): GroupInfo => ({
  group: str(r, "group"),
  prefix: strOr(r, "prefix", ""),
  eventTypes: Array.isArray(r.event_types) ? r.event_types.map(String) : null,
  ordering: r.ordering === "none" ? "none" : "aggregate",
  ackTimeoutMs: numOr(r, "ack_timeout_ms", 30000),
  maxDeliveries: numOr(r, "max_deliveries", 5),
  startSequence: numOr(r, "start_sequence", 1),
  ackedThrough: numOr(r, "acked_through", 0),
  leased: numOr(r, "leased", 0),
  parked: numOr(r, "parked", 0),
  headSequence: numOr(r, "head_sequence", 0),
  lag: optNum(r, "lag"),
});
