// rate_limiter in real Envoy with two workers: exact bursts, refill, key isolation, shadow mode,
// 429 headers, a full table, and Envoy's native local_ratelimit configured the same way.
import assert from "node:assert/strict";
import { describe } from "node:test";
import { nativeLocalRateLimit } from "../../bench/setups.ts";
import {
  withRig as rigWith,
  e2e,
  eventually,
  freePort,
  loadYaml,
  renderConfig,
  request,
  startEnvoy,
  statsOnceAt,
  upstream,
  stopUpstream,
  type Rig,
} from "./harness.ts";

const FILTER = "graywall.rate_limiter";

const withRig = (cfg: unknown, fn: (rig: Rig) => Promise<void>) => rigWith(FILTER, cfg, fn, { concurrency: 2 });

/** Fires n requests at once over fresh connections, so both workers take part; returns the statuses. */
async function burst(url: string, n: number, headers: Record<string, string> = {}): Promise<number[]> {
  const rs = await Promise.all(Array.from({ length: n }, () => request(url, { headers: { connection: "close", ...headers } })));
  return rs.map((r) => r.status);
}

const count = (xs: number[], v: number) => xs.filter((x) => x === v).length;

/** Requests served per worker, from the listener's per-worker stats. */
async function perWorker(stats: Record<string, number>): Promise<number[]> {
  return Object.entries(stats)
    .filter(([k]) => /^listener\.127\.0\.0\.1_\d+\.worker_\d+\.downstream_cx_total$/.test(k))
    .map(([, v]) => v);
}

const oneMinuteBucket = (size: number, extra: Record<string, unknown> = {}) => ({
  rules: [{ name: "burst", key: ["client_ip"], bucket_size: size, refill_tokens: size, refill_interval_ms: 60000, ...extra }],
});

describe("rate_limiter with two workers", () => {
  e2e("a burst of 60 lets exactly bucket_size (20) through, across both workers", () =>
    withRig(oneMinuteBucket(20), async (rig) => {
      const statuses = await burst(rig.envoy.url("/"), 60);
      assert.equal(count(statuses, 200), 20);
      assert.equal(count(statuses, 429), 40);
      const stats = await statsOnceAt(rig.envoy, "wasmcustom.graywall.rate_limiter.burst.allowed", 20);
      const workers = await perWorker(stats);
      assert.equal(workers.length, 2);
      assert.ok(
        workers.every((n) => n > 0),
        `both workers served: ${workers}`,
      );
      assert.equal(stats["wasmcustom.graywall.rate_limiter.burst.allowed"], 20);
      assert.equal(stats["wasmcustom.graywall.rate_limiter.burst.limited"], 40);
    }),
  );

  e2e("a bucket of 1,000 (at most 17 x (worker_lease - 1)) is exact to the request: 1,100 requests over both workers admit exactly 1,000", () =>
    withRig(oneMinuteBucket(1000, { refill_interval_ms: 86_400_000 }), async (rig) => {
      // Bursts of 50 stay under the shipped cluster's circuit breakers, so every request is a 200 or a 429.
      const statuses: number[] = [];
      for (let i = 0; i < 22; i++) statuses.push(...(await burst(rig.envoy.url("/"), 50)));
      assert.equal(count(statuses, 200), 1000);
      assert.equal(count(statuses, 429), 100);
      assert.ok(
        (await perWorker(await rig.envoy.stats())).every((n) => n > 0),
        "both workers served",
      );
    }),
  );

  e2e("a bucket far from empty is spent from per-worker leases: never more than the bucket, and leases go back within a second", () =>
    withRig({ worker_lease: 8, ...oneMinuteBucket(400, { refill_interval_ms: 86_400_000 }) }, async (rig) => {
      // worker_lease 8: both workers take leases of 7 while 16 x 7 tokens are left after one. Bursts of 50
      // stay under the shipped cluster's circuit breakers, so every request is a 200 or a 429.
      let first = 0;
      for (let i = 0; i < 10; i++) {
        const statuses = await burst(rig.envoy.url("/"), 50);
        assert.equal(count(statuses, 200) + count(statuses, 429), 50);
        first += count(statuses, 200);
      }
      assert.ok(first <= 400, `never more than the bucket: ${first}`);
      const stats = await rig.envoy.stats();
      assert.ok(
        (await perWorker(stats)).every((n) => n > 0),
        "both workers served",
      );
      // What a worker still held goes back on its next tick (leases live 1 s), so the bucket's 400 are all
      // admitted in the end, and not one more.
      let total = first;
      await eventually(
        async () => {
          total += count(await burst(rig.envoy.url("/"), 20), 200);
          return total >= 400;
        },
        10_000,
        "the leases' tokens back in the bucket",
      );
      assert.equal(total, 400);
      assert.equal(count(await burst(rig.envoy.url("/"), 20), 200), 0);
      await statsOnceAt(rig.envoy, "wasmcustom.graywall.rate_limiter.burst.allowed", 400);
    }),
  );

  e2e("the bucket refills after the interval", () =>
    withRig({ rules: [{ name: "r", key: ["client_ip"], bucket_size: 2, refill_tokens: 2, refill_interval_ms: 1000 }] }, async (rig) => {
      assert.deepEqual((await burst(rig.envoy.url("/"), 3)).sort(), [200, 200, 429]);
      // 2 tokens a second: a refused client is admitted again once a token has been earned (~500 ms),
      // not at once; a refusal takes no token.
      const t0 = Date.now();
      await eventually(async () => (await request(rig.envoy.url("/"))).status === 200, 5000, "a refilled token");
      assert.ok(Date.now() - t0 >= 300, `admitted again after ${Date.now() - t0} ms`);
    }),
  );

  e2e("keys are isolated", () =>
    withRig({ rules: [{ name: "per-key", key: ["header:x-api-key"], bucket_size: 3, refill_tokens: 3, refill_interval_ms: 60000 }] }, async (rig) => {
      assert.equal(count(await burst(rig.envoy.url("/"), 6, { "x-api-key": "alice" }), 200), 3);
      assert.equal(count(await burst(rig.envoy.url("/"), 6, { "x-api-key": "bob" }), 200), 3);
      // No key header: the rule does not apply.
      assert.equal(count(await burst(rig.envoy.url("/"), 6), 200), 6);
    }),
  );

  e2e("match conditions scope a rule", () =>
    withRig(
      { rules: [{ name: "posts", match: { path_prefix: "/api", methods: ["POST"] }, key: ["client_ip"], bucket_size: 1, refill_interval_ms: 60000 }] },
      async (rig) => {
        assert.equal((await request(rig.envoy.url("/api/x"), { method: "POST", body: "" })).status, 200);
        assert.equal((await request(rig.envoy.url("/api/x"), { method: "POST", body: "" })).status, 429);
        assert.equal((await request(rig.envoy.url("/api/x"))).status, 200);
        assert.equal((await request(rig.envoy.url("/other"), { method: "POST", body: "" })).status, 200);
      },
    ),
  );

  e2e("shadow mode passes all traffic and counts what it would have limited", () =>
    withRig(oneMinuteBucket(5, { mode: "shadow" }), async (rig) => {
      assert.equal(count(await burst(rig.envoy.url("/"), 12), 200), 12);
      const s = await statsOnceAt(rig.envoy, "wasmcustom.graywall.rate_limiter.burst.allowed", 5);
      assert.equal(s["wasmcustom.graywall.rate_limiter.burst.shadow_limited"], 7);
      assert.equal(s["wasmcustom.graywall.rate_limiter.burst.limited"] ?? 0, 0);
    }),
  );

  e2e("429 carries Retry-After and RateLimit-* headers; with response_headers, allowed responses carry the remaining count", () =>
    withRig({ ...oneMinuteBucket(2), body: "slow down\n", response_headers: true }, async (rig) => {
      const a = await request(rig.envoy.url("/"));
      assert.equal(a.status, 200);
      assert.equal(a.headers.get("ratelimit-limit"), "2");
      assert.equal(a.headers.get("ratelimit-remaining"), "1");
      const b = await request(rig.envoy.url("/"));
      assert.equal(b.headers.get("ratelimit-remaining"), "0");
      const c = await request(rig.envoy.url("/"));
      assert.equal(c.status, 429);
      assert.equal(c.body, "slow down\n");
      assert.equal(c.headers.get("ratelimit-limit"), "2");
      assert.equal(c.headers.get("ratelimit-remaining"), "0");
      const retry = Number(c.headers.get("retry-after"));
      assert.ok(retry >= 29 && retry <= 30, `retry-after ${retry}`);
      assert.equal(c.headers.get("ratelimit-reset"), "60");
    }),
  );

  e2e("at max_keys: new keys pass by default (when_full: allow), or get 429 (when_full: deny)", async () => {
    const cfg = (whenFull: string) => ({
      max_keys: 1,
      when_full: whenFull,
      rules: [{ name: "k", key: ["header:x-k"], bucket_size: 1, refill_interval_ms: 60000 }],
    });
    await withRig(cfg("allow"), async (rig) => {
      assert.equal((await request(rig.envoy.url("/"), { headers: { "x-k": "a" } })).status, 200);
      assert.equal((await request(rig.envoy.url("/"), { headers: { "x-k": "a" } })).status, 429);
      assert.equal(count(await burst(rig.envoy.url("/"), 3, { "x-k": "b" }), 200), 3);
      assert.equal((await rig.envoy.stats())["wasmcustom.graywall.rate_limiter.k.table_full"], 3);
    });
    await withRig(cfg("deny"), async (rig) => {
      assert.equal((await request(rig.envoy.url("/"), { headers: { "x-k": "a" } })).status, 200);
      assert.equal((await request(rig.envoy.url("/"), { headers: { "x-k": "b" } })).status, 429);
    });
  });
});

describe("side by side with Envoy's native local_ratelimit", () => {
  e2e("the same bucket lets the same number of a burst through", async () => {
    const stable = await upstream("stable");
    const [adminPort, listenerPort] = [await freePort(), await freePort()];
    const cfg = renderConfig(loadYaml("envoy/envoy.yaml"), { adminPort, listenerPort, clusters: { stable: stable.port, canary: stable.port } });
    const hcm = cfg.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
    hcm.http_filters = [nativeLocalRateLimit(20, "60s"), hcm.http_filters.at(-1)];
    const envoy = await startEnvoy(cfg, adminPort, listenerPort, { concurrency: 2 });
    let native: number;
    try {
      native = count(await burst(envoy.url("/"), 60), 200);
    } finally {
      await envoy.stop();
      await stopUpstream(stable);
    }
    let ours = 0;
    await withRig(oneMinuteBucket(20), async (rig) => {
      ours = count(await burst(rig.envoy.url("/"), 60), 200);
    });
    assert.equal(native, 20);
    assert.equal(ours, native);
  });
});
