// access on the host emulator: consumers identified by API key (digests only in the configuration), a
// 401 where a key is required, the consumer's name upstream in one header no client can set, the key
// never sent upstream, and a rate limit per consumer.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";
import { wasmPath } from "../runtime/paths.ts";
import { keyHash } from "./support/key_hash.ts";
import { ProxyHost } from "./support/proxy_host.ts";

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
const KEY_A = "gw_live_4f1d9a8c2b7e6f50a1c3d5e7f9b2a4c6";
const KEY_A2 = "gw_live_second_key_of_merchant_a_000001";
const KEY_B = "gw_live_9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b";
const KEY_C_OLD = "gw_live_replaced_key_of_merchant_c_00001";

const ACCESS = {
  consumers: [
    { name: "merchant-a", key_sha256: [sha256(KEY_A), sha256(KEY_A2)] },
    { name: "merchant-b", key_sha256: [sha256(KEY_B)] },
  ],
  key_query: "api_key",
  require: [
    { prefix: "/api/", credentials: "key" },
    { prefix: "/shop/cart", methods: ["POST"], credentials: "key" },
  ],
};

function host(config: object = { access: ACCESS }): ProxyHost {
  const h = new ProxyHost(wasmPath("graywall"), "graywall");
  assert.ok(h.configure(JSON.stringify(config)), h.logs.join("\n"));
  return h;
}

const req = (path: string, extra: [string, string][] = [], method = "GET"): [string, string][] => [
  [":method", method],
  [":path", path],
  [":authority", "api.example"],
  ...extra,
];
const upstream = (hs: [string, string][] | undefined, name: string) => hs?.filter(([k]) => k === name).map(([, v]) => v) ?? [];

describe("access", () => {
  test("a known key names its consumer upstream; the key itself and any client-sent consumer header are removed", () => {
    const h = host();
    const ex = h.request({
      headers: req("/api/orders", [
        ["x-api-key", KEY_A],
        ["x-graywall-consumer", "merchant-b"],
      ]),
    });
    assert.equal(ex.reply, undefined);
    assert.deepEqual(upstream(ex.upstreamHeaders, "x-graywall-consumer"), ["merchant-a"]);
    assert.deepEqual(upstream(ex.upstreamHeaders, "x-api-key"), []);
    assert.equal(h.request({ headers: req("/api/orders", [["x-api-key", KEY_A2]]) }).reply, undefined, "either of its keys");
    const b = h.request({ headers: req("/api/orders", [["x-api-key", KEY_B]]) });
    assert.deepEqual(upstream(b.upstreamHeaders, "x-graywall-consumer"), ["merchant-b"]);
    assert.equal(h.metric("graywall.access.identified"), 3n);
    // All headers in one call, as every stage: no per-header read for the key.
    assert.equal(ex.calls.proxy_get_header_map_pairs, 1);
    assert.equal(ex.calls.proxy_get_header_map_value ?? 0, 0);
  });

  test("a key verified once is remembered by the worker, never for another key: same length and slot is refused; a grace period still ends", () => {
    const h = host({
      access: {
        ...ACCESS,
        consumers: [...ACCESS.consumers, { name: "merchant-c", retiring_keys: [{ sha256: sha256(KEY_C_OLD), until_s: 1_700_000_100 }] }],
      },
    });
    h.nowMs = 1_700_000_000_000;
    const consumer = (key: string) => {
      const ex = h.request({ headers: req("/api/orders", [["x-api-key", key]]) });
      return ex.reply ? ex.reply.status : upstream(ex.upstreamHeaders, "x-graywall-consumer")[0];
    };
    assert.equal(consumer(KEY_A), "merchant-a");
    // A key of KEY_A's length in KEY_A's slot of the worker's cache (the module's keyHash, 256 slots).
    const slot = keyHash(KEY_A) & 255;
    let forged = "";
    for (let i = 0; forged === ""; i++) {
      const k = `${KEY_A.slice(0, -8)}${String(i).padStart(8, "0")}`;
      if (k !== KEY_A && (keyHash(k) & 255) === slot) forged = k;
    }
    assert.equal(consumer(forged), 401);
    assert.equal(consumer(KEY_A), "merchant-a");
    // A replaced key, remembered while its grace period runs, is refused once it has ended.
    assert.equal(consumer(KEY_C_OLD), "merchant-c");
    assert.equal(consumer(KEY_C_OLD), "merchant-c");
    h.nowMs = 1_700_000_100_000;
    assert.equal(consumer(KEY_C_OLD), 401);
  });

  test("a path that requires a key answers 401 with WWW-Authenticate, the same for a missing and an unknown key", () => {
    const h = host();
    const missing = h.request({ headers: req("/api/orders") });
    const unknown = h.request({ headers: req("/api/orders", [["x-api-key", `${KEY_A}x`]]) });
    for (const r of [missing, unknown]) {
      assert.equal(r.reply?.status, 401);
      assert.equal(r.reply?.body, "unauthorized\n");
      assert.deepEqual(upstream(r.reply?.headers, "www-authenticate"), ['Key realm="graywall"']);
    }
    assert.equal(h.metric("graywall.access.denied.missing_key"), 1n);
    assert.equal(h.metric("graywall.access.denied.unknown_key"), 1n);
    // A key far longer than any made is refused without hashing it, as unknown.
    assert.equal(h.request({ headers: req("/api/orders", [["x-api-key", "k".repeat(20000)]]) }).reply?.status, 401);
    assert.equal(h.metric("graywall.access.denied.unknown_key"), 2n);
    // Methods narrow a rule; anywhere else is anonymous, and a client's consumer header never passes.
    assert.equal(h.request({ headers: req("/shop/cart") }).reply, undefined);
    assert.equal(h.request({ headers: req("/shop/cart", [], "POST") }).reply?.status, 401);
    const anon = h.request({ headers: req("/shop/list", [["x-graywall-consumer", "merchant-a"]]) });
    assert.equal(anon.reply, undefined);
    assert.deepEqual(upstream(anon.upstreamHeaders, "x-graywall-consumer"), []);
    assert.equal(h.metric("graywall.access.anonymous"), 2n);
  });

  test("the key may come in the configured query parameter", () => {
    const h = host();
    const ex = h.request({ headers: req(`/api/orders?page=2&api_key=${KEY_B}`) });
    assert.equal(ex.reply, undefined);
    assert.deepEqual(upstream(ex.upstreamHeaders, "x-graywall-consumer"), ["merchant-b"]);
    assert.equal(h.request({ headers: req("/api/orders?api_key=nope") }).reply?.status, 401);
  });

  test("rate_limiter keyed by consumer: each merchant has its own bucket, whatever address it calls from", () => {
    const h = host({
      access: ACCESS,
      rate_limiter: { rules: [{ name: "per-merchant", key: ["consumer"], bucket_size: 2, refill_tokens: 2, refill_interval_ms: 60000 }] },
    });
    const call = (key: string, peer: string) => h.request({ headers: req("/api/orders", [["x-api-key", key]]), peer }).reply?.status ?? 200;
    assert.deepEqual([call(KEY_A, "10.0.0.1:1"), call(KEY_A2, "10.0.0.2:1"), call(KEY_A, "10.0.0.3:1")], [200, 200, 429]);
    assert.equal(call(KEY_B, "10.0.0.1:1"), 200, "another merchant, the same address");
  });

  test("bad documents are refused by field; a consumer limit without the access section is refused", () => {
    const bad = (doc: object, field: RegExp) => {
      const h = new ProxyHost(wasmPath("graywall"), "graywall");
      assert.equal(h.configure(JSON.stringify(doc)), false);
      assert.match(h.logs.join("\n"), field);
    };
    bad({ access: { consumers: [{ name: "m", key_sha256: ["abc"] }] } }, /access\.consumers\[0\]\.key_sha256\[0\]: must be a SHA-256 digest/);
    bad({ access: { consumers: [{ name: "m" }, { name: "m" }] } }, /access\.consumers\[1\]\.name: 'm' is named twice/);
    bad({ access: { consumers: [{ name: "a b" }] } }, /access\.consumers\[0\]\.name: must be letters/);
    bad({ access: { consumer_header: "host" } }, /access\.consumer_header/);
    bad({ access: { require: [{ prefix: "/api/", credentials: "password" }] } }, /access\.require\[0\]\.credentials: must be one of anonymous, key/);
    bad(
      { rate_limiter: { rules: [{ name: "m", key: ["consumer"], bucket_size: 1, refill_tokens: 1, refill_interval_ms: 1000 }] } },
      /rate_limiter\.rules\[0\]\.key: 'consumer' needs the access section/,
    );
  });

  test("gray_router routes chosen consumers to the canary; crawler_score follows a consumer across addresses", () => {
    const h = host({
      access: ACCESS,
      crawler_score: { signals_header: "x-bot-signals", behaviour: { enumeration_run: 4 } },
      gray_router: { rules: [{ name: "pilot-merchants", target: "canary", match: { consumers: ["merchant-b"] } }] },
    });
    const target = (key: string) => upstream(h.request({ headers: req("/api/orders", [["x-api-key", key]]) }).upstreamHeaders, "x-graywall-target");
    assert.deepEqual(target(KEY_B), ["canary"]);
    assert.deepEqual(target(KEY_A), []);
    // Sequential ids from a new address each time: with a key it is one consumer with one history, in
    // which the ids make a run; without one, each address has a history of one page.
    const sdk = (withKey: boolean): [string, string][] => [
      ...(withKey ? ([["x-api-key", KEY_A]] as [string, string][]) : []),
      ["user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"],
      ["accept", "application/json"],
      ["accept-language", "en"],
      ["accept-encoding", "gzip"],
    ];
    const lastSignals = (withKey: boolean, net: number) => {
      let signals: string[] = [];
      for (let i = 1; i <= 5; i++) {
        const ex = h.request({ headers: req(`/shop/item/${100 + i}`, sdk(withKey)), peer: `198.51.${net}.${i}:1` });
        assert.equal(ex.reply, undefined);
        signals = upstream(ex.upstreamHeaders, "x-bot-signals");
      }
      return signals.join(",");
    };
    assert.doesNotMatch(lastSignals(false, 101), /id_enumeration/);
    assert.match(lastSignals(true, 102), /id_enumeration/);
  });

  test("a gray rule for consumers without the access section is refused by field", () => {
    const h = new ProxyHost(wasmPath("graywall"), "graywall");
    assert.equal(h.configure(JSON.stringify({ gray_router: { rules: [{ name: "p", target: "canary", match: { consumers: ["m"] } }] } })), false);
    assert.match(h.logs.join("\n"), /gray_router\.rules\[0\]\.match\.consumers: needs the access section/);
  });
});
