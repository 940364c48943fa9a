// Cluster-wide limits in a fleet: two real Envoys with the one module share one real envoyproxy/ratelimit
// service and one real Redis. A cluster rule of N per minute admits N in total across both; a local rule
// in the same document still counts per Envoy; with Redis down traffic passes and Envoy counts it.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe } from "node:test";
import { buildServer } from "../../control/server.ts";
import { startRatelimit, startRedis, type Service } from "../../runtime/services.ts";
import { e2e, eventually, freePort, loadYaml, renderConfig, request, startEnvoy, stopUpstream, upstream, type Envoy, type Upstream } from "./harness.ts";

const N = 10;
const DOC = {
  rules: [
    { name: "api-cluster", scope: "cluster", match: { path_prefix: "/api/" }, key: ["client_ip"], requests_per_unit: N, unit: "minute" },
    { name: "local-burst", match: { path_prefix: "/local/" }, key: ["client_ip"], bucket_size: 3, refill_tokens: 3, refill_interval_ms: 600000 },
  ],
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
        filterConfig: { "graywall.rate_limiter": DOC },
      });
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
    for (const e of envoys) assert.equal((await request(e.url("/api/back"))).status, 429);
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
