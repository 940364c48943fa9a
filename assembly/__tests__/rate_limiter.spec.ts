import { ConfigErrors } from "../common/config";
import { SharedValue } from "../common/shared";
import { BucketSpec, BucketState, fullBucket, take, TakeResult } from "../common/token_bucket";
import { compileRateLimitConfig, LimitRule, RateLimitConfig } from "../rate_limiter/config";
import { SharedStore, SlotTable, TakeStatus } from "../rate_limiter/table";
import { decodeSlot, encodeSlot, Slot } from "../rate_limiter/slot";

const out = new TakeResult();

describe("token bucket", () => {
  it("lets a burst of bucket_size through, then refuses", () => {
    const spec = new BucketSpec(5, 5, 1000);
    const s = fullBucket(spec, 0);
    for (let i = 0; i < 5; i++) {
      take(spec, s, 0, out);
      expect(out.allowed).toBe(true);
      expect(out.remaining).toBe(4 - i);
    }
    take(spec, s, 0, out);
    expect(out.allowed).toBe(false);
    expect(out.retryAfterMs).toBe(200);
    expect(out.resetMs).toBe(1000);
  });

  it("refills by elapsed time, fractionally, capped at the size", () => {
    const spec = new BucketSpec(10, 1, 300); // one token per 300 ms
    const s = new BucketState();
    s.tokens = 0;
    s.updatedMs = 1000;
    take(spec, s, 1150, out); // half a token earned
    expect(out.allowed).toBe(false);
    take(spec, s, 1300, out); // one whole token
    expect(out.allowed).toBe(true);
    expect(out.remaining).toBe(0);
    take(spec, s, 1000000, out);
    expect(out.remaining).toBe(9);
  });

  it("earns nothing while the clock goes backwards", () => {
    const spec = new BucketSpec(2, 2, 1000);
    const s = fullBucket(spec, 5000);
    take(spec, s, 5000, out);
    take(spec, s, 5000, out);
    take(spec, s, 1000, out); // clock jumped back 4 s
    expect(out.allowed).toBe(false);
    expect(s.updatedMs).toBe(5000);
    take(spec, s, 5400, out); // 400 ms after the latest time seen: 0.8 tokens
    expect(out.allowed).toBe(false);
    take(spec, s, 5500, out);
    expect(out.allowed).toBe(true);
  });
});

/** Shared data as Envoy keeps it: a CAS counter per write; `conflicts` forces that many mismatches. */
class MapStore extends SharedStore {
  keys: string[] = [];
  values: ArrayBuffer[] = [];
  cas: u32[] = [];
  next: u32 = 1;
  conflicts: i32 = 0;

  get(key: ArrayBuffer): SharedValue {
    const i = this.keys.indexOf(String.UTF8.decode(key));
    if (i < 0) return new SharedValue(null, 0);
    return new SharedValue(this.values[i].slice(0), this.cas[i]);
  }
  set(key: ArrayBuffer, value: ArrayBuffer, cas: u32): u32 {
    const k = String.UTF8.decode(key);
    const i = this.keys.indexOf(k);
    if (i >= 0 && cas != 0 && (cas != this.cas[i] || this.conflicts > 0)) {
      if (this.conflicts > 0) this.conflicts--;
      return 8;
    }
    if (i < 0) {
      this.keys.push(k);
      this.values.push(value.slice(0));
      this.cas.push(this.next++);
    } else {
      this.values[i] = value.slice(0);
      this.cas[i] = this.next++;
    }
    return 0;
  }
}

function rule(size: f64, idleMs: i64): LimitRule {
  const r = new LimitRule();
  r.name = "t";
  r.spec = new BucketSpec(size, size, 1000);
  r.idleMs = idleMs;
  return r;
}

describe("slot table", () => {
  it("encodes and decodes a slot", () => {
    const st = new BucketState();
    st.tokens = 2.5;
    st.updatedMs = 123456789;
    const s = new Slot();
    decodeSlot(encodeSlot(st, "10.0.0.1|GET"), s);
    expect(s.state.tokens).toBe(2.5);
    expect(s.state.updatedMs).toBe(123456789);
    expect(s.key).toBe("10.0.0.1|GET");
  });

  it("keeps keys apart and counts each exactly", () => {
    const store = new MapStore();
    const t = new SlotTable(store, rule(3, 60000), 64);
    t.ensureSlots();
    expect(store.keys.length).toBe(64);
    let a = 0;
    let b = 0;
    for (let i = 0; i < 10; i++) {
      expect(t.take("alice", 1000, out)).toBe(TakeStatus.Taken);
      if (out.allowed) a++;
      expect(t.take("bob", 1000, out)).toBe(TakeStatus.Taken);
      if (out.allowed) b++;
    }
    expect(a).toBe(3);
    expect(b).toBe(3);
  });

  it("retries on CAS conflicts without losing or double-counting a token", () => {
    const store = new MapStore();
    const t = new SlotTable(store, rule(2, 60000), 8);
    t.ensureSlots();
    store.conflicts = 5;
    expect(t.take("k", 0, out)).toBe(TakeStatus.Taken);
    expect(out.remaining).toBe(1);
    store.conflicts = 1000;
    expect(t.take("k", 0, out)).toBe(TakeStatus.TableFull);
  });

  it("is full when every probed slot holds a live key, and reclaims idle ones", () => {
    const store = new MapStore();
    const t = new SlotTable(store, rule(1, 5000), 2);
    t.ensureSlots();
    expect(t.take("a", 0, out)).toBe(TakeStatus.Taken);
    expect(t.take("b", 0, out)).toBe(TakeStatus.Taken);
    expect(t.take("c", 100, out)).toBe(TakeStatus.TableFull);
    // After the idle timeout, c takes over a slot with a fresh bucket.
    expect(t.take("c", 6000, out)).toBe(TakeStatus.Taken);
    expect(out.allowed).toBe(true);
  });

  it("sweeps idle slots free", () => {
    const store = new MapStore();
    const t = new SlotTable(store, rule(1, 5000), 4);
    t.ensureSlots();
    t.take("a", 0, out);
    t.take("b", 4000, out);
    expect(t.sweep(6000, 4)).toBe(1);
    expect(t.sweep(10000, 4)).toBe(1);
    expect(t.sweep(10000, 4)).toBe(0);
  });
});

describe("rate_limiter config", () => {
  it("compiles a full rule", () => {
    const errors = new ConfigErrors();
    const cfg = compileRateLimitConfig('{"rules": [{"name": "api", "match": {"path_prefix": "/api", "methods": ["get"], ' +
      '"headers": [{"name": "x-tenant", "present": true}]}, "key": ["client_ip", "header:X-Api-Key", "path", "route", "method"], ' +
      '"bucket_size": 10, "refill_tokens": 2, "refill_interval_ms": 1000, "mode": "shadow"}], "max_keys": 500, "when_full": "deny"}', errors);
    expect(errors.summary()).toBe("");
    const c = cfg!;
    expect(c.rules[0].methods[0]).toBe("GET");
    expect(c.rules[0].key.length).toBe(5);
    expect(c.rules[0].key[1].name).toBe("x-api-key");
    expect(c.rules[0].shadow).toBe(true);
    expect(c.rules[0].idleMs).toBe(60000);
    expect(c.allowWhenFull).toBe(false);
  });

  it("rejects bad rules with the field named", () => {
    const errors = new ConfigErrors();
    expect(compileRateLimitConfig('{"rules": [{"name": "a", "key": ["ip"], "bucket_size": 0}, ' +
      '{"name": "b", "key": ["path"], "bucket_size": 100, "refill_tokens": 1, "refill_interval_ms": 1000, "idle_timeout_ms": 1000}], "speed": 1}', errors)).toBeNull();
    expect(errors.list[0]).toBe("rules[0].key[0]: 'ip' is not one of client_ip, path, route, method, header:<name>");
    expect(errors.list[1]).toBe("rules[0].bucket_size: must be between 1 and 1000000000, got 0");
    expect(errors.list[2]).toBe("rules[1].idle_timeout_ms: must be at least the time to refill a full bucket (100000 ms)");
    expect(errors.list[3]).toBe("speed: unknown field");
  });
});
