// The filters' pure logic compiled for Node (build/node/graywall.wasm), so scripts and the control
// service use exactly the code that runs in Envoy. Not a filter: no host imports.
import { AgentLists, DEFAULT_WEIGHTS, HeaderFacts, headerSignals, score, signalList } from "../crawler_score/signals";
import { knownBots } from "../crawler_score/known_bots_matcher";

const lists = new AgentLists();
const facts = new HeaderFacts();

function orNull(s: string): string | null {
  if (s.length == 0) return null;
  return s;
}

/** Header signal bits for one request with the default user-agent lists; "" = header absent. */
export function crawlerHeaderSignals(ua: string, accept: string, acceptLanguage: string, acceptEncoding: string, secChUa: string, secFetchMode: string, scheme: string): u32 {
  facts.https = scheme != "http";
  facts.userAgent = orNull(ua);
  facts.accept = orNull(accept);
  facts.acceptLanguage = orNull(acceptLanguage);
  facts.acceptEncoding = orNull(acceptEncoding);
  facts.secChUa = orNull(secChUa);
  facts.secFetchMode = orNull(secFetchMode);
  return headerSignals(facts, lists);
}

/** The score of a set of signal bits under the default weights. */
export function crawlerScore(bits: u32): i32 {
  return score(bits, DEFAULT_WEIGHTS);
}

export function crawlerSignalNames(bits: u32): string {
  return signalList(bits);
}

/** Whether isbot's patterns, as the filter runs them (known_bots.ts, no cache), flag this user agent. */
export function crawlerKnownBot(ua: string): bool {
  const b = String.UTF8.encode(ua);
  return knownBots.scan(changetype<usize>(b), b.byteLength);
}

import { ConfigErrors } from "../common/lib/config";
import { JsonKind, JsonParser } from "../common/lib/json";
import { IpAddr, parseIp } from "../common/lib/ip";
import { firstMatch } from "../gray_router/matcher";
import { SampleRequest } from "../gray_router/sample_request";
import { compileGrayConfig } from "../gray_router/config";
import { compileIpListConfig } from "../ip_list/config";
import { compileAccessConfig } from "../access/config";
import { compileRateLimitConfig } from "../rate_limiter/config";
import { compileCrawlerConfig } from "../crawler_score/config";
import { compileGraywallConfig } from "../graywall/config";
import { packCidrs } from "../common/lib/cidr_pack";

/**
 * Validates a plugin configuration with the filter's own compiler: "" when the filter would accept it,
 * else the same error summary the filter logs. A document this accepts is never one the filter rejects.
 */
export function validateFilterConfig(filter: string, json: string): string {
  const errors = new ConfigErrors();
  if (filter == "gray_router") compileGrayConfig(json, errors);
  else if (filter == "access") compileAccessConfig(json, errors);
  else if (filter == "ip_list") compileIpListConfig(json, errors);
  else if (filter == "rate_limiter") compileRateLimitConfig(json, errors);
  else if (filter == "crawler_score") compileCrawlerConfig(json, errors);
  else if (filter == "graywall") compileGraywallConfig(json, errors);
  else errors.add("filter", "unknown filter '" + filter + "'");
  return errors.list.join("\n");
}

/** The packed form of a CIDR list given one entry a line (ip_list's `*_packed`), or "" when an entry does not parse. */
export function packCidrList(lines: string): string {
  const packed = packCidrs(lines.length == 0 ? [] : lines.split("\n"));
  return packed === null ? "" : packed;
}

function jsonString(s: string): string {
  let out = "\"";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x22) out += "\\\"";
    else if (c == 0x5c) out += "\\\\";
    else if (c < 0x20) out += "\\u00" + (c < 16 ? "0" : "") + c.toString(16);
    else out += String.fromCharCode(c);
  }
  return out + "\"";
}

/**
 * Which target gray_router would pick for a sample request, using the filter's own compiler and
 * matcher. Returns {"target": ..., "rule": name or null} or {"error": ...} as JSON.
 */
export function grayPreview(configJson: string, requestJson: string): string {
  const errors = new ConfigErrors();
  const cfg = compileGrayConfig(configJson, errors);
  if (cfg === null) return '{"error":' + jsonString(errors.summary()) + "}";
  const p = new JsonParser(requestJson);
  const r = p.parseDocument();
  if (r === null || r.kind != JsonKind.Object) return '{"error":"request: expected a JSON object"}';
  // {"headers": {...}, "cookie": "...", "path": "...", "ip": "...", "consumer": "...", "body": "..."}
  const req = new SampleRequest();
  const h = r.get("headers");
  if (h !== null && h.kind == JsonKind.Object) {
    for (let i = 0; i < h.keys.length; i++) {
      if (h.items[i].kind == JsonKind.String) req.h(h.keys[i], h.items[i].str);
    }
  }
  const c = r.get("cookie");
  if (c !== null && c.kind == JsonKind.String && c.str.length > 0) req.cookieHeader = c.str;
  const path = r.get("path");
  if (path !== null && path.kind == JsonKind.String && path.str.length > 0) req.path = path.str;
  const ip = r.get("ip");
  if (ip !== null && ip.kind == JsonKind.String && ip.str.length > 0) {
    const a = new IpAddr();
    if (!parseIp(ip.str, a)) return '{"error":' + jsonString("ip: invalid address '" + ip.str + "'") + "}";
    req.ip = a;
  }
  const consumer = r.get("consumer");
  if (consumer !== null && consumer.kind == JsonKind.String && consumer.str.length > 0) req.consumerName = consumer.str;
  const body = r.get("body");
  if (body !== null && body.kind == JsonKind.String && body.str.length > 0 && body.str.length <= cfg.maxBodyBytes) req.body = body.str;
  const idx = firstMatch(cfg, req);
  if (idx < 0) return '{"target":' + jsonString(cfg.defaultTarget) + ',"rule":null}';
  return '{"target":' + jsonString(cfg.rules[idx].target) + ',"rule":' + jsonString(cfg.rules[idx].name) + "}";
}
