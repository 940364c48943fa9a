// The shipped envoy/envoy.yaml, the built graywall.wasm, real Envoy and real upstreams.
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { after, before, describe } from "node:test";
import {
  e2e,
  EnvoyExited,
  eventually,
  freePort,
  loadYaml,
  renderConfig,
  request,
  settledStats,
  startEnvoy,
  startRig,
  stopRig,
  stopUpstream,
  upstream as upstreamFor,
  versionOf,
  type Rig,
} from "./harness.ts";

/** A TCP connection to the listener, held open. */
const openConnection = (port: number) =>
  new Promise<Socket>((resolve, reject) => {
    const s = connect(port, "127.0.0.1", () => resolve(s));
    s.on("error", reject);
  });

describe("shipped envoy.yaml with gray_router", () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig("envoy/envoy.yaml");
  });
  after(() => stopRig(rig));

  e2e("a request with the rule's header lands on canary", async () => {
    const r = await request(rig.envoy.url("/hello"), { headers: { "x-user-group": "beta" } });
    assert.equal(r.status, 200);
    assert.equal(r.json?.version, "canary");
    assert.equal(r.headers.get("x-graywall-routed-to"), "canary");
  });

  e2e("a request without it lands on stable", async () => {
    assert.equal(await versionOf(rig.envoy.url("/hello")), "stable");
    assert.equal(await versionOf(rig.envoy.url("/"), { headers: { "x-user-group": "alpha" } }), "stable");
  });

  e2e("a client cannot pick its target by sending the routing header", async () => {
    const r = await request(rig.envoy.url("/"), { headers: { "x-graywall-target": "canary" } });
    assert.equal(r.json?.version, "stable");
    // The default target goes without the header: the client's copy is removed.
    assert.equal(r.json?.headers["x-graywall-target"], undefined);
  });

  e2e("HTTP/1.0 clients (ApacheBench, HAProxy health checks) are served, with or without Host", async () => {
    for (const head of ["GET /health HTTP/1.0\r\n\r\n", "GET /health HTTP/1.0\r\nHost: gw\r\n\r\n"]) {
      const reply = await new Promise<string>((resolve, reject) => {
        const s = connect(rig.envoy.port, "127.0.0.1", () => s.write(head));
        let out = "";
        s.on("data", (d) => (out += d));
        s.on("end", () => resolve(out));
        s.on("error", reject);
      });
      assert.match(reply, /^HTTP\/1\.[01] 200 /, reply.slice(0, 200));
      assert.match(reply, /"version":"stable"/);
    }
  });

  e2e("routing is counted in Envoy's stats, one count per request", async () => {
    const counts = (s: Record<string, number>) => [
      s["wasmcustom.graywall.gray_router.rule.beta-header.matched"] ?? 0,
      s["wasmcustom.graywall.gray_router.target.stable.routed"] ?? 0,
    ];
    // Routed counts are tallies (written out on the module's tick): counted from still counters.
    const [beta0, stable0] = counts(await settledStats(rig.envoy));
    for (let i = 0; i < 3; i++) await request(rig.envoy.url("/hello"), { headers: { "x-user-group": "beta" } });
    await request(rig.envoy.url("/hello"));
    assert.deepEqual(counts(await settledStats(rig.envoy)), [beta0 + 3, stable0 + 1]);
  });
});

describe("Envoy's overload manager in the shipped config", () => {
  e2e("client connections are limited: no warning at start, and past the limit new connections are refused", async () => {
    const shipped = loadYaml("envoy/envoy.yaml");
    const monitor = shipped.overload_manager.resource_monitors[0];
    assert.equal(monitor.name, "envoy.resource_monitors.global_downstream_max_connections");
    assert.ok(monitor.typed_config.max_active_downstream_connections >= 10000, "a limit sized for a gateway");
    // The same config with a limit of 3, so the test can reach it.
    monitor.typed_config.max_active_downstream_connections = 3;
    const [stable, adminPort, listenerPort] = [await upstreamFor("stable"), await freePort(), await freePort()];
    const envoy = await startEnvoy(
      renderConfig(shipped, { adminPort, listenerPort, clusters: { stable: stable.port, canary: stable.port } }),
      adminPort,
      listenerPort,
    );
    try {
      assert.doesNotMatch(envoy.log(), /no configured limit to the number of allowed active downstream connections/);
      const held = await Promise.all([0, 1, 2, 3, 4].map(() => openConnection(listenerPort)));
      const overflow = async () => (await envoy.stats())[`listener.127.0.0.1_${listenerPort}.downstream_global_cx_overflow`] ?? 0;
      await eventually(async () => (await overflow()) === 2, 5000, "two connections over the limit refused");
      for (const s of held) s.destroy();
      // Below the limit again: served.
      // Until Envoy has seen them close, a new connection may still be refused (reset): try again.
      await eventually(async () => (await request(envoy.url("/")).catch(() => undefined))?.status === 200, 5000, "served once connections close");
    } finally {
      await envoy.stop();
      await stopUpstream(stable);
    }
  });
});

describe("invalid gray_router configuration", () => {
  e2e("Envoy refuses to start and the log names the bad field", async () => {
    const [adminPort, listenerPort] = [await freePort(), await freePort()];
    const cfg = renderConfig(loadYaml("envoy/envoy.yaml"), {
      adminPort,
      listenerPort,
      clusters: { stable: 1, canary: 1 },
      filterConfig: { "graywall.gray_router": { rules: [{ name: "r", target: "canary", match: { headers: [{ name: "x", equals: "y" }] } }] } },
    });
    await assert.rejects(startEnvoy(cfg, adminPort, listenerPort), (e: unknown) => {
      assert.ok(e instanceof EnvoyExited, String(e));
      assert.match(e.output, /graywall: configuration rejected: gray_router\.rules\[0\]\.match\.headers\[0\].*needs exactly one of/);
      assert.match(e.output, /rules\[0\]\.match\.headers\[0\]\.equals: unknown field/);
      return true;
    });
  });
});

describe("every filter refuses an invalid configuration", () => {
  const bad: Record<string, [unknown, RegExp]> = {
    "graywall.ip_list": [{ deny: ["not-an-ip"] }, /graywall: configuration rejected: ip_list\.deny\[0\]: invalid IP or CIDR 'not-an-ip'/],
    "graywall.crawler_score": [
      { thresholds: { tag: 200 } },
      /graywall: configuration rejected: crawler_score\.thresholds\.tag: must be between 1 and 101, got 200/,
    ],
    "graywall.rate_limiter": [
      { rules: [{ name: "r", key: ["client_ip"] }] },
      /graywall: configuration rejected: rate_limiter\.rules\[0\]\.bucket_size: is required/,
    ],
    "graywall.gray_router": [{ default_target: "" }, /graywall: configuration rejected: gray_router\.default_target: must be 1-64 characters/],
  };
  for (const [filter, [config, message]] of Object.entries(bad)) {
    e2e(`${filter}: Envoy refuses to start and the log names the field`, async () => {
      const [adminPort, listenerPort] = [await freePort(), await freePort()];
      const cfg = renderConfig(loadYaml("envoy/envoy.yaml"), { adminPort, listenerPort, clusters: {}, filterConfig: { [filter]: config } });
      await assert.rejects(startEnvoy(cfg, adminPort, listenerPort), (e: unknown) => {
        assert.ok(e instanceof EnvoyExited, String(e));
        assert.match(e.output, message);
        return true;
      });
    });
  }
});

const BROWSER = {
  "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
  accept: "text/html",
  "accept-language": "en-US",
};

describe("multiple workers", () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig("envoy/envoy.yaml", undefined, { concurrency: 2 });
  });
  after(() => stopRig(rig));

  e2e("every worker's VM routes the same way", async () => {
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        // Non-numeric paths: /0, /1, /2 ... in a burst is what the demo chain's crawler_score blocks.
        // A browser's headers: a script's (node's fetch is a known bot) in a burst of 40 is challenged.
        versionOf(rig.envoy.url(`/page-${String.fromCharCode(97 + (i % 26))}`), { headers: { ...BROWSER, ...(i % 2 ? { "x-user-group": "beta" } : {}) } }),
      ),
    );
    assert.deepEqual(
      results,
      results.map((_, i) => (i % 2 ? "canary" : "stable")),
    );
  });
});
