// The challenge page's own script, run as a browser would: the clearance cookie it sets.
import assert from "node:assert/strict";
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
