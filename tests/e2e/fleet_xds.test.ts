// A fleet: three real Envoys subscribed to one graywall-control over gRPC ECDS (envoy/envoy-xds.yaml).
// A rule change reaches all three under load without a failed request; they keep their last rules while
// the control service is down and resync when it is back; a restarted Envoy gets the current version; a
// version one node cannot load is reported as rejected for that node only, with Envoy's message.
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe } from "node:test";
import { chromium } from "playwright-core";
import { buildServer } from "../../control/server.ts";
import { setupBrowser } from "../../scripts/setup-tools.ts";
import type { GatewayStatus } from "../../control/xds.ts";
import { wasmPath } from "../../runtime/paths.ts";
import {
  BROWSER_PAGE_VIEW,
  e2e,
  eventually,
  freePort,
  loadYaml,
  renderConfig,
  request,
  startEnvoy,
  stopUpstream,
  upstream,
  type Envoy,
  type Upstream,
} from "./harness.ts";

const TOKEN = "fleet-token";
const auth = { authorization: `Bearer ${TOKEN}` };
const grayDoc = (group: string) => ({
  default_target: "stable",
  response_header: "x-graywall-routed-to",
  rules: [{ name: "beta-header", target: "canary", match: { headers: [{ name: "x-user-group", exact: group }] } }],
});

describe("a fleet of three Envoys on graywall-control's gRPC ECDS", () => {
  let dir: string;
  let xdsPort: number;
  let app: ReturnType<typeof buildServer>;
  let stable: Upstream;
  let canary: Upstream;
  /** Envoy 3 runs in its own folder with its own copy of the module (module paths are relative). */
  let ownFolder: string;
  const envoys: (Envoy | undefined)[] = [];
  const starts: (() => Promise<Envoy>)[] = [];

  const startControl = async () => {
    // Module paths relative to each Envoy's working directory, so one node can lack the module.
    app = buildServer({ dataDir: join(dir, "data"), ecdsDir: join(dir, "ecds"), token: TOKEN, wasmDir: "build", xdsPort });
    await app.listen({ host: "127.0.0.1", port: 0 });
  };
  const gateways = async (): Promise<{ version: string; gateways: GatewayStatus[] }> => (await app.inject({ method: "GET", url: "/api/gateways" })).json();
  const put = async (filter: string, doc: unknown) => {
    const cur = (await app.inject({ method: "GET", url: `/api/filters/${filter}` })).json();
    const r = await app.inject({ method: "PUT", url: `/api/filters/${filter}`, headers: { ...auth, "if-match": `"${cur.version}"` }, payload: { doc } });
    assert.equal(r.statusCode, 200, r.body);
  };
  const routed = async (e: Envoy, group: string) => (await request(e.url("/"), { headers: { "x-user-group": group } })).json?.version;
  const allAt = async (version: string, nodes = ["fleet-1", "fleet-2", "fleet-3"]) => {
    const g = await gateways();
    return nodes.every((n) => g.gateways.some((x) => x.node === n && x.connected && x.version === version));
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "graywall-xds-"));
    ownFolder = join(dir, "node3");
    mkdirSync(join(ownFolder, "build"), { recursive: true });
    copyFileSync(wasmPath("graywall"), join(ownFolder, "build", "graywall.wasm"));
    xdsPort = await freePort();
    await startControl();
    [stable, canary] = [await upstream("stable"), await upstream("canary")];
    for (let i = 1; i <= 3; i++) {
      const [adminPort, listenerPort] = [await freePort(), await freePort()];
      const cfg = renderConfig(loadYaml("envoy/envoy-xds.yaml"), {
        adminPort,
        listenerPort,
        clusters: { stable: stable.port, canary: canary.port, graywall_control: xdsPort },
      });
      cfg.node.id = `fleet-${i}`;
      const cwd = i === 3 ? ownFolder : undefined;
      starts.push(() => startEnvoy(cfg, adminPort, listenerPort, { cwd }));
      envoys.push(await starts[i - 1]());
    }
  });

  after(async () => {
    for (const e of envoys) await e?.stop();
    await app?.close();
    if (stable) await stopUpstream(stable);
    if (canary) await stopUpstream(canary);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  e2e("every Envoy runs the current version; a rule change reaches all three within 1 s under load, with no failed request", async () => {
    await eventually(async () => allAt((await gateways()).version), 10000, "all three gateways at the current version");
    for (const e of envoys) assert.equal(await routed(e!, "gamma"), "stable");

    // Steady load on all three while the rule changes.
    let stop = false;
    let served = 0;
    const failures: string[] = [];
    const load = envoys.map(async (e) => {
      while (!stop) {
        const r = await request(e!.url("/"));
        if (r.status !== 200) failures.push(`${r.status} ${r.body.slice(0, 80)}`);
        served++;
        await new Promise((res) => setTimeout(res, 40));
      }
    });
    await new Promise((res) => setTimeout(res, 300));
    const t0 = Date.now();
    await put("gray_router", grayDoc("gamma"));
    const reached = await Promise.all(
      envoys.map(async (e) => {
        await eventually(async () => (await routed(e!, "gamma")) === "canary", 5000, "the new rule");
        return Date.now() - t0;
      }),
    );
    await new Promise((res) => setTimeout(res, 300));
    stop = true;
    await Promise.all(load);
    assert.deepEqual(failures, []);
    assert.ok(served > 30, `requests served under load: ${served}`);
    assert.ok(Math.max(...reached) <= 1000, `the rule reached the three gateways after ${reached} ms`);
    await eventually(async () => allAt((await gateways()).version), 5000, "three ACKs of the new version");
  });

  e2e("with the control service down all three keep their last rules; back, they resync", async () => {
    const version = (await gateways()).version;
    await app.close();
    await new Promise((res) => setTimeout(res, 500));
    for (const e of envoys) assert.equal(await routed(e!, "gamma"), "canary");
    await startControl();
    await eventually(async () => allAt(version), 10000, "all three resubscribed at the version they kept");
  });

  e2e("a restarted Envoy gets the current version", async () => {
    await envoys[1]!.stop();
    envoys[1] = await starts[1]();
    assert.equal(await routed(envoys[1], "gamma"), "canary");
    await eventually(async () => allAt((await gateways()).version), 5000, "the restarted gateway at the current version");
  });

  e2e("a client id issued by one gateway holds on the others: graywall-control gives every gateway the same secrets", async () => {
    const browser = BROWSER_PAGE_VIEW;
    const first = await request(envoys[0]!.url("/"), { headers: browser });
    const id = first.headers.get("set-cookie")?.split(";")[0];
    assert.match(id ?? "", /^graywall_id=/, "the first gateway issues an id");
    for (const e of envoys.slice(1)) {
      const r = await request(e!.url("/"), { headers: { ...browser, cookie: id! } });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get("set-cookie"), null, "valid here too: no new id");
    }
  });

  e2e("a version one node cannot load is reported as rejected for that node only; it keeps serving its last version", async () => {
    const before = (await gateways()).version;
    rmSync(join(ownFolder, "build", "graywall.wasm"));
    await put("gray_router", grayDoc("delta"));
    const version = (await gateways()).version;
    assert.notEqual(version, before);
    await eventually(async () => allAt(version, ["fleet-1", "fleet-2"]), 5000, "the others at the new version");
    await eventually(async () => (await gateways()).gateways.find((g) => g.node === "fleet-3")?.rejected?.version === version, 5000, "fleet-3's rejection");
    const g3 = (await gateways()).gateways.find((g) => g.node === "fleet-3")!;
    assert.equal(g3.version, before);
    assert.match(g3.rejected!.error, /graywall\.wasm|wasm/i);
    assert.equal(await routed(envoys[0]!, "delta"), "canary");
    assert.equal(await routed(envoys[2]!, "delta"), "stable");
    assert.equal(await routed(envoys[2]!, "gamma"), "canary");

    // The web UI says the same to someone who does not read JSON.
    const browser = await chromium.launch({ executablePath: setupBrowser(), args: ["--no-sandbox"] });
    try {
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${(app.server.address() as { port: number }).port}/`);
      await page.click('nav button[data-tab="gateways"]');
      await page.waitForFunction(() => document.querySelectorAll("#gateways tbody tr").length === 3);
      const row = (node: string) => page.locator(`#gateways tr[data-node="${node}"]`).textContent();
      assert.match((await row("fleet-3")) ?? "", /refused .*gray_router v\d+: Invalid path: build\/graywall\.wasm/);
      assert.match((await row("fleet-1")) ?? "", /up to date/);
      await page.screenshot({ path: join(tmpdir(), "graywall-ui-gateways.png"), fullPage: true });
    } finally {
      await browser.close();
    }
  });

  e2e("a gateway started while the control service is down filters with the shipped configuration, then takes the current one", async () => {
    const version = (await gateways()).version;
    await app.close();
    const [adminPort, listenerPort] = [await freePort(), await freePort()];
    const cfg = renderConfig(loadYaml("envoy/envoy-xds.yaml"), {
      adminPort,
      listenerPort,
      clusters: { stable: stable.port, canary: canary.port, graywall_control: xdsPort },
    });
    cfg.node.id = "fleet-4";
    const t0 = Date.now();
    const late = await startEnvoy(cfg, adminPort, listenerPort);
    try {
      // Ready after the 5 s initial fetch timeout (not 15 s), and every request answered by the
      // shipped rules: not the 500 of a filter with no configuration.
      assert.ok(Date.now() - t0 < 10_000, `ready after ${Date.now() - t0} ms`);
      const statuses = new Set<number>();
      for (let i = 0; i < 10; i++) statuses.add((await request(late.url("/"))).status);
      assert.deepEqual([...statuses], [200]);
      assert.equal(await routed(late, "beta"), "canary", "the shipped gray rule");
      assert.equal(await routed(late, "delta"), "stable");
      await startControl();
      await eventually(async () => (await routed(late, "delta")) === "canary", 10_000, "the control service's current rules");
      await eventually(async () => allAt(version, ["fleet-4"]), 5000, "fleet-4 at the current version");
    } finally {
      await late.stop();
    }
  });
});
