// graywall-control's alerts from admin stats (control/alerts.ts): the conditions of monitoring/alerts.yml
// evaluated over a window of counters, one webhook call when an incident starts and one when it ends,
// retried until answered, never with the webhook's URL in what the service says. Gateways are replaced by
// a table of counters over a fake clock; the webhooks are a real HTTP receiver. Real Envoy:
// tests/e2e/alerts.test.ts.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { Alerts, countersOf } from "../control/alerts.ts";
import { alertSettings } from "../control/main.ts";
import { buildServer } from "../control/server.ts";
import { startReceiver } from "./support/webhook_receiver.ts";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A gateway whose counters a test moves, read by the alerts through `read`. */
function gateway(admin = "http://gw") {
  const stats: Record<string, number> = {
    "http.ingress.downstream_rq_total": 0,
    "http.admin.downstream_rq_total": 0,
    "wasmcustom.graywall.crawler_score.challenged": 0,
    "wasmcustom.graywall.crawler_score.blocked": 0,
    "extension_config_discovery.http_filter.graywall.config_fail": 0,
  };
  return { admin, stats, read: async () => ({ ...stats }) };
}

/** Runs `seconds` of 15 s readings of `gw`, `perTick` moving the counters first. */
async function run(alerts: Alerts, gw: ReturnType<typeof gateway>, clock: { t: number }, seconds: number, perTick: () => void) {
  for (let s = 0; s < seconds; s += 15) {
    clock.t += 15000;
    perTick();
    alerts.observe(gw.admin, await gw.read(), clock.t);
  }
  await alerts.settled();
}

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups) await c();
});

describe("alerts from admin stats", () => {
  test("sums Envoy's stat names into the counters the conditions read (admin requests left out)", () => {
    const c = countersOf({
      "http.ingress.downstream_rq_total": 10,
      "http.admin.downstream_rq_total": 99,
      "wasmcustom.graywall.crawler_score.challenged": 2,
      "wasmcustom.graywall.crawler_score.blocked": 3,
      "wasmcustom.graywall.rate_limiter.api.limited": 4,
      "cluster.stable.ratelimit.over_limit": 1,
      "cluster.stable.ratelimit.error": 1,
      "cluster.graywall_ratelimit.upstream_cx_connect_fail": 2,
      "wasm.graywall.vm_reload": 1,
      "extension_config_discovery.http_filter.graywall.update_rejected": 1,
    });
    assert.deepEqual([c.requests, c.crawlerRefused, c.limited, c.ratelimitFailures, c.vmFailures, c.configRefused], [10, 5, 5, 3, 1, 1]);
  });

  test("a bot wave is one firing call after its 2 minutes and one resolve call after it ends", async () => {
    const rx = await startReceiver();
    cleanups.push(rx.close);
    const gw = gateway("http://10.0.0.1:9901");
    const clock = { t: 1_000_000 };
    const alerts = new Alerts({ webhooks: [rx.url] });
    // An hour of people: 10 requests a second, 1% challenged.
    await run(alerts, gw, clock, 3600, () => {
      gw.stats["http.ingress.downstream_rq_total"] += 150;
      gw.stats["wasmcustom.graywall.crawler_score.challenged"] += 1.5;
    });
    assert.equal(rx.calls.length, 0, "nothing at the usual level");
    // The wave: as many bot requests again, all challenged, for 10 minutes.
    let firstAt = 0;
    for (let s = 0; s < 600; s += 15) {
      await run(alerts, gw, clock, 15, () => {
        gw.stats["http.ingress.downstream_rq_total"] += 300;
        gw.stats["wasmcustom.graywall.crawler_score.challenged"] += 151.5;
      });
      if (!firstAt && rx.calls.length > 0) firstAt = s + 15;
    }
    assert.equal(rx.calls.length, 1, "one call for the incident, not one per tick");
    assert.ok(firstAt >= 120 && firstAt <= 240, `fired ${firstAt} s into the wave (pending 2 minutes)`);
    const fired = rx.calls[0].body;
    assert.equal(fired.alert, "GraywallBotWave");
    assert.equal(fired.status, "firing");
    assert.equal(fired.gateway, "10.0.0.1:9901");
    assert.match(String(fired.text), /^\[FIRING warning\] Bot wave at gateway 10\.0\.0\.1:9901: \d+% of requests challenged or blocked$/);
    assert.deepEqual(
      alerts.active().map((a) => a.alert),
      ["GraywallBotWave"],
    );
    // The wave ends.
    await run(alerts, gw, clock, 900, () => {
      gw.stats["http.ingress.downstream_rq_total"] += 150;
      gw.stats["wasmcustom.graywall.crawler_score.challenged"] += 1.5;
    });
    assert.equal(rx.calls.length, 2);
    const resolved = rx.calls[1].body;
    assert.equal(resolved.status, "resolved");
    assert.equal(resolved.started_at, fired.started_at, "the resolve names the incident it ends");
    assert.match(String(resolved.text), /^\[RESOLVED\] GraywallBotWave at gateway 10\.0\.0\.1:9901/);
    assert.notEqual(rx.calls[0].key, rx.calls[1].key);
    assert.equal(alerts.active().length, 0);
    alerts.close();
  });

  test("a gateway that always refuses half (its usual level) raises no bot-wave alert", async () => {
    const rx = await startReceiver();
    cleanups.push(rx.close);
    const gw = gateway();
    const clock = { t: 0 };
    const alerts = new Alerts({ webhooks: [rx.url] });
    const busy = () => {
      gw.stats["http.ingress.downstream_rq_total"] += 150;
      gw.stats["wasmcustom.graywall.crawler_score.blocked"] += 45;
    };
    // With no history yet the usual share counts as 0, so a gateway refusing 30% from its first minute
    // alerts once, and resolves once 15 minutes of history say 30% is usual.
    await run(alerts, gw, clock, 3600, busy);
    assert.deepEqual(
      rx.calls.map((c) => c.body.status),
      ["firing", "resolved"],
    );
    // From then on, at its usual level, it stays quiet.
    await run(alerts, gw, clock, 3600, busy);
    assert.deepEqual(
      rx.calls.slice(2).map((c) => c.body.alert),
      [],
      "30% is high, but it is where it always is",
    );
    alerts.close();
  });

  test("a refused configuration fires at once and resolves 10 minutes later; a webhook answering 500 is retried with the same key", async () => {
    const rx = await startReceiver({ failFirst: 2 });
    cleanups.push(rx.close);
    const gw = gateway();
    const clock = { t: 0 };
    const alerts = new Alerts({ webhooks: [rx.url] });
    await run(alerts, gw, clock, 60, () => {
      gw.stats["http.ingress.downstream_rq_total"] += 10;
    });
    gw.stats["extension_config_discovery.http_filter.graywall.config_fail"] += 1;
    await run(alerts, gw, clock, 15, () => {});
    assert.deepEqual(
      rx.calls.map((c) => [c.status, c.body.alert, c.body.status]),
      [
        [500, "GraywallConfigRefused", "firing"],
        [500, "GraywallConfigRefused", "firing"],
        [200, "GraywallConfigRefused", "firing"],
      ],
    );
    assert.equal(new Set(rx.calls.map((c) => c.key)).size, 1, "one idempotency key for the three attempts");
    await run(alerts, gw, clock, 660, () => {});
    assert.deepEqual(
      rx.calls.slice(3).map((c) => [c.body.alert, c.body.status]),
      [["GraywallConfigRefused", "resolved"]],
    );
    alerts.close();
  });

  test("GRAYWALL_ALERT_WEBHOOKS: URLs, comma-separated; a wrong entry is named by position, not by its text", () => {
    assert.deepEqual(alertSettings(" https://a.invalid/x , http://127.0.0.1:9/y "), { webhooks: ["https://a.invalid/x", "http://127.0.0.1:9/y"] });
    assert.equal(alertSettings(""), undefined);
    assert.throws(
      () => alertSettings("https://a.invalid/x,ftp://secret-token@b"),
      (e: Error) => /entry 2 is not an http\(s\) URL/.test(e.message) && !e.message.includes("secret-token"),
    );
  });

  test("GET /api/alerts says how many webhooks there are, never their URLs", async () => {
    const dir = mkdtempSync(join(tmpdir(), "graywall-alerts-"));
    const url = "https://hooks.example.invalid/services/T000/B000/very-secret";
    const app = buildServer({ dataDir: join(dir, "data"), ecdsDir: join(dir, "ecds"), token: "t", alerts: { webhooks: [url] } });
    try {
      const r = await app.inject({ url: "/api/alerts" });
      assert.equal(r.statusCode, 200);
      assert.deepEqual(r.json(), { webhooks: 1, active: [], recent: [] });
      assert.doesNotMatch(r.body, /very-secret/);
    } finally {
      await app.close();
    }
  });
});
