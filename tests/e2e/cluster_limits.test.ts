// Cluster-wide limits in a fleet: two real Envoys with the one module share one real envoyproxy/ratelimit
// service and one real Redis. A cluster rule of N per minute admits N in total across both; a local rule
// in the same document still counts per Envoy; with Redis down traffic passes and Envoy counts it. The
// crawler's fleet counts go to the same service: a crawl split across the two is seen as one.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe } from "node:test";
import { buildServer } from "../../control/server.ts";
import { ratelimitHttpCluster } from "../../runtime/cluster_limits.ts";
import { ROOT } from "../../runtime/paths.ts";
import { startRatelimit, startRedis, type Service } from "../../scripts/lib/services.ts";
import {
  e2e,
  eventually,
  freePort,
  loadYaml,
  rawRequest,
  renderConfig,
  request,
  sleep,
  startEnvoy,
  stopUpstream,
  upstream,
  type Envoy,
  type Upstream,
} from "./harness.ts";

const N = 10;
const DOC = {
  rules: [
    { name: "api-cluster", scope: "cluster", match: { path_prefix: "/api/" }, key: ["client_ip"], requests_per_unit: N, unit: "minute" },
    { name: "local-burst", match: { path_prefix: "/local/" }, key: ["client_ip"], bucket_size: 3, refill_tokens: 3, refill_interval_ms: 600000 },
  ],
};

/**
 * The shipped crawler document (fleet counts on, to the ratelimit service's HTTP port), its long window
 * shortened from 10 minutes to one, with its distinct-page threshold scaled to match (40), so the test
 * runs for about half a minute instead of five; and behind one trusted hop, so the crawl comes from an
 * address of its own (every request of this test comes from this machine's).
 */
const { client_address: _, ...SHIPPED_CRAWLER } = JSON.parse(readFileSync(join(ROOT, "config", "filters", "crawler_score.json"), "utf8"));
const CRAWLER = { ...SHIPPED_CRAWLER, xff_trusted_hops: 1, behaviour: { long_window_ms: 60000, long_distinct_pages: 40 } };
const BROWSER = {
  "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
  accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
  "accept-language": "en-US,en;q=0.9",
  "accept-encoding": "gzip, deflate, br",
  "sec-fetch-mode": "navigate",
  "sec-fetch-dest": "document",
};

/** Sum of an Envoy stat over every name ending in `suffix` (the rate-limit filter counts per upstream cluster). */
const statSum = (stats: Record<string, number>, suffix: string) =>
  Object.entries(stats)
    .filter(([k]) => k.endsWith(suffix))
    .reduce((a, [, v]) => a + v, 0);

describe("cluster-wide limits: two Envoys, one ratelimit service, one Redis", () => {
  let redis: Service;
  let redisPort: number;
  let ratelimit: Service;
  let dir: string;
  let stable: Upstream;
  let canary: Upstream;
  const envoys: Envoy[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "graywall-fleet-"));
    redisPort = await freePort();
    redis = await startRedis(redisPort);
    const [grpcPort, httpPort, debugPort] = [await freePort(), await freePort(), await freePort()];
    ratelimit = await startRatelimit({ grpcPort, httpPort, debugPort, redisPort, dir, rateLimiterDoc: DOC });
    [stable, canary] = [await upstream("stable"), await upstream("canary")];
    for (let i = 0; i < 2; i++) {
      const [adminPort, listenerPort] = [await freePort(), await freePort()];
      const cfg = renderConfig(loadYaml("envoy/envoy.yaml"), {
        adminPort,
        listenerPort,
        clusters: { stable: stable.port, canary: canary.port, graywall_ratelimit: grpcPort },
        filterConfig: { "graywall.rate_limiter": DOC, "graywall.crawler_score": CRAWLER },
      });
      // As envoy/envoy-xds.yaml (a fleet member) has it.
      cfg.static_resources.clusters.push(ratelimitHttpCluster("127.0.0.1", httpPort));
      envoys.push(await startEnvoy(cfg, adminPort, listenerPort, { concurrency: 2 }));
    }
  });

  after(async () => {
    for (const e of envoys) await e.stop();
    await ratelimit?.stop();
    await redis?.stop();
    if (stable) await stopUpstream(stable);
    if (canary) await stopUpstream(canary);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  e2e(`a limit of ${N} per minute admits ${N} in total across both Envoys, and a local rule still counts per Envoy`, async () => {
    // The service counts in fixed minute windows: start early in one so the burst cannot straddle two.
    await eventually(async () => new Date().getSeconds() < 40, 25000, "the first 40 s of a minute");
    const statuses: number[][] = [[], []];
    for (let i = 0; i < 3 * N; i++) {
      const r = await request(envoys[i % 2].url("/api/list"), { headers: { "x-graywall-rl-key-0": "someone-else" } });
      statuses[i % 2].push(r.status);
      // The hand-off headers reach the rate-limit filter only, never the upstream.
      if (r.json)
        assert.deepEqual(
          Object.keys(r.json.headers).filter((h) => h.startsWith("x-graywall-rl-")),
          [],
        );
    }
    const admitted = statuses.map((s) => s.filter((x) => x === 200).length);
    assert.equal(admitted[0] + admitted[1], N, `admitted per Envoy: ${admitted} ${JSON.stringify(statuses)}`);
    assert.ok(
      admitted.every((n) => n > 0),
      `both Envoys admitted some: ${admitted}`,
    );
    assert.equal(statuses.flat().filter((x) => x === 429).length, 2 * N);
    const stats = await Promise.all(envoys.map((e) => e.stats()));
    assert.deepEqual(
      stats.map((s) => s["wasmcustom.graywall.rate_limiter.api-cluster.cluster_checks"]),
      [1.5 * N, 1.5 * N],
    );
    assert.equal(statSum(stats[0], ".ratelimit.over_limit") + statSum(stats[1], ".ratelimit.over_limit"), 2 * N);

    // The local rule's bucket of 3 is per Envoy: 3 + 3 admitted.
    for (const e of envoys) {
      const local = [];
      for (let i = 0; i < 5; i++) local.push((await request(e.url("/local/x"))).status);
      assert.deepEqual(local, [200, 200, 200, 429, 429]);
    }
  });

  e2e("a crawl of distinct pages split across both Envoys is challenged as if it hit one: neither sees enough alone", async () => {
    // 1.5 pages/s in all, 0.75 on each: under each Envoy's short-window thresholds (20 page views in two
    // 10 s windows), so only the long window's distinct pages can stop it; on one Envoy that is 40 pages.
    const served = [0, 0];
    let challengedAt = -1;
    for (let i = 0; i < 90 && challengedAt < 0; i++) {
      const r = await rawRequest(envoys[i % 2].url(`/fleet-crawl/story-${i}`), { headers: { ...BROWSER, "x-forwarded-for": "198.51.100.77" } });
      if (r.status === 200) served[i % 2]++;
      else challengedAt = i;
      await sleep(667);
    }
    assert.ok(challengedAt >= 0, `challenged within the long window (served ${served})`);
    assert.ok(served.every((n) => n < 40) && challengedAt <= 50, `each Envoy served ${served}: challenged after ${challengedAt} pages in all, not 80`);
    const stats = await Promise.all(envoys.map((e) => e.stats()));
    const sum = (name: string) => stats.reduce((a, s) => a + (s[`wasmcustom.graywall.crawler_score.${name}`] ?? 0), 0);
    assert.ok(sum("signal.slow_crawl") >= 1, "the long window's distinct pages, counted by the fleet");
    assert.equal(sum("signal.path_spread") + sum("signal.high_rate"), 0, "no short-window signal: only the fleet's count could see it");
    assert.ok(
      stats.every((s) => (s["wasmcustom.graywall.crawler_score.fleet.sent"] ?? 0) > 0),
      "both Envoys sent counts",
    );
    assert.equal(sum("fleet.failed"), 0);
  });

  e2e("with Redis down requests pass and Envoy counts the failures; with Redis back the limit applies again", async () => {
    await redis.stop();
    const before = statSum(await envoys[0].stats(), ".ratelimit.failure_mode_allowed");
    for (let i = 0; i < 5; i++) assert.equal((await request(envoys[i % 2].url("/api/down"))).status, 200);
    const failed = statSum(await envoys[0].stats(), ".ratelimit.failure_mode_allowed") - before;
    assert.ok(failed >= 3, `failure_mode_allowed moved by ${failed}`);

    redis = await startRedis(redisPort);
    // A fresh Redis has no counts: the limit admits up to N again, then refuses on both Envoys.
    let sent = 0;
    await eventually(
      async () => {
        sent++;
        return (await request(envoys[sent % 2].url("/api/back"))).status === 429;
      },
      30000,
      "a 429 once Redis is back",
    );
    // Both refuse within one window (the service's windows are per minute: should one end just after the
    // first 429, its next requests are counted from 0 and reach the limit again).
    await eventually(
      async () => (await Promise.all(envoys.map(async (e) => (await request(e.url("/api/back"))).status))).every((s) => s === 429),
      30000,
      "both Envoys refuse",
    );
  });

  e2e("a limit changed through graywall-control reaches the ratelimit service without a restart", async () => {
    const token = "fleet-token";
    const app = buildServer({ dataDir: join(dir, "data"), ecdsDir: join(dir, "ecds"), token, ratelimitDir: dir });
    const put = async (doc: unknown) => {
      const current = (await app.inject({ method: "GET", url: "/api/filters/rate_limiter" })).json();
      const r = await app.inject({
        method: "PUT",
        url: "/api/filters/rate_limiter",
        headers: { authorization: `Bearer ${token}`, "if-match": `"${current.version}"` },
        payload: { doc, author: "fleet test" },
      });
      assert.equal(r.statusCode, 200, r.body);
    };
    try {
      // The control service starts by delivering its current document (the shipped one, no cluster rule).
      await put(DOC);
      await eventually(async () => (await request(envoys[0].url("/api/back"))).status === 429, 15000, "the limit of N in force");
      const raised = structuredClone(DOC);
      raised.rules[0].requests_per_unit = 1000;
      await put(raised);
      await eventually(async () => (await request(envoys[0].url("/api/back"))).status === 200, 15000, "the raised limit in force");
      assert.equal((await request(envoys[1].url("/api/back"))).status, 200);
    } finally {
      await app.close();
    }
  });
});
