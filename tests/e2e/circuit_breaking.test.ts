// Envoy's own outlier detection and circuit breakers, as configured in envoy/envoy.yaml, under faults.
import assert from "node:assert/strict";
import { describe } from "node:test";
import { e2e, eventually, freePort, loadYaml, renderConfig, request, startEnvoy, stopUpstream, upstream, type Envoy, type Upstream } from "./harness.ts";

interface Faults {
  envoy: Envoy;
  stable: Upstream;
  canary: Upstream;
}

/** The shipped config with shorter outlier timings and, optionally, tiny circuit-breaker limits. */
async function start(patch: (clusters: Record<string, any>) => void): Promise<Faults> {
  const [stable, canary, adminPort, listenerPort] = [await upstream("stable"), await upstream("canary"), await freePort(), await freePort()];
  const cfg = renderConfig(loadYaml("envoy/envoy.yaml"), { adminPort, listenerPort, clusters: { stable: stable.port, canary: canary.port } });
  const byName = Object.fromEntries(cfg.static_resources.clusters.map((c: any) => [c.name, c]));
  patch(byName);
  const envoy = await startEnvoy(cfg, adminPort, listenerPort);
  return { envoy, stable, canary };
}

async function stop(f: Faults): Promise<void> {
  await f.envoy.stop();
  await stopUpstream(f.stable);
  await stopUpstream(f.canary);
}

const fastOutlier = (c: Record<string, any>) => {
  for (const name of ["stable", "canary"]) {
    c[name].outlier_detection = {
      ...c[name].outlier_detection,
      consecutive_5xx: 3,
      consecutive_gateway_failure: 3,
      interval: "0.5s",
      base_ejection_time: "2s",
    };
  }
};

const beta = { "x-user-group": "beta", connection: "close" };

describe("outlier detection on the canary", () => {
  e2e("a canary answering 503 is ejected after 3 errors, traffic falls back to stable, then returns", async () => {
    const f = await start(fastOutlier);
    try {
      assert.equal((await request(f.envoy.url("/"), { headers: beta })).json?.version, "canary");
      f.canary.setStatus(503);
      const seen: (number | string)[] = [];
      const reported: (string | null)[] = [];
      const fellBack0 = (await f.envoy.stats())["wasmcustom.graywall.gray_router.target.canary.fell_back"] ?? 0;
      for (let i = 0; i < 20; i++) {
        const r = await request(f.envoy.url("/"), { headers: beta });
        seen.push(r.status === 200 ? r.json!.version : r.status);
        reported.push(r.headers.get("x-graywall-routed-to"));
      }
      // The main thread decides the ejection on the 3rd error; the worker's host set learns of it
      // asynchronously, so up to 2 more requests can still reach the canary.
      const errors = seen.filter((s) => s === 503).length;
      assert.ok(errors >= 3 && errors <= 5, `clients saw ${errors} errors: ${seen}`);
      assert.ok(
        seen.slice(errors).every((v) => v === "stable"),
        `after ejection: ${seen}`,
      );
      // Routed to canary, served by stable: the response says stable, and each is counted as a fallback.
      assert.deepEqual(reported.slice(errors), seen.slice(errors));
      const fellBack = (await f.envoy.stats())["wasmcustom.graywall.gray_router.target.canary.fell_back"] - fellBack0;
      assert.equal(fellBack, 20 - errors);

      const stats = await f.envoy.stats();
      assert.equal(stats["cluster.canary.outlier_detection.ejections_active"], 1);
      assert.ok(stats["cluster.canary.outlier_detection.ejections_enforced_consecutive_5xx"] >= 1);
      const clusters = await (await fetch(`http://127.0.0.1:${f.envoy.adminPort}/clusters`)).text();
      assert.match(clusters, /canary::127\.0\.0\.1:\d+::health_flags::\/failed_outlier_check/);

      // Healthy again: after the ejection time the canary gets its traffic back.
      f.canary.setStatus(200);
      await eventually(async () => (await request(f.envoy.url("/"), { headers: beta })).json?.version === "canary", 8000, "canary back");
    } finally {
      await stop(f);
    }
  });

  e2e("a canary that is killed outright costs its users no failed request: the retry goes to stable", async () => {
    const f = await start(fastOutlier);
    try {
      await stopUpstream(f.canary);
      const seen: (number | string)[] = [];
      for (let i = 0; i < 15; i++) {
        const r = await request(f.envoy.url("/"), { headers: beta });
        seen.push(r.status === 200 ? r.json!.version : r.status);
      }
      const errors = seen.filter((s) => typeof s === "number").length;
      assert.equal(errors, 0, `clients saw ${errors} errors: ${seen}`);
      assert.ok(
        seen.slice(-10).every((v) => v === "stable"),
        `${seen}`,
      );
      const stats = await f.envoy.stats();
      assert.ok(stats["cluster.canary.upstream_cx_connect_fail"] >= 1);
      assert.equal(stats["cluster.canary.outlier_detection.ejections_active"], 1);
    } finally {
      await f.envoy.stop();
      await stopUpstream(f.stable);
    }
  });
});

describe("circuit breakers", () => {
  e2e("load beyond the pending limit gets Envoy's overflow reply and moves the overflow counter", async () => {
    const f = await start((c) => {
      c.stable.circuit_breakers = { thresholds: [{ priority: "DEFAULT", max_connections: 1, max_pending_requests: 1, max_requests: 1, max_retries: 0 }] };
    });
    try {
      const rs = await Promise.all(Array.from({ length: 10 }, () => request(f.envoy.url("/slow?delay=400"), { headers: { connection: "close" } })));
      const ok = rs.filter((r) => r.status === 200).length;
      const overflow = rs.filter((r) => r.status === 503 && r.headers.get("x-envoy-overloaded") === "true").length;
      assert.ok(ok >= 1, `some served: ${rs.map((r) => r.status)}`);
      assert.ok(overflow >= 5, `overflowed: ${rs.map((r) => r.status)}`);
      assert.equal(ok + overflow, 10);
      const stats = await f.envoy.stats();
      assert.ok(stats["cluster.stable.upstream_rq_pending_overflow"] >= overflow, JSON.stringify(stats["cluster.stable.upstream_rq_pending_overflow"]));
    } finally {
      await stop(f);
    }
  });
});
