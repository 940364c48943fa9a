// The filters' pure logic compiled for Node (build/node/graywall.wasm), so scripts and the control
// service use exactly the code that runs in Envoy. Not a filter: no host imports.
import { AgentLists, DEFAULT_WEIGHTS, HeaderFacts, headerSignals, score, signalList } from "../crawler_score/signals";

const lists = new AgentLists();
const facts = new HeaderFacts();

function orNull(s: string): string | null {
  if (s.length == 0) return null;
  return s;
}

/** Header signal bits for one request with the default user-agent lists; "" = header absent. */
export function crawlerHeaderSignals(ua: string, accept: string, acceptLanguage: string, acceptEncoding: string, secChUa: string, secFetchMode: string): u32 {
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

import { ConfigErrors } from "../common/config";
import { compileGrayConfig } from "../gray_router/config";
import { compileIpListConfig } from "../ip_list/config";
import { compileRateLimitConfig } from "../rate_limiter/config";
import { compileCrawlerConfig } from "../crawler_score/config";

/**
 * Validates a plugin configuration with the filter's own compiler: "" when the filter would accept it,
 * else the same error summary the filter logs. A document this accepts is never one the filter rejects.
 */
export function validateFilterConfig(filter: string, json: string): string {
  const errors = new ConfigErrors();
  if (filter == "gray_router") compileGrayConfig(json, errors);
  else if (filter == "ip_list") compileIpListConfig(json, errors);
  else if (filter == "rate_limiter") compileRateLimitConfig(json, errors);
  else if (filter == "crawler_score") compileCrawlerConfig(json, errors);
  else errors.add("filter", "unknown filter '" + filter + "'");
  return errors.summary();
}
