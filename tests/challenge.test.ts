// crawler_score's proof-of-work challenge on the host emulator: the page's own script solves it, the
// clearance is verified in the VM, bound to the client, expires, survives a secret rotation, and never
// outweighs a block.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";
import { wasmPath } from "../runtime/paths.ts";
import { solveInScript } from "./support/challenge.ts";
import { ProxyHost, SharedData } from "./support/proxy_host.ts";

const SECRET = "0123456789abcdef-secret";
const HEADLESS = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36";
const PAGE: [string, string][] = [
  [":method", "GET"],
  [":path", "/products/1"],
  ["user-agent", HEADLESS],
  ["accept", "text/html"],
  ["accept-language", "en"],
  ["accept-encoding", "gzip"],
];
const PEER = "198.51.100.7:40000";

function host(challenge: object = { secret: SECRET, difficulty: 12 }, extra: object = {}, shared?: SharedData): ProxyHost {
  const h = new ProxyHost(wasmPath("graywall"), "graywall", shared);
  // HeadlessChrome scores 45: challenged at 40.
  const cfg = { crawler_score: { thresholds: { tag: 30, challenge: 40, block: 95 }, honeypot_paths: ["/.env"], challenge, ...extra } };
  assert.ok(h.configure(JSON.stringify(cfg)), h.logs.join("\n"));
  return h;
}

const withCookie = (cookie: string): [string, string][] => [...PAGE, ["cookie", cookie]];
const withPath = (path: string): [string, string][] => PAGE.map(([k, v]): [string, string] => [k, k === ":path" ? path : v]);

describe("crawler_score challenge", () => {
  test("an HTML navigation gets the page; its script solves it; the clearance lets the client through", () => {
    const h = host();
    const first = h.request({ headers: PAGE, peer: PEER });
    assert.equal(first.reply?.status, 429);
    assert.ok(first.reply?.headers.some(([k, v]) => k === "content-type" && v.startsWith("text/html")));
    assert.ok(first.reply?.headers.some(([k, v]) => k === "cache-control" && v === "no-store"));
    assert.ok(!first.reply?.body.includes(SECRET), "the secret never leaves the VM");
    const cookie = solveInScript(first.reply!.body);
    assert.match(cookie, /^graywall_clearance=\d+\.12\.\d+$/, "issued, difficulty, nonce");
    const again = h.request({ headers: withCookie(cookie), peer: PEER });
    assert.equal(again.reply, undefined, "cleared");
    assert.equal(h.metric("graywall.crawler_score.cleared"), 1n);
    assert.equal(h.metric("graywall.crawler_score.challenge_page"), 1n);
    assert.ok(!h.logs.join("\n").includes(SECRET));
  });

  test("a clearance is bound to its client, checked for the work, and expires", () => {
    const h = host();
    const cookie = solveInScript(h.request({ headers: PAGE, peer: PEER }).reply!.body);
    assert.equal(h.request({ headers: withCookie(cookie), peer: "198.51.100.8:40000" }).reply?.status, 429, "another address");
    const otherUa = withCookie(cookie).map(([k, v]): [string, string] => [k, k === "user-agent" ? `${v} x` : v]);
    assert.equal(h.request({ headers: otherUa, peer: PEER }).reply?.status, 429, "another user agent");
    const [name, value] = cookie.split("=");
    const [issued, nonce] = value.split(".");
    assert.equal(h.request({ headers: withCookie(`${name}=${issued}.${Number(nonce) + 1}`), peer: PEER }).reply?.status, 429, "unsolved nonce");
    assert.equal(h.request({ headers: withCookie(`${name}=${Number(issued) + 3600}.${nonce}`), peer: PEER }).reply?.status, 429, "issue time moved");
    assert.ok((h.metric("graywall.crawler_score.clearance_invalid") ?? 0n) >= 4n);
    h.nowMs += 3600 * 1000;
    assert.equal(h.request({ headers: withCookie(cookie), peer: PEER }).reply?.status, 429, "expired");
  });

  test("a clearance signed before a rotation stays valid under previous_secret", () => {
    const old = host();
    const cookie = solveInScript(old.request({ headers: PAGE, peer: PEER }).reply!.body);
    const rotated = host({ secret: "a-brand-new-secret-42", previous_secret: SECRET, difficulty: 12 });
    rotated.nowMs = old.nowMs;
    assert.equal(rotated.request({ headers: withCookie(cookie), peer: PEER }).reply, undefined);
    const dropped = host({ secret: "a-brand-new-secret-42", difficulty: 12 });
    dropped.nowMs = old.nowMs;
    assert.equal(dropped.request({ headers: withCookie(cookie), peer: PEER }).reply?.status, 429);
  });

  test("a request no browser would render gets 429 with Retry-After, and no page", () => {
    const h = host();
    const api = h.request({
      headers: [
        [":method", "GET"],
        [":path", "/api/x"],
        ["user-agent", HEADLESS],
        ["accept", "application/json"],
      ],
      peer: PEER,
    });
    assert.equal(api.reply?.status, 429);
    assert.deepEqual(api.reply?.headers, [
      ["content-type", "text/plain"],
      ["retry-after", "30"],
      ["x-robots-tag", "noindex"],
    ]);
  });

  test("a cleared client that scores for block is blocked", () => {
    const h = host();
    const cookie = solveInScript(h.request({ headers: PAGE, peer: PEER }).reply!.body);
    const trap = withCookie(cookie).map(([k, v]): [string, string] => [k, k === ":path" ? "/.env" : v]);
    assert.equal(h.request({ headers: trap, peer: PEER }).reply?.status, 403);
  });

  test("without a secret each Envoy signs with its own: its workers agree, another Envoy's clearance is refused", () => {
    const envoyA = new SharedData();
    const worker1 = host({ difficulty: 12 }, {}, envoyA);
    const worker2 = host({ difficulty: 12 }, {}, envoyA);
    const otherEnvoy = host({ difficulty: 12 });
    const first = worker1.request({ headers: PAGE, peer: PEER });
    assert.ok(
      first.reply?.headers.some(([k, v]) => k === "content-type" && v.startsWith("text/html")),
      "the page, not the plain reply",
    );
    const cookie = solveInScript(first.reply!.body);
    assert.equal(worker2.request({ headers: withCookie(cookie), peer: PEER }).reply, undefined, "the other worker accepts it");
    assert.equal(otherEnvoy.request({ headers: withCookie(cookie), peer: PEER }).reply?.status, 429, "another Envoy does not");
    assert.equal(envoyA.entries.get("cs.envoy_secret")?.value.length, 64, "64 random bytes in shared data");
    assert.ok(!worker1.logs.join("\n").match(/[0-9a-f]{64}/), "the secret is never logged");
  });

  test("two workers that each wrote an Envoy secret settle on the stored one on the tick; what either issued stays valid", () => {
    const envoy = new SharedData();
    const w1 = host({ difficulty: 12 }, {}, envoy);
    const cookie1 = solveInScript(w1.request({ headers: PAGE, peer: PEER }).reply!.body);
    // The other worker configured at the same moment: its secret landed last.
    envoy.entries.delete("cs.envoy_secret");
    const w2 = host({ difficulty: 12 }, {}, envoy);
    const cookie2 = solveInScript(w2.request({ headers: PAGE, peer: PEER }).reply!.body);
    assert.equal(w1.request({ headers: withCookie(cookie2), peer: PEER }).reply?.status, 429, "before the tick they disagree");
    w1.tick();
    w2.tick();
    for (const [w, c] of [
      [w1, cookie1],
      [w1, cookie2],
      [w2, cookie2],
    ] as const)
      assert.equal(w.request({ headers: withCookie(c), peer: PEER }).reply, undefined);
    const cookie3 = solveInScript(w1.request({ headers: PAGE, peer: "198.51.100.8:1" }).reply!.body);
    assert.equal(w2.request({ headers: withCookie(cookie3), peer: "198.51.100.8:1" }).reply, undefined, "w1 now signs with the stored secret");
  });

  test("enabled: false, or a host without randomness, gives the plain reply; bad challenge fields are refused by name", () => {
    const plain = host({ enabled: false });
    assert.equal(plain.request({ headers: PAGE, peer: PEER }).reply?.headers[0][1], "text/plain");
    const noRandom = new ProxyHost(wasmPath("graywall"), "graywall");
    noRandom.noRandom = true;
    assert.ok(noRandom.configure(JSON.stringify({ crawler_score: { thresholds: { tag: 30, challenge: 40, block: 95 } } })));
    assert.equal(noRandom.request({ headers: PAGE, peer: PEER }).reply?.headers[0][1], "text/plain");
    const h = new ProxyHost(wasmPath("graywall"), "graywall");
    assert.equal(h.configure(JSON.stringify({ crawler_score: { challenge: { secret: "short" } } })), false);
    assert.match(h.logs.join("\n"), /crawler_score\.challenge\.secret: must be at least 16 characters/);
    assert.equal(h.configure(JSON.stringify({ crawler_score: { challenge: { secret: SECRET, difficulty: 40 } } })), false);
    assert.match(h.logs.join("\n"), /challenge\.difficulty/);
    assert.equal(h.configure(JSON.stringify({ crawler_score: { challenge: { previous_secret: SECRET } } })), false);
    assert.match(h.logs.join("\n"), /challenge\.previous_secret: needs secret/);
  });

  test("the work is SHA-256 over the seed and nonce, as the VM checks it", () => {
    const h = host();
    const page = h.request({ headers: PAGE, peer: PEER }).reply!.body;
    const seed = /seed='([0-9a-f]{32})'/.exec(page)![1];
    const bits = Number(/bits=(\d+)/.exec(page)![1]);
    const value = solveInScript(page).split("=")[1];
    const digest = createHash("sha256")
      .update(`${seed}.${value.split(".")[2]}`)
      .digest();
    const zeros = digest.readUInt32BE(0) >>> (32 - bits);
    assert.equal(zeros, 0);
    // The difficulty is part of the seed: claiming less work than the page asked for is refused.
    const [issued, , nonce] = value.split(".");
    const claimed = `graywall_clearance=${issued}.${bits - 1}.${nonce}`;
    assert.equal(h.request({ headers: withCookie(claimed), peer: PEER }).reply?.status, 429);
  });

  test("a clearance is a budget: past page_budget page views it is revoked, and the next challenge is harder", () => {
    const h = host({ secret: SECRET, difficulty: 8, difficulty_step: 2, page_budget: 20 });
    const first = h.request({ headers: PAGE, peer: PEER }).reply!;
    assert.match(first.body, /bits=8,/);
    const cookie = solveInScript(first.body);
    let served = 0;
    let again: ReturnType<ProxyHost["request"]> | undefined;
    for (let i = 0; i < 100; i++) {
      h.nowMs += 2000;
      const ex = h.request({ headers: withCookie(cookie).map(([k, v]): [string, string] => [k, k === ":path" ? `/p/${i * 7919}` : v]), peer: PEER });
      if (ex.reply) {
        again = ex;
        break;
      }
      served++;
    }
    assert.equal(served, 20, "the budget, then no more");
    assert.match(again!.reply!.body, /bits=10,/, "one step harder after a revoked clearance");
    assert.equal(h.metric("graywall.crawler_score.clearance_revoked"), 1n);
    // The new clearance has a budget of its own.
    const next = solveInScript(again!.reply!.body);
    assert.equal(h.request({ headers: withCookie(next), peer: PEER }).reply, undefined);
  });

  test("without JavaScript: the page's meta refresh returns after the wait the gateway enforces, for a 303 with a no-JS clearance", () => {
    const h = host({ secret: SECRET, difficulty: 12, no_js: { wait_s: 5 } });
    const page = h.request({ headers: withPath("/products/1?color=red"), peer: PEER }).reply!;
    assert.equal(page.status, 429);
    const refresh = /<noscript><meta http-equiv="refresh" content="5;url=([^"]+)">/.exec(page.body);
    assert.ok(refresh, "a meta refresh in <noscript>");
    const url = refresh[1].replaceAll("&amp;", "&");
    assert.match(url, /^\/products\/1\?color=red&graywall_wait=\d+\.[0-9a-f]{32}$/);
    // Back too early: the challenge again, no cookie.
    h.nowMs += 4000;
    const early = h.request({ headers: withPath(url), peer: PEER }).reply!;
    assert.equal(early.status, 429);
    assert.ok(!early.headers.some(([k]) => k === "set-cookie"));
    // From another address, or with another user agent: not its token.
    h.nowMs += 1000;
    assert.equal(h.request({ headers: withPath(url), peer: "198.51.100.9:1" }).reply?.status, 429);
    const back = h.request({ headers: withPath(url), peer: PEER }).reply!;
    assert.equal(back.status, 303);
    assert.deepEqual(
      back.headers.find(([k]) => k === "location"),
      ["location", "/products/1?color=red"],
    );
    const cookie = back.headers.find(([k]) => k === "set-cookie")![1].split(";")[0];
    assert.match(cookie, /^graywall_clearance=\d+\.n\.[0-9a-f]{32}$/);
    assert.equal(h.request({ headers: withCookie(cookie), peer: PEER }).reply, undefined, "cleared");
    assert.equal(h.request({ headers: withCookie(cookie), peer: "198.51.100.9:1" }).reply?.status, 429, "bound to its client");
    assert.equal(h.metric("graywall.crawler_score.no_js_cleared"), 1n);
    // A forged no-JS clearance is refused.
    const forged = cookie.replace(/[0-9a-f]{4}$/, "0000");
    assert.equal(h.request({ headers: withCookie(forged), peer: PEER }).reply?.status, 429);
  });

  test("without JavaScript: the no-JS clearances of an address share one budget, however many tokens it redeems", () => {
    const h = host({ secret: SECRET, difficulty: 12, no_js: { wait_s: 1, page_budget: 10 } });
    const cookies: string[] = [];
    for (let i = 0; i < 3; i++) {
      const body = h.request({ headers: PAGE, peer: PEER }).reply!.body;
      const url = /content="1;url=([^"]+)"/.exec(body)![1].replaceAll("&amp;", "&");
      h.nowMs += 1500;
      const back = h.request({ headers: withPath(url), peer: PEER }).reply!;
      assert.equal(back.status, 303);
      cookies.push(back.headers.find(([k]) => k === "set-cookie")![1].split(";")[0]);
    }
    assert.equal(new Set(cookies).size, 3, "three clearances");
    let served = 0;
    for (let i = 0; i < 30; i++) {
      h.nowMs += 1000;
      const r = h.request({ headers: withCookie(cookies[i % 3]).map(([k, v]): [string, string] => [k, k === ":path" ? `/p/${i}` : v]), peer: PEER });
      if (!r.reply) served++;
    }
    assert.equal(served, 10, "one budget for the address");
  });

  test("the fallback's URL stays on the site and is escaped; no_js.enabled: false leaves only the notice", () => {
    const h = host({ secret: SECRET, difficulty: 12 });
    const body = h.request({ headers: withPath('//evil.example/"><script>x</script>'), peer: PEER }).reply!.body;
    const url = /content="5;url=([^"]+)"/.exec(body)![1];
    assert.ok(url.startsWith("/evil.example/"), url);
    assert.ok(!body.includes("<script>x"), "the path is escaped");
    const off = host({ secret: SECRET, difficulty: 12, no_js: { enabled: false } });
    const plain = off.request({ headers: PAGE, peer: PEER }).reply!.body;
    assert.ok(!plain.includes("http-equiv"));
    assert.match(plain, /Please enable JavaScript/);
    const bad = new ProxyHost(wasmPath("graywall"), "graywall");
    assert.equal(bad.configure(JSON.stringify({ crawler_score: { challenge: { no_js: { wait_s: 0 } } } })), false);
    assert.match(bad.logs.join("\n"), /challenge\.no_js\.wait_s/);
  });
});
