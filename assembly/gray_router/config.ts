// gray_router configuration: parsed, validated and compiled once per onConfigure into an immutable object.
import { readClientSource } from "../common/request/client_ip";
import { ConfigErrors, ObjReader, readConfigRoot } from "../common/lib/config";
import { CidrSet } from "../common/lib/cidr_set";
import { readStringMatch, StringMatch } from "../common/request/string_match";
import { isHeaderName, writableHeaderProblem } from "../common/request/header_names";
import { HeaderTestTable, slotOf } from "../common/request/header_tests";

export const enum HashOn { Header, Cookie, ClientIp }

export class Percentage {
  /** Buckets 0..threshold-1 of 0..9999 match; value 12.34% -> 1234. */
  threshold: u32 = 0;
  hashOn: HashOn = HashOn.Header;
  name: string = "";
  salt: string = "";
  slot: i32 = -1;
}

export class BodyMatch {
  path: string = "";
  segments: string[] = [];
  test: StringMatch = new StringMatch();
}

export class Rule {
  name: string = "";
  target: string = "";
  headers: StringMatch[] = [];
  cookies: StringMatch[] = [];
  query: StringMatch[] = [];
  clientIp: CidrSet | null = null;
  /** Consumers the access stage identified (any of them); empty: no condition. */
  consumers: string[] = [];
  body: BodyMatch[] = [];
  percentage: Percentage | null = null;
}

export class GrayConfig {
  routingHeader: string = "x-graywall-target";
  responseHeader: string = "";
  defaultTarget: string = "stable";
  /** Requests for the default target carry the routing header too (else none: no route re-selection). */
  markDefault: bool = false;
  /** Where the client address comes from (common/request/client_ip.ts readClientSource). */
  clientSource: i32 = 0;
  maxBodyBytes: i32 = 65536;
  rules: Rule[] = [];
  /** Some rule reads the body: only then is the body buffered. */
  needsBody: bool = false;
  needsClientIp: bool = false;
  needsCookie: bool = false;
  needsQuery: bool = false;
  /** Every distinct header name the rules read, so a request fetches each once. */
  headerNames: string[] = [];
  /** Every distinct body path; BodyMatch slots index it. */
  bodyPaths: string[] = [];
  /** Every rule's header tests, compiled to be tested on a request's bytes (slots index headerNames). */
  headerTests: HeaderTestTable = new HeaderTestTable();
  /** Per rule: it has header tests only, so its header tests holding is a match. */
  headerOnly: StaticArray<bool> = new StaticArray<bool>(0);
}

function isTargetName(s: string): bool {
  return s.length > 0 && s.length <= 64 && isHeaderName(s.toLowerCase());
}

function readMatchList(r: ObjReader, key: string, lower: bool, into: StringMatch[]): void {
  const list = r.objList(key);
  for (let i = 0; i < list.length; i++) into.push(readStringMatch(list[i], "name", lower));
}

/** The most rules a document may have: a request is tested against them in order. */
export const MAX_RULES = 1000;

function readRule(r: ObjReader, cfg: GrayConfig, names: Set<string>): Rule {
  const rule = new Rule();
  rule.name = r.requiredStr("name");
  // Targets are matched by the route table in lower case: "Canary" and "canary" are one target.
  rule.target = r.requiredStr("target").toLowerCase();
  if (rule.target.length > 0 && !isTargetName(rule.target)) r.errors.add(r.at("target"), "must be 1-64 characters of a-z, 0-9, '-', '_', '.'");
  if (rule.name.length > 0) {
    if (names.has(rule.name)) r.errors.add(r.at("name"), "duplicate rule name '" + rule.name + "'");
    names.add(rule.name);
  }
  const m = r.obj("match");
  if (m === null) {
    r.errors.add(r.at("match"), "is required (use {} to match every request)");
  } else {
    readMatchList(m, "headers", true, rule.headers);
    readMatchList(m, "cookies", false, rule.cookies);
    readMatchList(m, "query", false, rule.query);
    if (m.has("client_ip")) {
      const cidrs = m.strList("client_ip");
      if (cidrs.length == 0) m.errors.add(m.at("client_ip"), "must list at least one CIDR");
      const set = new CidrSet();
      for (let i = 0; i < cidrs.length; i++) {
        if (!set.add(cidrs[i])) m.errors.add(m.at("client_ip") + "[" + i.toString() + "]", "invalid IP or CIDR '" + cidrs[i] + "'");
      }
      set.seal();
      rule.clientIp = set;
      cfg.needsClientIp = true;
    }
    if (m.has("consumers")) {
      rule.consumers = m.strList("consumers", 1000);
      if (rule.consumers.length == 0) m.errors.add(m.at("consumers"), "must list at least one consumer");
    }
    const bodies = m.objList("body");
    for (let i = 0; i < bodies.length; i++) {
      const b = new BodyMatch();
      b.test = readStringMatch(bodies[i], "path", false);
      b.path = b.test.name;
      b.segments = b.path.split(".");
      for (let k = 0; k < b.segments.length; k++) {
        if (b.segments[k].length == 0) { bodies[i].errors.add(bodies[i].at("path"), "empty segment in '" + b.path + "'"); break; }
      }
      rule.body.push(b);
      b.test.slot = slotOf(cfg.bodyPaths, b.path);
      cfg.needsBody = true;
    }
    const p = m.obj("percentage");
    if (p !== null) {
      const pct = new Percentage();
      if (!p.has("value")) p.errors.add(p.at("value"), "is required");
      // num() returns the default for an out-of-range value, so the conversion below cannot trap.
      pct.threshold = <u32>Math.round(p.num("value", 0, 0, 100) * 100);
      const on = p.oneOf("hash_on", "header", ["header", "cookie", "client_ip"]);
      pct.hashOn = on == "cookie" ? HashOn.Cookie : on == "client_ip" ? HashOn.ClientIp : HashOn.Header;
      if (pct.hashOn == HashOn.ClientIp) {
        cfg.needsClientIp = true;
        if (p.has("name")) p.errors.add(p.at("name"), "not used with hash_on client_ip");
      } else {
        pct.name = p.requiredStr("name");
        if (pct.hashOn == HashOn.Header) pct.name = pct.name.toLowerCase();
      }
      // The salt keeps rules independent: the same user is not always in every rule's first 10%.
      pct.salt = p.str("salt", rule.name);
      p.done();
      rule.percentage = pct;
    }
    m.done();
  }
  r.done();
  for (let i = 0; i < rule.headers.length; i++) rule.headers[i].slot = slotOf(cfg.headerNames, rule.headers[i].name);
  if (rule.cookies.length > 0) cfg.needsCookie = true;
  if (rule.query.length > 0) cfg.needsQuery = true;
  const pct = rule.percentage;
  if (pct !== null) {
    if (pct.hashOn == HashOn.Header) pct.slot = slotOf(cfg.headerNames, pct.name);
    if (pct.hashOn == HashOn.Cookie) cfg.needsCookie = true;
  }
  return rule;
}

/** Compiles a config document. On any error returns null and fills `errors`; nothing half-built escapes. */
export function compileGrayConfig(src: string, errors: ConfigErrors): GrayConfig | null {
  const r = readConfigRoot(src, errors);
  if (r === null) return null;
  return readGrayConfig(r);
}

/** Compiles the document `r` reads (the whole config, or the gray_router section of graywall's). */
export function readGrayConfig(r: ObjReader): GrayConfig | null {
  const errors = r.errors;
  const cfg = new GrayConfig();
  cfg.routingHeader = r.str("routing_header", cfg.routingHeader).toLowerCase();
  const routing = writableHeaderProblem(cfg.routingHeader);
  if (routing.length > 0) errors.add(r.at("routing_header"), routing);
  cfg.responseHeader = r.str("response_header", "").toLowerCase();
  const response = writableHeaderProblem(cfg.responseHeader);
  if (cfg.responseHeader.length > 0 && response.length > 0) errors.add(r.at("response_header"), response);
  cfg.defaultTarget = r.str("default_target", cfg.defaultTarget).toLowerCase();
  if (!isTargetName(cfg.defaultTarget)) errors.add(r.at("default_target"), "must be 1-64 characters of a-z, 0-9, '-', '_', '.'");
  cfg.markDefault = r.bool("mark_default", false);
  cfg.clientSource = readClientSource(r);
  // The body is buffered with flow control up to Envoy's per-connection buffer limit (1 MiB by default);
  // reading stops there, so the limit must leave room for the read that crosses it: half of it.
  cfg.maxBodyBytes = <i32>r.int("max_body_bytes", 65536, 0, 512 * 1024);
  const names = new Set<string>();
  const rules = r.objList("rules", MAX_RULES);
  for (let i = 0; i < rules.length; i++) cfg.rules.push(readRule(rules[i], cfg, names));
  r.done();
  if (!errors.ok) return null;
  cfg.headerOnly = new StaticArray<bool>(cfg.rules.length);
  for (let i = 0; i < cfg.rules.length; i++) {
    const rule = cfg.rules[i];
    cfg.headerTests.addRule(rule.headers);
    cfg.headerOnly[i] = rule.cookies.length == 0 && rule.query.length == 0 && rule.clientIp === null && rule.consumers.length == 0 && rule.body.length == 0 && rule.percentage === null;
  }
  cfg.headerTests.seal(cfg.headerNames);
  return cfg;
}
