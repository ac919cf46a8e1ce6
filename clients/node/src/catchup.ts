/**
 * The catch-up subscription of docs/protocol.md section 3.3, with no I/O:
 * the subscription feeds it read_all pages and PUB messages and hands over
 * the events it lets through.
 *
 * State: `position`, the next sequence to consider. Invariants:
 * 1. Every matching event with a sequence below position has been handed
 *    over exactly once, in sequence order (deliver() moves position past an
 *    event as it is handed over, so a caller that stops after any event
 *    resumes from exactly there).
 * 2. An event is handed over only when its sequence is position (live) or
 *    when it comes from a read_all that started at or below it (catch-up).
 * The SUB socket is subscribed before the first read, so nothing committed
 * after the read can slip between history and live. A live event below
 * position repeats what a read delivered: dropped. One above position is a
 * hole: lost messages, events of other aggregates (with a prefix) or
 * sequences removed by a deletion: one read_all from position settles which,
 * delivering what exists and moving past what does not (`skipped` counts
 * those sequences). A $head at or past position means events may have been
 * lost at the tail; silence means annald is away: both ask for a read. A read
 * whose head is below position - 1 means annald serves another store:
 * StoreChanged, rather than skipping events.
 */
import { decode } from "@msgpack/msgpack";
import { AnnalError, type Reply } from "./errors.js";
import * as P from "./protocol.js";
import { event, type Event, type Page } from "./records.js";

export const PAGE = 1000;          // events per catch-up read
export const SILENCE_MS = 3000;    // no heartbeat for this long: check with a read
export const BACKOFF_MAX_MS = 2000; // longest wait between reads while annald is away
export const HEAD = "$head";

/** annald's store is behind the subscription's position: it serves another
 * store, or a restored copy. The subscription stops rather than skip or
 * repeat events. */
export class StoreChanged extends AnnalError {}

export interface Stats {
  live: number;    // events handed over from PUB
  read: number;    // events handed over from read_all
  reads: number;   // read_all requests sent
  skipped: number; // sequences a read moved past: removed, or other aggregates'
}

/** A published body, in either publish encoding; null if it is neither. */
export function decodeBody(body: Buffer): Reply | null {
  let value: unknown;
  try {
    value = body[0] === 0x7b ? JSON.parse(body.toString("utf8")) : decode(body);
  } catch {
    return null;
  }
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Reply) : null;
}

export class Catchup {
  position: number | null;
  catchUp = true;
  readonly stats: Stats = { live: 0, read: 0, reads: 0, skipped: 0 };
  private lastBeat = 0;
  private backoff = 0;

  constructor(readonly prefix: string, fromSequence: number | "end") {
    if (fromSequence !== "end" && !(Number.isSafeInteger(fromSequence) && fromSequence >= 1))
      throw new TypeError('fromSequence is an integer >= 1 or "end"');
    this.position = fromSequence === "end" ? null : fromSequence;
  }

  get started(): boolean {
    return this.position !== null;
  }

  /** For fromSequence "end": a read that tells the head. */
  startCall(): P.Call<Page> {
    return P.readAll(1, 0);
  }

  start(page: Page, now: number): void {
    this.position = (page.headSequence ?? 0) + 1;
    this.lastBeat = now;
  }

  wantsRead(now: number): boolean {
    if (!this.lastBeat) this.lastBeat = now;
    if (now - this.lastBeat > SILENCE_MS) {
      this.catchUp = true; // annald quiet: restarted, or heartbeats lost
      this.lastBeat = now;
    }
    return this.catchUp;
  }

  readCall(): P.Call<Page> {
    this.stats.reads++;
    return P.readAll(this.pos(), PAGE, this.prefix);
  }

  /** annald did not answer: how long to wait (ms) before the next try. */
  away(): number {
    this.backoff = Math.min(BACKOFF_MAX_MS, this.backoff ? this.backoff * 2 : 50);
    return this.backoff;
  }

  checkPage(page: Page, now: number): void {
    this.backoff = 0;
    this.lastBeat = now;
    if ((page.headSequence ?? 0) + 1 < this.pos())
      throw new StoreChanged(`annald's store is behind this subscription's position ${this.pos()}: `
        + "is it another or a restored store?");
  }

  /** True when e is to be handed over now (and position moves past it). */
  deliver(e: Event, live: boolean): boolean {
    const pos = this.pos();
    if (e.sequenceNumber < pos) return false;
    this.stats.skipped += e.sequenceNumber - pos;
    this.position = e.sequenceNumber + 1;
    if (live) this.stats.live++;
    else this.stats.read++;
    return true;
  }

  /** After a page's events were handed over: move past its holes, and end
   * the catch-up at the head. */
  finishPage(page: Page): void {
    const pos = this.pos();
    const next = page.nextSequence ?? pos;
    if (next > pos) {
      this.stats.skipped += next - pos;
      this.position = next;
    }
    if (page.events.length === 0 && this.pos() > (page.headSequence ?? 0)) this.catchUp = false;
  }

  /** A PUB message: the event to hand over, if any. */
  onMessage(topic: Buffer, body: Buffer, now: number): Event | null {
    const msg = decodeBody(body);
    if (msg === null) return null; // not ours to judge: a read settles what matters
    const pos = this.pos();
    if (topic.toString("utf8") === HEAD) {
      this.lastBeat = now;
      const head = msg.head_sequence;
      // at or past position: events may have been lost. Far below: a read
      // tells whether annald now serves another store.
      if (typeof head === "number" && (head >= pos || head + 1 < pos)) this.catchUp = true;
      return null;
    }
    if (this.catchUp) return null; // the read under way delivers it
    let e: Event;
    try {
      e = event(msg);
    } catch {
      return null;
    }
    if (e.sequenceNumber > pos) {
      this.catchUp = true;
      return null;
    }
    return this.deliver(e, true) ? e : null;
  }

  private pos(): number {
    if (this.position === null) throw new Error("the subscription has not started");
    return this.position;
  }
}
