// ip_list in real Envoy: remote address, XFF hops, spoofing, IPv6, path scope, a 100k list, bad entries.
import assert from "node:assert/strict";
import { after, before, describe } from "node:test";
import { cidrs } from "../../bench/setups.ts";
import { packIpLists } from "../../runtime/filters.ts";
import {
  withRig as rigWith,
  e2e,
  EnvoyExited,
  freePort,
  loadYaml,
  renderConfig,
  request,
  startEnvoy,
  startRig,
  statsOnceAt,
  stopRig,
  type Rig,
} from "./harness.ts";

const FILTER = "graywall.ip_list";

const withRig = (cfg: unknown, fn: (rig: Rig) => Promise<void>, listenerAddress?: string) => rigWith(FILTER, cfg, fn, { listenerAddress });

const status = async (rig: Rig, path = "/", headers: Record<string, string> = {}) => (await request(rig.envoy.url(path), { headers })).status;

describe("ip_list by peer address", () => {
  e2e("a denied peer gets 403 with the configured body, and is counted", () =>
    withRig({ deny: ["127.0.0.1"], deny_body: "go away\n" }, async (rig) => {
      const r = await request(rig.envoy.url("/"));
      assert.equal(r.status, 403);
      assert.equal(r.body, "go away\n");
      assert.equal((await rig.envoy.stats())["wasmcustom.graywall.ip_list.denied.deny_list"], 1);
    }),
  );

  e2e("an allow list admits only its members", async () => {
    await withRig({ allow: ["10.0.0.0/8"] }, async (rig) => assert.equal(await status(rig), 403));
    await withRig({ allow: ["127.0.0.0/8"] }, async (rig) => {
      assert.equal(await status(rig), 200);
      await statsOnceAt(rig.envoy, "wasmcustom.graywall.ip_list.allowed", 1);
    });
  });

  e2e("deny wins over allow", () => withRig({ allow: ["0.0.0.0/0"], deny: ["127.0.0.0/8"] }, async (rig) => assert.equal(await status(rig), 403)));

  e2e("client-sent XFF is ignored without trusted hops", () =>
    withRig({ deny: ["203.0.113.0/24"] }, async (rig) => {
      assert.equal(await status(rig, "/", { "x-forwarded-for": "203.0.113.9" }), 200);
    }),
  );

  e2e('client_address "envoy_xff" (as shipped): a client-sent X-Forwarded-For cannot change the address a stage sees', async () => {
    // The address Envoy appends for this client: the peer, or (for a loopback peer, as here) Envoy's own.
    let appended = "";
    await withRig({ client_address: "envoy_xff" }, async (rig) => {
      const echoed = (await request(rig.envoy.url("/"), { headers: { "x-forwarded-for": "203.0.113.9" } })).json?.headers?.["x-forwarded-for"] as string;
      appended = echoed.split(",").pop()!.trim();
      assert.notEqual(appended, "203.0.113.9");
    });
    // What the client writes is never read: a denied address it claims does not deny it ...
    await withRig({ client_address: "envoy_xff", deny: ["203.0.113.0/24"] }, async (rig) => {
      for (const xff of ["203.0.113.9", "203.0.113.9, 203.0.113.10", "", "garbage", "203.0.113.9,"]) {
        assert.equal(await status(rig, "/", { "x-forwarded-for": xff }), 200, `XFF '${xff}'`);
      }
    });
    // ... and an allowed address it claims does not let it through.
    await withRig({ client_address: "envoy_xff", deny: [appended] }, async (rig) => {
      for (const xff of ["8.8.8.8", "8.8.8.8, 9.9.9.9", "::ffff:8.8.8.8", ""])
        assert.equal(await status(rig, "/", { "x-forwarded-for": xff }), 403, `XFF '${xff}'`);
    });
  });

  e2e("path scope: only listed prefixes are checked", () =>
    withRig({ deny: ["0.0.0.0/0"], paths: ["/admin"] }, async (rig) => {
      assert.equal(await status(rig, "/admin/panel"), 403);
      assert.equal(await status(rig, "/shop"), 200);
    }),
  );

  e2e("an IPv6 peer is matched against IPv6 entries", async () => {
    await withRig({ deny: ["::1/128"] }, async (rig) => assert.equal(await status(rig), 403), "::1");
    await withRig({ deny: ["127.0.0.1", "2001:db8::/32"] }, async (rig) => assert.equal(await status(rig), 200), "::1");
  });
});

describe("ip_list with one trusted hop", () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig("envoy/envoy.yaml", { [FILTER]: { xff_trusted_hops: 1, deny: ["203.0.113.0/24", "2001:db8:bad::/48"] } });
  });
  after(() => stopRig(rig));

  e2e("the address the trusted proxy saw decides", async () => {
    assert.equal(await status(rig, "/", { "x-forwarded-for": "203.0.113.50" }), 403);
    assert.equal(await status(rig, "/", { "x-forwarded-for": "2001:db8:bad::1" }), 403);
    assert.equal(await status(rig, "/", { "x-forwarded-for": "198.18.0.1" }), 200);
  });

  e2e("a client cannot hide behind addresses it writes itself", async () => {
    assert.equal(await status(rig, "/", { "x-forwarded-for": "198.18.0.1, 203.0.113.50" }), 403);
    assert.equal(await status(rig, "/", { "x-forwarded-for": "203.0.113.50, 198.18.0.1" }), 200);
  });

  e2e("malformed XFF never crashes and falls back to the peer", async () => {
    for (const xff of ["garbage", ",,,", "203.0.113.50:80", "[2001:db8:bad::1]", "1.2.3.4.5", "ffff".repeat(300)]) {
      assert.equal(await status(rig, "/", { "x-forwarded-for": xff }), 200, xff);
    }
    assert.equal(await status(rig, "/", { "x-forwarded-for": "203.0.113.50" }), 403, "VM still alive");
  });
});

describe("ip_list with a 100,000-entry list, packed as graywall-control delivers it", () => {
  const entries = [...cidrs(100_000), "127.0.0.1/32"];
  let rig: Rig;
  before(async () => {
    const doc = packIpLists({ deny: entries }) as Record<string, unknown>;
    assert.ok(typeof doc.deny_packed === "string" && !("deny" in doc));
    rig = await startRig("envoy/envoy.yaml", { [FILTER]: doc }, { concurrency: 2 });
  });
  after(() => stopRig(rig));

  e2e("loads, answers, and reports its size", async () => {
    assert.equal(await status(rig), 403);
    const s = await rig.envoy.stats();
    assert.equal(s["wasmcustom.graywall.ip_list.entries"], 100_001);
    // Scattered entries never merge: a range each.
    assert.equal(s["wasmcustom.graywall.ip_list.ranges"], 100_001);
    assert.ok(s["wasmcustom.graywall.ip_list.vm_memory_bytes"] > 1 << 20);
  });
});

describe("ip_list invalid configuration", () => {
  const rejected = async (doc: unknown, error: RegExp) => {
    const [adminPort, listenerPort] = [await freePort(), await freePort()];
    const cfg = renderConfig(loadYaml("envoy/envoy.yaml"), { adminPort, listenerPort, clusters: {}, filterConfig: { [FILTER]: doc } });
    await assert.rejects(startEnvoy(cfg, adminPort, listenerPort), (e: unknown) => {
      assert.ok(e instanceof EnvoyExited);
      assert.match(e.output, error);
      return true;
    });
  };

  e2e("an invalid entry rejects the whole config, naming the entry", () =>
    rejected({ deny: ["10.0.0.0/8", "10.0.0.0/33"] }, /graywall: configuration rejected: ip_list\.deny\[1\]: invalid IP or CIDR '10\.0\.0\.0\/33'/),
  );

  e2e("a damaged packed list rejects the whole config, naming the field", () =>
    rejected({ deny_packed: "AQg*" }, /graywall: configuration rejected: ip_list\.deny_packed: is not base64 \(character 3\)/),
  );
});
