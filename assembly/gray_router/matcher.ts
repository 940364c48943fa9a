// Rule evaluation against an abstract request, so as-pect can drive it without a host.
import { IpAddr, ipKey } from "../common/lib/ip";
import { stickyBucket } from "../common/lib/hash";
import { GrayConfig, HashOn, Rule } from "./config";

/** What a rule can ask of a request. Each answer is null when absent. */
export abstract class RequestView {
  /** `slot` indexes GrayConfig.headerNames, so a view can cache per slot. */
  abstract header(slot: i32, name: string): string | null;
  /** The sticky bucket (stickyBucket) of header `name`'s value under `salt`, or -1 when it is absent or empty. */
  headerBucket(slot: i32, name: string, salt: string): i32 {
    const v = this.header(slot, name);
    if (v === null || v.length == 0) return -1;
    return <i32>stickyBucket(salt, v);
  }
  /**
   * The first rule at or after `from` whose header tests all hold, or -1: the config's compiled table
   * (GrayConfig.headerTests) tested on a snapshot's bytes, for the filter and for previews alike.
   */
  abstract nextHeaderMatch(cfg: GrayConfig, from: i32): i32;
  abstract cookie(name: string): string | null;
  abstract query(name: string): string | null;
  abstract clientIp(): IpAddr | null;
  /** The consumer the access stage identified, or null (anonymous). */
  abstract consumer(): string | null;
  /** The scalar at a body path; null when the body is absent, too large, not JSON, or lacks it. */
  abstract bodyField(slot: i32, segments: string[]): string | null;
}

/** Whether a rule whose header tests hold matches on its other conditions too. */
export function otherConditionsHold(rule: Rule, req: RequestView): bool {
  for (let i = 0; i < rule.cookies.length; i++) {
    const m = unchecked(rule.cookies[i]);
    if (!m.test(req.cookie(m.name))) return false;
  }
  for (let i = 0; i < rule.query.length; i++) {
    const m = unchecked(rule.query[i]);
    if (!m.test(req.query(m.name))) return false;
  }
  const set = rule.clientIp;
  if (set !== null) {
    const ip = req.clientIp();
    if (ip === null || !set.contains(ip)) return false;
  }
  if (rule.consumers.length > 0) {
    const c = req.consumer();
    if (c === null || !rule.consumers.includes(c)) return false;
  }
  // At 100% a share is everyone, with a key or without one: a promotion moves every request.
  const pct = rule.percentage !== null && rule.percentage!.threshold < PERCENT_ALL ? rule.percentage : null;
  if (pct !== null && pct.hashOn == HashOn.Header) {
    // No key, no bucket: such a request stays on the default side.
    const bucket = req.headerBucket(pct.slot, pct.name, pct.salt);
    if (bucket < 0 || <u32>bucket >= pct.threshold) return false;
  } else if (pct !== null) {
    let key: string | null = null;
    if (pct.hashOn == HashOn.Cookie) key = req.cookie(pct.name);
    else {
      const ip = req.clientIp();
      if (ip !== null) key = ipKey(ip);
    }
    // No key, no bucket: such a request stays on the default side.
    if (key === null || key.length == 0) return false;
    if (stickyBucket(pct.salt, key) >= pct.threshold) return false;
  }
  // Body last: a request whose other conditions fail never waits for its body.
  for (let i = 0; i < rule.body.length; i++) {
    const b = unchecked(rule.body[i]);
    if (!b.test.test(req.bodyField(b.test.slot, b.segments))) return false;
  }
  return true;
}

/** A percentage's threshold at 100% (buckets 0..9999). */
const PERCENT_ALL: u32 = 10000;

/** Index of the first matching rule, or -1 for the default target. */
export function firstMatch(cfg: GrayConfig, req: RequestView): i32 {
  let i = req.nextHeaderMatch(cfg, 0);
  while (i >= 0) {
    if (!cfg.headerOnly[i] && !otherConditionsHold(unchecked(cfg.rules[i]), req)) i = req.nextHeaderMatch(cfg, i + 1);
    else return i;
  }
  return -1;
}
