// Client and Subscription with CURVE: keys from `annal keygen` files admit
// the client on both sockets; no keys, or keys annald does not admit, get no
// answer.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Client, Unavailable, loadCurve } from "../dist/index.js";
import { ANNALD, Annald, collect, skip } from "./annald.js";

describe("curve", { skip }, () => {
  let d, keys;
  const keygen = (name) => {
    const path = join(keys, name);
    execFileSync(join(dirname(ANNALD), "annal"), ["keygen", path], { timeout: 20000 });
    return path;
  };
  before(async () => {
    keys = mkdtempSync(join(tmpdir(), "annal-keys-"));
    const server = keygen("server");
    keygen("alice");
    keygen("mallory");
    mkdirSync(join(keys, "allowed"));
    copyFileSync(join(keys, "alice"), join(keys, "allowed", "alice"));
    d = await Annald.start("--curve-secret", `${server}_secret`, "--curve-allow", join(keys, "allowed"));
  });
  after(async () => {
    await d?.cleanup();
    rmSync(keys, { recursive: true, force: true });
  });

  test("admitted on both sockets", async () => {
    const curve = loadCurve(join(keys, "alice_secret"), join(keys, "server"));
    const c = new Client({ commands: d.commands, events: d.events, curve });
    try {
      await c.append("c-1", "T", { secret: true });
      const sub = c.subscribe();
      await c.append("c-1", "T", { n: 2 });
      assert.deepEqual(await collect(sub, 2), [1, 2]);
      sub.close();
    } finally {
      c.close();
    }
  });

  test("others get nothing", async () => {
    for (const curve of [undefined, loadCurve(join(keys, "mallory_secret"), join(keys, "server"))]) {
      const c = new Client({ commands: d.commands, timeoutMs: 500, curve });
      await assert.rejects(c.status(), Unavailable);
      c.close();
    }
    // a public certificate has no secret key
    assert.throws(() => loadCurve(join(keys, "server"), join(keys, "server")), TypeError);
  });
});
