// crawler_score against scrapers that adapt, on the host emulator with a simulated clock and the shipped
// crawler document: pages disguised as subresources. Each scenario also runs the person it must not
// touch.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { ROOT, wasmPath } from "../runtime/paths.ts";
import { ProxyHost, type Exchange } from "./support/proxy_host.ts";
import { CHROME, HTML, PNG } from "./support/browser.ts";

const SHIPPED = JSON.parse(readFileSync(join(ROOT, "config", "filters", "crawler_score.json"), "utf8"));

function gateway(crawler: object = SHIPPED): ProxyHost {
  const h = new ProxyHost(wasmPath("graywall"), "graywall");
  // The shipped document reads the peer from Envoy's X-Forwarded-For entry; here the emulator's peer is the client.
  const { client_address: _, ...doc } = crawler as Record<string, unknown>;
  assert.ok(h.configure(JSON.stringify({ crawler_score: doc })), h.logs.join("\n"));
  return h;
}

/** A browser's request headers over HTTPS for `path`, as a subresource of kind `dest` or a navigation. */
function browser(path: string, dest: "document" | "image"): [string, string][] {
  return [
    [":method", "GET"],
    [":scheme", "https"],
    [":path", path],
    ["user-agent", CHROME],
    ["accept", dest === "image" ? "image/avif,image/webp,*/*" : "text/html,application/xhtml+xml"],
    ["accept-language", "en-US,en;q=0.9"],
    ["accept-encoding", "gzip, br"],
    ["sec-ch-ua", '"Chromium";v="131"'],
    ["sec-fetch-mode", dest === "image" ? "no-cors" : "navigate"],
    ["sec-fetch-dest", dest],
  ];
}

/** Requests at `perSecond` on the emulator's clock until one is answered locally; the number served before. */
function crawl(
  h: ProxyHost,
  n: number,
  perSecond: number,
  next: (i: number) => { headers: [string, string][]; responseHeaders?: [string, string][]; peer?: string },
) {
  let served = 0;
  let first: Exchange | undefined;
  for (let i = 0; i < n; i++) {
    h.nowMs += 1000 / perSecond;
    if (i % Math.max(1, Math.round(perSecond / 2)) === 0) h.tick();
    const ex = h.request(next(i));
    if (ex.reply) {
      first ??= ex;
      continue;
    }
    served++;
  }
  return { served, first };
}

describe("pages disguised as subresources", () => {
  test("a scraper sending Sec-Fetch-Dest: image for pages the upstream answers with HTML is challenged like one that does not disguise them", () => {
    const disguised = crawl(gateway(), 600, 10, (i) => ({ headers: browser(`/article/${i * 7919}`, "image"), responseHeaders: HTML }));
    const plain = crawl(gateway(), 600, 10, (i) => ({ headers: browser(`/article/${i * 7919}`, "document"), responseHeaders: HTML }));
    assert.ok(plain.first, "the undisguised crawl is stopped");
    assert.ok(disguised.first, `the disguised crawl is stopped too (served ${disguised.served} of 600)`);
    assert.ok(disguised.served <= plain.served + 30, `disguised ${disguised.served} vs plain ${plain.served}`);
  });

  test("real images cost one header read each and count as nothing; a page view costs none", () => {
    const h = gateway();
    const img = h.request({ headers: browser("/cdn/photo", "image"), responseHeaders: PNG });
    assert.equal(img.calls.proxy_get_header_map_value, 1);
    for (let i = 0; i < 400; i++) {
      h.nowMs += 25;
      assert.equal(h.request({ headers: browser(`/cdn/photo-${i}`, "image"), responseHeaders: PNG }).reply, undefined);
    }
    const page = h.request({ headers: browser("/article/1", "document"), responseHeaders: HTML });
    assert.equal(page.reply, undefined);
    assert.equal(page.calls.proxy_get_header_map_value ?? 0, 0, "a page view reads no response header");
    assert.equal(h.metric("graywall.crawler_score.disguised_page"), 0n);
  });
});

/** The cookie a response set for the client id, or undefined. */
const idCookie = (ex: Exchange) => ex.responseHeaders?.find(([k, v]) => k === "set-cookie" && v.startsWith("graywall_id="))?.[1].split(";")[0];

/** A client that keeps its cookies (or not), crawling `paths` at `perSecond` from `peer` until answered locally. */
function client(h: ProxyHost, peer: string, keepCookie: boolean) {
  let cookie: string | undefined;
  return (path: string) => {
    const headers = browser(path, "document");
    if (keepCookie && cookie) headers.push(["cookie", cookie]);
    const ex = h.request({ headers, responseHeaders: HTML, peer });
    cookie = (keepCookie && cookie) || idCookie(ex);
    return ex;
  };
}

/** Seconds of simulated time until `step` is answered locally (or undefined within `limitS`). */
function secondsUntilStopped(h: ProxyHost, perSecond: number, limitS: number, step: (i: number) => Exchange): number | undefined {
  for (let i = 0; i < limitS * perSecond; i++) {
    h.nowMs += 1000 / perSecond;
    if (i % Math.max(1, perSecond) === 0) h.tick();
    if (step(i).reply) return i / perSecond;
  }
  return undefined;
}

describe("slow crawls (the long window)", () => {
  const PEER = "198.51.100.20:5000";

  test("distinct pages at 0.5 pages/s from one address are challenged within the long window, cookie kept or not, padded or not", () => {
    for (const keep of [true, false]) {
      const h = gateway();
      const steady = client(h, PEER, keep);
      const t = secondsUntilStopped(h, 0.5, 700, (i) => steady(`/article/${1000 + i * 37}`));
      assert.ok(t !== undefined && t <= 600, `keep cookie ${keep}: stopped at ${t} s`);
      // Every other request to the same few pages: the distinct pages still add up.
      const hp = gateway();
      const padded = client(hp, PEER, keep);
      const tp = secondsUntilStopped(hp, 0.5, 1300, (i) => padded(i % 2 ? `/article/${1000 + i * 37}` : `/${i % 3}`));
      assert.ok(tp !== undefined && tp <= 1200, `padded, keep cookie ${keep}: stopped at ${tp} s`);
    }
  });

  test("a busy reader (60 pages in 10 minutes, each with its images) is never stopped", () => {
    const h = gateway();
    let cookie: string | undefined;
    for (let i = 0; i < 60; i++) {
      h.nowMs += 10_000;
      h.tick();
      const headers = browser(`/article/${i * 13}`, "document");
      if (cookie) headers.push(["cookie", cookie]);
      const ex = h.request({ headers, responseHeaders: HTML, peer: PEER });
      assert.equal(ex.reply, undefined, `page ${i}`);
      cookie ??= idCookie(ex);
      for (let k = 0; k < 10; k++)
        assert.equal(
          h.request({ headers: [...browser(`/img/${i}-${k}.webp`, "image"), ["cookie", cookie!]], responseHeaders: PNG, peer: PEER }).reply,
          undefined,
        );
    }
  });
});

describe("identity a scraper cannot reset for free", () => {
  const PEER = "198.51.100.30:5000";

  test("a scraper that takes a new id every two pages is stopped as fast as one that keeps its id", () => {
    const hk = gateway();
    const keeper = client(hk, PEER, true);
    const tKeep = secondsUntilStopped(hk, 2, 700, (i) => keeper(`/item/${i * 7919}`));
    const h = gateway();
    let cookie: string | undefined;
    const tRotate = secondsUntilStopped(h, 2, 700, (i) => {
      const headers = browser(`/item/${i * 7919}`, "document");
      if (cookie && i % 3 !== 0) headers.push(["cookie", cookie]);
      const ex = h.request({ headers, responseHeaders: HTML, peer: PEER });
      if (i % 3 === 0) cookie = idCookie(ex);
      return ex;
    });
    assert.ok(tKeep !== undefined, "the keeper is stopped");
    assert.ok(tRotate !== undefined && tRotate <= tKeep! + 10, `rotating ids: ${tRotate} s; keeping one: ${tKeep} s`);
  });

  test("50 readers behind one address, first visits included, keep their ids: none is blocked, none is challenged", () => {
    const h = gateway();
    const NAT = "203.0.113.9:40000";
    const readers = Array.from({ length: 50 }, (_, r) => ({ cookie: undefined as string | undefined, next: r * 3_000, pages: 0 }));
    let local = 0;
    for (let t = 0; t < 15 * 60_000; t += 500) {
      h.nowMs += 500;
      if (t % 1000 === 0) h.tick();
      for (const [r, reader] of readers.entries()) {
        if (reader.pages >= 8 || t < reader.next) continue;
        const headers = browser(`/news/${r * 100 + reader.pages}`, "document");
        if (reader.cookie) headers.push(["cookie", reader.cookie]);
        const ex = h.request({ headers, responseHeaders: HTML, peer: NAT });
        if (ex.reply) local++;
        reader.cookie ??= idCookie(ex);
        reader.pages++;
        // A person reads for 20 to 80 seconds.
        reader.next = t + 20_000 + ((r * 7919 + reader.pages * 104729) % 60_000);
      }
    }
    assert.equal(local, 0);
    assert.ok(readers.every((r) => r.pages === 8));
  });
});

describe("crawls spread over a network", () => {
  test("distinct pages over 20 addresses of one /24 at 10 pages/s in total are challenged within 60 s; people on another /24 are not", () => {
    for (const keep of [false, true]) {
      const h = gateway();
      const clients = Array.from({ length: 20 }, (_, a) => client(h, `198.51.100.${10 + a}:4000`, keep));
      const t = secondsUntilStopped(h, 10, 120, (i) => clients[i % 20](`/doc/${i * 7919}`));
      assert.ok(t !== undefined && t <= 60, `keep cookie ${keep}: stopped at ${t} s`);
      // Meanwhile a reader elsewhere is untouched.
      const reader = client(h, "203.0.113.77:1", true);
      for (let i = 0; i < 5; i++) {
        h.nowMs += 15_000;
        assert.equal(reader(`/doc/${i}`).reply, undefined);
      }
    }
  });

  test("the network's behaviour challenges, never blocks, a browser with a history of its own there", () => {
    const h = gateway();
    const person = client(h, "198.51.100.200:1", true);
    for (let i = 0; i < 4; i++) {
      h.nowMs += 20_000;
      assert.equal(person(`/mine/${i}`).reply, undefined);
    }
    const bots = Array.from({ length: 20 }, (_, a) => client(h, `198.51.100.${10 + a}:4000`, false));
    secondsUntilStopped(h, 10, 60, (i) => bots[i % 20](`/doc/${i * 7919}`));
    const seen = person("/mine/next");
    assert.equal(seen.reply?.status, 429, "challenged, not blocked");
  });
});

describe("under attack", () => {
  const FEED_READER = "Mozilla/5.0 (compatible; Feedly/1.0; +http://www.feedly.com/fetcher.html)";

  test("switched on: every page view without a clearance is challenged, with noindex; feeds and API calls pass; it ends by itself", () => {
    const h = new ProxyHost(wasmPath("graywall"), "graywall");
    const until = h.nowMs + 60_000;
    assert.ok(h.configure(JSON.stringify({ crawler_score: { under_attack: { until_ms: until } } })), h.logs.join("\n"));
    const page = h.request({ headers: browser("/article/1", "document"), responseHeaders: HTML });
    assert.equal(page.reply?.status, 429);
    assert.ok(page.reply?.headers.some(([k, v]) => k === "x-robots-tag" && v === "noindex"));
    const feed = h.request({
      headers: [
        [":method", "GET"],
        [":path", "/feed.xml"],
        ["user-agent", FEED_READER],
        ["accept", "application/rss+xml, text/html"],
      ],
    });
    assert.equal(feed.reply, undefined, "the feed reader gets its feed");
    const api = h.request({ headers: [...browser("/api/items", "document")] });
    assert.equal(api.reply, undefined, "API paths are exempt");
    h.nowMs = until + 1;
    assert.equal(h.request({ headers: browser("/article/2", "document"), responseHeaders: HTML }).reply, undefined, "over by itself");
  });

  test("by itself: a surge to many times the usual rate after a long window of history switches it on for duration_ms", () => {
    const h = new ProxyHost(wasmPath("graywall"), "graywall");
    const cfg = { behaviour: { long_window_ms: 60_000 }, under_attack: { multiple: 5, min_rps: 20, duration_ms: 30_000 } };
    assert.ok(h.configure(JSON.stringify({ crawler_score: cfg })), h.logs.join("\n"));
    const person = client(h, "203.0.113.5:1", true);
    // Ten requests a second for two minutes: the usual rate.
    for (let i = 0; i < 1200; i++) {
      h.nowMs += 100;
      if (i % 5 === 0) h.tick();
      h.request({ headers: browser(`/img/${i % 7}.png`, "image"), responseHeaders: PNG, peer: `192.0.2.${i % 50}:1` });
    }
    assert.equal(person("/article/1").reply, undefined);
    // Then 200 a second from many addresses.
    for (let i = 0; i < 2000; i++) {
      h.nowMs += 5;
      if (i % 100 === 0) h.tick();
      h.request({ headers: browser(`/img/${i % 7}.png`, "image"), responseHeaders: PNG, peer: `198.18.${i % 200}.1:1` });
    }
    assert.equal(h.metric("graywall.crawler_score.attacks_detected"), 1n);
    assert.equal(person("/article/2").reply?.status, 429, "a page view without a clearance is challenged");
    h.nowMs += 31_000;
    h.tick();
    assert.equal(person("/article/3").reply, undefined, "over by itself");
  });
});

describe("a policy per client class", () => {
  const TOOLS: [string, [string, string][]][] = [
    [
      "curl",
      [
        ["user-agent", "curl/8.5.0"],
        ["accept", "*/*"],
      ],
    ],
    [
      "python-requests",
      [
        ["user-agent", "python-requests/2.31.0"],
        ["accept", "*/*"],
        ["accept-encoding", "gzip, deflate"],
      ],
    ],
    [
      "Go",
      [
        ["user-agent", "Go-http-client/1.1"],
        ["accept-encoding", "gzip"],
      ],
    ],
    [
      "Scrapy",
      [
        ["user-agent", "Scrapy/2.11.0 (+https://scrapy.org)"],
        ["accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"],
        ["accept-language", "en"],
      ],
    ],
    ["no user agent", [["accept", "*/*"]]],
  ];

  test("tools and a client with no user agent asking for an HTML page are challenged on their first one; asking for anything they are scored; on an API path they pass; headless browsers are challenged; declared bots tagged", () => {
    for (const [name, headers] of TOOLS) {
      const h = gateway({ ...SHIPPED, signals_header: "x-sig" });
      const html: [string, string][] = [...headers.filter(([k]) => k !== "accept"), ["accept", "text/html,*/*;q=0.8"]];
      const first = h.request({ headers: [[":method", "GET"], [":path", "/article/1"], ...html] });
      assert.equal(first.reply?.status, 429, `${name} on an HTML page`);
      assert.ok(first.reply?.headers.some(([k, v]) => k === "x-robots-tag" && v === "noindex"));
      const api = h.request({ headers: [[":method", "GET"], [":path", "/api/items"], ...html], peer: "192.0.2.99:1" });
      assert.equal(api.reply, undefined, `${name} on the API`);
      if (name === "Scrapy") continue;
      const any = h.request({
        headers: [[":method", "GET"], [":path", "/article/2"], ...headers.filter(([k]) => k !== "accept"), ["accept", "*/*"]],
        peer: "192.0.2.98:1",
      });
      assert.equal(any.reply, undefined, `${name} asking for anything`);
      assert.ok(
        any.upstreamHeaders.some(([k]) => k === "x-graywall-bot-score"),
        `${name} is tagged`,
      );
    }
    const headless = gateway().request({
      headers: browser("/article/1", "document").map(([k, v]): [string, string] => [k, k === "user-agent" ? v.replace("Chrome/", "HeadlessChrome/") : v]),
    });
    assert.equal(headless.reply?.status, 429);
    assert.ok(headless.reply?.body.includes("Checking your browser"), "a navigation gets the page");
    const bot = gateway({ ...SHIPPED, signals_header: "x-sig" }).request({
      headers: [
        [":method", "GET"],
        [":path", "/article/1"],
        ["user-agent", "Mozilla/5.0 (compatible; SomeNewsBot/1.0; +https://example.com/bot)"],
        ["accept", "text/html"],
      ],
    });
    assert.equal(bot.reply, undefined);
    assert.ok(
      bot.upstreamHeaders.some(([k]) => k === "x-graywall-bot-score"),
      "tagged",
    );
  });

  test("the policy is the operator's: tools allowed are scored as any client", () => {
    const h = gateway({ ...SHIPPED, policy: { tools: "allow" } });
    assert.equal(
      h.request({
        headers: [
          [":method", "GET"],
          [":path", "/article/1"],
          ["user-agent", "curl/8.5.0"],
          ["accept", "text/html"],
        ],
      }).reply,
      undefined,
    );
    const bad = new ProxyHost(wasmPath("graywall"), "graywall");
    assert.equal(bad.configure(JSON.stringify({ crawler_score: { policy: { tools: "maybe" } } })), false);
    assert.match(bad.logs.join("\n"), /crawler_score\.policy\.tools/);
  });
});
