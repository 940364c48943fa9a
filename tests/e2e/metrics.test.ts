// Graywall's counters as labelled Prometheus families in real Envoy (the shipped config's stats_tags):
// one family per action with the stage as a label, crawler signals and refusal reasons as labels, rules
// and targets as labels, no label from a client's value. /stats keeps the dotted names.
import assert from "node:assert/strict";
import { describe } from "node:test";
import { e2e, rawRequest, request, startRig, stopRig } from "./harness.ts";

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
    } finally {
      await stopRig(rig);
    }
  });
});
