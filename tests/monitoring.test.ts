// The shipped monitoring folder: Prometheus's scrape config and alert rules are valid for promtool, the
// rules pass their unit tests (monitoring/alerts.test.yml: each alert fires on its trouble and not on a
// usual level), and the Grafana dashboard is well formed. A real Prometheus runs them against a real
// gateway in tests/e2e/prometheus.test.ts.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parse } from "yaml";
import { ROOT } from "../runtime/paths.ts";
import { PROMTOOL } from "../scripts/lib/services.ts";

const DIR = join(ROOT, "monitoring");

function promtool(...args: string[]): string {
  const r = spawnSync(PROMTOOL, args, { cwd: DIR, encoding: "utf8" });
  assert.equal(r.status, 0, `promtool ${args.join(" ")}:\n${r.stdout}${r.stderr}`);
  return r.stdout + r.stderr;
}

describe("shipped monitoring", () => {
  test("promtool accepts the scrape config and the alert rules", () => {
    assert.match(promtool("check", "config", "prometheus.yml"), /SUCCESS: prometheus.yml is valid/);
    assert.match(promtool("check", "rules", "alerts.yml"), /SUCCESS: 10 rules found/);
  });

  test("the alert rules pass their promtool unit tests", () => {
    assert.match(promtool("test", "rules", "alerts.test.yml"), /SUCCESS/);
  });

  test("the issue's alerts are all there, each with a severity and words for a person", () => {
    const groups: { rules: { alert?: string; labels?: Record<string, string>; annotations?: Record<string, string> }[] }[] = parse(
      readFileSync(join(DIR, "alerts.yml"), "utf8"),
    ).groups;
    const alerts = groups.flatMap((g) => g.rules).filter((r) => r.alert);
    assert.deepEqual(alerts.map((a) => a.alert).sort(), [
      "GraywallBotWave",
      "GraywallCanaryErrorsAboveStable",
      "GraywallConfigRefused",
      "GraywallRateLimitedJump",
      "GraywallRatelimitUnreachable",
      "GraywallWasmVmFailures",
    ]);
    for (const a of alerts) {
      assert.match(a.labels?.severity ?? "", /^(warning|critical)$/, `${a.alert}: severity`);
      assert.ok(a.annotations?.summary && a.annotations.description, `${a.alert}: summary and description`);
    }
    // Every alert has a unit test that expects it to fire.
    const tested = readFileSync(join(DIR, "alerts.test.yml"), "utf8");
    for (const a of alerts) assert.match(tested, new RegExp(`alertname: ${a.alert}\\n\\s+exp_alerts:\\n\\s+- exp_labels`), `${a.alert} fires in a test`);
  });

  test("the dashboard has a panel per stage, the canary share and top rules, each with queries", () => {
    const d = JSON.parse(readFileSync(join(DIR, "grafana-dashboard.json"), "utf8"));
    const titles: string[] = d.panels.map((p: { title: string }) => p.title);
    for (const want of ["access", "ip_list", "crawler_score", "rate_limiter", "gray_router", "canary share", "top limited rules"])
      assert.ok(
        titles.some((t) => t.includes(want)),
        `a panel about ${want}`,
      );
    for (const p of d.panels) assert.ok(p.targets.length > 0 && p.targets.every((t: { expr: string }) => t.expr.length > 0), p.title);
  });
});
