// gray_router's decision: the first matching rule's target, or the default, handed to Envoy's route
// table as a request header. Reads the body only when a rule needs it and no earlier condition failed.
import { IpAddr } from "../common/lib/ip";
import { stickyBucket, stickyBucketAscii } from "../common/lib/hash";
import { findCookie, findQueryParam } from "../common/request/http";
import { isValidJson, lookupJsonPath } from "../common/lib/json";
import { COOKIE, HeaderName, PATH, RequestSnapshot } from "../common/request/snapshot";
import { Outcome, Stage, StatSink } from "../common/request/stage";
import { statName } from "../common/lib/stat_name";
import { GrayConfig } from "./config";
import { firstMatch, RequestView } from "./matcher";
import { metadataString } from "../common/request/metadata";

/** The snapshot as gray rules see it. One per stage: a VM runs one request callback at a time. */
class SnapshotView extends RequestView {
  req: RequestSnapshot = new RequestSnapshot();
  /** False while deciding on headers alone; a body field then sets bodyWanted and reads as absent. */
  bodyReady: bool = false;
  bodyWanted: bool = false;
  body: string | null = null;

  constructor(public cfg: GrayConfig) {
    super();
  }

  /** Starts a request: many rules ask for the same few headers, so each is looked up once. */
  bind(req: RequestSnapshot): void {
    this.req = req;
    this.cfg.headerTests.begin();
  }

  header(slot: i32, name: string): string | null {
    const i = this.cfg.headerTests.indexOf(this.req, slot);
    if (i < 0) return null;
    return this.req.valueAt(i);
  }

  consumer(): string | null { return this.req.consumer; }

  headerBucket(slot: i32, name: string, salt: string): i32 {
    const i = this.cfg.headerTests.indexOf(this.req, slot);
    if (i < 0 || this.req.valueLength(i) == 0) return -1;
    const b = stickyBucketAscii(salt, this.req.valuePtr(i), this.req.valueLength(i));
    return b >= 0 ? b : <i32>stickyBucket(salt, this.req.valueAt(i));
  }

  nextHeaderMatch(cfg: GrayConfig, from: i32): i32 { return cfg.headerTests.firstHolding(this.req, from); }

  cookie(name: string): string | null {
    const h = this.req.header(COOKIE);
    if (h === null) return null;
    return findCookie(h, name);
  }

  query(name: string): string | null {
    const p = this.req.header(PATH);
    if (p === null) return null;
    return findQueryParam(p, name);
  }

  clientIp(): IpAddr | null { return this.req.clientIp(this.cfg.clientSource); }

  bodyField(slot: i32, segments: string[]): string | null {
    if (!this.bodyReady) { this.bodyWanted = true; return null; }
    const b = this.body;
    if (b === null) return null;
    return lookupJsonPath(b, segments);
  }
}

const CONTENT_LENGTH = new HeaderName("content-length");

/** The announced body length, or -1 when absent or not a number (a chunked body). */
export function contentLength(req: RequestSnapshot): i64 {
  const i = req.find(CONTENT_LENGTH);
  if (i < 0) return -1;
  const p = req.valuePtr(i);
  const n = req.valueLength(i);
  if (n == 0 || n > 18) return -1;
  let v: i64 = 0;
  for (let k = 0; k < n; k++) {
    const c = <i32>load<u8>(p + <usize>k);
    if (c < 0x30 || c > 0x39) return -1;
    v = v * 10 + (c - 0x30);
  }
  return v;
}

export class GrayRouterStage extends Stage {
  routingName: HeaderName;
  responseName: HeaderName;
  view: SnapshotView;
  // Metric ids: per rule, and per target (index = rule, last = default target).
  ruleMatched: u32[] = [];
  targetRouted: u32[] = [];
  // Per distinct target: requests it served, and requests routed to it that another target served.
  targets: string[] = [];
  served: u32[] = [];
  fellBack: u32[] = [];
  /** Per rule, its target's index in `targets` (the default target is 0): the hot path compares numbers. */
  ruleTarget: i32[] = [];

  constructor(public cfg: GrayConfig, public stats: StatSink) {
    super();
    this.maxBodyBytes = cfg.maxBodyBytes;
    this.routingName = new HeaderName(cfg.routingHeader);
    this.responseName = new HeaderName(cfg.responseHeader);
    this.view = new SnapshotView(cfg);
    for (let i = 0; i < cfg.rules.length; i++) {
      const r = cfg.rules[i];
      this.ruleMatched.push(stats.counter("graywall.gray_router.rule." + statName(r.name) + ".matched"));
      this.targetRouted.push(stats.tally("graywall.gray_router.target." + statName(r.target) + ".routed"));
    }
    this.targetRouted.push(stats.tally("graywall.gray_router.target." + statName(cfg.defaultTarget) + ".routed"));
    this.addTarget(cfg.defaultTarget);
    for (let i = 0; i < cfg.rules.length; i++) this.ruleTarget.push(this.addTarget(cfg.rules[i].target));
  }

  private addTarget(t: string): i32 {
    const known = this.targets.indexOf(t);
    if (known >= 0) return known;
    this.targets.push(t);
    this.served.push(this.stats.tally("graywall.gray_router.target." + statName(t) + ".served"));
    this.fellBack.push(this.stats.counter("graywall.gray_router.target." + statName(t) + ".fell_back"));
    return this.targets.length - 1;
  }

  onRequest(req: RequestSnapshot, endOfStream: bool): Outcome {
    const v = this.view;
    v.bind(req);
    v.body = null;
    v.bodyWanted = false;
    // The body is read only when it announces a length within max_body_bytes. Without a body to come,
    // with one announced larger, or with one of unknown length (chunked), body fields are simply absent
    // and the request is decided at once: while the headers are held Envoy buffers the body, and one
    // socket read can carry it past Envoy's buffer limit into a 413 before the filter could let go.
    const length = contentLength(req);
    v.bodyReady = !this.cfg.needsBody || endOfStream || length < 0 || length > <i64>this.cfg.maxBodyBytes;
    const idx = firstMatch(this.cfg, v);
    if (v.bodyWanted) return Outcome.NeedBody;
    this.route(req, idx);
    return Outcome.Continue;
  }

  onBody(req: RequestSnapshot, body: ArrayBuffer | null): Outcome {
    const v = this.view;
    v.bind(req);
    v.bodyReady = true;
    v.bodyWanted = false;
    v.body = null;
    if (body !== null && body.byteLength <= this.cfg.maxBodyBytes) {
      const text = String.UTF8.decode(body);
      if (isValidJson(text)) v.body = text;
    }
    this.route(req, firstMatch(this.cfg, v));
    v.body = null;
    return Outcome.Continue;
  }

  /** Sets the routing header (overwriting any a client sent: clients must not pick their own target). */
  route(req: RequestSnapshot, idx: i32): void {
    const cfg = this.cfg;
    let t = 0;
    if (idx >= 0) {
      t = unchecked(this.ruleTarget[idx]);
      this.stats.inc(unchecked(this.ruleMatched[idx]));
      this.stats.inc(unchecked(this.targetRouted[idx]));
    } else {
      this.stats.inc(unchecked(this.targetRouted[cfg.rules.length]));
    }
    // Envoy's wasm host clears the route cache on any request-header change, so the route table sees this.
    // That re-selection costs more than the rest of the pass, so the default target goes without the
    // header (unless mark_default): only a copy the client sent is removed, and the catch-all route serves.
    if (cfg.markDefault || t != 0) req.setRequestHeader(this.routingName, unchecked(this.targets[t]));
    else req.setRequestHeader(this.routingName, null);
    req.routedTarget = t;
  }

  /**
   * Where the request really went. The default target's route has no fallback, so it is taken as is;
   * for any other target the serving host's metadata (`graywall.target`, set on each cluster's endpoints)
   * says, e.g. stable while the canary is ejected. Without that metadata the chosen target is reported.
   */
  onResponse(req: RequestSnapshot): void {
    const chosen = req.routedTarget;
    if (chosen < 0) return;
    // The served target's index, -1 for a name no rule routes to (reported by name).
    let served = chosen;
    let name: string | null = null;
    if (chosen != 0) {
      const md = req.upstreamMetadata();
      if (md !== null) {
        name = metadataString(md, "graywall", "target");
        if (name !== null) served = this.targets.indexOf(name);
      }
    }
    if (served >= 0) this.stats.inc(unchecked(this.served[served]));
    if (served != chosen) this.stats.inc(unchecked(this.fellBack[chosen]));
    if (this.cfg.responseHeader.length > 0) {
      if (name !== null) req.setResponseHeader(this.responseName, name);
      else req.setResponseHeader(this.responseName, unchecked(this.targets[chosen]));
    }
  }
}
