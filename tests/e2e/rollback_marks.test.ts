// A honeypot that should never have been published (a page people visit) marks the people who visit it;
// rolling the configuration back must end those marks at once, not after the honeypot's TTL. Real
// Envoy, published and rolled back through graywall-control.
import assert from "node:assert/strict";
import { after, before, describe } from "node:test";
import { e2e, eventually, request, startControlRig, stopControlRig, type ControlRig } from "./harness.ts";

const TOKEN = "marks-token";
const BROWSER = { "user-agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0.0.0", accept: "text/html", "accept-language": "en" };

describe("honeypot marks and rollback", () => {
  let rig: ControlRig;
  before(async () => {
    rig = await startControlRig(TOKEN);
  });
  after(async () => stopControlRig(rig));

  e2e("marks made under a rolled-back honeypot end with the rollback; marks under the paths in force stay", async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const cur = (await rig.app.inject({ url: "/api/filters/crawler_score" })).json();
    const doc = { ...cur.doc, honeypot_paths: [...(cur.doc.honeypot_paths ?? []), "/shop"] };
    const put = await rig.app.inject({
      method: "PUT",
      url: "/api/filters/crawler_score",
      headers: { ...auth, "if-match": `"${cur.version}"` },
      payload: { doc },
    });
    assert.equal(put.statusCode, 200, put.body);
    const page = (path: string) => request(rig.envoy.url(path), { headers: BROWSER });
    // The bad honeypot takes effect: a (cookie-less) shopper visiting /shop is refused, and its address is
    // challenged from then on.
    await eventually(async () => (await page("/shop/shoes")).status === 403, 5000, "the /shop honeypot in force");
    assert.equal((await page("/")).status, 429, "the shopper's address is marked");
    const back = await rig.app.inject({
      method: "POST",
      url: "/api/filters/crawler_score/rollback",
      headers: { ...auth, "if-match": `"${put.json().version}"` },
      payload: { version: cur.version },
    });
    assert.equal(back.statusCode, 200, back.body);
    // The honeypot TTL is 10 minutes: only the rollback can explain a 200 within seconds.
    await eventually(async () => (await page("/")).status === 200, 5000, "the shopper served again after the rollback");
    assert.equal((await page("/shop/shoes")).status, 200);
  });
});
