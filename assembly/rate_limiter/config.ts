// rate_limiter configuration, validated and compiled once.
import { readClientSource } from "../common/request/client_ip";
import { ConfigErrors, ObjReader, readConfigRoot } from "../common/lib/config";
import { readStringMatch, StringMatch } from "../common/request/string_match";
import { BucketSpec } from "../common/lib/token_bucket";
import { isHeaderName } from "../common/request/header_names";
import { HeaderTestTable, slotOf } from "../common/request/header_tests";
import { overBudget, tableBytes } from "../common/lib/memory_budget";
import { BUCKET_PAYLOAD } from "./bucket_update";

export const enum KeyKind { ClientIp, Header, Path, Route, Method, Consumer }

export class KeyPart {
  constructor(public kind: KeyKind, public name: string) {}
}

export class LimitRule {
  name: string = "";
  pathPrefix: string = "";
  methods: string[] = [];
  headers: StringMatch[] = [];
  key: KeyPart[] = [];
  spec: BucketSpec = new BucketSpec(1, 1, 1000);
  shadow: bool = false;
  /** Idle time after which another key may take this key's slot; never shorter than a full refill. */
  idleMs: i64 = 0;
  /** A local token bucket: always for scope "local", optional for "cluster" (the cheap first line). */
  hasBucket: bool = true;
  /** scope "cluster": the rule's slot among the document's cluster rules, else -1. */
  clusterSlot: i32 = -1;
  /** scope "cluster": the limit envoyproxy/ratelimit enforces, requests per fixed window of `unit`. */
  requestsPerUnit: i64 = 0;
  unit: string = "";
}

/**
 * The most cluster rules a document may have: each one owns a pair of request headers the route's
 * rate_limits read (see CLUSTER_RULE_HEADER), and the route table is static while rules are hot.
 */
export const MAX_CLUSTER_RULES = 4;
export const CLUSTER_UNITS = ["second", "minute", "hour", "day"];

export class RateLimitConfig {
  rules: LimitRule[] = [];
  /** How many rules have scope "cluster". */
  clusterRules: i32 = 0;
  /** Where the client address comes from (common/request/client_ip.ts readClientSource). */
  clientSource: i32 = 0;
  /** Slots per rule: the most keys a rule tracks at once. */
  maxKeys: i32 = 10000;
  status: i32 = 429;
  body: string = "rate limited\n";
  /** RateLimit-* on allowed responses: off by default, as Envoy's own enable_x_ratelimit_headers (three
   * host calls on every allowed response; the bench's A/B read a mean 2.9 µs/request over six runs). */
  responseHeaders: bool = false;
  /** When every slot a key may use is held by an active key: true = let the request through. */
  allowWhenFull: bool = true;
  sweepIntervalMs: i32 = 10000;
  /** The most tokens one worker takes from a key's shared bucket in one round trip (see leases.ts); 1 = none. */
  workerLease: i32 = 64;
  /** Every rule's match.headers, compiled to be tested on a request's bytes (rule i is entry i). */
  headerTests: HeaderTestTable = new HeaderTestTable();

  /** Rules with a local bucket: each takes max_keys slots of the one pool. */
  get bucketRules(): i32 {
    let n = 0;
    for (let i = 0; i < this.rules.length; i++) if (this.rules[i].hasBucket) n++;
    return n;
  }

  /** Estimated shared memory of its tables (memory_budget.ts). */
  get tableBytes(): i64 {
    return tableBytes(<i64>this.bucketRules * <i64>this.maxKeys, BUCKET_PAYLOAD);
  }
}

/** The most rules a document may have (each is checked on every request). */
export const MAX_RULES = 64;

const KEY_PARTS = "client_ip, consumer, path, route, method, header:<name>";

function readKey(r: ObjReader, rule: LimitRule): void {
  const parts = r.strList("key");
  if (parts.length == 0) r.errors.add(r.at("key"), "must list at least one of " + KEY_PARTS);
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (p == "client_ip") rule.key.push(new KeyPart(KeyKind.ClientIp, ""));
    else if (p == "path") rule.key.push(new KeyPart(KeyKind.Path, ""));
    else if (p == "consumer") rule.key.push(new KeyPart(KeyKind.Consumer, ""));
    else if (p == "route") rule.key.push(new KeyPart(KeyKind.Route, ""));
    else if (p == "method") rule.key.push(new KeyPart(KeyKind.Method, ""));
    else if (p.startsWith("header:") && isHeaderName(p.substring(7).toLowerCase())) rule.key.push(new KeyPart(KeyKind.Header, p.substring(7).toLowerCase()));
    else r.errors.add(r.at("key") + "[" + i.toString() + "]", "'" + p + "' is not one of " + KEY_PARTS);
  }
}

function isToken(s: string): bool {
  if (s.length == 0 || s.length > 128) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ok = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x2d || c == 0x5f || c == 0x2e;
    if (!ok) return false;
  }
  return true;
}

const BUCKET_FIELDS = ["refill_tokens", "refill_interval_ms", "idle_timeout_ms"];

function readRule(r: ObjReader, names: string[], clusterRules: i32): LimitRule {
  const rule = new LimitRule();
  rule.name = r.requiredStr("name");
  if (rule.name.length > 0) {
    if (names.includes(rule.name)) r.errors.add(r.at("name"), "duplicate rule name '" + rule.name + "'");
    names.push(rule.name);
  }
  const m = r.obj("match");
  if (m !== null) {
    rule.pathPrefix = m.str("path_prefix", "");
    if (rule.pathPrefix.length > 0 && !rule.pathPrefix.startsWith("/")) m.errors.add(m.at("path_prefix"), "must start with '/'");
    rule.methods = m.strList("methods");
    for (let i = 0; i < rule.methods.length; i++) rule.methods[i] = rule.methods[i].toUpperCase();
    const hs = m.objList("headers");
    for (let i = 0; i < hs.length; i++) rule.headers.push(readStringMatch(hs[i], "name", true));
    m.done();
  }
  readKey(r, rule);
  const cluster = r.oneOf("scope", "local", ["local", "cluster"]) == "cluster";
  if (cluster) {
    rule.clusterSlot = clusterRules;
    if (!isToken(rule.name)) r.errors.add(r.at("name"), "a cluster rule's name goes in a request header and the ratelimit service's config: use letters, digits, '-', '_' and '.'");
    if (clusterRules >= MAX_CLUSTER_RULES) r.errors.add(r.at("scope"), "at most " + MAX_CLUSTER_RULES.toString() + " rules may have scope 'cluster'");
    rule.requestsPerUnit = r.int("requests_per_unit", 0, 0, 1000000000);
    if (!r.has("requests_per_unit")) r.errors.add(r.at("requests_per_unit"), "is required for scope 'cluster'");
    rule.unit = r.oneOf("unit", "minute", CLUSTER_UNITS);
    rule.hasBucket = r.has("bucket_size");
  } else {
    // raw() marks the field read, so it gets this error rather than "unknown field" too.
    if (r.raw("requests_per_unit") !== null) r.errors.add(r.at("requests_per_unit"), "only for scope 'cluster' (a local rule is a token bucket: bucket_size, refill_tokens)");
    if (r.raw("unit") !== null) r.errors.add(r.at("unit"), "only for scope 'cluster'");
    if (!r.has("bucket_size")) r.errors.add(r.at("bucket_size"), "is required");
  }
  if (!rule.hasBucket) {
    for (let i = 0; i < BUCKET_FIELDS.length; i++) {
      if (r.has(BUCKET_FIELDS[i])) r.errors.add(r.at(BUCKET_FIELDS[i]), "needs bucket_size (a cluster rule has a local bucket only when bucket_size is given)");
    }
  }
  // Defaults stay valid even when the given values are not, so the math below cannot trap.
  const size = r.num("bucket_size", 1, 1, 1e9);
  const tokens = r.num("refill_tokens", size, 0.001, 1e9);
  const interval = r.num("refill_interval_ms", 1000, 1, 86400000);
  rule.spec = new BucketSpec(size, tokens, interval);
  rule.shadow = r.oneOf("mode", "enforce", ["enforce", "shadow"]) == "shadow";
  // A slot reclaimed before its bucket refilled would hand its key a fresh, full bucket elsewhere.
  const fullRefillMs = <i64>Math.min(Math.ceil(size / (tokens / interval)), 1e15);
  rule.idleMs = r.int("idle_timeout_ms", fullRefillMs > 60000 ? fullRefillMs : 60000, 1, 86400000 * 7);
  if (rule.idleMs < fullRefillMs) r.errors.add(r.at("idle_timeout_ms"), "must be at least the time to refill a full bucket (" + fullRefillMs.toString() + " ms)");
  r.done();
  return rule;
}

export function compileRateLimitConfig(src: string, errors: ConfigErrors): RateLimitConfig | null {
  const r = readConfigRoot(src, errors);
  if (r === null) return null;
  return readRateLimitConfig(r);
}

/** Compiles the document `r` reads (the whole config, or the rate_limiter section of graywall's). */
export function readRateLimitConfig(r: ObjReader): RateLimitConfig | null {
  const errors = r.errors;
  const cfg = new RateLimitConfig();
  const names = new Array<string>();
  const rules = r.objList("rules", MAX_RULES);
  let clusterRules = 0;
  for (let i = 0; i < rules.length; i++) {
    const rule = readRule(rules[i], names, clusterRules);
    if (rule.clusterSlot >= 0) clusterRules++;
    cfg.rules.push(rule);
  }
  cfg.clusterRules = clusterRules;
  cfg.clientSource = readClientSource(r);
  cfg.maxKeys = <i32>r.int("max_keys", 10000, 1, 200000);
  cfg.status = <i32>r.int("status", 429, 400, 599);
  cfg.body = r.str("body", cfg.body);
  cfg.responseHeaders = r.bool("response_headers", false);
  cfg.allowWhenFull = r.oneOf("when_full", "allow", ["allow", "deny"]) == "allow";
  cfg.sweepIntervalMs = <i32>r.int("sweep_interval_ms", 10000, 100, 3600000);
  cfg.workerLease = <i32>r.int("worker_lease", 64, 1, 1024);
  r.done();
  const budget = overBudget(cfg.tableBytes);
  if (budget.length > 0) errors.add(r.at("max_keys"), cfg.bucketRules.toString() + " rules with a bucket x " + cfg.maxKeys.toString() + " keys: " + budget);
  if (!errors.ok) return null;
  const headerNames = new Array<string>();
  for (let i = 0; i < cfg.rules.length; i++) {
    const tests = cfg.rules[i].headers;
    for (let k = 0; k < tests.length; k++) tests[k].slot = slotOf(headerNames, tests[k].name);
    cfg.headerTests.addRule(tests);
  }
  cfg.headerTests.seal(headerNames);
  return cfg;
}
