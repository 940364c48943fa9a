// crawler_score in real Envoy with two workers: scrapers blocked, humans never challenged, good bots pass.
import assert from "node:assert/strict";
import { describe } from "node:test";
import { chromium } from "playwright-core";
import { setupBrowser } from "../../scripts/setup-tools.ts";
import { withRig as rigWith, e2e, eventually, rawRequest as request, sleep, statsOnceAt, type Rig } from "./harness.ts";

const FILTER = "graywall.crawler_score";

const withRig = (cfg: unknown, fn: (rig: Rig) => Promise<void>) => rigWith(FILTER, cfg, fn, { concurrency: 2 });

const CHROME_HEADERS = {
  "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
  accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
  "accept-language": "en-US,en;q=0.9",
  "accept-encoding": "gzip, deflate, br",
  "sec-ch-ua": '"Chromium";v="131", "Not_A Brand";v="24"',
  "sec-ch-ua-mobile": "?0",
  "sec-fetch-mode": "navigate",
  "sec-fetch-site": "same-origin",
  "sec-fetch-dest": "document",
};

const SCRAPER_HEADERS = { "user-agent": "python-requests/2.31.0", accept: "*/*", "accept-encoding": "gzip, deflate", connection: "close" };

const config = {
  signals_header: "x-graywall-bot-signals",
  behaviour: { window_ms: 2000, rate_threshold: 12, enumeration_run: 4 },
  honeypot_paths: ["/.env", "/wp-admin"],
  good_bots: [{ name: "googlebot", user_agent_contains: "Googlebot", cidrs: ["127.0.0.0/8"] }],
};

describe("crawler_score", () => {
  e2e("a tool that asks for no HTML is scored (tagged); enumerating IDs, it is blocked within 4 requests, and stays blocked; on an API path it passes", () =>
    withRig(config, async (rig) => {
      const statuses: number[] = [];
      for (let id = 1000; id < 1008; id++) statuses.push((await request(rig.envoy.url(`/item/${id}`), { headers: SCRAPER_HEADERS })).status);
      // python-requests without accept-language scores 60: tagged from the start (it asks for no HTML, so the
      // tools policy, which is for HTML page views, leaves it to its score), blocked once it enumerates.
      assert.deepEqual(statuses.slice(0, 3), [200, 200, 200]);
      assert.deepEqual(statuses.slice(3), [403, 403, 403, 403, 403]);
      assert.equal((await request(rig.envoy.url("/api/items"), { headers: SCRAPER_HEADERS })).status, 200, "the API's policy");
      const last = await request(rig.envoy.url("/item/1008"), { headers: SCRAPER_HEADERS });
      assert.equal(last.headers.get("x-graywall-bot-signals"), null, "signals are never sent to the client");
      assert.equal(last.headers.get("x-graywall-bot-score"), null, "nor the score");
      const s = await rig.envoy.stats();
      // Each signal and action is counted.
      assert.equal(s["wasmcustom.graywall.crawler_score.signal.ua_tool"], 10);
      assert.ok(s["wasmcustom.graywall.crawler_score.signal.id_enumeration"] >= 5);
      assert.equal(s["wasmcustom.graywall.crawler_score.tagged"], 4);
      assert.ok(s["wasmcustom.graywall.crawler_score.blocked"] >= 5);
    }),
  );

  e2e("a browser with full headers at a human rate is never challenged", () =>
    withRig(config, async (rig) => {
      const pages = ["/", "/products", "/products/42", "/cart", "/products", "/products/43", "/", "/help", "/products/44", "/account", "/cart", "/checkout"];
      for (const page of pages) {
        const r = await request(rig.envoy.url(page), { headers: CHROME_HEADERS });
        assert.equal(r.status, 200, page);
        assert.equal(r.json?.headers["x-graywall-bot-score"], undefined, `no score header for ${page}`);
        await sleep(250);
      }
      await statsOnceAt(rig.envoy, "wasmcustom.graywall.crawler_score.passed", pages.length);
    }),
  );

  e2e("a declared good bot from its listed network passes; the same user agent elsewhere does not", async () => {
    await withRig(config, async (rig) => {
      const bot = { "user-agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", connection: "close" };
      for (let id = 1; id <= 10; id++) assert.equal((await request(rig.envoy.url(`/item/${id}`), { headers: bot })).status, 200);
      assert.equal((await rig.envoy.stats())["wasmcustom.graywall.crawler_score.good_bot"], 10);
    });
    await withRig({ ...config, good_bots: [{ name: "googlebot", user_agent_contains: "Googlebot", cidrs: ["66.249.64.0/19"] }] }, async (rig) => {
      const bot = { "user-agent": "Googlebot/2.1", connection: "close" };
      const r = await request(rig.envoy.url("/item/1"), { headers: bot });
      // Googlebot's user agent from outside Google's ranges: an impostor, blocked (unverified_bots: block).
      assert.equal(r.status, 403);
      assert.equal(r.headers.get("x-graywall-bot-signals"), null, "signals are never sent to the client");
    });
  });

  e2e("a cookie-less honeypot hit is refused, and its address is challenged for the TTL (it may be shared: never blocked)", () =>
    withRig(config, async (rig) => {
      assert.equal((await request(rig.envoy.url("/"), { headers: CHROME_HEADERS })).status, 200);
      assert.equal((await request(rig.envoy.url("/wp-admin/setup.php"), { headers: CHROME_HEADERS })).status, 403);
      const next = await request(rig.envoy.url("/"), { headers: CHROME_HEADERS });
      assert.equal(next.status, 429);
      assert.ok(next.body.includes("Checking your browser"), "the challenge page, which a person behind the same address solves");
    }),
  );

  e2e("a honeypot mark reaches every worker within a millisecond: no page view after it passes unchallenged, whichever worker takes it", () =>
    withRig(config, async (rig) => {
      const headers = { ...CHROME_HEADERS, connection: "close" };
      // New connections spread over both workers: each takes a fresh copy of the client's record.
      const before = await Promise.all(Array.from({ length: 10 }, () => request(rig.envoy.url("/"), { headers })));
      assert.ok(before.every((r) => r.status === 200));
      assert.equal((await request(rig.envoy.url("/.env"), { headers })).status, 403);
      const after = await Promise.all(Array.from({ length: 20 }, () => request(rig.envoy.url("/"), { headers })));
      assert.deepEqual(
        after.map((r) => r.status),
        Array(20).fill(429),
      );
      assert.equal((await rig.envoy.stats())["wasmcustom.graywall.crawler_score.honeypot_marks"], 1);
    }),
  );

  e2e("a burst over the rate threshold is tagged upstream; a client cannot send its own score", () =>
    withRig(config, async (rig) => {
      const headers = { ...CHROME_HEADERS, "x-graywall-bot-score": "0", connection: "close" };
      const rs = await Promise.all(Array.from({ length: 20 }, () => request(rig.envoy.url("/"), { headers })));
      assert.ok(rs.every((r) => r.status === 200));
      const scores = rs.map((r) => r.json?.headers["x-graywall-bot-score"]);
      assert.ok(scores.includes("30"), `some requests tagged with high_rate: ${scores}`);
      assert.ok(!scores.includes("0"), "the client's own score header never reaches the upstream");
    }),
  );

  e2e("an account key tracks a user across rotating IPs", () =>
    withRig({ ...config, xff_trusted_hops: 1, account: { header: "x-user-id" } }, async (rig) => {
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) {
        const headers = { ...CHROME_HEADERS, "x-user-id": "u-77", "x-forwarded-for": `198.51.100.${i + 1}`, connection: "close" };
        statuses.push((await request(rig.envoy.url(`/orders/${5000 + i}`), { headers })).status);
      }
      // Every request comes from a new IP; only the account record sees the enumeration (45): tagged.
      const r = await request(rig.envoy.url("/orders/5006"), {
        headers: { ...CHROME_HEADERS, "x-user-id": "u-77", "x-forwarded-for": "198.51.100.99" },
      });
      assert.equal(r.status, 200);
      assert.equal(r.json?.headers["x-graywall-bot-signals"], "id_enumeration");
      assert.ok(statuses.every((s) => s === 200));
    }),
  );

  e2e(
    "headless Chromium meets the challenge (no secret configured: this Envoy's own), solves it by itself and browses on through both workers; the same headers without a browser do not",
    () =>
      withRig(
        // HeadlessChrome scores 45 (ua_headless): challenged at 40.
        { thresholds: { tag: 30, challenge: 40, block: 95 }, challenge: { difficulty: 14 } },
        async (rig) => {
          const browser = await chromium.launch({ executablePath: setupBrowser(), args: ["--no-sandbox"] });
          try {
            const page = await browser.newPage();
            let sent: Record<string, string> = {};
            page.on("request", (r) => {
              if (r.isNavigationRequest())
                void r.allHeaders().then((h) => {
                  if (!h.cookie) sent = h;
                });
            });
            await page.goto(rig.envoy.url("/products/1"));
            await eventually(async () => (await page.content()).includes('"version":"stable"'), 20000, "the page after the challenge");
            const s = await rig.envoy.stats();
            assert.ok(s["wasmcustom.graywall.crawler_score.challenge_page"] >= 1, `challenge pages: ${s["wasmcustom.graywall.crawler_score.challenge_page"]}`);
            assert.ok(s["wasmcustom.graywall.crawler_score.cleared"] >= 1, `cleared: ${s["wasmcustom.graywall.crawler_score.cleared"]}`);
            assert.ok(sent["user-agent"]?.includes("HeadlessChrome"), sent["user-agent"]);
            // Its clearance holds on both workers: ten new connections with its cookies all get the page.
            const cookies = (await page.context().cookies()).map((c) => `${c.name}=${c.value}`).join("; ");
            assert.match(cookies, /graywall_clearance=/);
            for (let i = 0; i < 10; i++) {
              const r = await request(rig.envoy.url(`/products/${2 + i}`), { headers: { ...sent, cookie: cookies, connection: "close" } });
              assert.equal(r.status, 200, `page ${i} with the clearance`);
            }
            const workers = await rig.envoy.stats();
            assert.ok(workers["wasmcustom.graywall.crawler_score.cleared"] >= 11, `cleared: ${workers["wasmcustom.graywall.crawler_score.cleared"]}`);
            // The same headers from a client that runs no script: the page again, every time.
            for (let i = 0; i < 3; i++) {
              const r = await request(rig.envoy.url("/products/1"), { headers: { ...sent, connection: "close" } });
              assert.equal(r.status, 429);
              assert.equal(r.json, null, "never the upstream's page");
              assert.ok(r.body.includes("Checking your browser"), r.body.slice(0, 200));
            }
          } finally {
            await browser.close();
          }
        },
      ),
  );

  e2e("under attack, Chromium with JavaScript off gets through the no-JS fallback after the wait, and a feed reader still gets its feed", () =>
    withRig({ challenge: { no_js: { wait_s: 2 } }, under_attack: { until_ms: Date.now() + 10 * 60_000 } }, async (rig) => {
      const browser = await chromium.launch({ executablePath: setupBrowser(), args: ["--no-sandbox"] });
      try {
        const context = await browser.newContext({ javaScriptEnabled: false });
        const page = await context.newPage();
        const statuses: number[] = [];
        let sent: Record<string, string> = {};
        page.on("response", (r) => {
          if (r.request().isNavigationRequest()) statuses.push(r.status());
        });
        page.on("request", (r) => {
          if (r.isNavigationRequest() && !sent["user-agent"]) void r.allHeaders().then((h) => (sent = h));
        });
        const t0 = Date.now();
        await page.goto(rig.envoy.url("/articles/7?ref=home"));
        // The page navigates by itself (the refresh, then the redirect): read it once it has settled.
        const served = async () => {
          try {
            return (await page.content()).includes('"version":"stable"');
          } catch {
            return false;
          }
        };
        await eventually(served, 20000, "the page after the wait");
        assert.ok(Date.now() - t0 >= 2000, "not before the wait");
        assert.deepEqual(statuses, [429, 303, 200]);
        assert.match(page.url(), /\/articles\/7\?ref=home$/, "back where it started, without the token");
        const s = await rig.envoy.stats();
        assert.equal(s["wasmcustom.graywall.crawler_score.no_js_cleared"], 1);
        // Its clearance holds on the next page, on either worker.
        const cookies = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join("; ");
        assert.match(cookies, /graywall_clearance=\d+\.n\./);
        for (let i = 0; i < 4; i++) {
          const r = await request(rig.envoy.url(`/articles/${8 + i}`), { headers: { ...sent, cookie: cookies, connection: "close" } });
          assert.equal(r.status, 200, `page ${i} with the no-JS clearance`);
        }
      } finally {
        await browser.close();
      }
      // A feed reader with a browser-like user agent gets the feed itself, under attack too.
      const feed = await request(rig.envoy.url("/feed.xml"), {
        headers: { "user-agent": "Mozilla/5.0 (compatible; Feedly/1.0)", accept: "application/rss+xml, */*", connection: "close" },
      });
      assert.equal(feed.status, 200);
      // A client that follows nothing: the page, every time.
      const plain = await request(rig.envoy.url("/articles/7"), { headers: { ...CHROME_HEADERS, connection: "close" } });
      assert.equal(plain.status, 429);
    }),
  );

  e2e("under-attack mode challenges every page view without a clearance, not API calls, and ends by itself", () =>
    withRig({ under_attack: { until_ms: Date.now() + 4000 } }, async (rig) => {
      const headers = { ...CHROME_HEADERS, connection: "close" };
      const during = await Promise.all(Array.from({ length: 6 }, (_, i) => request(rig.envoy.url(`/story/${i}`), { headers })));
      assert.deepEqual(
        during.map((r) => r.status),
        Array(6).fill(429),
        "a person's page views too, on either worker",
      );
      assert.ok(during.every((r) => r.headers.get("x-robots-tag") === "noindex"));
      assert.equal((await request(rig.envoy.url("/api/items"), { headers })).status, 200, "the API's policy");
      await eventually(async () => (await request(rig.envoy.url("/story/9"), { headers })).status === 200, 10000, "the end of the attack");
      await eventually(async () => (await rig.envoy.stats())["wasmcustom.graywall.crawler_score.under_attack"] === 0, 5000, "the gauge back to 0");
    }),
  );

  // Scrapers and a person with a browser's full headers, at the shipped thresholds and default behaviour.
  const PACED = { honeypot_paths: ["/.env", "/wp-admin"] };

  /** Requests paths at `perSecond` until `done` says stop or `seconds` pass; returns [elapsed ms, status] pairs. */
  async function paced(rig: Rig, perSecond: number, seconds: number, path: (i: number) => string, done: (status: number) => boolean) {
    const out: [number, number][] = [];
    const t0 = Date.now();
    for (let i = 0; Date.now() - t0 < seconds * 1000; i++) {
      const due = t0 + (i * 1000) / perSecond;
      if (due > Date.now()) await sleep(due - Date.now());
      const r = await request(rig.envoy.url(path(i)), { headers: CHROME_HEADERS });
      out.push([Date.now() - t0, r.status]);
      if (done(r.status)) break;
    }
    return out;
  }

  e2e("tools and a client with no user agent get the tools policy on their first page view: the challenge, never the page", () =>
    withRig({ ...PACED, signals_header: "x-graywall-bot-signals" }, async (rig) => {
      // Each tool's own default headers, asking for an HTML page as a scraper of pages does.
      const tools: Record<string, Record<string, string>> = {
        curl: { "user-agent": "curl/8.5.0" },
        "python-requests": { "user-agent": "python-requests/2.31.0", "accept-encoding": "gzip, deflate" },
        Go: { "user-agent": "Go-http-client/1.1", "accept-encoding": "gzip" },
        Scrapy: { "user-agent": "Scrapy/2.11.2 (+https://scrapy.org)", "accept-language": "en", "accept-encoding": "gzip, deflate" },
        "no user agent": {},
      };
      let n = 0;
      for (const [name, headers] of Object.entries(tools)) {
        const r = await request(rig.envoy.url(`/articles/${++n}`), {
          headers: { ...headers, accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", connection: "close" },
        });
        // The policy is a least action: a client with no user agent also scores for block on its headers.
        if (name === "no user agent") assert.ok(r.status === 403 || r.status === 429, `${name}: ${r.status}`);
        else assert.equal(r.status, 429, `${name}: ${r.status}`);
        assert.equal(r.json, null, `${name} never gets the upstream's page`);
        if (r.status === 429) assert.match(r.headers.get("x-robots-tag") ?? "", /noindex/, name);
      }
      // The same clients asking for anything but HTML (an API call) are scored, not challenged for being programs.
      const api = await request(rig.envoy.url("/articles/1"), { headers: { "user-agent": "curl/8.5.0", accept: "*/*", connection: "close" } });
      assert.equal(api.status, 200);
      assert.match(api.json?.headers["x-graywall-bot-signals"] ?? "", /ua_tool/);
    }),
  );

  e2e("a sequential-ID scraper with a browser's headers at 5 pages/s is challenged within 10 s and then gets no page", () =>
    withRig(PACED, async (rig) => {
      let challengedAt = -1;
      const seen = await paced(
        rig,
        5,
        16,
        (i) => `/product/${1000 + i}`,
        () => false,
      );
      for (const [at, status] of seen) if (status !== 200 && challengedAt < 0) challengedAt = at;
      assert.ok(challengedAt >= 0 && challengedAt <= 10000, `challenged at ${challengedAt} ms`);
      const after = seen.filter(([at]) => at > challengedAt);
      assert.ok(after.length > 20);
      assert.deepEqual(
        after.filter(([, status]) => status === 200),
        [],
        "no page once challenged",
      );
    }),
  );

  e2e("a random-ID scraper with a browser's headers at 2.5 pages/s is challenged within 60 s", () =>
    withRig(PACED, async (rig) => {
      const seen = await paced(
        rig,
        2.5,
        60,
        (i) => `/product/${(i * 7919) % 100000}`,
        (status) => status !== 200,
      );
      const [at, status] = seen[seen.length - 1];
      assert.equal(status, 429, `last status ${status} after ${seen.length} pages`);
      assert.ok(at <= 60000, `challenged at ${at} ms`);
    }),
  );

  e2e("a person (pages with 40 images, back and forth between two products, a cart) is never challenged", () =>
    withRig(PACED, async (rig) => {
      const pages = ["/", "/products/41", "/products/42", "/products/41", "/products/42", "/products/41", "/cart", "/checkout"];
      const image = { ...CHROME_HEADERS, accept: "image/avif,image/webp,*/*", "sec-fetch-dest": "image", "sec-fetch-mode": "no-cors" };
      for (const page of pages) {
        const r = await request(rig.envoy.url(page), { headers: CHROME_HEADERS });
        assert.equal(r.status, 200, page);
        assert.equal(r.json?.headers["x-graywall-bot-score"], undefined, `not tagged: ${page}`);
        const assets = await Promise.all(Array.from({ length: 40 }, (_, i) => request(rig.envoy.url(`/img/${page.length}-${i}.webp`), { headers: image })));
        assert.deepEqual([...new Set(assets.map((a) => a.status))], [200], page);
        await sleep(1500);
      }
      const s = await rig.envoy.stats();
      assert.equal(s["wasmcustom.graywall.crawler_score.challenged"] ?? 0, 0);
    }),
  );

  e2e(
    "20 browsers with their own client ids behind one address are never challenged; a honeypot blocks only the one that hit it; a cookie-less scraper there is challenged",
    () =>
      // Client ids are on by default, signed with this Envoy's own secret.
      withRig(PACED, async (rig) => {
        const ids: string[] = [];
        for (let i = 0; i < 20; i++) {
          const r = await request(rig.envoy.url("/"), { headers: CHROME_HEADERS });
          const cookie = r.headers.get("set-cookie")?.split(";")[0] ?? "";
          assert.ok(cookie.startsWith("graywall_id="), cookie);
          ids.push(cookie);
        }
        // 80 page views from one address in a few seconds; each browser's own record sees four. A new id's
        // first two count on the address too (so ids are not free to reset): such a burst may be tagged for
        // the upstream, never challenged; from the third on, a browser is judged on its own record alone.
        for (let round = 0; round < 4; round++) {
          const replies = await Promise.all(
            ids.map((cookie, i) => request(rig.envoy.url(`/product/${100 * i + round}`), { headers: { ...CHROME_HEADERS, cookie } })),
          );
          for (const r of replies) {
            assert.equal(r.status, 200);
            if (round >= 2) assert.equal(r.json?.headers["x-graywall-bot-score"], undefined, "not even tagged");
          }
        }
        assert.equal((await request(rig.envoy.url("/wp-admin/"), { headers: { ...CHROME_HEADERS, cookie: ids[0] } })).status, 403);
        assert.equal((await request(rig.envoy.url("/product/1"), { headers: { ...CHROME_HEADERS, cookie: ids[0] } })).status, 403, "the one that hit it");
        assert.equal((await request(rig.envoy.url("/product/1"), { headers: { ...CHROME_HEADERS, cookie: ids[1] } })).status, 200, "another browser");
        // The address itself (no cookie) is judged on its own requests: a sequential scraper. Its record also
        // holds the 20 cookie-less first visits to "/", which dilute its path spread for a window.
        const seen = await paced(
          rig,
          5,
          25,
          (i) => `/item/${5000 + i}`,
          (status) => status !== 200,
        );
        const [at, status] = seen[seen.length - 1];
        assert.equal(status, 429, `after ${seen.length} pages`);
        assert.ok(at <= 25000, `challenged at ${at} ms`);
      }),
  );
});
