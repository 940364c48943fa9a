// The Traffic view's numbers (control/traffic.ts): counter increases per 10-second bucket summed over
// gateways, per stage and per gray target, over the hour; reasons from the counters; the most refused
// paths from Envoy's JSON access log, read incrementally and bounded. Readings here are tables over a fake
// clock; tests/e2e/ui.test.ts shows the view in Chromium over real Envoy.
import assert from "node:assert/strict";
import { appendFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { BUCKET_S, HOUR_BUCKETS, Traffic, refusalWords } from "../control/traffic.ts";

const G = "wasmcustom.graywall.";

describe("Traffic view numbers", () => {
  test("two gateways' counter increases sum per bucket, as rates, with the hour on the time axis", () => {
    const clock = { t: 1_000_000_000_000 };
    const tr = new Traffic(undefined, () => clock.t);
    const a: Record<string, number> = { "http.ingress.downstream_rq_total": 0, "http.admin.downstream_rq_total": 0, [`${G}crawler_score.challenged`]: 0 };
    const b: Record<string, number> = {
      "http.ingress.downstream_rq_total": 100,
      [`${G}gray_router.target.canary.routed`]: 0,
      [`${G}gray_router.target.stable.routed`]: 0,
    };
    tr.observe("a", a, clock.t);
    tr.observe("b", b, clock.t);
    clock.t += 5000;
    a["http.ingress.downstream_rq_total"] += 50;
    a["http.admin.downstream_rq_total"] += 999;
    a[`${G}crawler_score.challenged`] += 10;
    b["http.ingress.downstream_rq_total"] += 30;
    b[`${G}gray_router.target.canary.routed`] += 3;
    b[`${G}gray_router.target.stable.routed`] += 27;
    tr.observe("a", a, clock.t);
    tr.observe("b", b, clock.t);
    const v = tr.view();
    assert.equal(v.time.length, HOUR_BUCKETS);
    assert.equal(v.time.at(-1)! - v.time[0], (HOUR_BUCKETS - 1) * BUCKET_S * 1000);
    assert.equal(v.totals.requests, 80, "both gateways, the admin's requests left out");
    assert.equal(v.totals.crawler_challenged, 10);
    assert.equal(v.totals.routed_canary, 3);
    assert.equal(v.totals.routed_stable, 27);
    assert.equal(v.gateways, 2);
    const i = v.series.requests.findIndex((x) => x > 0);
    assert.ok(i >= 0 && v.series.requests[i] > 0);
    // A restarted gateway's counters start over: counted from 0, never negative.
    a["http.ingress.downstream_rq_total"] = 7;
    clock.t += 1000;
    tr.observe("a", a, clock.t);
    assert.equal(tr.view().totals.requests, 87);
  });

  test("reasons come from the counters, in words, most first", () => {
    const clock = { t: 2_000_000_000_000 };
    const tr = new Traffic(undefined, () => clock.t);
    const s: Record<string, number> = {
      [`${G}access.denied.missing_credential`]: 0,
      [`${G}crawler_score.signal.high_rate`]: 0,
      [`${G}rate_limiter.api.limited`]: 0,
      [`${G}ip_list.denied.deny_list`]: 0,
    };
    tr.observe("g", s, clock.t);
    clock.t += 5000;
    s[`${G}access.denied.missing_credential`] = 2;
    s[`${G}crawler_score.signal.high_rate`] = 9;
    s[`${G}rate_limiter.api.limited`] = 5;
    s[`${G}ip_list.denied.deny_list`] = 1;
    tr.observe("g", s, clock.t);
    assert.deepEqual(tr.view().reasons, [
      { stage: "crawler_score", what: "signal: high rate", count: 9 },
      { stage: "rate_limiter", what: 'limited by rule "api"', count: 5 },
      { stage: "access", what: "refused: missing credential", count: 2 },
      { stage: "ip_list", what: "on the deny list", count: 1 },
    ]);
    assert.equal(tr.view().paths, null, "no access log given: no paths");
  });

  test("the most refused paths come from the access log, read as it grows, a line split across reads included", () => {
    const clock = { t: Date.parse("2026-12-06T10:00:00Z") };
    const log = join(mkdtempSync(join(tmpdir(), "graywall-traffic-")), "access.log");
    const line = (path: string, details: string, status = 429, at = clock.t) =>
      `${JSON.stringify({ time: new Date(at).toISOString(), path, status, details })}\n`;
    writeFileSync(log, line("/old", "graywall_crawler_blocked.honeypot", 403, clock.t - 2 * 3600_000));
    const tr = new Traffic([log], () => clock.t);
    appendFileSync(log, line("/admin", "graywall_crawler_blocked.honeypot", 403) + line("/admin", "graywall_crawler_blocked.honeypot", 403));
    appendFileSync(log, line("/", "via_upstream", 200) + line("/api/x", "graywall_rate_limited.api"));
    const half = line("/private", "graywall_access_denied.missing_credential", 401);
    appendFileSync(log, half.slice(0, 20));
    assert.deepEqual(tr.view().paths, [
      { path: "/admin", stage: "crawler_score", what: "blocked: honeypot", count: 2 },
      { path: "/api/x", stage: "rate_limiter", what: 'limited by rule "api"', count: 1 },
    ]);
    appendFileSync(log, half.slice(20));
    assert.deepEqual(
      tr.view().paths?.map((p) => [p.path, p.what, p.count]),
      [
        ["/admin", "blocked: honeypot", 2],
        ["/api/x", 'limited by rule "api"', 1],
        ["/private", "refused: missing credential", 1],
      ],
    );
  });

  test("a flood of distinct paths keeps each bucket's path keys bounded", () => {
    const clock = { t: Date.parse("2026-12-06T10:00:00Z") };
    const log = join(mkdtempSync(join(tmpdir(), "graywall-traffic-")), "access.log");
    writeFileSync(log, "");
    const tr = new Traffic([log], () => clock.t);
    tr.view();
    const at = new Date(clock.t).toISOString();
    appendFileSync(
      log,
      Array.from(
        { length: 5000 },
        (_, i) => `${JSON.stringify({ time: at, path: `/p/${i}`, status: 429, details: "graywall_crawler_challenge.path_spread" })}\n`,
      ).join(""),
    );
    const v = tr.view();
    assert.equal(v.paths?.length, 10);
    assert.ok(((tr as unknown as { buckets: { paths: Map<string, number> }[] }).buckets[0].paths.size ?? 0) <= 500);
  });

  test("access-log details in words", () => {
    assert.deepEqual(refusalWords("graywall_crawler_challenge.high_rate+path_spread"), ["crawler_score", "challenged: high rate, path spread"]);
    assert.deepEqual(refusalWords("graywall_ip_list_denied.allow_list"), ["ip_list", "not on the allow list"]);
    assert.equal(refusalWords("via_upstream"), undefined);
  });
});
