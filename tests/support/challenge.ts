// The challenge page's own script, run as a browser would: the clearance cookie it sets.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { runInNewContext } from "node:vm";

/** Runs the challenge page's script, returning the cookie it sets ("name=value"). */
export function solveInScript(page: string): string {
  const script = /<script>([\s\S]*)<\/script>/.exec(page)?.[1];
  assert.ok(script, "the page has a script");
  const document = { cookie: "" };
  let reloaded = false;
  runInNewContext(script, { document, location: { reload: () => (reloaded = true) } }, { timeout: 20000 });
  assert.ok(reloaded, "the script reloads the page");
  return document.cookie.split(";")[0];
}

/**
 * The same work done with node's SHA-256, as fast as a browser's native code (the page's script is
 * plain JavaScript, seconds per solve in a VM context): for tests where many people solve at once.
 */
export function solveNatively(page: string): string {
  const m = /var seed='([0-9a-f]+)',issued=(\d+),bits=(\d+),cookie='([^']+)'/.exec(page);
  assert.ok(m, "the page names its seed, issue time, difficulty and cookie");
  const [, seed, issued, bitsText, cookie] = m;
  const bits = Number(bitsText);
  for (let n = 0; ; n++) {
    const d = createHash("sha256").update(`${seed}.${n}`).digest();
    let zeros = 0;
    for (const byte of d) {
      if (byte === 0) {
        zeros += 8;
        continue;
      }
      zeros += Math.clz32(byte) - 24;
      break;
    }
    if (zeros >= bits) return `${cookie}=${issued}.${bits}.${n}`;
  }
}
