// crawler_score's signed client id on the host emulator: behaviour per browser behind a shared address.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { wasmPath } from "../runtime/paths.ts";
import { ProxyHost, SharedData } from "./support/proxy_host.ts";

const SECRET = "client-id-secret-0123456789";
const CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const NAT = "203.0.113.50:40000";

function host(clientId: object = { secret: SECRET }): ProxyHost {
  const h = new ProxyHost(wasmPath("graywall"), "graywall");
  const cfg = { crawler_score: { client_id: clientId, honeypot_paths: ["/.env"], behaviour: { rate_threshold: 30, window_ms: 10000 } } };
  assert.ok(h.configure(JSON.stringify(cfg)), h.logs.join("\n"));
  return h;
}

const page = (path: string, cookie?: string, ua = CHROME): [string, string][] => [
  [":method", "GET"],
  [":path", path],
  ["user-agent", ua],
  ["accept", "text/html"],
  ["accept-language", "en"],
  ["accept-encoding", "gzip"],
  ...(cookie ? ([["cookie", cookie]] as [string, string][]) : []),
];

const setCookie = (headers: [string, string][] | undefined) => headers?.find(([k]) => k === "set-cookie")?.[1];
const idOf = (h: ProxyHost) => setCookie(h.request({ headers: page("/"), peer: NAT }).responseHeaders)!.split(";")[0];

describe("crawler_score client ids", () => {
  test("a page view without an id gets a signed one; one that returns gets no other", () => {
    const h = host();
    const first = h.request({ headers: page("/"), peer: NAT });
    const cookie = setCookie(first.responseHeaders);
    assert.match(cookie ?? "", /^graywall_id=[0-9a-f]{24}\.\d+\.[0-9a-f]{32}; Path=\/; Max-Age=31536000; HttpOnly; SameSite=Lax$/);
    const again = h.request({ headers: page("/a", cookie!.split(";")[0]), peer: NAT });
    assert.equal(setCookie(again.responseHeaders), undefined);
    assert.equal(h.metric("graywall.crawler_score.client_id_issued"), 1n);
  });

  test("20 browsers behind one address browse freely; a cookie-less scraper behind it is judged by the address", () => {
    const h = host();
    const ids = Array.from({ length: 20 }, () => {
      h.nowMs += 1000;
      return idOf(h);
    });
    for (let round = 0; round < 4; round++) {
      for (const id of ids) {
        h.nowMs += 1000;
        const ex = h.request({ headers: page(`/products/${round}`, id), peer: NAT });
        assert.equal(ex.reply, undefined);
        assert.equal(
          ex.upstreamHeaders.find(([k]) => k === "x-graywall-bot-score"),
          undefined,
          "not even tagged",
        );
      }
    }
    let scored = 0;
    for (let i = 0; i < 40; i++) {
      const ex = h.request({ headers: page(`/list?page=${i}`), peer: NAT });
      if (ex.upstreamHeaders.some(([k]) => k === "x-graywall-bot-score") || ex.reply) scored++;
    }
    assert.ok(scored > 0, "the address's own record sees 40 page views");
  });

  test("a honeypot hit lands on the client id that made it; a new id's hit lands on its address too, which is challenged, never blocked", () => {
    const h = host();
    const [a, b] = [idOf(h), idOf(h)];
    // Three page views each: ids with a history of their own.
    for (const id of [a, b]) for (const p of ["/x", "/y", "/z"]) assert.equal(h.request({ headers: page(p, id), peer: NAT }).reply, undefined);
    assert.equal(h.request({ headers: page("/.env", a), peer: NAT }).reply?.status, 403);
    assert.equal(h.request({ headers: page("/", a), peer: NAT }).reply?.status, 403, "a stays blocked");
    assert.equal(h.request({ headers: page("/", b), peer: NAT }).reply, undefined, "b is not");
    assert.equal(h.request({ headers: page("/"), peer: NAT }).reply, undefined, "nor the address");
    // A scraper that takes a new id for each try: its hit marks the address it comes from.
    const [fresh, next] = [idOf(h), idOf(h)];
    assert.equal(h.request({ headers: page("/.env", fresh), peer: NAT }).reply?.status, 403);
    assert.equal(h.request({ headers: page("/a", next), peer: NAT }).reply?.status, 429, "another new id there is challenged");
    assert.equal(h.request({ headers: page("/b"), peer: NAT }).reply?.status, 429, "so is a cookie-less page view");
    assert.equal(h.request({ headers: page("/", b), peer: NAT }).reply, undefined, "an id with its own history is not");
  });

  test("a forged or foreign id counts as none, and survives a rotation only under previous_secret", () => {
    const h = host();
    const id = idOf(h);
    const forged = id.replace(/.$/, (c) => (c === "0" ? "1" : "0"));
    const ex = h.request({ headers: page("/", forged), peer: NAT });
    assert.ok(setCookie(ex.responseHeaders), "a new id is issued");
    assert.equal(h.metric("graywall.crawler_score.client_id_invalid"), 1n);
    const rotated = host({ secret: "another-secret-0123456789", previous_secret: SECRET });
    rotated.nowMs = h.nowMs;
    assert.equal(setCookie(rotated.request({ headers: page("/", id), peer: NAT }).responseHeaders), undefined);
    const dropped = host({ secret: "another-secret-0123456789" });
    dropped.nowMs = h.nowMs;
    assert.ok(setCookie(dropped.request({ headers: page("/", id), peer: NAT }).responseHeaders));
  });

  test("on by default: a configuration without client_id issues ids under this Envoy's own secret, which its workers share; enabled: false issues none", () => {
    const envoy = new SharedData();
    const bare = (shared?: SharedData) => {
      const h = new ProxyHost(wasmPath("graywall"), "graywall", shared);
      assert.ok(h.configure(JSON.stringify({ crawler_score: {} })), h.logs.join("\n"));
      return h;
    };
    const w1 = bare(envoy);
    const w2 = bare(envoy);
    const id = idOf(w1);
    assert.match(id, /^graywall_id=[0-9a-f]{24}\.\d+\.[0-9a-f]{32}$/);
    assert.equal(setCookie(w2.request({ headers: page("/a", id), peer: NAT }).responseHeaders), undefined, "the other worker knows it");
    assert.ok(setCookie(bare().request({ headers: page("/a", id), peer: NAT }).responseHeaders), "another Envoy does not");
    const off = host({ enabled: false });
    assert.equal(setCookie(off.request({ headers: page("/"), peer: NAT }).responseHeaders), undefined);
  });

  test("assets and API calls get no id; HTTPS ids are Secure; a short secret is refused by name", () => {
    const h = host();
    const img: [string, string][] = [
      [":method", "GET"],
      [":path", "/logo.png"],
      ["user-agent", CHROME],
      ["accept", "image/webp"],
    ];
    assert.equal(setCookie(h.request({ headers: img, peer: NAT }).responseHeaders), undefined);
    const secure = h.request({ headers: [...page("/"), [":scheme", "https"]], peer: NAT });
    assert.match(setCookie(secure.responseHeaders) ?? "", /; Secure$/);
    const bad = new ProxyHost(wasmPath("graywall"), "graywall");
    assert.equal(bad.configure(JSON.stringify({ crawler_score: { client_id: { secret: "short" } } })), false);
    assert.match(bad.logs.join("\n"), /crawler_score\.client_id\.secret: must be at least 16 characters/);
  });

  test("behaviour goes to one record per request: the account's, else the id's, else the address's; the next requests stay in the worker's copy", () => {
    const h = new ProxyHost(wasmPath("graywall"), "graywall");
    assert.ok(h.configure(JSON.stringify({ crawler_score: { client_id: { secret: SECRET }, account: { header: "x-user-id" } } })));
    const id = setCookie(h.request({ headers: page("/"), peer: NAT }).responseHeaders)!.split(";")[0];
    const versions = () => new Map([...h.shared.entries].map(([k, e]) => [k, e.cas]));
    // The record ends with its key: the id's is "c" and the id (the cookie value's first part).
    // An id's very first request also tells its address the id came back (id_churn): once per id.
    const cases: [string, [string, string][], RegExp, string | null, number][] = [
      ["cookie-less: the address's record", page("/a"), /^graywall\.t\.cs\.ip\./, null, 1],
      ["a valid id: the id's record", page("/b", id), /^graywall\.t\.cs\.ip\./, `c${id.split("=")[1].split(".")[0]}`, 2],
      ["an account: the account's record", [...page("/c", id), ["x-user-id", "u-1"]], /^graywall\.t\.cs\.account\./, "u-1", 1],
    ];
    for (const [what, headers, table, keyEnd, writes] of cases) {
      h.nowMs += 1000; // past the last sync of any copy
      const before = versions();
      const first = h.request({ headers, peer: NAT });
      // Besides the network's record (cs.net), which every page view also counts on.
      const changed = [...versions()].filter(([k, cas]) => before.get(k) !== cas).map(([k]) => k);
      assert.ok(changed.filter((k) => k.includes(".cs.net.")).length <= 1, what);
      const written = changed.filter((k) => !k.includes(".cs.net."));
      assert.equal(first.calls.proxy_set_shared_data, changed.length, `${what}: ${JSON.stringify(first.calls)}`);
      assert.equal(written.length, writes, what);
      assert.match(written[0], table, what);
      if (keyEnd !== null)
        assert.ok(
          written.some((k) => Buffer.from(h.shared.get(k)!.value).toString("latin1").endsWith(keyEnd)),
          what,
        );
      const next = h.request({ headers, peer: NAT });
      assert.equal(next.calls.proxy_get_shared_data ?? 0, 0, `${what}: ${JSON.stringify(next.calls)}`);
      assert.equal(next.calls.proxy_set_shared_data ?? 0, 0, what);
    }
  });

  test("two workers' VMs never issue the same id, even for the same request in the same instant", () => {
    const shared = new SharedData();
    const vms = [0, 1].map(() => {
      const h = new ProxyHost(wasmPath("graywall"), "graywall", shared);
      assert.ok(h.configure(JSON.stringify({ crawler_score: { client_id: { secret: SECRET } } })));
      return h;
    });
    const [a, b] = vms.map((h) => setCookie(h.request({ headers: page("/"), peer: NAT }).responseHeaders)!.split(";")[0]);
    assert.notEqual(a, b);
  });
});
