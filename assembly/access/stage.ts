// access: who is calling. A request's credential names its consumer: an API key (a header, or a query
// parameter where configured), hashed with SHA-256 and looked up among the consumers' key digests; or an
// HTTP message signature (RFC 9421, hmac-sha256: signature.ts) under one of the consumers' signing keys,
// its nonce remembered across workers for the skew window, and the body checked against the signed
// Content-Digest. The consumer goes upstream in one header (a client-sent copy is always removed) and
// is a key the later stages use (RequestSnapshot.consumer). A path whose rule wants a credential answers
// 401 without one, and never says which consumers exist. The key itself is removed before the request
// goes upstream.
import { findQueryParam } from "../common/request/http";
import { KeyBuilder } from "../common/request/key_builder";
import { keyHash } from "../common/lib/hash";
import { sameBytes, Sha256 } from "../common/lib/sha256";
import { RecordUpdate, SharedStore, SlotTable, UpdateStatus } from "../common/lib/slot_table";
import { HeaderName, METHOD, PATH, RequestSnapshot } from "../common/request/snapshot";
import { LocalReply, Outcome, Stage, StatSink } from "../common/request/stage";
import { AccessConfig, AccessRule, NONCE_PAYLOAD, REQUIRE_ANONYMOUS, REQUIRE_KEY, REQUIRE_SIGNATURE, REQUIRE_TOKEN } from "./config";
import { CONTENT_DIGEST, contentDigestMatches, SIG_DIGEST, SIG_OK, SIG_REASONS, SIG_REPLAY, SIGNATURE_INPUT, SignatureVerifier } from "./signature";

const DIGEST_BYTES = 32;
/** Keys graywall-control makes are 47 bytes; a longer value is refused unhashed, so no one makes us hash kilobytes. */
const MAX_KEY_BYTES = 256;
const MAX_NONCE_BYTES = 128;
/**
 * Collection credits a signature check leaves (req.garbage): its parse and signature base are strings,
 * about 4 KiB of garbage a request (measured on the host emulator), so the VM collects every
 * 16384 / SIGNATURE_GARBAGE signed requests instead of letting 16384 of them pile up.
 */
const SIGNATURE_GARBAGE: u32 = 64;
const BEARER = String.UTF8.encode("bearer ");

/** Marks a nonce used; `replayed` when it was used already and has not expired. */
class NonceUpdate extends RecordUpdate {
  untilMs: i64 = 0;
  replayed: bool = false;

  apply(p: usize, fresh: bool, now: i64): void {
    this.replayed = !fresh && load<i64>(p) > now;
    if (!this.replayed) store<i64>(p, this.untilMs);
  }
}

/**
 * Keys this worker has verified, by a hash of the key, each with its digest's index: a returning client's
 * key is compared (in constant time) instead of hashed with SHA-256 again. Only keys that verified get in,
 * so unknown keys cannot fill it; it lives as long as its configuration (a revoked consumer's key is gone
 * with the version that revoked it), and a rotated key's grace period is checked on every use.
 */
class KnownKeys {
  static readonly SLOTS: i32 = 256;
  static readonly KEY_BYTES: i32 = 64;
  keys: Uint8Array = new Uint8Array(KnownKeys.SLOTS * KnownKeys.KEY_BYTES);
  /** Each slot's key length (0: empty) and digest index. */
  lens: Int32Array = new Int32Array(KnownKeys.SLOTS);
  entries: Int32Array = new Int32Array(KnownKeys.SLOTS);

  @inline private slotOf(ptr: usize, len: i32): i32 { return <i32>(keyHash(ptr, len) & <u32>(KnownKeys.SLOTS - 1)); }

  /** The digest index of a remembered key, or -1. */
  find(ptr: usize, len: i32): i32 {
    if (len > KnownKeys.KEY_BYTES) return -1;
    const slot = this.slotOf(ptr, len);
    if (unchecked(this.lens[slot]) != len) return -1;
    const at = this.keys.dataStart + <usize>(slot * KnownKeys.KEY_BYTES);
    return sameBytes(at, ptr, len) ? unchecked(this.entries[slot]) : -1;
  }

  remember(ptr: usize, len: i32, entry: i32): void {
    if (len > KnownKeys.KEY_BYTES) return;
    const slot = this.slotOf(ptr, len);
    memory.copy(this.keys.dataStart + <usize>(slot * KnownKeys.KEY_BYTES), ptr, <usize>len);
    unchecked((this.lens[slot] = len));
    unchecked((this.entries[slot] = entry));
  }
}

export class AccessStage extends Stage {
  consumerName: HeaderName;
  keyName: HeaderName;
  tokenName: HeaderName;
  sha: Sha256 = new Sha256();
  knownKeys: KnownKeys = new KnownKeys();
  identified: u32;
  anonymous: u32;
  missingKey: u32;
  unknownKey: u32;
  /** Per SIG_* reason: signatures refused for it (index 0: signed requests accepted). */
  signatureStats: u32[] = [];
  bodyTooLarge: u32;
  /** The 401, naming the schemes a rule accepts (index: the rule's REQUIRE_* bits). */
  denied: LocalReply[] = [];
  tooLarge: LocalReply = new LocalReply(413, "graywall_access_body_too_large", "signed body too large\n", ["content-type", "text/plain"]);
  /** Whether the last identify() found a key in the request (known or not). */
  presented: bool = false;
  verifier: SignatureVerifier;
  nonces: SlotTable | null = null;
  nonceUpdate: NonceUpdate = new NonceUpdate();
  key: KeyBuilder = new KeyBuilder();
  scratch: Uint8Array = new Uint8Array(64);
  /** The request's clock, for keys with a grace period. */
  nowS: i64 = 0;

  constructor(public cfg: AccessConfig, store: SharedStore, public stats: StatSink) {
    super();
    this.verifier = new SignatureVerifier(cfg.signature);
    this.consumerName = new HeaderName(cfg.consumerHeader);
    this.keyName = new HeaderName(cfg.keyHeader);
    this.tokenName = new HeaderName(cfg.tokenHeader);
    this.identified = stats.tally("graywall.access.identified");
    this.anonymous = stats.counter("graywall.access.anonymous");
    this.missingKey = stats.counter("graywall.access.denied.missing_key");
    this.unknownKey = stats.counter("graywall.access.denied.unknown_key");
    for (let i = 0; i < SIG_REASONS.length; i++) {
      this.signatureStats.push(i == 0 ? stats.tally("graywall.access.signature.verified") : stats.counter("graywall.access.signature.denied." + SIG_REASONS[i]));
    }
    this.bodyTooLarge = stats.counter("graywall.access.signature.denied.body_too_large");
    const realm = ' realm="' + cfg.realm + '"';
    for (let bits = 0; bits < 8; bits++) {
      let schemes = (bits & REQUIRE_KEY) != 0 || bits == 0 ? "Key" + realm : "";
      if ((bits & REQUIRE_SIGNATURE) != 0) schemes += (schemes.length > 0 ? ", " : "") + "Signature" + realm;
      if ((bits & REQUIRE_TOKEN) != 0) schemes += (schemes.length > 0 ? ", " : "") + "Bearer" + realm;
      this.denied.push(new LocalReply(401, "graywall_access_denied", "unauthorized\n", ["content-type", "text/plain", "www-authenticate", schemes]));
    }
    if (cfg.retiring) this.needsClock = true;
    const sig = cfg.signature;
    if (sig.keys.length > 0) {
      const t = new SlotTable(store, "ac.nonce", sig.maxNonces, NONCE_PAYLOAD, 2 * sig.maxSkewS * 1000);
      this.nonces = t;
      this.maxBodyBytes = sig.maxBodyBytes;
      this.needsClock = true;
    }
  }

  onRequest(req: RequestSnapshot, endOfStream: bool): Outcome {
    // Upstreams trust this header: only this stage writes it.
    req.setRequestHeader(this.consumerName, null);
    const rule = this.ruleFor(req);
    const need = rule === null ? REQUIRE_ANONYMOUS : rule.require;
    let consumer = -1;
    let used = 0;
    let sigStatus = -1;
    // A signature first: it names its key, and a key header beside it is not needed.
    if (this.nonces !== null && req.find(SIGNATURE_INPUT) >= 0) {
      // Verifying works on strings: some KiB of garbage a request (SIGNATURE_GARBAGE).
      req.garbage += SIGNATURE_GARBAGE;
      const status = this.verifySignature(req, !endOfStream);
      sigStatus = status;
      this.stats.inc(unchecked(this.signatureStats[status]));
      if (status == SIG_OK) {
        consumer = this.verifier.facts.consumer;
        used = REQUIRE_SIGNATURE;
      }
    }
    // A token Envoy's jwt_authn verified: its claim, from dynamic metadata no client can write.
    if (consumer < 0 && this.cfg.tokenClaims.length > 0) {
      consumer = this.tokenConsumer(req);
      if (consumer >= 0) used = REQUIRE_TOKEN;
    }
    if (consumer < 0) {
      this.nowS = req.nowMs / 1000;
      consumer = this.identify(req);
      if (consumer >= 0) used = REQUIRE_KEY;
    }
    if (this.presented) req.setRequestHeader(this.keyName, null);
    if (need != REQUIRE_ANONYMOUS && (need & used) == 0) {
      if (used == 0 && (need & REQUIRE_KEY) != 0) this.stats.inc(this.presented ? this.unknownKey : this.missingKey);
      // The same 401 for every reason; the reason goes to Envoy's access log only (the reply's details).
      const d = unchecked(this.denied[need]);
      const reason = used != 0 ? "wrong_credential" : sigStatus > 0 ? unchecked(SIG_REASONS[sigStatus]) : this.presented ? "unknown_key" : "missing_credential";
      req.reply = new LocalReply(d.status, "graywall_access_denied." + reason, d.body, d.headers);
      return Outcome.Reply;
    }
    if (consumer < 0) {
      this.stats.inc(this.anonymous);
      return Outcome.Continue;
    }
    const name = unchecked(this.cfg.consumers[consumer]);
    req.consumer = name;
    req.setRequestHeader(this.consumerName, name);
    this.stats.inc(this.identified);
    // A signed body is checked against its signed digest before anything goes on.
    if (used == REQUIRE_SIGNATURE && this.verifier.facts.coversDigest && !endOfStream) {
      req.digestPending = true;
      return Outcome.NeedBody;
    }
    return Outcome.Continue;
  }

  onBody(req: RequestSnapshot, body: ArrayBuffer | null): Outcome {
    if (!req.digestPending) return Outcome.Continue;
    req.digestPending = false;
    if (req.bodyTooLarge) {
      this.stats.inc(this.bodyTooLarge);
      req.reply = this.tooLarge;
      return Outcome.Reply;
    }
    const sha = this.sha.reset();
    if (body !== null) sha.update(changetype<usize>(body), body.byteLength);
    const field = req.header(CONTENT_DIGEST);
    if (field !== null && contentDigestMatches(field, sha.finish().dataStart, this.scratch)) return Outcome.Continue;
    this.stats.inc(unchecked(this.signatureStats[SIG_DIGEST]));
    const d = unchecked(this.denied[REQUIRE_SIGNATURE]);
    req.reply = new LocalReply(d.status, "graywall_access_denied.digest_mismatch", d.body, d.headers);
    return Outcome.Reply;
  }

  /**
   * The request's signature checked (signature.ts), then its nonce marked used in shared data (only a
   * valid signature's: no one can fill the table without a key). A signed request without a body that
   * covers content-digest has it checked against the empty body here.
   */
  verifySignature(req: RequestSnapshot, hasBody: bool): i32 {
    const nowS = req.nowMs / 1000;
    const status = this.verifier.verify(req, nowS, hasBody);
    if (status != SIG_OK) return status;
    const f = this.verifier.facts;
    const nonces = this.nonces;
    if (f.nonce.length > 0 && nonces !== null) {
      if (f.nonce.length > MAX_NONCE_BYTES) return SIG_REPLAY;
      const k = this.key;
      k.reset();
      k.addString(f.keyId);
      k.addByte(0);
      k.addString(f.nonce);
      const u = this.nonceUpdate;
      u.untilMs = (f.created + 2 * this.cfg.signature.maxSkewS) * 1000;
      u.replayed = false;
      // A full table cannot tell a replay from a new nonce: refused as one (sized by max_nonces).
      if (nonces.updateBytes(k.ptr, k.length, req.nowMs, u) != UpdateStatus.Updated || u.replayed) return SIG_REPLAY;
    }
    if (f.coversDigest && !hasBody) {
      const field = req.header(CONTENT_DIGEST);
      const empty = this.sha.reset().finish().dataStart;
      if (field === null || !contentDigestMatches(field, empty, this.scratch)) return SIG_DIGEST;
    }
    return SIG_OK;
  }

  /**
   * The consumer a verified token names, or -1. Only a request that carries a bearer token is looked at
   * (one host call per provider); the claim comes from the payload jwt_authn put in dynamic metadata
   * after verifying the token, never from anything the client sent, and must name a consumer in force
   * (a consumer removed from the document has its unexpired tokens refused from the next version on).
   * A token that names a consumer is removed before the request goes upstream; any other is left alone.
   */
  tokenConsumer(req: RequestSnapshot): i32 {
    const h = req.find(this.tokenName);
    if (h < 0 || req.valueLength(h) < 7 || !req.valueStartsWithNoCase(h, BEARER)) return -1;
    const claims = this.cfg.tokenClaims;
    for (let i = 0; i < claims.length; i++) {
      const name = req.property(unchecked(claims[i]));
      if (name === null) continue;
      const byName = this.cfg.byName;
      if (!byName.has(name)) return -1;
      req.setRequestHeader(this.tokenName, null);
      return byName.get(name);
    }
    // Not one of ours (another issuer's token, or one that failed verification): left as it came.
    return -1;
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

  /**
   * The consumer of the key at [ptr, ptr + len), or -1: a key this worker has verified before is found in
   * its cache (compared in constant time); any other has its SHA-256 looked up among the digests.
   */
  lookup(ptr: usize, len: i32): i32 {
    this.presented = true;
    if (len > MAX_KEY_BYTES || this.cfg.owners.length == 0) return -1;
    const cached = this.knownKeys.find(ptr, len);
    if (cached >= 0) return this.ownerOf(cached);
    const k = this.lookupDigest(ptr, len);
    if (k >= 0 && this.ownerOf(k) >= 0) this.knownKeys.remember(ptr, len, k);
    return k < 0 ? -1 : this.ownerOf(k);
  }

  /** The owner of key digest `k`, or -1 when it is a rotated key past its grace period. */
  @inline ownerOf(k: i32): i32 {
    const until = unchecked(this.cfg.untilS[k]);
    return until > 0 && this.nowS >= until ? -1 : unchecked(this.cfg.owners[k]);
  }

  /** The index of the key's SHA-256 among the digests (compared in constant time), or -1. */
  lookupDigest(ptr: usize, len: i32): i32 {
    const d = this.sha.reset().update(ptr, len).finish().dataStart;
    const cfg = this.cfg;
    const mask = <u32>cfg.index.length - 1;
    // The index is at most half full: a probe always reaches an empty slot.
    let slot = load<u32>(d) & mask;
    let k = unchecked(cfg.index[slot]) - 1;
    while (k >= 0) {
      if (sameBytes(cfg.digests.dataStart + <usize>(k * DIGEST_BYTES), d, DIGEST_BYTES)) return k;
      slot = (slot + 1) & mask;
      k = unchecked(cfg.index[slot]) - 1;
    }
    return -1;
  }
}
