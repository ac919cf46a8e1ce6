/**
 * The request channel: one ZeroMQ DEALER to annald's command socket,
 * MessagePack bodies, replies matched to requests by msg_id, many requests in
 * flight at once.
 *
 * Invariants: a reply settles only the request whose msg_id it answers (an
 * error reply without in_reply_to, which annald sends for a body it could
 * not read, settles the oldest); every request is settled exactly once, by
 * its reply or by its time running out; when one request's time runs out,
 * every request in flight is failed with Unavailable and the socket is
 * closed, so a late reply can never settle a later request; a socket is
 * being read only while requests are in flight, so an idle client does not
 * keep Node.js running.
 */
import { readFileSync } from "node:fs";
import { decode, encode } from "@msgpack/msgpack";
import { Dealer, Subscriber } from "zeromq";
import { Unavailable, type Reply } from "./errors.js";
import type { Call } from "./protocol.js";

/** CURVE keys, each 40 characters of Z85 text: the client's pair and
 * annald's public key. */
export interface CurveKeys {
  publicKey: string;
  secretKey: string;
  serverKey: string;
}

function key(k: string): string {
  if (typeof k !== "string" || k.length !== 40)
    throw new TypeError("a CURVE key is 40 characters of Z85 text");
  return k;
}

export function curveKeys(c: CurveKeys | undefined): CurveKeys | undefined {
  return c && { publicKey: key(c.publicKey), secretKey: key(c.secretKey), serverKey: key(c.serverKey) };
}

/** The curve option from certificate files as `annal keygen` writes them
 * (CZMQ's format): the client's secret certificate and annald's public one. */
export function loadCurve(keyFile: string, serverFile: string): CurveKeys {
  const field = (path: string, name: string): string => {
    const m = new RegExp(`${name}\\s*=\\s*"([^"]{40})"`).exec(readFileSync(path, "utf8"));
    if (!m) throw new TypeError(`${path} has no ${name}`);
    return m[1];
  };
  return {
    publicKey: field(keyFile, "public-key"), secretKey: field(keyFile, "secret-key"),
    serverKey: field(serverFile, "public-key"),
  };
}

function curveOptions(c: CurveKeys | undefined) {
  return c ? { curvePublicKey: c.publicKey, curveSecretKey: c.secretKey, curveServerKey: c.serverKey } : {};
}

/** A SUB socket to endpoint, subscribed to prefix and the $head beat,
 * holding up to queue messages before PUB drops. */
export function subscriber(endpoint: string, prefix: string, queue: number,
  curve: CurveKeys | undefined): Subscriber {
  const s = new Subscriber({ linger: 0, receiveHighWaterMark: queue, receiveTimeout: 200,
    ...curveOptions(curve) });
  s.subscribe(prefix);
  if (prefix) s.subscribe("$head");
  s.connect(endpoint);
  return s;
}

export function timeoutError(endpoint: string, ms: number): Unavailable {
  return new Unavailable(`annald at ${endpoint} did not answer within ${ms / 1000} s; `
    + "a write may or may not be stored: send it again with the same event ids");
}

interface Pending {
  settle: (reply: Reply) => void;
  fail: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class Channel {
  private sock: Dealer | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private reading = false;
  private sending: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(readonly endpoint: string, readonly timeoutMs: number,
    readonly curve: CurveKeys | undefined) {}

  call<T>(c: Call<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Unavailable("the client is closed", false));
    const sock = this.socket();
    const msgId = this.nextId++;
    const frame = encode({ ...c.request, msg_id: msgId }, { ignoreUndefined: true });
    const budget = this.timeoutMs + c.waitMs;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => this.expire(budget), budget);
      this.pending.set(msgId, {
        settle: (reply) => { try { resolve(c.parse(reply)); } catch (e) { reject(e as Error); } },
        fail: reject,
        timer,
      });
      // zeromq sends one message at a time: a queue of sends, in order
      this.sending = this.sending.then(() => sock.send(frame)).catch(() => {
        /* the socket was closed: the request's timer or close() fails it */
      });
      if (!this.reading) void this.read(sock);
    });
  }

  /** Fails every request in flight and closes the socket. */
  close(): void {
    this.closed = true;
    this.reset(new Unavailable("the client was closed before annald answered"));
  }

  private socket(): Dealer {
    if (!this.sock) {
      this.sock = new Dealer({ linger: 0, ...curveOptions(this.curve) });
      this.sock.connect(this.endpoint);
    }
    return this.sock;
  }

  private expire(budgetMs: number): void {
    this.reset(timeoutError(this.endpoint, budgetMs));
  }

  private reset(err: Error): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    if (this.sock) {
      this.sock.close();
      this.sock = null;
    }
    this.sending = Promise.resolve();
    for (const p of all) {
      clearTimeout(p.timer);
      p.fail(err);
    }
  }

  private async read(sock: Dealer): Promise<void> {
    this.reading = true;
    try {
      while (this.pending.size > 0 && this.sock === sock) {
        const [frame] = await sock.receive();
        this.dispatch(frame);
      }
    } catch {
      /* the socket was closed under the receive */
    } finally {
      this.reading = false;
    }
    // requests sent on a new socket while this one was being read
    if (this.pending.size > 0 && this.sock && this.sock !== sock) void this.read(this.sock);
  }

  private dispatch(frame: Buffer): void {
    let reply: unknown;
    try {
      reply = decode(frame);
    } catch {
      return; // not MessagePack: no request can be told it was its answer
    }
    if (typeof reply !== "object" || reply === null || Array.isArray(reply)) return;
    const r = reply as Reply;
    let id = typeof r.in_reply_to === "number" ? r.in_reply_to : undefined;
    if (id === undefined && r.type === "error") id = this.pending.keys().next().value;
    const p = id === undefined ? undefined : this.pending.get(id);
    if (!p || id === undefined) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    p.settle(r);
  }
}
