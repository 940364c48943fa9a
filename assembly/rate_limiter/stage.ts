// rate_limiter's decision: every rule that applies takes a token from its key's bucket; the first empty
// bucket of an enforced rule answers 429. Buckets live in shared data (SlotTable), exact across workers.
import { KeyBuilder } from "../common/request/key_builder";
import { HeaderName, METHOD, PATH, RequestSnapshot } from "../common/request/snapshot";
import { SharedStore, SlotTable, UpdateStatus } from "../common/lib/slot_table";
import { LocalReply, Outcome, Stage, StatSink } from "../common/request/stage";
import { statName } from "../common/lib/stat_name";
import { fmix32, fnv1a, FNV_OFFSET } from "../common/lib/hash";
import { KeyKind, LimitRule, MAX_CLUSTER_RULES, RateLimitConfig } from "./config";
import { BucketUpdate, BUCKET_PAYLOAD } from "./bucket_update";
import { LEASE_TTL_MS, WorkerLeases } from "./leases";

const SWEEP_BATCH = 2000;
/** Expired leases given back per rule per tick; any beyond wait for the next tick. */
const GIVE_BACK_BATCH = 256;

export const LIMIT = new HeaderName("ratelimit-limit");
export const REMAINING = new HeaderName("ratelimit-remaining");
export const RESET = new HeaderName("ratelimit-reset");

/**
 * Cluster rules hand their rule name and key to Envoy's native rate-limit filter in these request
 * headers, slot i for the document's i-th cluster rule; the route's rate_limits turn each pair into a
 * descriptor (graywall_rule, graywall_key). Every pass removes the ones a client sent.
 */
export const CLUSTER_RULE_HEADERS: HeaderName[] = [];
/** What every hand-off header's name starts with: one scan tells whether a client sent any. */
const HANDOFF_PREFIX = String.UTF8.encode("x-graywall-rl-");
export const CLUSTER_KEY_HEADERS: HeaderName[] = [];
for (let i = 0; i < MAX_CLUSTER_RULES; i++) {
  CLUSTER_RULE_HEADERS.push(new HeaderName("x-graywall-rl-rule-" + i.toString()));
  CLUSTER_KEY_HEADERS.push(new HeaderName("x-graywall-rl-key-" + i.toString()));
}

/** One rule with its table, header names and stats, built once per configuration. */
class RuleState {
  /** The local reply's details (Envoy's access log): which rule limited the request. */
  details: string = "";
  /** The rule's buckets; null for a cluster rule without a local bucket. */
  table: SlotTable | null = null;
  /** This worker's leases on the rule's buckets; null when worker_lease is 1. */
  leases: WorkerLeases | null = null;
  bucket: BucketUpdate = new BucketUpdate();
  keyNames: Array<HeaderName | null> = [];
  allowed: u32;
  limited: u32;
  shadowLimited: u32;
  tableFull: u32;
  clusterChecks: u32;
  limitHeader: string;

  /** `base`: the rule's first slot in the limiter's one pool ("rl"), so a later configuration reuses the slots. */
  constructor(public rule: LimitRule, public index: i32, maxKeys: i32, base: i32, workerLease: i32, store: SharedStore, stats: StatSink) {
    this.limitHeader = (<i64>rule.spec.size).toString();
    if (rule.hasBucket) this.table = new SlotTable(store, "rl", maxKeys, BUCKET_PAYLOAD, rule.idleMs, base, ruleTag(rule));
    if (rule.hasBucket && workerLease > 1) this.leases = new WorkerLeases(workerLease);
    this.bucket.spec = rule.spec;
    for (let i = 0; i < rule.key.length; i++) {
      if (rule.key[i].kind == KeyKind.Header) this.keyNames.push(new HeaderName(rule.key[i].name));
      else this.keyNames.push(null);
    }
    const prefix = "graywall.rate_limiter." + statName(rule.name) + ".";
    this.details = "graywall_rate_limited." + statName(rule.name);
    this.allowed = stats.tally(prefix + "allowed");
    this.limited = stats.counter(prefix + "limited");
    this.shadowLimited = stats.counter(prefix + "shadow_limited");
    this.tableFull = stats.counter(prefix + "table_full");
    this.clusterChecks = rule.clusterSlot >= 0 ? stats.counter(prefix + "cluster_checks") : 0;
  }
}

/**
 * A rule's records' tag, from its name: a record is never read by a rule of another name (its slot is
 * taken over as free instead), while a rule whose limit changes keeps its clients' buckets. Never 0.
 */
function ruleTag(rule: LimitRule): u32 {
  const h = fmix32(fnv1a(FNV_OFFSET, rule.name));
  return h == 0 ? 1 : h;
}

/** Bytes of a request path before its query string or fragment. */
function pathLength(ptr: usize, len: i32): i32 {
  for (let i = 0; i < len; i++) {
    const c = load<u8>(ptr + <usize>i);
    if (c == 0x3f || c == 0x23) return i;
  }
  return len;
}

/** Whole seconds, rounded up, at least 1 for any wait (HTTP delays are integers). */
export function seconds(ms: i64): string {
  if (ms <= 0) return "0";
  return ((ms + 999) / 1000).toString();
}

export class RateLimiterStage extends Stage {
  rules: RuleState[] = [];
  key: KeyBuilder = new KeyBuilder();
  /** Cluster rules' keys, as text for a request header. */
  textKey: KeyBuilder = new KeyBuilder();
  contended: u32;
  lastSweepMs: i64 = 0;

  constructor(public cfg: RateLimitConfig, store: SharedStore, public stats: StatSink) {
    super();
    let base = 0;
    for (let i = 0; i < cfg.rules.length; i++) {
      const rule = cfg.rules[i];
      this.rules.push(new RuleState(rule, i, cfg.maxKeys, base, cfg.workerLease, store, stats));
      if (rule.hasBucket) base += cfg.maxKeys;
      for (let k = 0; k < rule.key.length; k++) {
        if (rule.key[k].kind == KeyKind.Route) this.needsRouteName = true;
      }
    }
    this.contended = stats.counter("graywall.rate_limiter.contended");
    this.needsClock = cfg.rules.length > 0;
    this.tickMs = <u32>cfg.sweepIntervalMs;
    // Expired leases go back to the shared buckets within a lease's lifetime.
    if (cfg.workerLease > 1 && <i64>this.tickMs > LEASE_TTL_MS) this.tickMs = <u32>LEASE_TTL_MS;
  }

  applies(rs: RuleState, req: RequestSnapshot): bool {
    const rule = rs.rule;
    if (rule.pathPrefix.length > 0) {
      const i = req.find(PATH);
      if (i < 0 || !req.valueAt(i).startsWith(rule.pathPrefix)) return false;
    }
    if (rule.methods.length > 0) {
      const m = req.header(METHOD);
      if (m === null || !rule.methods.includes(m)) return false;
    }
    return rule.headers.length == 0 || this.cfg.headerTests.holds(req, rs.index);
  }

  /**
   * Builds the rule's key into this.key (or, `text`, into this.textKey with the address as text); false
   * when a part it needs is absent (the rule then does not apply).
   */
  keyFor(rs: RuleState, req: RequestSnapshot, text: bool): bool {
    let key = this.key;
    if (text) key = this.textKey;
    key.reset();
    const parts = rs.rule.key;
    for (let i = 0; i < parts.length; i++) {
      if (i > 0) key.addByte(0x7c); // '|' between parts
      const kind = unchecked(parts[i]).kind;
      if (kind == KeyKind.ClientIp) {
        const ip = req.clientIp(this.cfg.clientSource);
        if (ip === null) return false;
        if (text) key.addIpText(ip);
        else key.addIp(ip);
      } else if (kind == KeyKind.Header) {
        const h = req.find(unchecked(rs.keyNames[i])!);
        if (h < 0) return false;
        key.addBytes(req.valuePtr(h), req.valueLength(h));
      } else if (kind == KeyKind.Path) {
        const h = req.find(PATH);
        if (h >= 0) key.addBytes(req.valuePtr(h), pathLength(req.valuePtr(h), req.valueLength(h)));
      } else if (kind == KeyKind.Consumer) {
        // The access stage's verified consumer: an anonymous request has none, and the rule skips it.
        const c = req.consumer;
        if (c === null) return false;
        key.addString(c);
      } else if (kind == KeyKind.Method) {
        const h = req.find(METHOD);
        if (h >= 0) key.addBytes(req.valuePtr(h), req.valueLength(h));
      } else {
        const route = req.routeName;
        if (route !== null) key.addString(route);
      }
    }
    return true;
  }

  onRequest(req: RequestSnapshot, endOfStream: bool): Outcome {
    const rules = this.rules;
    // The tightest allowed outcome, for the response's RateLimit-* headers.
    let tightest: RuleState | null = null;
    let remaining: i64 = -1;
    let reset: i64 = 0;
    this.cfg.headerTests.begin();
    // Bit i: cluster slot i was written for this request.
    let clusterWritten = 0;
    for (let i = 0; i < rules.length; i++) {
      const rs = unchecked(rules[i]);
      if (!this.applies(rs, req)) continue;
      const slot = rs.rule.clusterSlot;
      if (slot >= 0 && this.keyFor(rs, req, true)) {
        req.setRequestHeader(unchecked(CLUSTER_RULE_HEADERS[slot]), rs.rule.name);
        req.setRequestHeader(unchecked(CLUSTER_KEY_HEADERS[slot]), this.textKey.toText());
        clusterWritten |= 1 << slot;
        this.stats.inc(rs.clusterChecks);
      }
      const table = rs.table;
      if (table === null) continue;
      if (!this.keyFor(rs, req, false)) continue;
      const bucket = rs.bucket;
      const leases = rs.leases;
      bucket.giveBack = 0;
      bucket.maxTake = 1;
      if (leases !== null) {
        // A token of this worker's live lease: no round trip.
        if (leases.claim(this.key.ptr, this.key.length, req.nowMs)) {
          this.stats.inc(rs.allowed);
          const l = leases.last!;
          const left = l.sharedRemaining + <i64>l.tokens;
          if (remaining < 0 || left < remaining) {
            tightest = rs;
            remaining = left;
            reset = <i64>Math.ceil((rs.rule.spec.size - <f64>left) / rs.rule.spec.rate);
          }
          continue;
        }
        bucket.giveBack = leases.leftover;
        if (leases.hasRoom(this.key.length)) bucket.maxTake = leases.maxTokens;
      }
      const status = table.updateBytes(this.key.ptr, this.key.length, req.nowMs, bucket);
      const result = bucket.result;
      if (status == UpdateStatus.Contended) {
        this.stats.inc(this.contended);
        continue;
      }
      if (status == UpdateStatus.TableFull) {
        this.stats.inc(rs.tableFull);
        if (this.cfg.allowWhenFull || rs.rule.shadow) continue;
        return this.deny(req, rs, 1000, 1000);
      }
      if (result.allowed) {
        this.stats.inc(rs.allowed);
        if (leases !== null && status == UpdateStatus.Updated && bucket.leased > 0) {
          leases.put(this.key.ptr, this.key.length, bucket.leased, req.nowMs, result.remaining - <i64>bucket.leased);
        }
        if (remaining < 0 || result.remaining < remaining) {
          tightest = rs;
          remaining = result.remaining;
          reset = result.resetMs;
        }
        continue;
      }
      if (rs.rule.shadow) {
        this.stats.inc(rs.shadowLimited);
        continue;
      }
      this.stats.inc(rs.limited);
      return this.deny(req, rs, result.retryAfterMs, result.resetMs);
    }
    // A client's copies are removed, whatever the rules: a hand-off header reaches no upstream and no
    // descriptor unless this stage wrote it. One pass over the names finds whether there are any (there
    // rarely are).
    if (req.hasNamePrefix(HANDOFF_PREFIX)) {
      for (let slot = 0; slot < MAX_CLUSTER_RULES; slot++) {
        if ((clusterWritten & (1 << slot)) != 0) continue;
        req.setRequestHeader(unchecked(CLUSTER_RULE_HEADERS[slot]), null);
        req.setRequestHeader(unchecked(CLUSTER_KEY_HEADERS[slot]), null);
      }
    }
    if (this.cfg.responseHeaders && tightest !== null) {
      req.setResponseHeader(LIMIT, tightest.limitHeader);
      req.setResponseHeader(REMAINING, remaining.toString());
      req.setResponseHeader(RESET, seconds(reset));
    }
    return Outcome.Continue;
  }

  deny(req: RequestSnapshot, rs: RuleState, retryAfterMs: i64, resetMs: i64): Outcome {
    req.reply = new LocalReply(<u32>this.cfg.status, rs.details, this.cfg.body, [
      "retry-after", seconds(retryAfterMs),
      "ratelimit-limit", rs.limitHeader,
      "ratelimit-remaining", "0",
      "ratelimit-reset", seconds(resetMs),
      "content-type", "text/plain",
    ]);
    return Outcome.Reply;
  }

  onTick(nowMs: i64): void {
    for (let i = 0; i < this.rules.length; i++) this.giveBack(this.rules[i], nowMs);
    if (nowMs - this.lastSweepMs < <i64>this.cfg.sweepIntervalMs && nowMs >= this.lastSweepMs) return;
    this.lastSweepMs = nowMs;
    for (let i = 0; i < this.rules.length; i++) {
      const table = this.rules[i].table;
      if (table !== null) table.sweep(nowMs, SWEEP_BATCH);
    }
  }

  /** Puts what expired leases hold back into their shared buckets. */
  giveBack(rs: RuleState, nowMs: i64): void {
    const leases = rs.leases;
    const table = rs.table;
    if (leases === null || table === null) return;
    const done = leases.expired(nowMs, GIVE_BACK_BATCH);
    const bucket = rs.bucket;
    for (let i = 0; i < done.length; i++) {
      const l = done[i];
      if (l.tokens <= 0) continue;
      bucket.giveBack = l.tokens;
      bucket.taking = false;
      table.updateBytes(changetype<usize>(l.key), l.key.byteLength, nowMs, bucket);
    }
    bucket.giveBack = 0;
    bucket.taking = true;
  }
}
