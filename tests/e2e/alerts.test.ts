// Alerts without Prometheus, in real Envoy: graywall-control reads the gateway's admin stats and calls a
// webhook (a real HTTP receiver) once when an alert starts and once when it ends: a bot wave driven at the
// gateway next to simulated people, and a configuration the gateway refuses. The service runs with its
// alert windows divided by 60 (the bot wave's 5-minute window is 5 s, its 2 minutes pending 2 s).
import assert from "node:assert/strict";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe } from "node:test";
import { ecdsFileName } from "../../runtime/ecds.ts";
import { MODULE } from "../../runtime/filters.ts";
import { runTraffic } from "../../scripts/demo-traffic.ts";
import { startReceiver } from "../support/webhook_receiver.ts";
import { e2e, eventually, rawRequest, startControlRig, stopControlRig } from "./harness.ts";

describe("alerts from graywall-control", () => {
  e2e("a bot wave and a refused configuration each reach the webhook once, and their resolves after", async () => {
    const rx = await startReceiver();
    const rig = await startControlRig("alerts-test-token", {
      concurrency: 2,
      control: { alerts: { webhooks: [rx.url], timeScale: 1 / 60 }, statsIntervalMs: 250 },
    });
    const people = new AbortController();
    try {
      const browsing = runTraffic({ url: rig.envoy.url("").replace(/\/$/, ""), users: 20, signal: people.signal });
      const calls = (alert: string) => rx.calls.filter((c) => c.body.alert === alert).map((c) => c.body.status);
      await eventually(async () => ((await rig.envoy.stats())["http.ingress.downstream_rq_total"] ?? 0) >= 30, 20000, "people browsing");
      assert.equal(rx.calls.length, 0, "people browsing raise nothing");

      // The wave: a tool crawling distinct pages from its own address (127.0.0.2) next to the people, until the alert reaches the webhook.
      let n = 0;
      const deadline = Date.now() + 30000;
      while (calls("GraywallBotWave").length === 0 && Date.now() < deadline)
        await rawRequest(rig.envoy.url(`/articles/${n++}`), {
          headers: { "user-agent": "python-requests/2.32.3", accept: "*/*", connection: "close" },
          localAddress: "127.0.0.2",
        });
      assert.deepEqual(calls("GraywallBotWave"), ["firing"], `the wave fired (after ${n} requests)`);
      assert.match(String(rx.calls[0].body.text), /^\[FIRING warning\] Bot wave at gateway 127\.0\.0\.1:\d+: \d+% of requests challenged or blocked$/);
      const listed = await (await fetch(`${rig.controlUrl}/api/alerts`)).json();
      assert.deepEqual(
        listed.active.map((a: { alert: string }) => a.alert),
        ["GraywallBotWave"],
      );
      // The wave ends; the people go on; one resolve.
      await eventually(async () => calls("GraywallBotWave").length === 2, 20000, "the bot wave resolves");
      assert.deepEqual(calls("GraywallBotWave"), ["firing", "resolved"]);

      // A configuration the gateway refuses (written where graywall-control's deliveries go).
      const file = join(rig.controlDir, "ecds", ecdsFileName(MODULE.envoyName));
      const good = readFileSync(file, "utf8");
      const bad = good.replace(/"rules":\s*\[/, '"rules": 12, "x": [');
      assert.notEqual(bad, good);
      writeFileSync(`${file}.tmp`, bad);
      renameSync(`${file}.tmp`, file);
      await eventually(async () => calls("GraywallConfigRefused").length === 1, 15000, "the refused configuration reaches the webhook");
      writeFileSync(`${file}.tmp`, good);
      renameSync(`${file}.tmp`, file);
      // Its window is 10 minutes (10 s here): then it resolves.
      await eventually(async () => calls("GraywallConfigRefused").length === 2, 25000, "the refused configuration resolves");
      assert.deepEqual(calls("GraywallConfigRefused"), ["firing", "resolved"]);

      people.abort();
      const stats = await browsing;
      assert.deepEqual(Object.keys(stats.statuses), ["200"], `people got their pages: ${JSON.stringify(stats.statuses)}`);
      assert.deepEqual([...new Set(rx.calls.map((c) => c.body.alert))].sort(), ["GraywallBotWave", "GraywallConfigRefused"], "nothing else fired");
    } finally {
      people.abort();
      await stopControlRig(rig);
      await rx.close();
    }
  });
});
