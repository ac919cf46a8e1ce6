// A real annald for the package's tests: ANNALD names the program; each
// Annald gets a new store and IPC endpoints of its own, and can be killed
// and started again on the same store and endpoints.
import { spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";

export const ANNALD = process.env.ANNALD ?? "";
/** The reason to skip annald's tests, or false. */
export const skip = ANNALD ? false : "set ANNALD to the annald program to run these tests";

const root = mkdtempSync(join(tmpdir(), "annal-node-"));
process.on("exit", () => rmSync(root, { recursive: true, force: true }));
let names = 0;

export class Annald {
  static async start(...args) {
    const d = new Annald(args);
    await d.start();
    return d;
  }

  constructor(args) {
    const n = ++names;
    this.data = join(root, `store${n}`);
    this.commands = `ipc://${root}/${n}c`;
    this.events = `ipc://${root}/${n}e`;
    this.args = args;
    this.proc = null;
  }

  async start() {
    const log = openSync(`${this.data}.log`, "a");
    this.proc = spawn(ANNALD, ["--data", this.data, "--commands", this.commands,
      "--events", this.events, ...this.args], { stdio: ["ignore", "pipe", log] });
    closeSync(log);
    this.exited = new Promise((resolve) => this.proc.once("exit", resolve));
    const lines = createInterface({ input: this.proc.stdout });
    const line = await new Promise((resolve) => {
      lines.once("line", resolve);
      this.exited.then(() => resolve(""));
    });
    lines.close();
    this.proc.stdout.resume();
    if (!/commands \S+ events \S+/.test(line)) throw new Error(`annald did not start: ${line}`);
  }

  async kill() {
    this.proc.kill("SIGKILL");
    await this.exited;
  }

  /** SIGSTOP, once the process is stopped (a signal takes effect a
   * moment after kill() returns). */
  async pause() {
    this.proc.kill("SIGSTOP");
    const stat = `/proc/${this.proc.pid}/stat`;
    while (readFileSync(stat, "utf8").split(" ")[2] !== "T") await sleep(5);
  }

  resume() {
    this.proc.kill("SIGCONT");
  }

  async cleanup() {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) await this.kill();
    rmSync(this.data, { recursive: true, force: true });
  }
}

/** The first `want` events' sequences (or what came before idleMs). */
export async function collect(sub, want, idleMs = 10000) {
  const got = [];
  if (want === 0) return got;
  for await (const e of sub.events({ idleTimeoutMs: idleMs })) {
    got.push(e.sequenceNumber);
    if (got.length >= want) break;
  }
  return got;
}

export const range = (from, to) => Array.from({ length: to - from }, (_, i) => from + i);

/** Inside a describe(): one annald and one client of it for the suite
 * (before/after hooks); the returned object's `d` and `c` are set once it
 * runs. */
export function useAnnald(before, after, Client, ...args) {
  const ctx = { d: null, c: null };
  before(async () => {
    ctx.d = await Annald.start(...args);
    ctx.c = new Client({ commands: ctx.d.commands, events: ctx.d.events });
  });
  after(async () => {
    ctx.c?.close();
    await ctx.d?.cleanup();
  });
  return ctx;
}
