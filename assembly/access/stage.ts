// access: who is calling. A request's API key (a header, or a query parameter where configured) is
// hashed with SHA-256 and looked up among the consumers' key digests; a known key names its consumer,
// which goes upstream in one header (a client-sent copy is always removed) and is a key the later
// stages use (RequestSnapshot.consumer). A path that requires a key answers 401 without one, and never
// says which consumers exist. The key itself is removed before the request goes upstream.
import { findQueryParam } from "../common/request/http";
import { Sha256 } from "../common/lib/sha256";
import { HeaderName, METHOD, PATH, RequestSnapshot } from "../common/request/snapshot";
import { LocalReply, Outcome, Stage, StatSink } from "../common/request/stage";
import { AccessConfig, AccessRule, REQUIRE_KEY } from "./config";

const DIGEST_BYTES = 32;
/** Keys graywall-control makes are 47 bytes; a longer value is refused unhashed, so no one makes us hash kilobytes. */
const MAX_KEY_BYTES = 256;

export class AccessStage extends Stage {
  consumerName: HeaderName;
  keyName: HeaderName;
  sha: Sha256 = new Sha256();
  identified: u32;
  anonymous: u32;
  missingKey: u32;
  unknownKey: u32;
  denied: LocalReply;
  /** Whether the last identify() found a key in the request (known or not). */
  presented: bool = false;

  constructor(public cfg: AccessConfig, public stats: StatSink) {
    super();
    this.consumerName = new HeaderName(cfg.consumerHeader);
    this.keyName = new HeaderName(cfg.keyHeader);
    this.identified = stats.counter("graywall.access.identified");
    this.anonymous = stats.counter("graywall.access.anonymous");
    this.missingKey = stats.counter("graywall.access.denied.missing_key");
    this.unknownKey = stats.counter("graywall.access.denied.unknown_key");
    this.denied = new LocalReply(401, "graywall_access_denied", "unauthorized\n", ["content-type", "text/plain", "www-authenticate", 'Key realm="' + cfg.realm + '"']);
  }

  onRequest(req: RequestSnapshot, endOfStream: bool): Outcome {
    // Upstreams trust this header: only this stage writes it.
    req.setRequestHeader(this.consumerName, null);
    const consumer = this.identify(req);
    if (this.presented) req.setRequestHeader(this.keyName, null);
    if (consumer >= 0) {
      const name = unchecked(this.cfg.consumers[consumer]);
      req.consumer = name;
      req.setRequestHeader(this.consumerName, name);
      this.stats.inc(this.identified);
      return Outcome.Continue;
    }
    const rule = this.ruleFor(req);
    if (rule !== null && rule.require == REQUIRE_KEY) {
      this.stats.inc(this.presented ? this.unknownKey : this.missingKey);
      req.reply = this.denied;
      return Outcome.Reply;
    }
    this.stats.inc(this.anonymous);
    return Outcome.Continue;
  }

  /** The first rule whose prefix and methods match the request, or null (anonymous). */
  ruleFor(req: RequestSnapshot): AccessRule | null {
    const rules = this.cfg.rules;
    if (rules.length == 0) return null;
    const p = req.find(PATH);
    const m = req.find(METHOD);
    for (let i = 0; i < rules.length; i++) {
      const rule = unchecked(rules[i]);
      if (p < 0 || !req.valueStartsWith(p, rule.prefixBytes)) continue;
      if (rule.methodBytes.length > 0) {
        let ok = false;
        for (let k = 0; k < rule.methodBytes.length && !ok; k++) {
          const mb = unchecked(rule.methodBytes[k]);
          ok = m >= 0 && req.valueLength(m) == mb.byteLength && req.valueStartsWith(m, mb);
        }
        if (!ok) continue;
      }
      return rule;
    }
    return null;
  }

  /** The consumer whose key the request carries, or -1 (none, or unknown); sets `presented`. */
  identify(req: RequestSnapshot): i32 {
    this.presented = false;
    const h = req.find(this.keyName);
    if (h >= 0 && req.valueLength(h) > 0) return this.lookup(req.valuePtr(h), req.valueLength(h));
    const q = this.cfg.keyQuery;
    if (q.length == 0) return -1;
    const path = req.header(PATH);
    if (path === null || !path.includes(q)) return -1;
    const v = findQueryParam(path, q);
    if (v === null || v.length == 0) return -1;
    const b = String.UTF8.encode(v);
    return this.lookup(changetype<usize>(b), b.byteLength);
  }

  /** The consumer of the key at [ptr, ptr + len), or -1: its SHA-256 among the digests, compared in constant time. */
  lookup(ptr: usize, len: i32): i32 {
    this.presented = true;
    if (len > MAX_KEY_BYTES || this.cfg.owners.length == 0) return -1;
    const d = this.sha.reset().update(ptr, len).finish().dataStart;
    const cfg = this.cfg;
    const mask = <u32>cfg.index.length - 1;
    // The index is at most half full: a probe always reaches an empty slot.
    let slot = load<u32>(d) & mask;
    let k = unchecked(cfg.index[slot]) - 1;
    while (k >= 0) {
      const at = cfg.digests.dataStart + <usize>(k * DIGEST_BYTES);
      let diff: u64 = 0;
      for (let i = 0; i < DIGEST_BYTES; i += 8) diff |= load<u64>(at + <usize>i) ^ load<u64>(d + <usize>i);
      if (diff == 0) return unchecked(cfg.owners[k]);
      slot = (slot + 1) & mask;
      k = unchecked(cfg.index[slot]) - 1;
    }
    return -1;
  }
}
