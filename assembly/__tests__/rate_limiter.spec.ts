import { ConfigErrors } from "../common/lib/config";
import { BucketSpec, BucketState, fullBucket, take, TakeResult } from "../common/lib/token_bucket";
import { compileRateLimitConfig } from "../rate_limiter/config";
import { SlotTable, UpdateStatus } from "../common/lib/slot_table";
import { BucketUpdate, BUCKET_PAYLOAD } from "../rate_limiter/bucket_update";
import { MapStore } from "./map_store";
import { fmix32, fnv1a, FNV_OFFSET } from "../common/lib/hash";

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

function table(store: MapStore, size: f64, idleMs: i64, slots: i32): SlotTable {
  return new SlotTable(store, "t", slots, BUCKET_PAYLOAD, idleMs);
}

/** The first slot a key probes (keys here are ASCII, so UTF-16 and UTF-8 hashes agree). */
function homeSlot(k: string, slots: i32): u32 {
  return fmix32(fnv1a(FNV_OFFSET, k)) % <u32>slots;
}

/** Shared data where another worker's table updates the same key just before this worker's first create. */
class RacingStore extends MapStore {
  racer: SlotTable | null = null;
  raced: bool = false;
  set(key: ArrayBuffer, ptr: usize, size: i32, cas: u32): u32 {
    const racer = this.racer;
    if (racer !== null && !this.raced) {
      this.raced = true;
      racer.update("k", 0, bucket(3));
    }
    return super.set(key, ptr, size, cas);
  }
}

function bucket(size: f64): BucketUpdate {
  const u = new BucketUpdate();
  u.spec = new BucketSpec(size, size, 1000);
  return u;
}

describe("slot table with token buckets", () => {
  it("keeps keys apart and counts each exactly", () => {
    const store = new MapStore();
    const t = table(store, 3, 60000, 64);
    // A table costs nothing until used: a slot is created when a key first lands in it.
    expect(store.keys.length).toBe(0);
    expect(t.update("carol", 1000, bucket(3))).toBe(UpdateStatus.Updated);
    expect(store.keys.length).toBe(1);
    expect(store.keys[0].startsWith("graywall.t.t.")).toBe(true);
    // A second VM's table over the same slots creates, overwrites and reads nothing until used.
    const snapshot = store.values.map<string>((v) => String.UTF8.decode(v));
    const reads = store.reads;
    table(store, 3, 60000, 64);
    expect(store.keys.length).toBe(1);
    expect(store.reads).toBe(reads);
    expect(String.UTF8.decode(store.values[0])).toBe(snapshot[0]);
    const u = bucket(3);
    let a = 0;
    let b = 0;
    for (let i = 0; i < 10; i++) {
      expect(t.update("alice", 1000, u)).toBe(UpdateStatus.Updated);
      if (u.result.allowed) a++;
      expect(t.update("bob", 1000, u)).toBe(UpdateStatus.Updated);
      if (u.result.allowed) b++;
    }
    expect(a).toBe(3);
    expect(b).toBe(3);
  });

  it("two workers creating one slot at once: the later create is refused and re-read, no update lost", () => {
    const store = new RacingStore();
    const mine = table(store, 3, 60000, 8);
    const theirs = table(store, 3, 60000, 8);
    store.racer = theirs;
    const u = bucket(3);
    // Between this worker's read (no slot yet) and its create, the other worker creates the slot for the same key.
    expect(mine.update("k", 0, u)).toBe(UpdateStatus.Updated);
    expect(store.raced).toBe(true);
    expect(store.keys.length).toBe(1);
    expect(u.result.remaining).toBe(1); // a token each: both updates counted
    expect(mine.update("k", 0, u)).toBe(UpdateStatus.Updated);
    expect(u.result.remaining).toBe(0);
    expect(mine.update("k", 0, u)).toBe(UpdateStatus.Updated);
    expect(u.result.allowed).toBe(false);
  });

  it("leases only while 16 more leases' worth are left after the lease", () => {
    const t = table(new MapStore(), 4, 60000, 8);
    const u = bucket(1100);
    u.spec = new BucketSpec(1100, 0.001, 1000);
    u.maxTake = 64;
    t.update("big", 0, u);
    expect(u.leased).toBe(63); // worker_lease 64: the request's own token and 63; 1,036 left >= 16 x 63
    t.update("big", 0, u);
    expect(u.leased).toBe(0); // 1,035 left: 972 after a lease, under 16 x 63
    u.maxTake = 8;
    t.update("big", 0, u);
    expect(u.leased).toBe(7); // a smaller worker_lease leases on
    // A bucket of 1,071 or fewer tokens (with the default worker_lease) never leases: exact to the request.
    const exact = bucket(1071);
    exact.spec = new BucketSpec(1071, 0.001, 1000);
    exact.maxTake = 64;
    t.update("exact", 0, exact);
    expect(exact.result.allowed).toBe(true);
    expect(exact.leased).toBe(0);
    const edge = bucket(1072);
    edge.spec = new BucketSpec(1072, 0.001, 1000);
    edge.maxTake = 64;
    t.update("edge", 0, edge);
    expect(edge.leased).toBe(63);
  });

  it("retries on CAS conflicts without losing or double-counting a token", () => {
    const store = new MapStore();
    const t = table(store, 3, 60000, 8);
    const u = bucket(3);
    expect(t.update("k", 0, u)).toBe(UpdateStatus.Updated);
    store.conflicts = 5;
    expect(t.update("k", 0, u)).toBe(UpdateStatus.Updated);
    expect(u.result.remaining).toBe(1);
    // Losing every CAS is contention, never a full table (which when_full: deny would answer with 429).
    store.conflicts = 1000;
    expect(t.update("k", 0, u)).toBe(UpdateStatus.Contended);
  });

  it("a key keeps its one record when a slot probed before its own is freed: no second bucket", () => {
    const slots = 8;
    // b's home slot is a's, so b lives one probe further on.
    let b = "";
    for (let i = 0; b.length == 0; i++) if (homeSlot("b" + i.toString(), slots) == homeSlot("a", slots)) b = "b" + i.toString();
    const store = new MapStore();
    const t = table(store, 1, 5000, slots);
    const u = new BucketUpdate();
    u.spec = new BucketSpec(1, 1, 60000); // one token a minute
    expect(t.update("a", 0, u)).toBe(UpdateStatus.Updated);
    expect(t.update(b, 4000, u)).toBe(UpdateStatus.Updated);
    expect(u.result.allowed).toBe(true);
    expect(t.sweep(6000, slots)).toBe(1); // frees a's slot, the first one b probes
    expect(t.update(b, 6000, u)).toBe(UpdateStatus.Updated);
    expect(u.result.allowed).toBe(false); // b's bucket is still empty, not a fresh one in a's old slot
  });

  it("is full when every probed slot holds a live key, and reclaims idle ones", () => {
    const store = new MapStore();
    const t = table(store, 1, 5000, 2);
    const u = bucket(1);
    expect(t.update("a", 0, u)).toBe(UpdateStatus.Updated);
    expect(t.update("b", 0, u)).toBe(UpdateStatus.Updated);
    expect(t.update("c", 100, u)).toBe(UpdateStatus.TableFull);
    // After the idle timeout, c takes over a slot with a fresh bucket.
    expect(t.update("c", 6000, u)).toBe(UpdateStatus.Updated);
    expect(u.result.allowed).toBe(true);
  });

  it("sweeps idle slots free", () => {
    const store = new MapStore();
    const t = table(store, 1, 5000, 4);
    const u = bucket(1);
    t.update("a", 0, u);
    t.update("b", 4000, u);
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
    expect(errors.list[0]).toBe("rules[0].key[0]: 'ip' is not one of client_ip, consumer, path, route, method, header:<name>");
    expect(errors.list[1]).toBe("rules[0].bucket_size: must be between 1 and 1000000000, got 0");
    expect(errors.list[2]).toBe("rules[1].idle_timeout_ms: must be at least the time to refill a full bucket (100000 ms)");
    expect(errors.list[3]).toBe("speed: unknown field");
  });
});
