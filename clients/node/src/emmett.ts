/**
 * An event store in the shape of Emmett's (event-driven-io/emmett)
 * `EventStore`: readStream, appendToStream with an expected stream version,
 * and aggregateStream, over an annal Client, without depending on Emmett.
 * A stream is an annal aggregate; stream versions and positions are bigint,
 * as Emmett has them.
 *
 * Invariants: appendToStream is one annal append (a batch: all or nothing,
 * at consecutive versions), so the version check and the write are one step
 * on the server; aggregateStream folds the events in version order and
 * starts again from initialState at a `$deleted` event, as annal's own fold
 * does.
 */
import type { Client } from "./client.js";
import { ConcurrencyError } from "./errors.js";
import type { ExpectedVersion } from "./protocol.js";
import type { Event as AnnalEvent } from "./records.js";

export const STREAM_EXISTS = "STREAM_EXISTS" as const;
export const STREAM_DOES_NOT_EXIST = "STREAM_DOES_NOT_EXIST" as const;
export const NO_CONCURRENCY_CHECK = "NO_CONCURRENCY_CHECK" as const;

export type ExpectedStreamVersion = bigint | typeof STREAM_EXISTS | typeof STREAM_DOES_NOT_EXIST
  | typeof NO_CONCURRENCY_CHECK;

/** An event as Emmett has it: a type, its data, and optional metadata. */
export interface Event<Type extends string = string, Data = unknown,
  Metadata extends Record<string, unknown> = Record<string, unknown>> {
  type: Type;
  data: Data;
  metadata?: Metadata;
}

export interface ReadEventMetadata {
  eventId: string;
  streamName: string;
  streamPosition: bigint;
  globalPosition: bigint;
  recordedAt: string;
}

export type ReadEvent<E extends Event = Event> = E & {
  metadata: NonNullable<E["metadata"]> & ReadEventMetadata;
};

export interface ReadStreamOptions {
  from?: bigint;
  to?: bigint;
  maxCount?: bigint;
  expectedStreamVersion?: ExpectedStreamVersion;
}

export interface ReadStreamResult<E extends Event = Event> {
  currentStreamVersion: bigint;
  events: ReadEvent<E>[];
  streamExists: boolean;
}

export interface AppendToStreamResult {
  nextExpectedStreamVersion: bigint;
  lastEventGlobalPosition: bigint;
  createdNewStream: boolean;
}

export interface AggregateStreamOptions<State, E extends Event> {
  evolve: (state: State, event: ReadEvent<E>) => State;
  initialState: () => State;
  read?: ReadStreamOptions;
}

export interface AggregateStreamResult<State> {
  currentStreamVersion: bigint;
  state: State;
  streamExists: boolean;
}

/** The stream was not at the expected version; nothing was written.
 * `current` is the version annald found (null if it did not say). */
export class ExpectedVersionConflictError extends ConcurrencyError {
  readonly current: bigint | null;
  readonly expected: ExpectedStreamVersion;
  constructor(message: string, current: bigint | null, expected: ExpectedStreamVersion) {
    super(message, current === null ? null : Number(current));
    this.current = current;
    this.expected = expected;
  }
}

function annalVersion(v: ExpectedStreamVersion | undefined): ExpectedVersion {
  if (v === undefined || v === NO_CONCURRENCY_CHECK) return "any";
  if (v === STREAM_EXISTS) return "exists";
  if (v === STREAM_DOES_NOT_EXIST) return 0;
  if (typeof v === "bigint" && v >= 0n && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
  throw new TypeError(`expectedStreamVersion is a bigint >= 0, ${STREAM_EXISTS}, `
    + `${STREAM_DOES_NOT_EXIST} or ${NO_CONCURRENCY_CHECK}, not ${String(v)}`);
}

function matches(expected: ExpectedStreamVersion | undefined, current: bigint): boolean {
  if (expected === undefined || expected === NO_CONCURRENCY_CHECK) return true;
  if (expected === STREAM_EXISTS) return current > 0n;
  if (expected === STREAM_DOES_NOT_EXIST) return current === 0n;
  return expected === current;
}

function readEvent<E extends Event>(e: AnnalEvent): ReadEvent<E> {
  return {
    type: e.eventType,
    data: e.eventData,
    metadata: {
      ...e.metadata, eventId: e.eventId, streamName: e.aggregateId,
      streamPosition: BigInt(e.version), globalPosition: BigInt(e.sequenceNumber),
      recordedAt: e.recordedAt,
    },
  } as unknown as ReadEvent<E>;
}

export interface EventStore {
  readStream<E extends Event>(streamName: string, options?: ReadStreamOptions):
    Promise<ReadStreamResult<E>>;
  appendToStream<E extends Event>(streamName: string, events: E[],
    options?: { expectedStreamVersion?: ExpectedStreamVersion }): Promise<AppendToStreamResult>;
  aggregateStream<State, E extends Event>(streamName: string,
    options: AggregateStreamOptions<State, E>): Promise<AggregateStreamResult<State>>;
}

/** Emmett's EventStore over an annal client. */
export function getEventStore(client: Client): EventStore {
  const readStream = async <E extends Event>(streamName: string, options: ReadStreamOptions = {}):
    Promise<ReadStreamResult<E>> => {
    const from = options.from ?? 1n;
    const limit = options.maxCount;
    const events: ReadEvent<E>[] = [];
    let current = 0n;
    let fromVersion = Number(from < 1n ? 1n : from);
    for (;;) {
      const page = await client.readPage(streamName, { fromVersion, maxCount: 1000 });
      current = BigInt(page.version ?? 0);
      for (const e of page.events) {
        if (options.to !== undefined && BigInt(e.version) > options.to) break;
        if (limit !== undefined && BigInt(events.length) >= limit) break;
        events.push(readEvent<E>(e));
      }
      const full = limit !== undefined && BigInt(events.length) >= limit;
      const past = options.to !== undefined && page.nextVersion !== null
        && BigInt(page.nextVersion) > options.to;
      if (page.nextVersion === null || full || past) break;
      fromVersion = page.nextVersion;
    }
    if (!matches(options.expectedStreamVersion, current))
      throw new ExpectedVersionConflictError(`stream ${streamName} is at version ${current}`,
        current, options.expectedStreamVersion as ExpectedStreamVersion);
    return { currentStreamVersion: current, events, streamExists: current > 0n };
  };

  return {
    readStream,

    async appendToStream<E extends Event>(streamName: string, events: E[],
      options: { expectedStreamVersion?: ExpectedStreamVersion } = {}):
      Promise<AppendToStreamResult> {
      const expected = options.expectedStreamVersion;
      try {
        const r = await client.appendBatch(streamName, events.map((e) => ({
          eventType: e.type, eventData: e.data, metadata: e.metadata,
        })), { expectedVersion: annalVersion(expected) });
        return {
          nextExpectedStreamVersion: BigInt(r.version),
          lastEventGlobalPosition: BigInt(r.lastSequenceNumber),
          createdNewStream: BigInt(r.version) === BigInt(events.length),
        };
      } catch (err) {
        if (!(err instanceof ConcurrencyError)) throw err;
        const current = err.actualVersion === null ? null : BigInt(err.actualVersion);
        throw new ExpectedVersionConflictError(err.message, current,
          expected ?? NO_CONCURRENCY_CHECK);
      }
    },

    async aggregateStream<State, E extends Event>(streamName: string,
      options: AggregateStreamOptions<State, E>): Promise<AggregateStreamResult<State>> {
      const read = await readStream<E>(streamName, options.read);
      let state = options.initialState();
      for (const e of read.events) {
        state = e.type === "$deleted" ? options.initialState() : options.evolve(state, e);
      }
      return { currentStreamVersion: read.currentStreamVersion, state,
        streamExists: read.streamExists };
    },
  };
}
