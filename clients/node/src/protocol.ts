/**
 * The requests of docs/protocol.md and the parsing of their replies, with no
 * I/O: the channel sends what these functions build and hands the reply to
 * the parser they return.
 *
 * Invariants: a Call's request is a complete body but for `msg_id`, which
 * the channel that sends it sets; every parser first passes the reply through
 * check(), so an error reply always throws; arguments a request cannot carry
 * are refused here (a TypeError), before anything is sent.
 */
import { AnnalError, check, type Reply } from "./errors.js";
import * as R from "./records.js";

/** The version an append or a delete expects: the aggregate's version now
 * (0: no events yet), "any" (no check) or "exists" (at least one event). */
export type ExpectedVersion = number | "any" | "exists";

export interface Call<T> {
  request: Reply;
  parse: (reply: Reply) => T;
  /** How long annald may hold the request on purpose (long poll), in ms. */
  waitMs: number;
}

const call = <T>(request: Reply, parse: (r: Reply) => T, waitMs = 0): Call<T> =>
  ({ request, parse: (r) => parse(check(r)), waitMs });

/** request with the fields that are not undefined (nor null). */
function opt(request: Reply, fields: Reply): Reply {
  for (const [k, v] of Object.entries(fields)) if (v !== undefined && v !== null) request[k] = v;
  return request;
}

function expected(v: ExpectedVersion): ExpectedVersion {
  if (v === "any" || v === "exists" || (Number.isSafeInteger(v) && (v as number) >= 0)) return v;
  throw new TypeError(`expectedVersion is an integer >= 0, "any" or "exists", not ${String(v)}`);
}

function count(name: string, v: number, min: number): number {
  if (!Number.isSafeInteger(v) || v < min) throw new TypeError(`${name} is an integer >= ${min}`);
  return v;
}

function sequences(v: Iterable<number>): number[] {
  const out = Array.from(v);
  for (const s of out) count("a sequence", s, 1);
  return out;
}

const toInt = (name: string) => (r: Reply): number => {
  const v = r[name];
  if (typeof v !== "number") throw new AnnalError(`annald's reply lacks ${name}`);
  return v;
};

export interface NewEvent {
  eventType: string;
  eventData: unknown;
  metadata?: Record<string, unknown>;
  eventId?: string;
}

export function append(aggregateId: string, eventType: string, data: unknown,
  expectedVersion: ExpectedVersion, metadata?: Record<string, unknown>,
  eventId?: string): Call<R.Appended> {
  return call(opt({
    type: "append", aggregate_id: aggregateId, event_type: eventType,
    event_data: data === undefined ? null : data, version: expected(expectedVersion),
  }, { metadata, event_id: eventId }), R.appended);
}

export function appendBatch(aggregateId: string, events: Iterable<NewEvent>,
  expectedVersion: ExpectedVersion): Call<R.BatchAppended> {
  const batch: Reply[] = [];
  for (const e of events) {
    if (typeof e !== "object" || e === null || typeof e.eventType !== "string" || !("eventData" in e))
      throw new TypeError("each event is an object with eventType and eventData "
        + "(and metadata, eventId if wanted)");
    batch.push(opt({ event_type: e.eventType, event_data: e.eventData ?? null },
      { metadata: e.metadata, event_id: e.eventId }));
  }
  return call({
    type: "append", aggregate_id: aggregateId, version: expected(expectedVersion),
    events: batch,
  }, R.batchAppended);
}

export type Direction = "forward" | "backward";

export function read(aggregateId: string, fromVersion: number | undefined, maxCount: number,
  direction: Direction): Call<R.Page> {
  if (direction !== "forward" && direction !== "backward")
    throw new TypeError('direction is "forward" or "backward"');
  return call(opt({
    type: "read", aggregate_id: aggregateId, max_count: count("maxCount", maxCount, 0), direction,
  }, { from_version: fromVersion }), R.page);
}

export function readAll(fromSequence: number, maxCount: number, prefix?: string,
  eventTypes?: readonly string[]): Call<R.Page> {
  return call(opt({
    type: "read_all", from_sequence: count("fromSequence", fromSequence, 1),
    max_count: count("maxCount", maxCount, 0),
  }, { prefix: prefix || undefined, event_types: eventTypes?.length ? [...eventTypes] : undefined }),
  R.page);
}

/** A snapshot of `state` (the caller's) at the current version when
 * hasState, else of the default fold at `version` (default: current). */
export function createSnapshot(aggregateId: string, state: unknown, hasState: boolean,
  version?: number): Call<R.SnapshotCreated> {
  const request = opt({ type: "create_snapshot", aggregate_id: aggregateId }, { version });
  if (hasState) request.state = state === undefined ? null : state;
  return call(request, R.snapshotCreated);
}

export const getSnapshot = (aggregateId: string): Call<R.Snapshot> =>
  call({ type: "get_snapshot", aggregate_id: aggregateId }, R.snapshot);

export const replay = (aggregateId: string, useSnapshot: boolean, version?: number):
  Call<R.Replayed> => call(opt({ type: "replay", aggregate_id: aggregateId,
  use_snapshot: useSnapshot }, { version }), R.replayed);

export const getState = (aggregateId: string, timestamp: string): Call<R.State> =>
  call({ type: "get_state", aggregate_id: aggregateId, timestamp }, R.state);

export const status = (): Call<R.Status> => call({ type: "status" }, R.status);

export const deleteAggregate = (aggregateId: string, expectedVersion: ExpectedVersion,
  hard: boolean, eventId?: string): Call<R.Deleted> =>
  call(opt({ type: "delete_aggregate", aggregate_id: aggregateId,
    version: expected(expectedVersion), hard: !!hard }, { event_id: eventId }), R.deleted);

/** The whole policy: a limit left out (null) is none. */
export const setRetention = (aggregateId: string, maxCount: number | null,
  maxAgeS: number | null): Call<R.Retention> =>
  call({ type: "set_retention", aggregate_id: aggregateId, max_count: maxCount,
    max_age_s: maxAgeS }, R.retention);

export const getRetention = (aggregateId: string): Call<R.Retention> =>
  call({ type: "get_retention", aggregate_id: aggregateId }, R.retention);

// consumer groups (section 6)

export interface GroupSettings {
  prefix?: string;
  eventTypes?: readonly string[];
  /** A sequence >= 1, or "end": only what is appended from now on. */
  fromSequence?: number | "end";
  ordering?: "aggregate" | "none";
  ackTimeoutMs?: number;
  maxDeliveries?: number;
}

export function groupCreate(group: string, s: GroupSettings): Call<number> {
  const from = s.fromSequence ?? 1;
  if (from !== "end") count("fromSequence", from, 1);
  return call(opt({
    type: "group_create", group, prefix: s.prefix ?? "", from_sequence: from,
    ordering: s.ordering ?? "aggregate", ack_timeout_ms: s.ackTimeoutMs ?? 30000,
    max_deliveries: s.maxDeliveries ?? 5,
  }, { event_types: s.eventTypes ? [...s.eventTypes] : undefined }), toInt("start_sequence"));
}

export const groupFetch = (group: string, consumer: string, maxCount: number, waitMs: number):
  Call<R.Event[]> => call({ type: "group_fetch", group, consumer,
  max_count: count("maxCount", maxCount, 1), wait_ms: count("waitMs", waitMs, 0) },
(r) => (Array.isArray(r.events) ? r.events.map(R.event) : []), waitMs);

export const groupAck = (group: string, consumer: string, seqs: Iterable<number>): Call<number> =>
  call({ type: "group_ack", group, consumer, sequences: sequences(seqs) }, toInt("acked"));

export type NackAction = "retry" | "park" | "skip";

export function groupNack(group: string, consumer: string, seqs: Iterable<number>,
  action: NackAction, reason: string): Call<number> {
  if (action !== "retry" && action !== "park" && action !== "skip")
    throw new TypeError('action is "retry", "park" or "skip"');
  return call({ type: "group_nack", group, consumer, sequences: sequences(seqs), action, reason },
    toInt("count"));
}

export const groupInfo = (group: string): Call<R.GroupInfo> =>
  call({ type: "group_info", group }, R.groupInfo);

export const groupList = (): Call<R.GroupInfo[]> => call({ type: "group_list" },
  (r) => (Array.isArray(r.groups) ? r.groups.map((g) => R.groupInfo(g as Reply)) : []));

export const groupDelete = (group: string): Call<void> =>
  call({ type: "group_delete", group }, () => undefined);

export const groupParked = (group: string, fromSequence: number, maxCount: number): Call<R.Page> =>
  call({ type: "group_parked", group, from_sequence: count("fromSequence", fromSequence, 1),
    max_count: count("maxCount", maxCount, 1) }, R.page);

/** All parked events when seqs is undefined; `[]` replays none. */
export const groupReplayParked = (group: string, seqs?: Iterable<number>): Call<number> =>
  call(opt({ type: "group_replay_parked", group },
    { sequences: seqs === undefined ? undefined : sequences(seqs) }), toInt("count"));
