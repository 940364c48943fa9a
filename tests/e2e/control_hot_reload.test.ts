// graywall-control in front of real Envoy: a rule changed through the API moves live traffic within
// 2 seconds, with zero failed requests during the swap; counters come from Envoy's admin.
import assert from "node:assert/strict";
import { after, before, describe } from "node:test";
import { e2e, eventually, request, startControlRig, stopControlRig, type ControlRig, type Envoy } from "./harness.ts";

const TOKEN = "hot-reload-token";

describe("hot reload through graywall-control", () => {
  let rig: ControlRig;
  let envoy: Envoy;
  let controlUrl: string;

  before(async () => {
    rig = await startControlRig(TOKEN, { concurrency: 2 });
    ({ envoy, controlUrl } = rig);
  });
  after(() => stopControlRig(rig));

  const put = async (filter: string, doc: unknown) => {
    const cur = await (await fetch(`${controlUrl}/api/filters/${filter}`)).json();
    return fetch(`${controlUrl}/api/filters/${filter}`, {
      method: "PUT",
      headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}`, "if-match": `"${cur.version}"` },
      body: JSON.stringify({ doc, author: "hot-reload test" }),
    });
  };

  e2e("under steady load, a new gray rule moves traffic to canary within 2 s with zero failed requests", async () => {
    const seen: { t: number; status: number; version?: string }[] = [];
    let running = true;
    const worker = async () => {
      while (running) {
        try {
          const r = await request(envoy.url("/"), { headers: { "x-user-group": "gamma" } });
          seen.push({ t: Date.now(), status: r.status, version: r.json?.version });
        } catch (_e) {
          seen.push({ t: Date.now(), status: 0 });
        }
      }
    };
    const workers = Array.from({ length: 8 }, worker);
    await eventually(async () => seen.length > 50, 10000, "50 requests before the change");
    assert.ok(
      seen.every((s) => s.version === "stable"),
      "before: everyone on stable",
    );

    const t0 = Date.now();
    const r = await put("gray_router", { rules: [{ name: "gamma", target: "canary", match: { headers: [{ name: "x-user-group", exact: "gamma" }] } }] });
    assert.equal(r.status, 200, await r.text());
    // Until 50 requests have been answered more than 2 s after the change.
    await eventually(async () => seen.filter((s) => s.t >= t0 + 2000).length > 50, 20000, "50 requests 2 s after the change");
    running = false;
    await Promise.all(workers);

    const failed = seen.filter((s) => s.status !== 200);
    assert.equal(failed.length, 0, `failed requests during the swap: ${failed.length}`);
    const firstCanary = seen.find((s) => s.t >= t0 && s.version === "canary");
    assert.ok(firstCanary, "traffic moved");
    const lag = firstCanary.t - t0;
    assert.ok(lag < 2000, `moved after ${lag} ms`);
    const late = seen.filter((s) => s.t >= t0 + 2000);
    assert.ok(late.length > 50 && late.every((s) => s.version === "canary"), "after 2 s everyone is on canary");
    console.log(`# hot reload: first canary response ${lag} ms after the API accepted the change; ${seen.length} requests, 0 failed`);
  });

  e2e("live counters come from Envoy's admin", async () => {
    const stats = await (await fetch(`${controlUrl}/api/stats`)).json();
    assert.ok(stats["gray_router.rule.gamma.matched"] > 0, JSON.stringify(stats));
    assert.ok("ip_list.allowed" in stats);
  });

  e2e("every filter's document, delivered through ECDS, is accepted by Envoy", async () => {
    const fails = async () => {
      const s = await envoy.stats();
      return Object.entries(s)
        .filter(([k]) => k.startsWith("extension_config_discovery.") && k.endsWith(".config_fail"))
        .reduce((a, [, v]) => a + v, 0);
    };
    assert.equal(await fails(), 0);
    assert.equal((await put("rate_limiter", { rules: [{ name: "hot", key: ["client_ip"], bucket_size: 1, refill_interval_ms: 60000 }] })).status, 200);
    // One token a minute: once the new config is in force, the second request of a client gets 429.
    await eventually(async () => (await request(envoy.url("/"), { headers: { connection: "close" } })).status === 429, 5000, "the new rate limit");
    assert.equal(await fails(), 0);
  });
});
