// Counts that add up across a fleet. Each gateway counts, per client key and per network, the distinct
// pages new to its long window; on the tick, each worker sends what it counted since its last tick to
// envoyproxy/ratelimit (the service a fleet runs for cluster-wide limits, Redis behind it) as one
// ShouldRateLimit call over HTTP (`/json`), one descriptor per key with `hits_addend` = the count. The
// service answers each key's fleet-wide total in the current fixed long window (its per-key limit is
// FLEET_LIMIT, so the remaining count says the total); the stage writes the total into the key's record,
// where slow_crawl (and a network's) reads it as if one gateway had seen every page. Nothing of this is
// on the request path: counts are taken when a worker syncs a record, and sent and answered on the root.
// Pure: the host is reached through HostCalls.
import { HostCalls } from "../common/request/stage";
import { JsonKind, JsonParser, JsonValue } from "../common/lib/json";
import { bytesEqual } from "../common/lib/bytes";

/** The ratelimit service's per-key limit for graywall_crawler descriptors (runtime/cluster_limits.ts). */
export const FLEET_LIMIT: i64 = 1000000000;
export const FLEET_DOMAIN = "graywall";
export const FLEET_ENTRY = "graywall_crawler";
export const FLEET_KEY_ENTRY = "graywall_key";
/** Which table a key is of: client records, account records, network records. */
export const KIND_CLIENT: u8 = 0x69; // 'i'
export const KIND_ACCOUNT: u8 = 0x61; // 'a'
export const KIND_NETWORK: u8 = 0x6e; // 'n'
export const KIND_CLEARANCE: u8 = 0x6b; // 'k': page views on a clearance (its budget)
/** Keys counted between two ticks, per worker; more wait for the next tick. */
export const MAX_ENTRIES = 512;
const KEY_BYTES = 32768;
/** Calls awaiting an answer; a tick sends nothing while this many are out. */
const MAX_IN_FLIGHT = 4;
/** The longest wait after failures: 64 ticks (32 s at crawler_score's 500 ms tick). */
const MAX_BACKOFF_TICKS = 64;
const HEX = "0123456789abcdef";

export class FleetSpec {
  /** The Envoy cluster of envoyproxy/ratelimit's HTTP port; "" = fleet counts off. */
  cluster: string = "";
  timeoutMs: i32 = 1000;
}

/** One key's fleet-wide count, from an answer. */
export class FleetCount {
  kind: u8 = 0;
  key: ArrayBuffer = new ArrayBuffer(0);
  index: i64 = 0;
  count: i32 = 0;
}

class Batch {
  token: u32 = 0;
  counts: FleetCount[] = [];
}

/**
 * The ratelimit unit a fixed long window fits in: a window's counter lives in the unit's counter for its
 * key (the key names the window), so the unit must be at least the window; a unit boundary inside a
 * window starts that window's count over (docs/crawler_score.md, Fleets).
 */
export function fleetUnit(longWindowMs: i64): string {
  if (longWindowMs <= 60000) return "minute";
  if (longWindowMs <= 3600000) return "hour";
  return "day";
}

export class FleetCounts {
  /** False once the host refused a call at once (no such cluster): off for this configuration. */
  enabled: bool = true;
  unit: string;
  private keys: ArrayBuffer = new ArrayBuffer(KEY_BYTES);
  private used: i32 = 0;
  private kinds: Uint8Array = new Uint8Array(MAX_ENTRIES);
  private offsets: Int32Array = new Int32Array(MAX_ENTRIES);
  private lengths: Int32Array = new Int32Array(MAX_ENTRIES);
  private deltas: Int32Array = new Int32Array(MAX_ENTRIES);
  private windows: Int64Array = new Int64Array(MAX_ENTRIES);
  private n: i32 = 0;
  private inFlight: Batch[] = [];
  /** Counts not sent: the batch was full. */
  dropped: i32 = 0;
  /** Calls refused, failed or answered with an error. */
  failed: i32 = 0;
  /** Keys sent. */
  sent: i32 = 0;
  /** After a failed call, ticks to wait before the next (doubling to MAX_BACKOFF_TICKS); counts wait meanwhile. */
  private backoff: i32 = 0;
  private skip: i32 = 0;

  constructor(public spec: FleetSpec, public calls: HostCalls, public longWindowMs: i64) {
    this.unit = fleetUnit(longWindowMs);
  }

  get pending(): i32 { return this.n; }

  /** Counts `delta` (new distinct pages; page views on a clearance) for the key of `kind` at `ptr` (`len` bytes). Allocates nothing. */
  add(kind: u8, ptr: usize, len: i32, delta: i32, now: i64): void {
    if (!this.enabled || delta <= 0) return;
    const n = this.n;
    const index = now / this.longWindowMs;
    // The same key again (a client's next page views): one descriptor.
    if (n > 0 && unchecked(this.kinds[n - 1]) == kind && unchecked(this.lengths[n - 1]) == len && unchecked(this.windows[n - 1]) == index &&
      bytesEqual(changetype<usize>(this.keys) + <usize>unchecked(this.offsets[n - 1]), ptr, len)) {
      unchecked((this.deltas[n - 1] += delta));
      return;
    }
    if (n >= MAX_ENTRIES || this.used + len > KEY_BYTES) {
      this.dropped++;
      return;
    }
    memory.copy(changetype<usize>(this.keys) + <usize>this.used, ptr, len);
    unchecked((this.kinds[n] = kind));
    unchecked((this.offsets[n] = this.used));
    unchecked((this.lengths[n] = len));
    unchecked((this.deltas[n] = delta));
    unchecked((this.windows[n] = index));
    this.used += len;
    this.n = n + 1;
  }

  /** On the tick: sends what was counted since the last one, in one call. */
  send(): void {
    if (!this.enabled || this.n == 0 || this.inFlight.length >= MAX_IN_FLIGHT) return;
    if (this.skip > 0) {
      this.skip--;
      return;
    }
    const batch = new Batch();
    let body = '{"domain":"' + FLEET_DOMAIN + '","descriptors":[';
    for (let i = 0; i < this.n; i++) {
      const c = new FleetCount();
      c.kind = this.kinds[i];
      c.key = this.keys.slice(this.offsets[i], this.offsets[i] + this.lengths[i]);
      c.index = this.windows[i];
      batch.counts.push(c);
      if (i > 0) body += ",";
      body += '{"entries":[{"key":"' + FLEET_ENTRY + '","value":"' + this.unit + '"},{"key":"' + FLEET_KEY_ENTRY + '","value":"' +
        descriptorValue(c) + '"}],"hitsAddend":' + this.deltas[i].toString() + "}";
    }
    body += "]}";
    this.sent += this.n;
    this.n = 0;
    this.used = 0;
    const token = this.calls.post(this.spec.cluster, "/json", "application/json", body, <u32>this.spec.timeoutMs);
    if (token == 0) {
      // Refused at once: this Envoy has no such cluster (a gateway outside a fleet). Off until reconfigured.
      this.failed++;
      this.enabled = false;
      return;
    }
    batch.token = token;
    this.inFlight.push(batch);
  }

  /**
   * The fleet-wide counts an answer gives, in the order they were sent; null when `token` is not one of
   * this stage's calls. A failed call or an unreadable answer gives none (and counts as failed).
   */
  take(token: u32, status: i32, body: string | null): FleetCount[] | null {
    let at = -1;
    for (let i = 0; i < this.inFlight.length; i++) if (this.inFlight[i].token == token) at = i;
    if (at < 0) return null;
    const batch = this.inFlight[at];
    this.inFlight.splice(at, 1);
    const none: FleetCount[] = [];
    // 429 is the service's answer when some key is over its limit; the statuses are in the body either way.
    if ((status != 200 && status != 429) || body === null) {
      this.fail();
      return none;
    }
    const doc = new JsonParser(body).parseDocument();
    let statuses: JsonValue | null = null;
    if (doc !== null && doc.kind == JsonKind.Object) statuses = doc.get("statuses");
    if (statuses === null || statuses.kind != JsonKind.Array || statuses.items.length != batch.counts.length) {
      this.fail();
      return none;
    }
    this.backoff = 0;
    for (let i = 0; i < batch.counts.length; i++) {
      const s = statuses.items[i];
      // proto3 JSON leaves a zero out: no limitRemaining means none left.
      let left: JsonValue | null = null;
      if (s.kind == JsonKind.Object) left = s.get("limitRemaining");
      const remaining: i64 = left !== null && left.kind == JsonKind.Number ? <i64>left.num : 0;
      const total = FLEET_LIMIT - remaining;
      batch.counts[i].count = total > <i64>i32.MAX_VALUE ? i32.MAX_VALUE : <i32>total;
    }
    return batch.counts;
  }

  /** A failed call: the service is away or not one (a gateway's own upstream on that port); wait longer each time. */
  private fail(): void {
    this.failed++;
    this.backoff = this.backoff == 0 ? 1 : this.backoff * 2 > MAX_BACKOFF_TICKS ? MAX_BACKOFF_TICKS : this.backoff * 2;
    this.skip = this.backoff;
  }
}

/** A key's descriptor value: its kind, its bytes in hex, and its fixed window ("i04c0a80001...-2833333"). */
export function descriptorValue(c: FleetCount): string {
  const bytes = Uint8Array.wrap(c.key);
  let s = String.fromCharCode(c.kind);
  for (let i = 0; i < bytes.length; i++) s += HEX.charAt(bytes[i] >> 4) + HEX.charAt(bytes[i] & 15);
  return s + "-" + c.index.toString();
}
