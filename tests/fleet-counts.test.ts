// crawler_score's fleet counts on the host emulator, against the real envoyproxy/ratelimit service and
// Redis: two gateways (each with its own shared data, as two Envoys have), one ratelimit service. The
// emulated host forwards each HTTP call the module makes to the service's /json port and hands the
// service's real answer back on the root context. The clock is simulated (the service's fixed windows
// are keyed by the module's window index, so simulated minutes count as they would in real time).
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { freePort } from "../scripts/lib/envoy_process.ts";
import { ROOT, wasmPath } from "../runtime/paths.ts";
import { startRatelimit, startRedis, type Service } from "../scripts/lib/services.ts";
import { solveInScript } from "./support/challenge.ts";
import { ProxyHost } from "./support/proxy_host.ts";
import { CHROME, HEADLESS, HTML } from "./support/browser.ts";

const SHIPPED = JSON.parse(readFileSync(join(ROOT, "config", "filters", "crawler_score.json"), "utf8"));
const CLUSTER = "graywall_ratelimit_http";

function page(path: string): [string, string][] {
  return [
    [":method", "GET"],
    [":scheme", "https"],
    [":path", path],
    ["user-agent", CHROME],
    ["accept", "text/html,application/xhtml+xml"],
    ["accept-language", "en-US,en;q=0.9"],
    ["accept-encoding", "gzip, br"],
    ["sec-ch-ua", '"Chromium";v="131"'],
    ["sec-fetch-mode", "navigate"],
    ["sec-fetch-dest", "document"],
  ];
}

describe("fleet counts: two gateways, one ratelimit service, one Redis", () => {
  let redis: Service;
  let ratelimit: Service;
  let httpPort: number;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "graywall-fleet-counts-"));
    const redisPort = await freePort();
    redis = await startRedis(redisPort);
    const [grpcPort, debugPort] = [await freePort(), await freePort()];
    httpPort = await freePort();
    ratelimit = await startRatelimit({ grpcPort, httpPort, debugPort, redisPort, dir, rateLimiterDoc: { rules: [] } });
  });
  after(async () => {
    await ratelimit?.stop();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A gateway with the shipped crawler document, fleet counts on when `fleet`, its clock at `nowMs`. */
  function gateway(nowMs: number, fleet = true): ProxyHost {
    const h = new ProxyHost(wasmPath("graywall"), "graywall");
    h.nowMs = nowMs;
    h.clusters.add(CLUSTER);
    // The shipped document names the fleet's cluster; the emulator's peer is the client.
    const { client_address: _, fleet: shipped, ...doc } = SHIPPED as Record<string, unknown>;
    assert.deepEqual(shipped, { cluster: CLUSTER });
    // As after a publish: an earlier version first, so the VM's timer stays with that version's root
    // context and every tick, call and answer of the version in force goes through it.
    assert.ok(h.configure(JSON.stringify({ crawler_score: doc })), h.logs.join("\n"));
    assert.ok(h.configure(JSON.stringify({ crawler_score: { ...doc, ...(fleet ? { fleet: shipped } : {}) } })), h.logs.join("\n"));
    assert.equal(h.pendingRoots.size, 1);
    return h;
  }

  /** Sends every call a gateway made to the real service and gives it the service's answer. */
  async function deliver(h: ProxyHost): Promise<void> {
    for (const call of [...h.httpCalls]) {
      assert.equal(call.cluster, CLUSTER);
      assert.deepEqual(
        call.headers.find(([k]) => k === ":path"),
        [":path", "/json"],
      );
      const r = await fetch(`http://127.0.0.1:${httpPort}/json`, { method: "POST", body: call.body });
      h.answer(call, r.status, await r.text());
    }
  }

  /**
   * Distinct pages at `perSecond` from one address (no cookie kept), each request to the next gateway in
   * turn; seconds until the first challenge, or undefined within `limitS`.
   */
  async function crawl(gateways: ProxyHost[], perSecond: number, limitS: number, peer: string, tag: string): Promise<number | undefined> {
    for (let i = 0; i < limitS * perSecond; i++) {
      for (const g of gateways) g.nowMs += 1000 / perSecond;
      const h = gateways[i % gateways.length];
      const ex = h.request({ headers: page(`/${tag}/article-${i}`), responseHeaders: HTML, peer });
      if (ex.reply) return i / perSecond;
      // Each gateway's tick every second, and the service's answers before the next request.
      if (i % perSecond === 0) for (const g of gateways) g.tick();
      for (const g of gateways) await deliver(g);
    }
    return undefined;
  }

  test("a slow crawl split over two gateways is challenged as soon as one gateway alone would challenge it; without fleet counts, only when each half is enough", async () => {
    // Each run in its own fixed windows of the service (a new run gets a new clock far from the last).
    const start = Math.floor(Date.now() / 600000) * 600000 + 600000 * 1000;
    const alone = await crawl([gateway(start)], 0.5, 900, "198.51.100.7:4000", "alone");
    assert.ok(alone !== undefined && alone < 600, `one gateway challenges a 0.5 pages/s crawl within its long window (${alone} s)`);
    const split = await crawl([gateway(start + 6e6), gateway(start + 6e6)], 0.5, 900, "198.51.100.8:4000", "split");
    assert.ok(split !== undefined, "the split crawl is challenged");
    assert.ok(split <= alone + 30, `split over two gateways: ${split} s; on one: ${alone} s`);
    const unshared = await crawl([gateway(start + 12e6, false), gateway(start + 12e6, false)], 0.5, 900, "198.51.100.9:4000", "unshared");
    assert.ok(unshared === undefined || unshared > alone + 120, `without fleet counts each gateway sees half (${unshared} s)`);
  });

  test("a solver crawling at 5 pages/s over two gateways gets one budget per solve, not one per gateway", async () => {
    /** Two gateways sharing the challenge secret (as graywall-control gives every gateway), fleet counts on or off. */
    const pair = (nowMs: number, fleet: boolean) =>
      [0, 1].map(() => {
        const h = new ProxyHost(wasmPath("graywall"), "graywall");
        h.nowMs = nowMs;
        h.clusters.add(CLUSTER);
        const { client_address: _, fleet: shipped, ...doc } = SHIPPED as Record<string, unknown>;
        const challenge = { secret: "a-secret-every-gateway-has", difficulty: 8, page_budget: 20 };
        assert.ok(h.configure(JSON.stringify({ crawler_score: { ...doc, challenge, ...(fleet ? { fleet: shipped } : {}) } })), h.logs.join("\n"));
        return h;
      });
    /** Pages served on one solve before the next challenge. */
    const servedOnOneSolve = async (gateways: ProxyHost[], tag: string) => {
      const headers = (path: string, cookie?: string): [string, string][] => [
        ...page(path).map(([k, v]): [string, string] => [k, k === "user-agent" ? HEADLESS : v]),
        ...(cookie ? [["cookie", cookie] as [string, string]] : []),
      ];
      const peer = "198.51.100.50:4000";
      const first = gateways[0].request({ headers: headers(`/${tag}/0`), responseHeaders: HTML, peer });
      assert.equal(first.reply?.status, 429, "a headless browser's first page view is challenged");
      const cookie = solveInScript(first.reply!.body);
      for (let i = 1; i < 200; i++) {
        for (const g of gateways) g.nowMs += 200;
        const ex = gateways[i % 2].request({ headers: headers(`/${tag}/${i}`, cookie), responseHeaders: HTML, peer });
        if (ex.reply) return i - 1;
        if (i % 5 === 0) for (const g of gateways) g.tick();
        for (const g of gateways) await deliver(g);
      }
      return 200;
    };
    const start = Math.floor(Date.now() / 600000) * 600000 + 600000 * 3000;
    const shared = await servedOnOneSolve(pair(start, true), "budget");
    const apart = await servedOnOneSolve(pair(start + 6e6, false), "apart");
    assert.ok(shared <= 20 + 6, `with fleet counts: ${shared} pages on a budget of 20`);
    assert.ok(apart >= 1.5 * shared, `without: a budget per gateway (${apart} pages; with fleet counts ${shared})`);
  });

  test("a busy reader on both gateways (60 pages in 10 minutes, the same few often) is never challenged", async () => {
    const start = Math.floor(Date.now() / 600000) * 600000 + 600000 * 2000;
    const gateways = [gateway(start), gateway(start)];
    for (let i = 0; i < 120; i++) {
      for (const g of gateways) g.nowMs += 10000;
      const path = i % 3 === 0 ? "/" : `/reader/article-${i % 40}`;
      const ex = gateways[i % 2].request({ headers: page(path), responseHeaders: HTML, peer: "198.51.100.30:4000" });
      assert.equal(ex.reply, undefined, `page ${i}`);
      for (const g of gateways) g.tick();
      for (const g of gateways) await deliver(g);
    }
    assert.ok((gateways[0].metric("graywall.crawler_score.fleet.sent") ?? 0n) > 0n, "counts went to the fleet");
  });

  test("a gateway without the cluster (the shipped document outside a fleet) turns fleet counts off at the first call, and traffic goes on; a failed call is counted, backed off from and changes nothing", async () => {
    const h = new ProxyHost(wasmPath("graywall"), "graywall"); // no clusters
    const { client_address: _, ...doc } = SHIPPED as Record<string, unknown>;
    assert.ok(h.configure(JSON.stringify({ crawler_score: doc })));
    for (let i = 0; i < 5; i++) {
      h.nowMs += 1000;
      assert.equal(h.request({ headers: page(`/a/${i}`), responseHeaders: HTML, peer: "198.51.100.40:1" }).reply, undefined);
      h.tick();
    }
    assert.equal(h.httpCalls.length, 0);
    assert.equal(h.metric("graywall.crawler_score.fleet.failed"), 1n, "refused once, then off");

    const g = gateway(Date.now());
    g.request({ headers: page("/b/1"), responseHeaders: HTML, peer: "198.51.100.41:1" });
    g.nowMs += 1000;
    g.tick();
    assert.equal(g.httpCalls.length, 1);
    const body = JSON.parse(g.httpCalls[0].body);
    assert.equal(body.domain, "graywall");
    assert.equal(body.descriptors[0].entries[0].value, "hour", "a 10-minute window is counted in the service's hourly counters");
    assert.equal(body.descriptors[0].hitsAddend, 1);
    g.answer(g.httpCalls[0], 0);
    g.request({ headers: page("/b/2"), responseHeaders: HTML, peer: "198.51.100.41:1" });
    g.nowMs += 1000;
    g.tick();
    assert.equal(g.httpCalls.length, 0, "after a failed call the next tick waits");
    g.nowMs += 1000;
    g.tick();
    assert.equal(g.httpCalls.length, 1, "then the counts go, none lost");
    assert.equal(JSON.parse(g.httpCalls[0].body).descriptors.length, 2, "the page's address and network");
    g.answer(g.httpCalls[0], 200, "not json");
    assert.equal(g.metric("graywall.crawler_score.fleet.failed"), 2n);
    assert.equal(g.request({ headers: page("/b/3"), responseHeaders: HTML, peer: "198.51.100.41:1" }).reply, undefined);
  });
});
