// gray_router in real Envoy: every match kind, body routing, sticky split, XFF hops, hot updates.
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { after, before, describe } from "node:test";
import { e2e, eventually, request, settledStats, startRig, stopRig, versionOf, writeEcds, type Rig } from "./harness.ts";

const FILTER = "graywall.gray_router";

const rules = {
  default_target: "stable",
  response_header: "x-graywall-routed-to",
  rules: [
    { name: "hdr-prefix", target: "canary", match: { headers: [{ name: "x-build", prefix: "nightly-" }] } },
    { name: "cookie", target: "canary", match: { cookies: [{ name: "beta", exact: "yes" }] } },
    { name: "query", target: "canary", match: { query: [{ name: "canary", one_of: ["1", "true"] }] } },
    { name: "body-tier", target: "canary", match: { body: [{ path: "user.tier", exact: "gold" }] } },
    { name: "sticky", target: "canary", match: { percentage: { value: 30, hash_on: "header", name: "x-user-id", salt: "exp" } } },
  ],
};

describe("gray_router match kinds in Envoy", () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig("envoy/envoy.yaml", { [FILTER]: rules });
  });
  after(() => stopRig(rig));

  e2e("header prefix", async () => {
    assert.equal(await versionOf(rig.envoy.url("/"), { headers: { "x-build": "nightly-42" } }), "canary");
    assert.equal(await versionOf(rig.envoy.url("/"), { headers: { "x-build": "release-42" } }), "stable");
  });

  e2e("cookie", async () => {
    assert.equal(await versionOf(rig.envoy.url("/"), { headers: { cookie: "a=b; beta=yes" } }), "canary");
    assert.equal(await versionOf(rig.envoy.url("/"), { headers: { cookie: "beta=no" } }), "stable");
  });

  e2e("query parameter", async () => {
    assert.equal(await versionOf(rig.envoy.url("/search?q=x&canary=true")), "canary");
    assert.equal(await versionOf(rig.envoy.url("/search?canary=0")), "stable");
  });

  e2e("JSON body field: small body routes, and the upstream gets the whole body", async () => {
    const body = JSON.stringify({ user: { tier: "gold" }, pad: "x".repeat(2000) });
    const r = await request(rig.envoy.url("/order"), { method: "POST", body, headers: { "content-type": "application/json" } });
    assert.equal(r.json?.version, "canary");
    assert.equal(r.json?.bodyBytes, Buffer.byteLength(body));
    const silver = JSON.stringify({ user: { tier: "silver" } });
    assert.equal(await versionOf(rig.envoy.url("/order"), { method: "POST", body: silver }), "stable");
  });

  e2e("a body over max_body_bytes, or not JSON, does not match and is passed through whole", async () => {
    const big = JSON.stringify({ user: { tier: "gold" }, pad: "x".repeat(100_000) });
    const r = await request(rig.envoy.url("/order"), { method: "POST", body: big });
    assert.equal(r.status, 200);
    assert.equal(r.json?.version, "stable");
    assert.equal(r.json?.bodyBytes, Buffer.byteLength(big));
    const text = "user.tier=gold";
    const t = await request(rig.envoy.url("/order"), { method: "POST", body: text });
    assert.equal(t.json?.version, "stable");
    assert.equal(t.json?.bodyBytes, text.length);
  });

  e2e("a header rule still decides a request that also has a body", async () => {
    const r = await request(rig.envoy.url("/"), { method: "POST", body: "not json", headers: { "x-build": "nightly-1" } });
    assert.equal(r.json?.version, "canary");
  });

  e2e("sticky percentage: about 30% of users, each always on the same side", async () => {
    const users = Array.from({ length: 400 }, (_, i) => `user-${i}`);
    // In batches of 50: all 400 at once would trip the cluster's circuit breaker (256 pending).
    const routeAll = async () => {
      const out: string[] = [];
      for (let i = 0; i < users.length; i += 50) {
        out.push(...(await Promise.all(users.slice(i, i + 50).map((u) => versionOf(rig.envoy.url("/"), { headers: { "x-user-id": u } })))));
      }
      return out;
    };
    const first = await routeAll();
    const share = first.filter((v) => v === "canary").length / users.length;
    assert.ok(share > 0.24 && share < 0.36, `canary share ${share}`);
    assert.deepEqual(await routeAll(), first);
  });

  e2e("the response names the target, and a spoofed routing header is overwritten", async () => {
    const r = await request(rig.envoy.url("/"), { headers: { "x-graywall-target": "canary" } });
    assert.equal(r.json?.version, "stable");
    assert.equal(r.headers.get("x-graywall-routed-to"), "stable");
  });

  e2e("per-rule and per-target counters count exactly the requests each rule routed", async () => {
    // Routed counts are tallies (written out on the module's tick): counted from still counters.
    const counters = async () => {
      const s = await settledStats(rig.envoy);
      const out: Record<string, number> = {};
      for (const k of ["hdr-prefix", "cookie", "query", "body-tier", "sticky"]) out[k] = s[`wasmcustom.graywall.gray_router.rule.${k}.matched`] ?? 0;
      out.canary = s["wasmcustom.graywall.gray_router.target.canary.routed"] ?? 0;
      out.stable = s["wasmcustom.graywall.gray_router.target.stable.routed"] ?? 0;
      return out;
    };
    const before = await counters();
    await request(rig.envoy.url("/"), { headers: { "x-build": "nightly-1" } });
    await request(rig.envoy.url("/"), { headers: { cookie: "beta=yes" } });
    await request(rig.envoy.url("/?canary=1"));
    await request(rig.envoy.url("/?canary=1"));
    await request(rig.envoy.url("/order"), { method: "POST", body: JSON.stringify({ user: { tier: "gold" } }) });
    await request(rig.envoy.url("/"));
    const after = await counters();
    const delta = Object.fromEntries(Object.keys(after).map((k) => [k, after[k] - before[k]]));
    assert.deepEqual(delta, { "hdr-prefix": 1, cookie: 1, query: 2, "body-tier": 1, sticky: 0, canary: 5, stable: 1 });
  });
});

describe("gray_router client IP and X-Forwarded-For", () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig("envoy/envoy.yaml", {
      [FILTER]: {
        xff_trusted_hops: 1,
        rules: [{ name: "office", target: "canary", match: { client_ip: ["203.0.113.0/24", "2001:db8:cafe::/48"] } }],
      },
    });
  });
  after(() => stopRig(rig));

  e2e("the client is the rightmost XFF entry behind one trusted hop", async () => {
    assert.equal(await versionOf(rig.envoy.url("/"), { headers: { "x-forwarded-for": "203.0.113.7" } }), "canary");
    assert.equal(await versionOf(rig.envoy.url("/"), { headers: { "x-forwarded-for": "2001:db8:cafe::9" } }), "canary");
  });

  e2e("entries left of the trusted hop are the client's own and are not believed", async () => {
    assert.equal(await versionOf(rig.envoy.url("/"), { headers: { "x-forwarded-for": "203.0.113.7, 198.51.100.1" } }), "stable");
  });

  e2e("without XFF, or with garbage, the peer address (127.0.0.1) is the client", async () => {
    assert.equal(await versionOf(rig.envoy.url("/")), "stable");
    assert.equal(await versionOf(rig.envoy.url("/"), { headers: { "x-forwarded-for": "not-an-ip" } }), "stable");
    assert.equal(await versionOf(rig.envoy.url("/"), { headers: { "x-forwarded-for": ",,,,,,,," } }), "stable");
  });
});

describe("gray_router peer address", () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig("envoy/envoy.yaml", {
      [FILTER]: { rules: [{ name: "loopback", target: "canary", match: { client_ip: ["127.0.0.0/8"] } }] },
    });
  });
  after(() => stopRig(rig));

  e2e("with no trusted hops, XFF is ignored and the peer decides", async () => {
    assert.equal(await versionOf(rig.envoy.url("/"), { headers: { "x-forwarded-for": "8.8.8.8" } }), "canary");
  });
});

describe("gray_router hot update through ECDS", () => {
  let rig: Rig;
  const v1 = { rules: [{ name: "beta", target: "canary", match: { headers: [{ name: "x-group", exact: "beta" }] } }] };
  const v2 = { rules: [{ name: "alpha", target: "canary", match: { headers: [{ name: "x-group", exact: "alpha" }] } }] };
  before(async () => {
    rig = await startRig("envoy/envoy.yaml", undefined, { ecdsConfig: { [FILTER]: v1 } });
  });
  after(() => stopRig(rig));

  const routeOf = (group: string) => versionOf(rig.envoy.url("/"), { headers: { "x-group": group } });
  const stat = async (suffix: string) => {
    const s = await rig.envoy.stats();
    return Object.entries(s).find(([k]) => k.startsWith("extension_config_discovery.") && k.endsWith(suffix))?.[1] ?? 0;
  };

  e2e("new rules take effect without a restart", async () => {
    assert.equal(await routeOf("beta"), "canary");
    writeEcds(rig.envoy, FILTER, v2);
    await eventually(async () => (await routeOf("alpha")) === "canary", 5000, "v2 rules");
    assert.equal(await routeOf("beta"), "stable");
  });

  e2e("an invalid update is rejected and the rules in force keep serving", async () => {
    const failsBefore = await stat("config_fail");
    writeEcds(rig.envoy, FILTER, { rules: [{ name: "bad", target: "canary", match: { client_ip: ["300.0.0.1/8"] } }] });
    await eventually(async () => (await stat("config_fail")) > failsBefore, 5000, "config_fail");
    assert.match(rig.envoy.log(), /graywall: configuration rejected: gray_router\.rules\[0\]\.match\.client_ip\[0\]: invalid IP or CIDR '300\.0\.0\.1\/8'/);
    assert.equal(await routeOf("alpha"), "canary");
    assert.equal(await routeOf("beta"), "stable");
    writeEcds(rig.envoy, FILTER, "this is not json");
    await eventually(async () => (await stat("config_fail")) > failsBefore + 1, 5000, "second config_fail");
    assert.equal(await routeOf("alpha"), "canary");
  });
});

describe("gray_router with bodies past Envoy's buffer limit", () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig("envoy/envoy.yaml", { [FILTER]: { ...rules, max_body_bytes: 524288 } });
  });
  after(() => stopRig(rig));

  e2e("2 MB and 20 MB JSON bodies are never failed: decided as too large, passed on whole", async () => {
    for (const size of [2 * 1024 * 1024, 20 * 1024 * 1024, 2 * 1024 * 1024]) {
      const big = JSON.stringify({ user: { tier: "gold" }, pad: "x".repeat(size) });
      const r = await request(rig.envoy.url("/order"), { method: "POST", body: big, headers: { "content-type": "application/json" } });
      assert.equal(r.status, 200, `${size}: ${r.body.slice(0, 200)}`);
      assert.equal(r.json?.version, "stable");
      assert.equal(r.json?.bodyBytes, Buffer.byteLength(big));
    }
    // Chunked (no content-length): not waited for, so never buffered into Envoy's 413; passed on whole.
    for (const size of [2 * 1024 * 1024, 20 * 1024 * 1024]) {
      const reply = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpRequest(rig.envoy.url("/order"), { method: "POST", headers: { "transfer-encoding": "chunked" } }, (res) => {
          let body = "";
          res.on("data", (d) => (body += d));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on("error", reject);
        const chunk = Buffer.alloc(64 * 1024, "x");
        req.write('{"user":{"tier":"gold"},"pad":"');
        for (let i = 0; i < size / chunk.length; i++) req.write(chunk);
        req.end('"}');
      });
      assert.equal(reply.status, 200, `chunked ${size}`);
      assert.equal(JSON.parse(reply.body).version, "stable");
      assert.equal(JSON.parse(reply.body).bodyBytes, size + 33);
    }
    const small = JSON.stringify({ user: { tier: "gold" }, pad: "x".repeat(500_000) }); // under 512 KiB: read and matched
    assert.equal((await request(rig.envoy.url("/order"), { method: "POST", body: small })).json?.version, "canary");
  });
});
