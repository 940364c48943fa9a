// A real Prometheus (Debian's) scraping a real gateway (graywall-control delivering to Envoy over ECDS, as
// npm start runs it; two workers) with the
// shipped alert rules: every rule evaluates without error on the gateway's real metrics, every dashboard
// query runs and names only metrics the gateway exports, and a bot wave driven at the gateway makes the
// bot-wave alert fire within its `for:` time, then resolve once the wave ends.
//
// The rules run with their durations divided by 30 (a 5-minute window is 10 s, `for: 2m` is 4 s) and a
// 1 s scrape, so the wave takes seconds rather than minutes; the expressions are the shipped ones.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe } from "node:test";
import { runTraffic } from "../../scripts/demo-traffic.ts";
import { ROOT } from "../../runtime/paths.ts";
import { type Service, startPrometheus } from "../../scripts/lib/services.ts";
import { e2e, eventually, freePort, rawRequest, startControlRig, stopControlRig } from "./harness.ts";

const SCALE = 30;
const UNIT: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** Prometheus durations in `text` (range windows, offsets, `for:`) divided by `factor`, at least 1 s. */
function scaleDurations(text: string, factor: number): string {
  const scaled = (n: string, u: string) => `${Math.max(1, Math.round((Number(n) * UNIT[u]) / factor))}s`;
  return text
    .replace(/\[(\d+)([smhd])\]/g, (_, n, u) => `[${scaled(n, u)}]`)
    .replace(/offset (\d+)([smhd])/g, (_, n, u) => `offset ${scaled(n, u)}`)
    .replace(/for: (\d+)([smhd])/g, (_, n, u) => `for: ${scaled(n, u)}`);
}

interface PromAlert {
  labels: Record<string, string>;
  state: string;
}

async function api<T>(prom: string, path: string): Promise<T> {
  const r = await fetch(`${prom}/api/v1/${path}`);
  const body = await r.json();
  assert.equal(body.status, "success", `${path}: ${JSON.stringify(body).slice(0, 300)}`);
  return body.data as T;
}

const botWave = async (prom: string) => (await api<{ alerts: PromAlert[] }>(prom, "alerts")).alerts.find((a) => a.labels.alertname === "GraywallBotWave");

describe("a real Prometheus on a real gateway", () => {
  e2e("the shipped rules and dashboard work on real metrics; a bot wave fires the alert, which resolves after", async () => {
    const rig = await startControlRig("prometheus-test-token", { concurrency: 2 });
    const dir = mkdtempSync(join(tmpdir(), "graywall-prometheus-"));
    let prometheus: Service | undefined;
    const people = new AbortController();
    try {
      writeFileSync(join(dir, "alerts.yml"), scaleDurations(readFileSync(join(ROOT, "monitoring", "alerts.yml"), "utf8"), SCALE));
      const shipped = readFileSync(join(ROOT, "monitoring", "prometheus.yml"), "utf8");
      writeFileSync(
        join(dir, "prometheus.yml"),
        shipped
          .replace(/scrape_interval: \d+s/, "scrape_interval: 1s")
          .replace(/evaluation_interval: \d+s/, "evaluation_interval: 1s")
          .replace('"127.0.0.1:9901"', `"127.0.0.1:${rig.envoy.adminPort}"`),
      );
      const port = await freePort();
      prometheus = await startPrometheus(port, join(dir, "prometheus.yml"), join(dir, "data"));
      const prom = `http://127.0.0.1:${port}`;

      // People browse the whole time: a page every 1-3 s each, cookies kept.
      const browsing = runTraffic({ url: rig.envoy.url("").replace(/\/$/, ""), users: 20, signal: people.signal });
      await eventually(
        async () => {
          const groups = (await api<{ groups: { rules: { health: string; lastEvaluation: string }[] }[] }>(prom, "rules")).groups;
          const rules = groups.flatMap((g) => g.rules);
          return rules.length === 10 && rules.every((r) => r.health === "ok" && !r.lastEvaluation.startsWith("0001"));
        },
        20000,
        "every shipped rule evaluated without error",
      );
      // A few seconds of people only: their usual share is the baseline, and no alert is pending.
      await eventually(
        async () => (await api<{ result: unknown[] }>(prom, "query?query=instance:graywall_requests:rate5m%20%3E%200")).result.length > 0,
        15000,
        "requests counted",
      );
      assert.equal(await botWave(prom), undefined, "no bot-wave alert from people browsing");

      // The dashboard: every query runs, and every metric it names is one the gateway exports (or a
      // recording rule of alerts.yml).
      const exported = new Set(
        (await (await fetch(`http://127.0.0.1:${rig.envoy.adminPort}/stats/prometheus`)).text())
          .split("\n")
          .filter((l) => l && !l.startsWith("#"))
          .map((l) => l.replace(/[{ ].*/, "")),
      );
      const recorded = new Set([...readFileSync(join(ROOT, "monitoring", "alerts.yml"), "utf8").matchAll(/record: (\S+)/g)].map((m) => m[1]));
      const dashboard = JSON.parse(readFileSync(join(ROOT, "monitoring", "grafana-dashboard.json"), "utf8"));
      for (const panel of dashboard.panels)
        for (const t of panel.targets) {
          // Grafana's variables as Grafana would fill them: every gateway, the dashboard's hour.
          const expr = t.expr.replaceAll("$instance", ".*").replaceAll("$__range", "1h");
          await api(prom, `query?query=${encodeURIComponent(expr)}`);
          const names = [...expr.matchAll(/\b((?:graywall|envoy|instance|instance_cluster)[a-z_:]*)\s*[{[(]/g)]
            .map((m) => m[1])
            .filter((n) => n !== "instance");
          for (const n of names) assert.ok(exported.has(n) || recorded.has(n), `${panel.title}: ${n} is exported by the gateway`);
        }

      // The wave: a tool crawling distinct pages as fast as it can from its own address (127.0.0.2), next to
      // the people (behind 127.0.0.1).
      const started = Date.now();
      let firedAfter = 0;
      let n = 0;
      while (Date.now() - started < 60000) {
        await rawRequest(rig.envoy.url(`/articles/${n++}`), {
          headers: { "user-agent": "python-requests/2.32.3", accept: "*/*", connection: "close" },
          localAddress: "127.0.0.2",
        });
        if (n % 20 === 0 && (await botWave(prom))?.state === "firing") {
          firedAfter = Date.now() - started;
          break;
        }
      }
      assert.ok(firedAfter > 0, `the bot-wave alert fired (after ${n} requests)`);
      // Its scaled windows: 10 s to see the wave, 4 s pending, a scrape and an evaluation each second.
      assert.ok(firedAfter < 30000, `fired ${firedAfter} ms into the wave`);

      // The wave ends; people keep browsing; the alert resolves.
      await eventually(async () => (await botWave(prom)) === undefined, 40000, "the bot-wave alert resolves");
      people.abort();
      const stats = await browsing;
      assert.ok(stats.requests > 0 && Object.keys(stats.statuses).every((s) => s === "200"), `people got their pages: ${JSON.stringify(stats.statuses)}`);
    } finally {
      people.abort();
      await prometheus?.stop();
      await stopControlRig(rig);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
