// Progressive delivery in real Envoy: releases ramp the canary through steps, judged from Envoy's own
// cluster counters and latency histograms, under steady traffic of 200 sticky users. Step times are
// shortened by the release's own settings (1 s intervals).
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { after, before, describe } from "node:test";
import { tmpdir } from "node:os";
import { chromium } from "playwright-core";
import { buildServer } from "../../control/server.ts";
import { setupBrowser } from "../../scripts/setup-tools.ts";
import type { Release } from "../../control/releases.ts";
import { e2e, eventually, request, startControlRig, stopControlRig, type ControlRig } from "./harness.ts";

const TOKEN = "release-token";
const auth = { authorization: `Bearer ${TOKEN}` };

/** Requests from 200 users (cookie uid), a few loops at once, counting where they land. */
class Traffic {
  private stop = false;
  private loops: Promise<void>[] = [];
  served = { stable: 0, canary: 0, failed: 0 };
  constructor(private url: string) {}
  start(loops = 3) {
    this.stop = false;
    for (let l = 0; l < loops; l++) {
      this.loops.push(
        (async () => {
          for (let i = l; !this.stop; i += loops) {
            const r = await request(this.url, { headers: { cookie: `uid=u${i % 200}` } });
            if (r.status >= 500) this.served.failed++;
            else if (r.json?.version === "canary") this.served.canary++;
            else this.served.stable++;
            await new Promise((res) => setTimeout(res, 5));
          }
        })(),
      );
    }
  }
  async halt() {
    this.stop = true;
    await Promise.all(this.loops);
    this.loops = [];
  }
}

describe("releases", () => {
  let rig: ControlRig;
  let traffic: Traffic;
  let hook: Server;
  let hookUrl: string;
  const hookCalls: unknown[] = [];

  const api = async (method: string, url: string, payload?: unknown) => {
    const r = await rig.app.inject({ method: method as "GET", url, headers: auth, payload: payload as object });
    return { status: r.statusCode, body: r.json() };
  };
  const release = async (id: string): Promise<Release> => (await api("GET", `/api/releases/${id}`)).body;
  /** Outlier detection may still hold an earlier test's failing canary out (10 s): a release would fail on it. */
  const canaryBack = () =>
    eventually(
      async () => ((await rig.envoy.stats())["cluster.canary.outlier_detection.ejections_active"] ?? 0) === 0,
      30000,
      "the canary host back from ejection",
    );
  const start = async (extra: Record<string, unknown> = {}): Promise<Release> => {
    await canaryBack();
    // A test that failed midway leaves no release running for the next one.
    for (const old of (await api("GET", "/api/releases")).body as Release[]) {
      if (old.status === "running" || old.status === "paused") await api("POST", `/api/releases/${old.id}/abort`, {});
    }
    const r = await api("POST", "/api/releases", {
      target: "canary",
      steps: [20, 50, 100],
      hold_seconds: 2,
      interval_seconds: 1,
      hash_on: "cookie",
      name: "uid",
      // A loaded test machine's latency spikes stay under 100 ms; the slow canary adds 150.
      limits: { min_requests: 5, p99_min_difference_ms: 100 },
      webhook: hookUrl,
      ...extra,
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body;
  };
  /** Where the 200 users land now, asked once each. */
  const landing = async () => {
    const out = { stable: 0, canary: 0 };
    for (let i = 0; i < 200; i++) {
      const v = (await request(rig.envoy.url("/"), { headers: { cookie: `uid=u${i}` } })).json?.version as "stable" | "canary";
      out[v]++;
    }
    return out;
  };

  before(async () => {
    rig = await startControlRig(TOKEN);
    hook = createServer((req, res) => {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        hookCalls.push(JSON.parse(body));
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => hook.listen(0, "127.0.0.1", () => r()));
    hookUrl = `http://127.0.0.1:${(hook.address() as { port: number }).port}/alerts`;
    traffic = new Traffic(rig.envoy.url("/"));
  });

  after(async () => {
    await traffic?.halt();
    hook?.close();
    await stopControlRig(rig);
  });

  e2e("a healthy canary walks every step to 100% and ends promoted; every step is a version in the history", async () => {
    traffic.start();
    const r = await start();
    await eventually(async () => (await release(r.id)).status === "promoted", 40000, "the release promoted");
    await traffic.halt();
    const done = await release(r.id);
    assert.deepEqual(
      done.events.filter((e) => e.version).map((e) => [e.action, e.share]),
      [
        ["started", 20],
        ["advanced", 50],
        ["promoted", 100],
      ],
    );
    const history: { author: string; version: number }[] = (await api("GET", "/api/filters/gray_router/versions")).body;
    const steps = history.filter((v) => v.author === `release ${r.id}`).map((v) => v.version);
    assert.deepEqual(
      steps.sort(),
      done.events
        .filter((e) => e.version)
        .map((e) => e.version)
        .sort(),
    );
    assert.ok(done.samples.some((s) => s.verdict === "pass" && s.canary.requests >= 5 && s.stable.requests >= 5));
    await eventually(async () => (await landing()).stable === 0, 5000, "every user with the cookie on canary");
    assert.equal(traffic.served.failed, 0);
  });

  e2e("a canary failing 30% of requests at the second step is rolled back by itself within two intervals; the webhook gets the numbers", async () => {
    traffic.start();
    const r = await start({ hold_seconds: 3 });
    await eventually(async () => (await release(r.id)).share === 50, 30000, "the second step");
    rig.canary.setFaults({ failRate: 0.3, status: 503 });
    const t0 = Date.now();
    try {
      await eventually(async () => (await release(r.id)).status === "rolled_back", 15000, "the rollback");
    } catch (e) {
      console.log("SAMPLES", JSON.stringify((await release(r.id)).samples.slice(-6)), JSON.stringify((await release(r.id)).events));
      throw e;
    } finally {
      rig.canary.setFaults({});
    }
    const took = Date.now() - t0;
    await traffic.halt();
    const done = await release(r.id);
    const rolled = done.events.find((e) => e.action === "rolled back")!;
    // Either check catches it: the error rate, or Envoy's outlier detection ejecting the canary host
    // first (5 consecutive 5xx, frequent at 30% and ~170 requests a second).
    assert.match(rolled.reason, /error rate .* on canary|outlier detection ejected canary hosts/);
    assert.ok(rolled.numbers!.canary.errors > 0 || rolled.numbers!.canary.ejections > 0, JSON.stringify(rolled.numbers));
    // Two 1-second intervals, with a second for timer slack and this test's own polling.
    assert.ok(took <= 2 * 1000 + 1000, `rolled back ${took} ms after the fault`);
    console.log(`rolled back ${took} ms after the fault began`);
    await eventually(async () => (await landing()).canary === 0, 5000, "every user back on stable");
    await eventually(async () => hookCalls.length > 0, 5000, "the webhook call");
    const call = hookCalls.at(-1) as { event: string; release: string; share_before: number; numbers: { canary: { errors: number; ejections: number } } };
    assert.equal(call.event, "release.rolled_back");
    assert.equal(call.release, r.id);
    assert.equal(call.share_before, 50);
    assert.deepEqual(call.numbers, rolled.numbers);
    // The webhook's URL (a chat webhook's secret) is in no answer: the release shows it as set.
    await eventually(async () => (await release(r.id)).events.some((e) => e.action === "webhook"), 5000, "the webhook's event");
    for (const path of [`/api/releases/${r.id}`, "/api/releases"]) {
      const body = await (await fetch(`${rig.controlUrl}${path}`)).text();
      assert.ok(!body.includes(hookUrl), `${path} does not show the webhook's URL`);
    }
    assert.equal((await release(r.id)).spec.webhook, "(set)");
  });

  e2e("a canary Envoy's outlier detection ejects fails the release, though its users are then served by stable", async () => {
    traffic.start();
    const r = await start({ hold_seconds: 30 });
    rig.canary.setFaults({ failRate: 1, status: 503 });
    try {
      await eventually(async () => (await release(r.id)).status === "rolled_back", 15000, "the rollback");
      const rolled = (await release(r.id)).events.find((e) => e.action === "rolled back")!;
      assert.match(rolled.reason, /outlier detection ejected canary hosts/);
    } finally {
      rig.canary.setFaults({});
      await traffic.halt();
    }
  });

  e2e("a slow canary is caught by the latency limit", async () => {
    traffic.start();
    rig.canary.setFaults({ delayMs: 150 });
    try {
      const r = await start({ hold_seconds: 30 });
      await eventually(async () => (await release(r.id)).status === "rolled_back", 20000, "the rollback");
      const rolled = (await release(r.id)).events.find((e) => e.action === "rolled back")!;
      assert.match(rolled.reason, /p99 \d+(\.\d+)? ms on canary/);
      assert.ok(rolled.numbers!.canary.p99_ms! >= 100, JSON.stringify(rolled.numbers));
    } finally {
      rig.canary.setFaults({});
      await traffic.halt();
    }
  });

  e2e("with too little traffic the release waits: no step forward, no rollback", async () => {
    const r = await start();
    await eventually(async () => (await release(r.id)).samples.length >= 3, 10000, "three analysis intervals");
    const waiting = await release(r.id);
    assert.equal(waiting.status, "running");
    assert.equal(waiting.share, 20);
    assert.ok(waiting.samples.every((s) => s.verdict === "waiting"));
    assert.match(waiting.samples[0].reason, /^(too little traffic to judge|no requests from users in the last interval)/);
    // One release per target at a time.
    const second = await api("POST", "/api/releases", { target: "canary", hash_on: "cookie", name: "uid" });
    assert.equal(second.status, 409);
    await api("POST", `/api/releases/${r.id}/abort`);
  });

  e2e("pause, resume, promote and abort through the API, each recorded with who and when; a hand edit pauses a release", async () => {
    const r = await start({ hold_seconds: 600 });
    const act = async (action: string, who: string) => (await api("POST", `/api/releases/${r.id}/${action}`, { author: who })).body as Release;
    assert.equal((await act("pause", "ann")).status, "paused");
    assert.equal((await api("POST", `/api/releases/${r.id}/pause`, {})).status, 409);
    assert.equal((await act("resume", "ann")).status, "running");
    const promoted = await act("promote", "bo");
    assert.equal(promoted.status, "promoted");
    assert.equal(promoted.share, 100);
    assert.deepEqual(
      promoted.events.slice(-3).map((e) => [e.action, e.who]),
      [
        ["paused", "ann"],
        ["resumed", "ann"],
        ["promoted", "bo"],
      ],
    );
    assert.ok(promoted.events.every((e) => !Number.isNaN(Date.parse(e.time))));
    await eventually(async () => (await landing()).stable === 0, 5000, "every user on canary");
    // Everyone means everyone: a request with no uid cookie at all goes to canary too.
    assert.equal((await request(rig.envoy.url("/"))).json?.version, "canary", "a promotion covers requests without the share's key");

    const r2 = await start({ hold_seconds: 600 });
    // Someone edits the release's rule by hand: the release pauses and says why.
    const gray = (await api("GET", "/api/filters/gray_router")).body;
    const doc = structuredClone(gray.doc);
    doc.rules[0].match.percentage.value = 70;
    const put = await rig.app.inject({
      method: "PUT",
      url: "/api/filters/gray_router",
      headers: { ...auth, "if-match": `"${gray.version}"` },
      payload: { doc, author: "carol" },
    });
    assert.equal(put.statusCode, 200, put.body);
    const paused = await release(r2.id);
    assert.equal(paused.status, "paused");
    assert.match(paused.events.at(-1)!.reason, /edited by hand \(carol/);
    const aborted = (await api("POST", `/api/releases/${r2.id}/abort`, { author: "dave" })).body as Release;
    assert.equal(aborted.status, "aborted");
    await eventually(async () => (await landing()).canary === 0, 5000, "every user back on stable");
  });

  e2e("a restarted control service resumes a release where it was", async () => {
    traffic.start();
    const r = await start({ steps: [20, 40, 60, 100], hold_seconds: 2 });
    await eventually(async () => (await release(r.id)).share === 40, 30000, "the second step");
    const dataDir = join(rig.controlDir, "data");
    await rig.app.close();
    rig.app = buildServer({ dataDir, ecdsDir: join(rig.controlDir, "ecds"), token: TOKEN, envoyAdmin: `http://127.0.0.1:${rig.envoy.adminPort}` });
    await rig.app.listen({ host: "127.0.0.1", port: Number(new URL(rig.controlUrl).port) });
    const resumed = await release(r.id);
    assert.equal(resumed.status, "running");
    assert.ok(resumed.share >= 40);
    await eventually(async () => (await release(r.id)).status === "promoted", 40000, "the resumed release promoted");
    await traffic.halt();
  });

  e2e("the Releases tab: the rolled-back release with its reason and charts; start, pause, resume and abort by clicks, each confirmed", async () => {
    const browser = await chromium.launch({ executablePath: setupBrowser(), args: ["--no-sandbox"] });
    const dialogs: string[] = [];
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
      page.on("dialog", (d) => {
        dialogs.push(d.message());
        void d.accept();
      });
      await page.goto(`${rig.controlUrl}/`);
      await page.fill("#token", TOKEN);
      await page.click("#login button");
      await page.waitForFunction(() => document.querySelector("#message")?.textContent?.includes("Signed in"));
      await page.click('nav button[data-tab="releases"]');
      // The release that was rolled back, as a person sees it.
      const rolledBack = ((await api("GET", "/api/releases")).body as Release[]).find((r) =>
        r.events.some((e) => e.action === "rolled back" && / at 50%: /.test(e.reason)),
      )!;
      await page.click(`#releases tr[data-id="${rolledBack.id}"]`);
      await page.waitForFunction((id) => document.querySelector("#rel-title")?.textContent?.startsWith(`Release ${id}`), rolledBack.id);
      assert.match(
        (await page.locator("#rel-status").textContent()) ?? "",
        /^rolled back at 0% of users\. 2 failed checks in a row at 50%: (error rate .* on canary|Envoy's outlier detection ejected canary hosts)/,
      );
      assert.ok((await page.locator("#chart-errors polyline").count()) >= 1, "the error-rate chart is drawn");
      assert.match((await page.locator("#rel-events tbody").textContent()) ?? "", /rolled back/);
      await page.screenshot({ path: join(tmpdir(), "graywall-ui-releases.png"), fullPage: true });

      // Start from the form, then pause, resume and abort with the buttons.
      await page.selectOption("#rel-pace", "fast");
      await page.click("#release-form button[type=submit]");
      await page.waitForFunction(() => document.querySelector("#rel-status")?.textContent?.startsWith("running at 10%"));
      // A release without traffic says so on its page, in words.
      await page.waitForFunction(
        () => /Last check: (no requests from users|too little traffic)/.test(document.querySelector("#rel-status")?.textContent ?? ""),
        null,
        {
          timeout: 30000,
        },
      );
      assert.match(dialogs.at(-1)!, /^Start releasing canary\? 10% of users \(by cookie uid\) go to canary now/);
      const id = (((await page.locator("#rel-title").textContent()) ?? "").match(/Release (r\d+)/) ?? [])[1];
      for (const [act, status] of [
        ["pause", "paused"],
        ["resume", "running"],
        ["abort", "aborted"],
      ]) {
        await page.click(`#release-current [data-act="${act}"]`);
        await page.waitForFunction((s) => document.querySelector("#rel-status")?.className === s, status);
      }
      assert.deepEqual(
        dialogs.slice(-3).map((d) => d.split("?")[0]),
        [`Pause release ${id}`, `Resume release ${id}`, `Abort release ${id}`],
      );
      // And a second one promoted by hand.
      await page.click("#release-form button[type=submit]");
      await page.waitForFunction(
        (old) =>
          !document.querySelector("#rel-title")?.textContent?.startsWith(`Release ${old}:`) && document.querySelector("#rel-status")?.className === "running",
        id,
      );
      await page.click('#release-current [data-act="promote"]');
      await page.waitForFunction(() => document.querySelector("#rel-status")?.className === "promoted");
      assert.match(dialogs.at(-1)!, /^Promote release r\d+\? Every user with the cookie goes to the new version now\.$/);
      const done = await release(id);
      assert.deepEqual(
        done.events.map((e) => [e.action, e.who]),
        [
          ["started", "web UI"],
          ["paused", "web UI"],
          ["resumed", "web UI"],
          ["aborted", "web UI"],
        ],
      );
    } finally {
      await browser.close();
    }
  });
});
