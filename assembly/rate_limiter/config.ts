// rate_limiter configuration, validated and compiled once.
import { ConfigErrors, ObjReader, readConfigRoot } from "../common/config";
import { readStringMatch, StringMatch } from "../common/string_match";
import { BucketSpec } from "../common/token_bucket";
import { isHeaderName } from "../common/header_names";
import { HeaderTestTable, slotOf } from "../common/header_tests";

export const enum KeyKind { ClientIp, Header, Path, Route, Method }

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
}

export class RateLimitConfig {
  rules: LimitRule[] = [];
  xffTrustedHops: i32 = 0;
  /** Slots per rule: the most keys a rule tracks at once. */
  maxKeys: i32 = 10000;
  status: i32 = 429;
  body: string = "rate limited\n";
  responseHeaders: bool = true;
  /** When every slot a key may use is held by an active key: true = let the request through. */
  allowWhenFull: bool = true;
  sweepIntervalMs: i32 = 10000;
  /** Every rule's match.headers, compiled to be tested on a request's bytes (rule i is entry i). */
  headerTests: HeaderTestTable = new HeaderTestTable();
}

const KEY_PARTS = "client_ip, path, route, method, header:<name>";

function readKey(r: ObjReader, rule: LimitRule): void {
  const parts = r.strList("key");
  if (parts.length == 0) r.errors.add(r.at("key"), "must list at least one of " + KEY_PARTS);
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (p == "client_ip") rule.key.push(new KeyPart(KeyKind.ClientIp, ""));
    else if (p == "path") rule.key.push(new KeyPart(KeyKind.Path, ""));
    else if (p == "route") rule.key.push(new KeyPart(KeyKind.Route, ""));
    else if (p == "method") rule.key.push(new KeyPart(KeyKind.Method, ""));
    else if (p.startsWith("header:") && isHeaderName(p.substring(7).toLowerCase())) rule.key.push(new KeyPart(KeyKind.Header, p.substring(7).toLowerCase()));
    else r.errors.add(r.at("key") + "[" + i.toString() + "]", "'" + p + "' is not one of " + KEY_PARTS);
  }
}

function readRule(r: ObjReader, names: string[]): LimitRule {
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
  // Defaults stay valid even when the given values are not, so the math below cannot trap.
  const size = r.num("bucket_size", 1, 1, 1e9);
  if (!r.has("bucket_size")) r.errors.add(r.at("bucket_size"), "is required");
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
  const rules = r.objList("rules");
  for (let i = 0; i < rules.length; i++) cfg.rules.push(readRule(rules[i], names));
  cfg.xffTrustedHops = <i32>r.int("xff_trusted_hops", 0, 0, 16);
  cfg.maxKeys = <i32>r.int("max_keys", 10000, 1, 200000);
  cfg.status = <i32>r.int("status", 429, 400, 599);
  cfg.body = r.str("body", cfg.body);
  cfg.responseHeaders = r.bool("response_headers", true);
  cfg.allowWhenFull = r.oneOf("when_full", "allow", ["allow", "deny"]) == "allow";
  cfg.sweepIntervalMs = <i32>r.int("sweep_interval_ms", 10000, 100, 3600000);
  r.done();
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
