// Graywall's counters as labelled Prometheus families in real Envoy (the shipped config's stats_tags):
// one family per action with the stage as a label, crawler signals and refusal reasons as labels, rules
// and targets as labels, no label from a client's value. /stats keeps the dotted names.
import assert from "node:assert/strict";
import { describe } from "node:test";
import { e2e, eventually, rawRequest, request, startRig, stopRig } from "./harness.ts";

/** The access log's JSON lines in an Envoy's output. */
function accessLog(out: string): Record<string, string>[] {
  return out
    .split("\n")
    .filter((l) => l.startsWith("{") && l.includes('"request_id"'))
    .map((l) => JSON.parse(l));
}

describe("why a request was refused", () => {
  e2e("each refused request's access-log line names the stage and its reason; a tagged one its score; the client sees none of it", async () => {
    const rig = await startRig(
      "envoy/envoy.yaml",
      {
        "graywall.ip_list": { client_address: "envoy_xff", allow: [], deny: ["10.99.0.0/16"] },
        "graywall.access": { consumers: [], require: [{ prefix: "/private/", credentials: "key" }] },
      },
      { concurrency: 2 },
    );
    try {
      const browser = {
        "user-agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0.0.0 Safari/537.36",
        accept: "text/html",
        "accept-language": "en",
        "sec-fetch-mode": "navigate",
        "sec-fetch-dest": "document",
        connection: "close",
      };
      // Each answer carries the x-request-id of its log line.
      const seen = new Map<string, string>();
      const send = async (name: string, path: string, headers: Record<string, string> = browser) => {
        const r = await rawRequest(rig.envoy.url(path), { headers });
        const rid = r.headers.get("x-request-id");
        assert.ok(rid, `${name}: x-request-id in the answer`);
        seen.set(name, rid);
        return r;
      };
      // Gray-routed (the beta group goes to canary): logged. A plain request to the default target: not.
      assert.equal((await send("routed", "/?api_key=secret-in-query", { ...browser, "x-user-group": "beta" })).status, 200);
      assert.equal((await send("plain", "/plain")).status, 200);
      const denied = await send("access", "/private/x");
      assert.equal(denied.status, 401);
      assert.doesNotMatch(denied.body, /missing/, "the reason is not the client's to know");
      for (let i = 0; i < 6; i++) await send(`api-${i}`, "/api/x");
      assert.equal((await send("tool", "/page", { "user-agent": "curl/8.5.0", accept: "text/html", connection: "close" })).status, 429);
      assert.equal((await send("trap", "/.env")).status, 403);
      const line = (n: string) => accessLog(rig.envoy.log()).find((l) => l.request_id === seen.get(n));
      // The harness's Envoys write their access log out every 500 ms.
      await eventually(async () => line("trap") !== undefined, 5000, "the log lines");
      assert.equal(line("routed")!.details, "via_upstream");
      assert.equal(line("routed")!.upstream, "canary_or_stable");
      assert.equal(line("plain"), undefined, "a plain request that passed to the default target writes no line");
      assert.equal(line("routed")!.path, "/", "no query in the log: keys can ride in queries");
      assert.equal(line("access")!.details, "graywall_access_denied.missing_credential");
      assert.equal(String(line("api-5")!.status), "429");
      assert.equal(line("api-5")!.details, "graywall_rate_limited.api-per-client");
      assert.match(line("tool")!.details, /^graywall_crawler_challenge\.(ua_tool|policy)/);
      assert.match(line("trap")!.details, /^graywall_crawler_blocked\..*honeypot/);
      assert.ok(!rig.envoy.log().includes("secret-in-query"));
    } finally {
      await stopRig(rig);
    }
  });
});

describe("labelled metrics", () => {
  e2e("/stats/prometheus has graywall's counters as labelled families", async () => {
    const rig = await startRig("envoy/envoy.yaml", undefined, { concurrency: 2 });
    try {
      const browser = {
        "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        accept: "text/html",
        "accept-language": "en",
        "sec-fetch-mode": "navigate",
        "sec-fetch-dest": "document",
        connection: "close",
      };
      assert.equal((await rawRequest(rig.envoy.url("/"), { headers: browser })).status, 200);
      // The shipped per-client limit on /api/ (5 in 10 s), then a honeypot (its address is then marked).
      for (let i = 0; i < 6; i++) await request(rig.envoy.url("/api/x"), { headers: { connection: "close" } });
      assert.equal((await rawRequest(rig.envoy.url("/.env"), { headers: browser })).status, 403, "a honeypot");
      const text = await (await fetch(`http://127.0.0.1:${rig.envoy.adminPort}/stats/prometheus`)).text();
      const has = (re: RegExp) =>
        assert.match(
          text,
          re,
          `${re} in:\n${text
            .split("\n")
            .filter((l) => l.includes("graywall"))
            .join("\n")}`,
        );
      has(/^graywall_passed\{graywall_stage="crawler_score"\} \d+$/m);
      has(/^graywall_blocked\{graywall_stage="crawler_score"\} [1-9]\d*$/m);
      has(/^graywall_signal\{graywall_stage="crawler_score",graywall_signal="honeypot"\} [1-9]\d*$/m);
      has(/^graywall_limited\{graywall_stage="rate_limiter",graywall_rule="api-per-client"\} [1-9]\d*$/m);
      has(/^graywall_denied\{graywall_stage="ip_list",graywall_reason="deny_list"\} \d+$/m);
      assert.doesNotMatch(text, /^graywall__/m, "no empty name parts");
      has(/^graywall_allowed\{graywall_stage="ip_list"\} \d+$/m);
      has(/^graywall_anonymous\{graywall_stage="access"\} \d+$/m);
      // The dotted names stay in /stats (what the UI and the release analysis read).
      const stats = await rig.envoy.stats();
      assert.ok(stats["wasmcustom.graywall.crawler_score.signal.honeypot"] >= 1);
      // The crawler's scores as a histogram with buckets on the score's scale: the browser's low score in
      // the lowest bucket, the honeypot's block in the top one. The VM holds the values until it has 64
      // or its tick comes (so these few arrive on the tick), and Envoy shows histograms at each stats
      // flush (every second in the shipped config).
      const bucket = async (le: string) => {
        const t = await (await fetch(`http://127.0.0.1:${rig.envoy.adminPort}/stats/prometheus`)).text();
        const m = new RegExp(`^graywall_score_bucket\\{graywall_stage="crawler_score",le="${le.replace("+", "\\+")}"\\} (\\d+)$`, "m").exec(t);
        return m ? Number(m[1]) : -1;
      };
      await eventually(async () => (await bucket("+Inf")) >= 2, 5000, "the score histogram flushed");
      assert.ok((await bucket("10")) >= 1, "the browser's score, under 10");
      assert.ok((await bucket("+Inf")) - (await bucket("95")) >= 1, "the honeypot's block, over 95");
    } finally {
      await stopRig(rig);
    }
  });
});
