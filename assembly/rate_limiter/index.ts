// rate_limiter: token buckets per key in shared data, exact across Envoy's worker threads.
export * from "../common/exports";
import { registerFilter, RootFilter, StreamFilter, HeadersStatus } from "../common/filter";
import {
  MapType, getHeaderEncoded, getPropertyString, sendLocalResponse, defineMetric, incrementMetric, MetricType,
  nowMillis, setTickPeriod, replaceHeader,
} from "../common/host";
import { ConfigErrors } from "../common/config";
import { IpAddr, ipKey } from "../common/ip";
import { METHOD_KEY, PATH_KEY, hostClientIp, statName } from "../common/request";
import { pathOnly } from "../common/http";
import { compileRateLimitConfig, KeyKind, LimitRule, RateLimitConfig } from "./config";
import { SlotTable, UpdateStatus } from "../common/slot_table";
import { hostStore } from "../common/host_store";
import { BucketUpdate, BUCKET_PAYLOAD } from "./bucket_update";

const ROOT_ID = "rate_limiter";
const SWEEP_BATCH = 2000;


class RuleRuntime {
  table: SlotTable;
  bucket: BucketUpdate = new BucketUpdate();
  headerKeys: ArrayBuffer[] = [];
  keyHeaderKeys: ArrayBuffer[] = [];
  allowed: u32;
  limited: u32;
  shadowLimited: u32;
  tableFull: u32;
  limitHeader: string;

  constructor(public rule: LimitRule, maxKeys: i32) {
    this.table = new SlotTable(hostStore, "rl." + rule.name, maxKeys, BUCKET_PAYLOAD, rule.idleMs);
    this.bucket.spec = rule.spec;
    for (let i = 0; i < rule.headers.length; i++) this.headerKeys.push(String.UTF8.encode(rule.headers[i].name));
    for (let i = 0; i < rule.key.length; i++) this.keyHeaderKeys.push(String.UTF8.encode(rule.key[i].name));
    const base = "graywall.rate_limiter." + statName(rule.name) + ".";
    this.allowed = defineMetric(MetricType.Counter, base + "allowed");
    this.limited = defineMetric(MetricType.Counter, base + "limited");
    this.shadowLimited = defineMetric(MetricType.Counter, base + "shadow_limited");
    this.tableFull = defineMetric(MetricType.Counter, base + "table_full");
    this.limitHeader = (<i64>rule.spec.size).toString();
  }
}

class Compiled {
  rules: RuleRuntime[] = [];
  contended: u32 = defineMetric(MetricType.Counter, "graywall.rate_limiter.contended");
  constructor(public cfg: RateLimitConfig) {
    for (let i = 0; i < cfg.rules.length; i++) this.rules.push(new RuleRuntime(cfg.rules[i], cfg.maxKeys));
  }
}

class RateLimitRoot extends RootFilter {
  c: Compiled | null = null;

  configure(config: string): string | null {
    const errors = new ConfigErrors();
    const cfg = compileRateLimitConfig(config, errors);
    if (cfg === null) return errors.summary();
    const c = new Compiled(cfg);
    for (let i = 0; i < c.rules.length; i++) c.rules[i].table.ensureSlots();
    this.c = c;
    setTickPeriod(<u32>cfg.sweepIntervalMs);
    return null;
  }

  onTick(): void {
    const c = this.c;
    if (c === null) return;
    const now = nowMillis();
    for (let i = 0; i < c.rules.length; i++) c.rules[i].table.sweep(now, SWEEP_BATCH);
  }

  newStream(): StreamFilter {
    const c = this.c;
    if (c === null) return new StreamFilter();
    return new RateLimitStream(c);
  }
}

const NOT_FETCHED = "\u0000";
const clientIp = new IpAddr();

class RateLimitStream extends StreamFilter {
  path: string | null = NOT_FETCHED;
  method: string | null = NOT_FETCHED;
  // The tightest allowed outcome, for the response's RateLimit-* headers.
  headerLimit: string = "";
  headerRemaining: i64 = -1;
  headerReset: i64 = 0;

  constructor(public c: Compiled) { super(); }

  getPath(): string {
    if (this.path === NOT_FETCHED) this.path = getHeaderEncoded(MapType.RequestHeaders, PATH_KEY);
    const p = this.path;
    if (p === null) return "";
    return p;
  }

  getMethod(): string {
    if (this.method === NOT_FETCHED) this.method = getHeaderEncoded(MapType.RequestHeaders, METHOD_KEY);
    const m = this.method;
    if (m === null) return "";
    return m;
  }

  applies(rt: RuleRuntime): bool {
    const rule = rt.rule;
    if (rule.pathPrefix.length > 0 && !this.getPath().startsWith(rule.pathPrefix)) return false;
    if (rule.methods.length > 0 && !rule.methods.includes(this.getMethod())) return false;
    for (let i = 0; i < rule.headers.length; i++) {
      if (!rule.headers[i].test(getHeaderEncoded(MapType.RequestHeaders, rt.headerKeys[i]))) return false;
    }
    return true;
  }

  /** The bucket key, or null when a header it needs is absent (the rule then does not apply). */
  keyFor(rt: RuleRuntime): string | null {
    let key = "";
    const parts = rt.rule.key;
    for (let i = 0; i < parts.length; i++) {
      if (i > 0) key += "|";
      const kind = parts[i].kind;
      if (kind == KeyKind.ClientIp) {
        if (!hostClientIp(this.c.cfg.xffTrustedHops, clientIp)) return null;
        key += ipKey(clientIp);
      } else if (kind == KeyKind.Header) {
        const v = getHeaderEncoded(MapType.RequestHeaders, rt.keyHeaderKeys[i]);
        if (v === null) return null;
        key += v;
      } else if (kind == KeyKind.Path) {
        key += pathOnly(this.getPath());
      } else if (kind == KeyKind.Method) {
        key += this.getMethod();
      } else {
        const route = getPropertyString("route_name");
        if (route !== null) key += route;
      }
    }
    return key;
  }

  onRequestHeaders(headerCount: u32, endOfStream: bool): HeadersStatus {
    const rules = this.c.rules;
    let now: i64 = -1; // read once, and only when some rule applies
    for (let i = 0; i < rules.length; i++) {
      const rt = rules[i];
      if (!this.applies(rt)) continue;
      const key = this.keyFor(rt);
      if (key === null) continue;
      if (now < 0) now = nowMillis();
      const status = rt.table.update(key, now, rt.bucket);
      const result = rt.bucket.result;
      if (status == UpdateStatus.Contended) {
        incrementMetric(this.c.contended);
        continue;
      }
      if (status == UpdateStatus.TableFull) {
        incrementMetric(rt.tableFull);
        if (this.c.cfg.allowWhenFull || rt.rule.shadow) continue;
        return this.deny(rt, 1000, 1000);
      }
      if (result.allowed) {
        incrementMetric(rt.allowed);
        if (this.headerRemaining < 0 || result.remaining < this.headerRemaining) {
          this.headerLimit = rt.limitHeader;
          this.headerRemaining = result.remaining;
          this.headerReset = result.resetMs;
        }
        continue;
      }
      if (rt.rule.shadow) {
        incrementMetric(rt.shadowLimited);
        continue;
      }
      incrementMetric(rt.limited);
      return this.deny(rt, result.retryAfterMs, result.resetMs);
    }
    return HeadersStatus.Continue;
  }

  deny(rt: RuleRuntime, retryAfterMs: i64, resetMs: i64): HeadersStatus {
    const cfg = this.c.cfg;
    const retry = seconds(retryAfterMs);
    sendLocalResponse(<u32>cfg.status, "graywall_rate_limited", cfg.body, [
      "retry-after", retry,
      "ratelimit-limit", rt.limitHeader,
      "ratelimit-remaining", "0",
      "ratelimit-reset", seconds(resetMs),
      "content-type", "text/plain",
    ]);
    return HeadersStatus.StopIteration;
  }

  onResponseHeaders(headerCount: u32, endOfStream: bool): HeadersStatus {
    if (this.c.cfg.responseHeaders && this.headerRemaining >= 0) {
      replaceHeader(MapType.ResponseHeaders, LIMIT_KEY, this.headerLimit);
      replaceHeader(MapType.ResponseHeaders, REMAINING_KEY, this.headerRemaining.toString());
      replaceHeader(MapType.ResponseHeaders, RESET_KEY, seconds(this.headerReset));
    }
    return HeadersStatus.Continue;
  }
}

const LIMIT_KEY = String.UTF8.encode("ratelimit-limit");
const REMAINING_KEY = String.UTF8.encode("ratelimit-remaining");
const RESET_KEY = String.UTF8.encode("ratelimit-reset");

/** Whole seconds, rounded up, at least 1 for any wait (HTTP delays are integers). */
function seconds(ms: i64): string {
  if (ms <= 0) return "0";
  return ((ms + 999) / 1000).toString();
}

registerFilter(ROOT_ID, (): RootFilter => new RateLimitRoot(ROOT_ID));
