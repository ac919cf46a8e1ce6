/**
 * annal's Node.js client: Client, its consumer groups (Group) and its
 * catch-up subscriptions (Subscription).
 *
 * Invariants: every call is one request (or, for the async iterables, one per
 * page) through the client's channel, and any number may be in flight at
 * once; a Subscription has sockets of its own, and its iterator hands over
 * every matching event exactly once, in sequence order (see catchup.ts); a
 * Group's consume() acks an event only after its handler has returned (or
 * its promise resolved).
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Subscriber } from "zeromq";
import { Catchup, type Stats } from "./catchup.js";
import { Channel, curveKeys, subscriber, type CurveKeys } from "./channel.js";
import { PermanentError, Unavailable } from "./errors.js";
import * as P from "./protocol.js";
import type {
  Appended, BatchAppended, Deleted, Event, GroupInfo, Page, Replayed, Retention, Snapshot,
  SnapshotCreated, State, Status,
} from "./records.js";

export interface ClientOptions {
  /** annald's command endpoint (default tcp://127.0.0.1:5555). */
  commands?: string;
  /** annald's event endpoint (default tcp://127.0.0.1:5556). */
  events?: string;
  /** How long a request may go unanswered, in ms (default 5000). */
  timeoutMs?: number;
  /** CURVE keys, when annald runs with --curve. */
  curve?: CurveKeys;
}

export interface AppendOptions {
  /** The aggregate's version now (0: no events yet), "any" (the default) or
   * "exists"; a mismatch throws ConcurrencyError and writes nothing. */
  expectedVersion?: P.ExpectedVersion;
  metadata?: Record<string, unknown>;
  /** Makes the append safe to send again: annald answers a repeat as the first. */
  eventId?: string;
}

export interface ReadOptions {
  fromVersion?: number;
  direction?: P.Direction;
  pageSize?: number;
}

export interface ReadAllOptions {
  fromSequence?: number;
  prefix?: string;
  eventTypes?: readonly string[];
  pageSize?: number;
}

export interface SubscribeOptions {
  /** Aggregates whose id starts with this (default: all). */
  prefix?: string;
  /** The first sequence to consider (default 1), or "end": only what is
   * appended from now on. */
  fromSequence?: number | "end";
  /** Live events held for the subscription before PUB drops (it then reads
   * what was dropped); default 100000. */
  queue?: number;
}

export class Client {
  readonly commands: string;
  readonly events: string;
  readonly timeoutMs: number;
  readonly curve: CurveKeys | undefined;
  /** @internal */ readonly channel: Channel;
  private readonly subscriptions = new Set<Subscription>();

  constructor(options: ClientOptions = {}) {
    this.commands = options.commands ?? "tcp://127.0.0.1:5555";
    this.events = options.events ?? "tcp://127.0.0.1:5556";
    this.timeoutMs = options.timeoutMs ?? 5000;
    if (!(this.timeoutMs > 0)) throw new TypeError("timeoutMs is a number of ms > 0");
    this.curve = curveKeys(options.curve);
    this.channel = new Channel(this.commands, this.timeoutMs, this.curve);
  }

  /** Closes the client's sockets, the subscriptions it made included;
   * requests in flight fail with Unavailable. */
  close(): void {
    for (const s of this.subscriptions) s.close();
    this.channel.close();
  }

  // the commands of section 4

  /** Appends one event. */
  append(aggregateId: string, eventType: string, data: unknown,
    options: AppendOptions = {}): Promise<Appended> {
    return this.channel.call(P.append(aggregateId, eventType, data,
      options.expectedVersion ?? "any", options.metadata, options.eventId));
  }

  /** Appends events atomically, at consecutive versions. */
  appendBatch(aggregateId: string, events: Iterable<P.NewEvent>,
    options: { expectedVersion?: P.ExpectedVersion } = {}): Promise<BatchAppended> {
    return this.channel.call(P.appendBatch(aggregateId, events, options.expectedVersion ?? "any"));
  }

  /** One read reply: events, the aggregate's version, nextVersion. */
  readPage(aggregateId: string, options: ReadOptions & { maxCount?: number } = {}): Promise<Page> {
    return this.channel.call(P.read(aggregateId, options.fromVersion,
      options.maxCount ?? options.pageSize ?? 1000, options.direction ?? "forward"));
  }

  /** Every event of the aggregate from fromVersion on, page by page. */
  async *read(aggregateId: string, options: ReadOptions = {}): AsyncGenerator<Event> {
    let fromVersion = options.fromVersion;
    for (;;) {
      const page = await this.readPage(aggregateId, { ...options, fromVersion });
      yield* page.events;
      if (page.nextVersion === null) return;
      fromVersion = page.nextVersion;
    }
  }

  /** One read_all reply: events, nextSequence, headSequence. */
  readAllPage(options: ReadAllOptions & { maxCount?: number } = {}): Promise<Page> {
    return this.channel.call(P.readAll(options.fromSequence ?? 1,
      options.maxCount ?? options.pageSize ?? 1000, options.prefix, options.eventTypes));
  }

  /** The global log from fromSequence to the head (as the last page saw
   * it), filtered by aggregate id prefix and event types. */
  async *readAll(options: ReadAllOptions = {}): AsyncGenerator<Event> {
    let fromSequence = options.fromSequence ?? 1;
    for (;;) {
      const page = await this.readAllPage({ ...options, fromSequence });
      yield* page.events;
      if (page.nextSequence === null || page.nextSequence > (page.headSequence ?? 0)) return;
      fromSequence = page.nextSequence;
    }
  }

  /** A snapshot of the default fold at `version` (default: the current). */
  createSnapshot(aggregateId: string, options: { version?: number } = {}):
    Promise<SnapshotCreated> {
    return this.channel.call(P.createSnapshot(aggregateId, undefined, false, options.version));
  }

  /** A snapshot of the caller's own state, at the aggregate's current version. */
  saveSnapshot(aggregateId: string, state: unknown): Promise<SnapshotCreated> {
    return this.channel.call(P.createSnapshot(aggregateId, state, true));
  }

  /** The latest snapshot; NotFound if there is none. */
  getSnapshot(aggregateId: string): Promise<Snapshot> {
    return this.channel.call(P.getSnapshot(aggregateId));
  }

  /** The default fold (JSON Merge Patch) of the aggregate's events. */
  replay(aggregateId: string, options: { useSnapshot?: boolean; version?: number } = {}):
    Promise<Replayed> {
    return this.channel.call(P.replay(aggregateId, options.useSnapshot ?? false, options.version));
  }

  /** The default fold as of an RFC 3339 time. */
  getState(aggregateId: string, timestamp: string): Promise<State> {
    return this.channel.call(P.getState(aggregateId, timestamp));
  }

  status(): Promise<Status> {
    return this.channel.call(P.status());
  }

  // section 7

  /** Removes every event and snapshot of the aggregate (a $deleted event
   * records it). hard: the aggregate takes no more appends (Gone). */
  deleteAggregate(aggregateId: string, options: { expectedVersion: P.ExpectedVersion;
    hard?: boolean; eventId?: string }): Promise<Deleted> {
    return this.channel.call(P.deleteAggregate(aggregateId, options.expectedVersion,
      options.hard ?? false, options.eventId));
  }

  /** Sets the whole policy (a limit left out is none). */
  setRetention(aggregateId: string, policy: { maxCount?: number | null; maxAgeS?: number | null }):
    Promise<Retention> {
    return this.channel.call(P.setRetention(aggregateId, policy.maxCount ?? null,
      policy.maxAgeS ?? null));
  }

  getRetention(aggregateId: string): Promise<Retention> {
    return this.channel.call(P.getRetention(aggregateId));
  }

  // section 6, and 3.3

  /** The consumer group of that name (create() makes it). */
  group(name: string): Group {
    return new Group(this, name);
  }

  groups(): Promise<GroupInfo[]> {
    return this.channel.call(P.groupList());
  }

  /** A catch-up subscription: every matching event, exactly once and in
   * sequence order, history first, then live. */
  subscribe(options: SubscribeOptions = {}): Subscription {
    const s = new Subscription(this, options.prefix ?? "", options.fromSequence ?? 1,
      options.queue ?? 100000, () => this.subscriptions.delete(s));
    this.subscriptions.add(s);
    return s;
  }
}

export interface ConsumeOptions {
  /** Events per fetch (default 100). */
  maxCount?: number;
  /** How long a fetch waits for events, in ms (default 5000). */
  waitMs?: number;
  /** Stops the loop (between batches) when aborted. */
  signal?: AbortSignal;
  /** Stops the loop once this many events were handled. */
  maxEvents?: number;
}

export type Handler = (e: Event) => unknown;

/** A consumer group held by annald: its events are shared among the
 * consumers that fetch them, each leased to one at a time until acked. */
export class Group {
  constructor(readonly client: Client, readonly name: string) {}

  /** Creates the group (or finds it with these settings); resolves to its start. */
  create(settings: P.GroupSettings = {}): Promise<number> {
    return this.client.channel.call(P.groupCreate(this.name, settings));
  }

  /** Leases up to maxCount ready events to consumer, waiting up to waitMs for some. */
  fetch(consumer: string, options: { maxCount?: number; waitMs?: number } = {}): Promise<Event[]> {
    return this.client.channel.call(P.groupFetch(this.name, consumer, options.maxCount ?? 100,
      options.waitMs ?? 0));
  }

  /** Marks the events done; resolves to how many counted. */
  ack(consumer: string, sequences: Iterable<number>): Promise<number> {
    return this.client.channel.call(P.groupAck(this.name, consumer, sequences));
  }

  /** "retry": ready again now; "park": set aside with reason; "skip": as acked. */
  nack(consumer: string, sequences: Iterable<number>, action: P.NackAction = "retry",
    reason = ""): Promise<number> {
    return this.client.channel.call(P.groupNack(this.name, consumer, sequences, action, reason));
  }

  info(): Promise<GroupInfo> {
    return this.client.channel.call(P.groupInfo(this.name));
  }

  delete(): Promise<void> {
    return this.client.channel.call(P.groupDelete(this.name));
  }

  /** The parked events, each with its reason. */
  async *parked(options: { fromSequence?: number; pageSize?: number } = {}): AsyncGenerator<Event> {
    let from = options.fromSequence ?? 1;
    for (;;) {
      const page = await this.client.channel.call(P.groupParked(this.name, from,
        options.pageSize ?? 1000));
      yield* page.events;
      if (page.nextSequence === null) return;
      from = page.nextSequence;
    }
  }

  /** Makes parked events ready again (all of them when sequences is undefined). */
  replayParked(sequences?: Iterable<number>): Promise<number> {
    return this.client.channel.call(P.groupReplayParked(this.name, sequences));
  }

  /** Runs handler over the group's events until the signal is aborted or
   * maxEvents were handled; resolves to how many were. An event whose
   * handler returns (or resolves) is acked; one that throws PermanentError is
   * parked (the message is the reason); any other error asks for it again
   * ("retry"). annald being away is ridden out with back-off. */
  async consume(consumer: string, handler: Handler, options: ConsumeOptions = {}): Promise<number> {
    const { maxCount = 100, waitMs = 5000, signal, maxEvents } = options;
    let done = 0;
    let backoff = 0;
    while (!signal?.aborted && (maxEvents === undefined || done < maxEvents)) {
      try {
        const want = maxEvents === undefined ? maxCount : Math.min(maxCount, maxEvents - done);
        const events = await this.fetch(consumer, { maxCount: want, waitMs });
        backoff = 0;
        done += await this.handle(consumer, events, handler);
      } catch (err) {
        if (!(err instanceof Unavailable)) throw err;
        backoff = Math.min(2000, backoff ? backoff * 2 : 100);
        await sleep(backoff, undefined, { signal }).catch(() => undefined);
      }
    }
    return done;
  }

  /** Hands events to handler in order; acks the successes in one request,
   * also when a nack failed; resolves to how many were handled. */
  private async handle(consumer: string, events: Event[], handler: Handler): Promise<number> {
    const acks: number[] = [];
    try {
      for (const e of events) {
        try {
          await handler(e);
          acks.push(e.sequenceNumber);
        } catch (err) {
          const permanent = err instanceof PermanentError;
          const reason = err instanceof Error ? err.message || err.name : String(err);
          await this.nack(consumer, [e.sequenceNumber], permanent ? "park" : "retry", reason);
        }
      }
    } finally {
      if (acks.length) await this.ack(consumer, acks);
    }
    return events.length;
  }
}

const isTimeout = (err: unknown): boolean =>
  typeof err === "object" && err !== null && (err as { code?: unknown }).code === "EAGAIN";

/** Every event of the aggregates matching a prefix, exactly once and in
 * sequence order: history, then live, across PUB drops and annald restarts.
 * Iterate it with `for await`; `position` is the next sequence it will
 * consider (store it with your projection and resume from it); `stats`
 * counts. Leaving a `for await` over the subscription closes it; events()
 * with idleTimeoutMs leaves it open when it ends for want of events. */
export class Subscription implements AsyncIterable<Event> {
  private readonly state: Catchup;
  private readonly channel: Channel;
  private readonly sub: Subscriber;
  private closedFlag = false;

  /** @internal */
  constructor(client: Client, prefix: string, fromSequence: number | "end", queue: number,
    private readonly onClose: () => void) {
    this.state = new Catchup(prefix, fromSequence);
    this.channel = new Channel(client.commands, client.timeoutMs, client.curve);
    this.sub = subscriber(client.events, prefix, queue, client.curve);
  }

  get position(): number | null {
    return this.state.position;
  }

  get stats(): Stats {
    return { ...this.state.stats };
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.sub.close();
    this.channel.close();
    this.onClose();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Event> {
    try {
      yield* this.events();
    } finally {
      this.close();
    }
  }

  /** The events; with idleTimeoutMs, the iteration ends when none came for that long. */
  async *events(options: { idleTimeoutMs?: number } = {}): AsyncGenerator<Event> {
    const st = this.state;
    const now = () => performance.now();
    let idleSince = now();
    while (!this.closedFlag) {
      if (options.idleTimeoutMs !== undefined && now() - idleSince > options.idleTimeoutMs) return;
      try {
        if (!st.started) st.start(await this.channel.call(st.startCall()), now());
        while (st.wantsRead(now()) && !this.closedFlag) {
          const page = await this.channel.call(st.readCall());
          st.checkPage(page, now());
          for (const e of page.events) {
            if (st.deliver(e, false)) {
              idleSince = now();
              yield e;
            }
          }
          st.finishPage(page);
        }
      } catch (err) {
        if (this.closedFlag) return;
        if (!(err instanceof Unavailable)) throw err;
        await sleep(st.away());
        continue;
      }
      for (let i = 0; i < 10000 && !this.closedFlag; i++) {
        let frames: Buffer[];
        try {
          frames = await this.sub.receive();
        } catch (err) {
          if (this.closedFlag) return;
          if (isTimeout(err)) break;
          throw err;
        }
        if (frames.length !== 2) continue;
        const live = st.onMessage(frames[0], frames[1], now());
        if (live) {
          idleSince = now();
          yield live;
        }
        if (st.catchUp) break;
      }
    }
  }
}
