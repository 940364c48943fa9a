import { ConfigErrors } from "../common/lib/config";
import { encodePairs, HeaderName, RequestSnapshot, RequestSource, PATH } from "../common/request/snapshot";
import { FROM_XFF } from "../common/request/client_ip";
import { Outcome } from "../common/request/stage";
import { compileGraywallConfig, compileGraywallStages } from "../graywall/config";
import { compileIpListConfig } from "../ip_list/config";
import { IpListStage } from "../ip_list/stage";
import { compileRateLimitConfig } from "../rate_limiter/config";
import { RateLimiterStage } from "../rate_limiter/stage";
import { compileGrayConfig } from "../gray_router/config";
import { GrayRouterStage } from "../gray_router/stage";
import { MapStore } from "./map_store";
import { MemoryStats } from "./memory_stats";
import { metadataString } from "../common/request/metadata";

/** A host whose peer address is `peer`, counting how often it is asked. */
class CountingSource extends RequestSource {
  peerCalls: i32 = 0;
  constructor(public kv: string[], public peer: string) { super(); }
  headerPairs(reuse: ArrayBuffer): ArrayBuffer | null {
    const b = encodePairs(this.kv);
    this.pairsLength = b.byteLength;
    return b;
  }
  peerAddress(): string | null { this.peerCalls++; return this.peer; }
  upstreamHostMetadata(): ArrayBuffer | null { return null; }
  responseHeader(name: HeaderName): string | null { return null; }
  property(path: ArrayBuffer): string | null { return null; }
}

function request(kv: string[], peer: string): RequestSnapshot {
  const r = RequestSnapshot.of(kv);
  r.peer = peer;
  return r;
}

/** One request of the client 1.2.3.4 to `/` at `now`, through a rate limiter stage (one worker's). */
function sameClient(stage: RateLimiterStage, now: i64): Outcome {
  const r = request([":path", "/"], "1.2.3.4:5");
  r.nowMs = now;
  return stage.onRequest(r, true);
}

describe("request snapshot", () => {
  it("finds headers by bytes and decodes a value only when asked", () => {
    const r = RequestSnapshot.of([":path", "/a?b=1", "x-a", "1", "x-a", "2", "x-empty", ""]);
    expect(r.count).toBe(4);
    expect(r.header(PATH)).toBe("/a?b=1");
    expect(r.header(new HeaderName("x-a"))).toBe("1");
    expect(r.header(new HeaderName("x-empty"))).toBe("");
    expect(r.header(new HeaderName("x-"))).toBeNull();
    expect(r.valueStartsWith(r.find(PATH), String.UTF8.encode("/a?"))).toBe(true);
  });
  it("refuses a malformed pair buffer and reads as no headers", () => {
    const bytes = encodePairs(["a", "b"]);
    store<u32>(changetype<usize>(bytes), 1000);
    const r = new RequestSnapshot();
    expect(r.load(bytes)).toBe(false);
    expect(r.count).toBe(0);
  });
  it("resolves the client address once per hop count: peer, or the trusted XFF entry", () => {
    const r = request(["x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.0.0.1"], "10.0.0.1:1234");
    expect(r.clientIp(0)!.lo).toBe(0x0a000001);
    expect(r.clientIp(1)!.lo).toBe(0xcb007107);
    r.reset();
    expect(r.count).toBe(0);
    expect(r.clientIp(0)).toBeNull();
  });
  it("client_address envoy_xff: the peer is Envoy's own XFF entry, with no host call; the host only when XFF is missing", () => {
    // Envoy appended 10.0.0.1 (the peer); the client wrote the rest, including a forged 203.0.113.7.
    const src = new CountingSource(["x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.0.0.1"], "10.0.0.1:1234");
    const r = new RequestSnapshot();
    r.attach(src);
    expect(r.clientIp(FROM_XFF)!.lo).toBe(0x0a000001);
    expect(src.peerCalls).toBe(0);
    // Trusted hops count from Envoy's entry as before.
    expect(r.clientIp(FROM_XFF | 1)!.lo).toBe(0xcb007107);
    expect(src.peerCalls).toBe(0);
    const none = new CountingSource([":path", "/"], "192.0.2.9:80");
    const q = new RequestSnapshot();
    q.attach(none);
    expect(q.clientIp(FROM_XFF)!.lo).toBe(0xc0000209);
    expect(none.peerCalls).toBe(1);
    // The mode is the operator's, never the client's: a document asks for it by name.
    const errors = new ConfigErrors();
    expect(compileIpListConfig('{"client_address": "xff"}', errors)).toBeNull();
    expect(errors.list[0]).toBe("client_address: must be one of peer, envoy_xff, got 'xff'");
    expect(compileIpListConfig('{"client_address": "envoy_xff", "xff_trusted_hops": 1}', new ConfigErrors())!.clientSource).toBe(FROM_XFF | 1);
  });
  it("tells in one pass whether some header name starts with a prefix", () => {
    const r = RequestSnapshot.of(["x-a", "1", "x-graywall-rl-key-2", "k"]);
    expect(r.hasNamePrefix(String.UTF8.encode("x-graywall-rl-"))).toBe(true);
    expect(r.hasNamePrefix(String.UTF8.encode("x-graywall-rl-rule"))).toBe(false);
    expect(r.hasNamePrefix(String.UTF8.encode("x-a-longer-than-any"))).toBe(false);
  });
  it("queues a removal only for a header that is present", () => {
    const r = RequestSnapshot.of(["x-present", "1"]);
    r.setRequestHeader(new HeaderName("x-absent"), null);
    r.setRequestHeader(new HeaderName("x-present"), null);
    expect(r.writeNames.length).toBe(1);
  });
});

describe("stages as pure decisions", () => {
  it("ip_list: a denied client gets the reply, and each outcome is counted", () => {
    const errors = new ConfigErrors();
    const stats = new MemoryStats();
    const stage = new IpListStage(compileIpListConfig('{"deny": ["10.0.0.0/8"], "paths": ["/admin"]}', errors)!, stats);
    expect(stage.onRequest(request([":path", "/admin/x"], "10.1.1.1:1"), true)).toBe(Outcome.Reply);
    expect(stage.onRequest(request([":path", "/admin/x"], "11.1.1.1:1"), true)).toBe(Outcome.Continue);
    expect(stage.onRequest(request([":path", "/shop"], "10.1.1.1:1"), true)).toBe(Outcome.Continue);
    expect(stats.value("graywall.ip_list.denied.deny_list")).toBe(1);
    expect(stats.value("graywall.ip_list.allowed")).toBe(1);
    expect(stats.value("graywall.ip_list.out_of_scope")).toBe(1);
  });
  it("rate_limiter: a burst of bucket_size passes, the next gets 429 with its headers", () => {
    const errors = new ConfigErrors();
    const cfg = compileRateLimitConfig('{"response_headers": true, "rules": [{"name": "r", "key": ["client_ip"], "bucket_size": 2, "refill_tokens": 2, "refill_interval_ms": 1000}]}', errors)!;
    const stats = new MemoryStats();
    const stage = new RateLimiterStage(cfg, new MapStore(), stats);
    for (let i = 0; i < 2; i++) {
      const r = request([":path", "/"], "1.2.3.4:5");
      expect(stage.onRequest(r, true)).toBe(Outcome.Continue);
      expect(r.responseValues[1]).toBe((1 - i).toString());
    }
    const denied = request([":path", "/"], "1.2.3.4:5");
    expect(stage.onRequest(denied, true)).toBe(Outcome.Reply);
    expect(denied.reply!.status).toBe(429);
    expect(denied.reply!.headers[1]).toBe("1");
    expect(stage.onRequest(request([":path", "/"], "1.2.3.5:5"), true)).toBe(Outcome.Continue);
    expect(stats.value("graywall.rate_limiter.r.limited")).toBe(1);
    // Off by default (as Envoy's own enable_x_ratelimit_headers): allowed responses get no RateLimit-*.
    const quiet = new RateLimiterStage(compileRateLimitConfig('{"rules": [{"name": "q", "key": ["client_ip"], "bucket_size": 2}]}', errors)!, new MapStore(), stats);
    const allowed = request([":path", "/"], "1.2.3.4:5");
    expect(quiet.onRequest(allowed, true)).toBe(Outcome.Continue);
    expect(allowed.responseNames.length).toBe(0);
  });
  it("rate_limiter: a bucket far from empty is spent from this worker's lease, without a round trip per request", () => {
    const errors = new ConfigErrors();
    const cfg = compileRateLimitConfig('{"rules": [{"name": "big", "key": ["client_ip"], "bucket_size": 1000000, "refill_tokens": 1, "refill_interval_ms": 60000}]}', errors)!;
    const store = new MapStore();
    const stats = new MemoryStats();
    const stage = new RateLimiterStage(cfg, store, stats);
    const before = store.reads;
    for (let i = 0; i < 640; i++) {
      const r = request([":path", "/"], "1.2.3.4:5");
      r.nowMs = 1000;
      expect(stage.onRequest(r, true)).toBe(Outcome.Continue);
    }
    // One round trip takes the request's token and a lease of 63 (worker_lease 64 by default): 10 round
    // trips of one read each (the first finds the key's home slot never used, and looks no further).
    expect(store.reads - before).toBe(10);
    expect(stats.value("graywall.rate_limiter.big.allowed")).toBe(640);
    // A key longer than 256 bytes gets no lease (per-worker entries stay small): a round trip each time.
    const byHeader = new RateLimiterStage(compileRateLimitConfig('{"rules": [{"name": "h", "key": ["header:x-k"], "bucket_size": 1000000}]}', errors)!, store, stats);
    const long = "k".repeat(300);
    const from = store.reads;
    for (let i = 0; i < 3; i++) byHeader.onRequest(request([":path", "/", "x-k", long], "1.2.3.4:5"), true);
    expect(store.reads - from).toBe(3);
    const none = new RateLimiterStage(compileRateLimitConfig('{"worker_lease": 1, "rules": [{"name": "one", "key": ["client_ip"], "bucket_size": 1000000}]}', errors)!, store, stats);
    const at = store.reads;
    for (let i = 0; i < 10; i++) none.onRequest(request([":path", "/"], "1.2.3.4:5"), true);
    // A read a request; the first two: its home slot holds the first rule's record of this address.
    expect(store.reads - at).toBe(11);
  });
  it("rate_limiter: a bucket of at most 17 x (worker_lease - 1) tokens is exact to the request across workers", () => {
    const errors = new ConfigErrors();
    const cfg = compileRateLimitConfig('{"rules": [{"name": "k", "key": ["client_ip"], "bucket_size": 1000, "refill_tokens": 1, "refill_interval_ms": 86400000}]}', errors)!;
    const store = new MapStore();
    const stats = new MemoryStats();
    const a = new RateLimiterStage(cfg, store, stats);
    const b = new RateLimiterStage(cfg, store, stats);
    // a serves one request and nothing after; b gets every token a did not spend, at once.
    expect(sameClient(a, 5000)).toBe(Outcome.Continue);
    let allowed = 0;
    for (let i = 0; i < 1100; i++) if (sameClient(b, 5000) == Outcome.Continue) allowed++;
    expect(allowed).toBe(999);
  });
  it("rate_limiter: two workers with leases never admit more than the bucket, and expired leases go back to it", () => {
    const errors = new ConfigErrors();
    // 200 tokens, no refill to speak of; worker_lease 4: leases of 3 while 16 x 3 are left after one.
    const cfg = compileRateLimitConfig('{"worker_lease": 4, "rules": [{"name": "b", "key": ["client_ip"], "bucket_size": 200, "refill_tokens": 1, "refill_interval_ms": 86400000}]}', errors)!;
    const store = new MapStore();
    const stats = new MemoryStats();
    const a = new RateLimiterStage(cfg, store, stats);
    const b = new RateLimiterStage(cfg, store, stats);
    let allowed = 0;
    // Worker a serves three requests in four: b takes a lease it then barely uses.
    for (let i = 0; i < 400; i++) {
      let o: Outcome;
      if (i % 4 == 3) o = sameClient(b, 5000);
      else o = sameClient(a, 5000);
      if (o == Outcome.Continue) allowed++;
    }
    expect(allowed).toBeLessThan(201);
    expect(allowed).toBeGreaterThan(190);
    // A lease outlives LEASE_TTL_MS only until the next tick, which gives what is left back.
    a.onTick(6001);
    b.onTick(6001);
    for (let i = 0; i < 100; i++) if (sameClient(a, 6002) == Outcome.Continue) allowed++;
    expect(allowed).toBe(200);
    expect(stats.value("graywall.rate_limiter.b.allowed")).toBe(200);
  });
  it("rate_limiter: worker_lease is checked", () => {
    const errors = new ConfigErrors();
    expect(compileRateLimitConfig('{"worker_lease": 0, "rules": []}', errors)).toBeNull();
    expect(errors.list[0]).toBe("worker_lease: must be between 1 and 1024, got 0");
  });
  it("rate_limiter: a cluster rule hands its name and text key to Envoy's rate-limit filter, and a client's copies are removed", () => {
    const errors = new ConfigErrors();
    const cfg = compileRateLimitConfig('{"xff_trusted_hops": 1, "rules": [' +
      '{"name": "local", "key": ["client_ip"], "bucket_size": 1, "refill_tokens": 1, "refill_interval_ms": 60000}, ' +
      '{"name": "api.v6", "scope": "cluster", "match": {"path_prefix": "/api/"}, "key": ["client_ip", "header:x-user"], "requests_per_unit": 10, "unit": "minute"}]}', errors)!;
    expect(errors.summary()).toBe("");
    const stats = new MemoryStats();
    const stage = new RateLimiterStage(cfg, new MapStore(), stats);
    const forged = request([":path", "/api/a", "x-forwarded-for", "2001:db8::1:0:ff, 10.0.0.1", "x-user", "ann", "x-graywall-rl-key-0", "forged", "x-graywall-rl-rule-3", "x"], "10.0.0.1:1");
    expect(stage.onRequest(forged, true)).toBe(Outcome.Continue);
    const writes = new Map<string, string | null>();
    for (let i = 0; i < forged.writeNames.length; i++) writes.set(forged.writeNames[i].name, forged.writeValues[i]);
    expect(writes.get("x-graywall-rl-rule-0")).toBe("api.v6");
    expect(writes.get("x-graywall-rl-key-0")).toBe("2001:db8:0:0:0:1:0:ff|ann");
    expect(writes.has("x-graywall-rl-rule-3")).toBe(true);
    expect(writes.get("x-graywall-rl-rule-3")).toBeNull();
    expect(writes.has("x-graywall-rl-key-1")).toBe(false); // absent: nothing to remove
    expect(stats.value("graywall.rate_limiter.api_v6.cluster_checks")).toBe(1);
    // Outside the rule's match a client's copy is removed, not passed on.
    const outside = request([":path", "/shop", "x-forwarded-for", "192.0.2.10, 10.0.0.1", "x-graywall-rl-key-0", "forged"], "10.0.0.1:1");
    expect(stage.onRequest(outside, true)).toBe(Outcome.Continue);
    expect(outside.writeNames.length).toBe(1);
    expect(outside.writeValues[0]).toBeNull();
    // The local rule in the same document is the first line: its 429 ends the pass before any hand-off.
    const second = request([":path", "/api/a", "x-forwarded-for", "192.0.2.10, 10.0.0.1", "x-user", "ann"], "10.0.0.1:1");
    expect(stage.onRequest(second, true)).toBe(Outcome.Reply);
    // Keys are text: a dotted IPv4 address.
    const v4 = request([":path", "/api/b", "x-forwarded-for", "192.0.2.200, 10.0.0.1", "x-user", "bo"], "10.0.0.1:1");
    stage.onRequest(v4, true);
    expect(v4.writeValues[1]).toBe("192.0.2.200|bo");
  });
  it("rate_limiter: cluster rules are checked field by field", () => {
    const errors = new ConfigErrors();
    expect(compileRateLimitConfig('{"rules": [' +
      '{"name": "a b", "scope": "cluster", "key": ["path"], "unit": "week", "refill_tokens": 1}, ' +
      '{"name": "c", "key": ["path"], "bucket_size": 1, "requests_per_unit": 5}, ' +
      '{"name": "d", "scope": "global", "key": ["path"], "bucket_size": 1}]}', errors)).toBeNull();
    expect(errors.list[0]).toBe("rules[0].name: a cluster rule's name goes in a request header and the ratelimit service's config: use letters, digits, '-', '_' and '.'");
    expect(errors.list[1]).toBe("rules[0].requests_per_unit: is required for scope 'cluster'");
    expect(errors.list[2]).toBe("rules[0].unit: must be one of second, minute, hour, day, got 'week'");
    expect(errors.list[3]).toBe("rules[0].refill_tokens: needs bucket_size (a cluster rule has a local bucket only when bucket_size is given)");
    expect(errors.list[4]).toBe("rules[1].requests_per_unit: only for scope 'cluster' (a local rule is a token bucket: bucket_size, refill_tokens)");
    expect(errors.list[5]).toBe("rules[2].scope: must be one of local, cluster, got 'global'");
    const many = new ConfigErrors();
    let rules = "";
    for (let i = 0; i < 5; i++) rules += (i > 0 ? ", " : "") + '{"name": "r' + i.toString() + '", "scope": "cluster", "key": ["path"], "requests_per_unit": 1}';
    expect(compileRateLimitConfig('{"rules": [' + rules + "]}", many)).toBeNull();
    expect(many.summary()).toBe("rules[4].scope: at most 4 rules may have scope 'cluster'");
  });
  it("gray_router: waits for the body only when a body rule is reached", () => {
    const errors = new ConfigErrors();
    const cfg = compileGrayConfig('{"rules": [{"name": "h", "target": "canary", "match": {"headers": [{"name": "x-g", "exact": "b"}]}}, {"name": "j", "target": "canary", "match": {"body": [{"path": "tier", "exact": "gold"}]}}]}', errors)!;
    const stage = new GrayRouterStage(cfg, new MemoryStats());
    const byHeader = request(["x-g", "b"], "");
    expect(stage.onRequest(byHeader, false)).toBe(Outcome.Continue);
    expect(byHeader.writeValues[0]).toBe("canary");
    const byBody = request(["content-length", "16"], "");
    expect(stage.onRequest(byBody, false)).toBe(Outcome.NeedBody);
    expect(byBody.writeNames.length).toBe(0);
    expect(stage.onBody(byBody, String.UTF8.encode('{"tier": "gold"}'))).toBe(Outcome.Continue);
    expect(byBody.writeValues[0]).toBe("canary");
    // A body announced over max_body_bytes is not waited for: Envoy would buffer it into a 413.
    const announced = request(["content-length", "65537"], "");
    expect(stage.onRequest(announced, false)).toBe(Outcome.Continue);
    // The default target goes without the routing header (mark_default is off).
    expect(announced.writeNames.length).toBe(0);
    expect(stage.targets[announced.routedTarget]).toBe("stable");
    const within = request(["content-length", "65536"], "");
    expect(stage.onRequest(within, false)).toBe(Outcome.NeedBody);
    // Chunked (no length): never held, since Envoy could answer 413 while buffering it.
    const chunked = request(["transfer-encoding", "chunked"], "");
    expect(stage.onRequest(chunked, false)).toBe(Outcome.Continue);
    expect(stage.targets[chunked.routedTarget]).toBe("stable");
    const tooLarge = request(["content-length", "100"], "");
    stage.onRequest(tooLarge, false);
    stage.onBody(tooLarge, null);
    expect(stage.targets[tooLarge.routedTarget]).toBe("stable");
  });
});

describe("graywall configuration", () => {
  it("compiles each section with its filter's compiler; errors name the section", () => {
    const errors = new ConfigErrors();
    expect(compileGraywallConfig('{"ip_list": {"deny": ["x"]}, "gray_router": {"default_target": ""}, "rate": 1}', errors)).toBeNull();
    expect(errors.list).toStrictEqual([
      "rate: unknown field",
      "ip_list.deny[0]: invalid IP or CIDR 'x'",
      "gray_router.default_target: must be 1-64 characters of a-z, 0-9, '-', '_', '.'",
    ]);
  });
  it("runs the present sections in pass order; a missing section turns its stage off", () => {
    const errors = new ConfigErrors();
    const stages = compileGraywallStages('{"gray_router": {}, "ip_list": {}}', errors, new MapStore(), new MemoryStats())!;
    expect(stages.length).toBe(2);
    expect(stages[0] instanceof IpListStage).toBe(true);
    expect(stages[1] instanceof GrayRouterStage).toBe(true);
  });
});

/** A length-delimited protobuf field. */
function ld(fieldNo: i32, payload: u8[]): u8[] {
  const out: u8[] = [<u8>((fieldNo << 3) | 2), <u8>payload.length];
  for (let i = 0; i < payload.length; i++) out.push(payload[i]);
  return out;
}

function ascii(s: string): u8[] {
  const out: u8[] = [];
  for (let i = 0; i < s.length; i++) out.push(<u8>s.charCodeAt(i));
  return out;
}

/** envoy.config.core.v3.Metadata with filter_metadata[ns].fields[key] = string value. */
function hostMetadata(ns: string, key: string, value: string): ArrayBuffer {
  const v = ld(3, ascii(value)); // Value.string_value
  const structEntry = ld(1, ascii(key)).concat(ld(2, v));
  const struct = ld(1, structEntry); // Struct.fields
  const mdEntry = ld(1, ascii(ns)).concat(ld(2, struct));
  const md = ld(1, mdEntry); // Metadata.filter_metadata
  const buf = new ArrayBuffer(md.length);
  for (let i = 0; i < md.length; i++) store<u8>(changetype<usize>(buf) + <usize>i, md[i]);
  return buf;
}

describe("where a request really went", () => {
  it("reads filter_metadata[ns].fields[key] from host metadata; anything else reads as absent", () => {
    expect(metadataString(hostMetadata("graywall", "target", "canary"), "graywall", "target")).toBe("canary");
    expect(metadataString(hostMetadata("graywall", "target", "canary"), "graywall", "other")).toBeNull();
    expect(metadataString(hostMetadata("istio", "target", "canary"), "graywall", "target")).toBeNull();
    const cut = hostMetadata("graywall", "target", "canary").slice(0, 12);
    expect(metadataString(cut, "graywall", "target")).toBeNull();
    expect(metadataString(new ArrayBuffer(0), "graywall", "target")).toBeNull();
  });

  it("gray_router reports the target that served, and counts a fallback apart", () => {
    const errors = new ConfigErrors();
    const cfg = compileGrayConfig('{"response_header": "x-routed-to", "rules": [{"name": "b", "target": "canary", "match": {"headers": [{"name": "x-g", "exact": "b"}]}}]}', errors)!;
    const stats = new MemoryStats();
    const stage = new GrayRouterStage(cfg, stats);
    const r = request(["x-g", "b"], "");
    stage.onRequest(r, true);
    r.servedMetadata = hostMetadata("graywall", "target", "stable"); // canary ejected: the aggregate served stable
    stage.onResponse(r);
    expect(r.responseValues[0]).toBe("stable");
    expect(stats.value("graywall.gray_router.target.canary.routed")).toBe(1);
    expect(stats.value("graywall.gray_router.target.canary.fell_back")).toBe(1);
    expect(stats.value("graywall.gray_router.target.stable.served")).toBe(1);
    const ok = request(["x-g", "b"], "");
    stage.onRequest(ok, true);
    ok.servedMetadata = hostMetadata("graywall", "target", "canary");
    stage.onResponse(ok);
    expect(ok.responseValues[0]).toBe("canary");
    expect(stats.value("graywall.gray_router.target.canary.served")).toBe(1);
    expect(stats.value("graywall.gray_router.target.canary.fell_back")).toBe(1);
  });
});
