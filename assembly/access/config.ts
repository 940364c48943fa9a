// access configuration: named consumers and their API keys (as SHA-256 digests only), where the key is
// read from, and which paths need one. Validated and compiled once. Pure.
import { ConfigErrors, ObjReader, readConfigRoot } from "../common/lib/config";
import { overBudget, tableBytes } from "../common/lib/memory_budget";
import { JsonKind } from "../common/lib/json";
import { HmacSha256 } from "../common/lib/sha256";
import { isHeaderName, writableHeaderProblem } from "../common/request/header_names";
import { SignatureSpec, SigningKey } from "./signature";

/** What a path asks of a caller: any of these credentials (bits); none = anonymous. */
export const REQUIRE_ANONYMOUS = 0;
export const REQUIRE_KEY = 1;
export const REQUIRE_SIGNATURE = 2;
export const REQUIRE_TOKEN = 4;
export const CREDENTIALS = "anonymous, key, signature, token";
/** Envoy's jwt_authn filter keeps a verified token's payload under this dynamic-metadata namespace. */
export const JWT_METADATA_NAMESPACE = "envoy.filters.http.jwt_authn";
/** A signing key's secret: at least this many bytes (graywall-control makes 43-character ones). */
export const MIN_SECRET_BYTES = 32;
export const MAX_SIGNING_KEYS_PER_CONSUMER = 4;

export const MAX_CONSUMERS = 10000;
export const MAX_KEYS_PER_CONSUMER = 16;
export const MAX_RULES = 200;
const DIGEST_BYTES = 32;

export class AccessRule {
  prefix: string = "/";
  prefixBytes: ArrayBuffer = new ArrayBuffer(0);
  /** Upper-case methods; empty: any. */
  methods: string[] = [];
  methodBytes: ArrayBuffer[] = [];
  require: i32 = REQUIRE_ANONYMOUS;
}

export class AccessConfig {
  consumerHeader: string = "x-graywall-consumer";
  keyHeader: string = "x-api-key";
  /** A query parameter that may carry the key instead; "" (the default): the header only. */
  keyQuery: string = "";
  consumers: string[] = [];
  /** The keys' SHA-256 digests, 32 bytes each, and the consumer each belongs to. */
  digests: Uint8Array = new Uint8Array(0);
  owners: Int32Array = new Int32Array(0);
  /** Per key: until when it is accepted (epoch seconds; 0 = no end): a rotated key's grace period. */
  untilS: Int64Array = new Int64Array(0);
  /** Some key has a grace period: the stage needs the clock. */
  retiring: bool = false;
  /** Open addressing over the digests (index + 1; 0 = empty), by their first four bytes. */
  index: Int32Array = new Int32Array(0);
  rules: AccessRule[] = [];
  realm: string = "graywall";
  /** Signed requests (signature.ts): the consumers' signing keys and the checks' settings. */
  signature: SignatureSpec = new SignatureSpec();
  /** Tokens Envoy's jwt_authn verified: per provider, the property path of the claim naming the consumer. */
  tokenClaims: ArrayBuffer[] = [];
  tokenHeader: string = "authorization";
  /** Consumer index by name (tokens name their consumer). */
  byName: Map<string, i32> = new Map<string, i32>();
}

/** The property path of `claim` in the payload jwt_authn keeps under `payloadKey` (payload_in_metadata). */
export function claimPath(payloadKey: string, claim: string): ArrayBuffer {
  return String.UTF8.encode("metadata\0filter_metadata\0" + JWT_METADATA_NAMESPACE + "\0" + payloadKey + "\0" + claim);
}

function hexValue(c: i32): i32 {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** The consumer name rules: what a header value and a rate-limit key can carry as they are. */
function consumerNameProblem(name: string): string {
  if (name.length == 0 || name.length > 64) return "must be 1-64 characters";
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c == 0x5f || c == 0x2d || c == 0x2e;
    if (!ok) return "must be letters, digits, '_', '-' or '.'";
  }
  return "";
}

export function compileAccessConfig(src: string, errors: ConfigErrors): AccessConfig | null {
  const r = readConfigRoot(src, errors);
  if (r === null) return null;
  return readAccessConfig(r);
}

/** Compiles the document `r` reads (the whole config, or the access section of graywall's). */
export function readAccessConfig(r: ObjReader): AccessConfig | null {
  const errors = r.errors;
  const cfg = new AccessConfig();
  cfg.consumerHeader = r.str("consumer_header", cfg.consumerHeader).toLowerCase();
  const problem = writableHeaderProblem(cfg.consumerHeader);
  if (problem.length > 0) errors.add(r.at("consumer_header"), problem);
  cfg.keyHeader = r.str("key_header", cfg.keyHeader).toLowerCase();
  if (!isHeaderName(cfg.keyHeader)) errors.add(r.at("key_header"), "not a valid header name");
  cfg.keyQuery = r.str("key_query", "");
  cfg.realm = r.str("realm", cfg.realm);
  for (let i = 0; i < cfg.realm.length; i++) {
    const c = cfg.realm.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c == 0x22 || c == 0x5c) { errors.add(r.at("realm"), "printable ASCII without quotes or backslashes"); break; }
  }
  const list = r.objList("consumers", MAX_CONSUMERS);
  let keys = 0;
  const digestList = new Array<string>();
  const ownerList = new Array<i32>();
  const untilList = new Array<i64>();
  for (let i = 0; i < list.length; i++) {
    const c = list[i];
    const name = c.requiredStr("name");
    const np = consumerNameProblem(name);
    if (name.length > 0 && np.length > 0) errors.add(c.at("name"), np);
    if (cfg.consumers.includes(name)) errors.add(c.at("name"), "'" + name + "' is named twice");
    const ks = c.strList("key_sha256", MAX_KEYS_PER_CONSUMER);
    // A rotated key, accepted until its grace period ends: {sha256, until_s}.
    const retiring = c.objList("retiring_keys", MAX_KEYS_PER_CONSUMER);
    for (let k = 0; k < ks.length + retiring.length; k++) {
      let d = "";
      let at = "";
      let until: i64 = 0;
      if (k < ks.length) {
        d = ks[k];
        at = c.at("key_sha256") + "[" + k.toString() + "]";
      } else {
        const rk = retiring[k - ks.length];
        d = rk.requiredStr("sha256");
        until = rk.int("until_s", 0, 1, 99999999999);
        if (until == 0) rk.errors.add(rk.at("until_s"), "is required: when the grace period ends (epoch seconds)");
        at = rk.at("sha256");
        rk.done();
      }
      let ok = d.length == 2 * DIGEST_BYTES;
      for (let j = 0; ok && j < d.length; j++) ok = hexValue(d.charCodeAt(j)) >= 0;
      if (!ok) { errors.add(at, "must be a SHA-256 digest: 64 lower-case hex characters"); continue; }
      if (digestList.includes(d)) { errors.add(at, "the same key is listed twice"); continue; }
      digestList.push(d);
      ownerList.push(i);
      untilList.push(until);
      keys++;
    }
    const sks = c.objList("signing_keys", MAX_SIGNING_KEYS_PER_CONSUMER);
    for (let k = 0; k < sks.length; k++) {
      const sk = sks[k];
      const id = sk.requiredStr("id");
      const secret = sk.requiredStr("secret");
      if (id.length > 0 && readKeyId(id).length > 0) sk.errors.add(sk.at("id"), readKeyId(id));
      if (cfg.signature.byId.has(id)) sk.errors.add(sk.at("id"), "'" + id + "' is used twice");
      const bytes = String.UTF8.encode(secret);
      if (secret.length > 0 && bytes.byteLength < MIN_SECRET_BYTES) sk.errors.add(sk.at("secret"), "must be at least " + MIN_SECRET_BYTES.toString() + " bytes");
      sk.done();
      const key = new SigningKey(id, i, new HmacSha256(bytes));
      cfg.signature.keys.push(key);
      cfg.signature.byId.set(id, key);
    }
    c.done();
    cfg.byName.set(name, cfg.consumers.length);
    cfg.consumers.push(name);
  }
  cfg.digests = new Uint8Array(keys * DIGEST_BYTES);
  cfg.owners = new Int32Array(keys);
  cfg.untilS = new Int64Array(keys);
  for (let k = 0; k < keys; k++) {
    cfg.untilS[k] = untilList[k];
    if (untilList[k] > 0) cfg.retiring = true;
    const d = digestList[k];
    for (let j = 0; j < DIGEST_BYTES; j++) cfg.digests[k * DIGEST_BYTES + j] = <u8>((hexValue(d.charCodeAt(2 * j)) << 4) | hexValue(d.charCodeAt(2 * j + 1)));
    cfg.owners[k] = ownerList[k];
  }
  let size = 16;
  while (size < 2 * keys) size <<= 1;
  cfg.index = new Int32Array(size);
  for (let k = 0; k < keys; k++) {
    let slot = load<u32>(cfg.digests.dataStart + <usize>(k * DIGEST_BYTES)) & <u32>(size - 1);
    while (cfg.index[slot] != 0) slot = (slot + 1) & <u32>(size - 1);
    cfg.index[slot] = k + 1;
  }
  const rules = r.objList("require", MAX_RULES);
  for (let i = 0; i < rules.length; i++) {
    const o = rules[i];
    const rule = new AccessRule();
    rule.prefix = o.str("prefix", "/");
    if (!rule.prefix.startsWith("/")) errors.add(o.at("prefix"), "must start with '/'");
    rule.prefixBytes = String.UTF8.encode(rule.prefix);
    const methods = o.strList("methods", 16);
    for (let m = 0; m < methods.length; m++) {
      const up = methods[m].toUpperCase();
      rule.methods.push(up);
      rule.methodBytes.push(String.UTF8.encode(up));
    }
    rule.require = readCredentials(o);
    o.done();
    cfg.rules.push(rule);
  }
  const tok = r.obj("tokens");
  if (tok !== null) {
    cfg.tokenHeader = tok.str("header", cfg.tokenHeader).toLowerCase();
    if (!isHeaderName(cfg.tokenHeader)) tok.errors.add(tok.at("header"), "not a valid header name");
    const providers = tok.objList("providers", 8);
    if (providers.length == 0) tok.errors.add(tok.at("providers"), "must name at least one provider (jwt_authn's payload_in_metadata)");
    for (let i = 0; i < providers.length; i++) {
      const pr = providers[i];
      const payload = pr.requiredStr("payload_in_metadata");
      const claim = pr.str("claim", "sub");
      if (claim.length == 0) pr.errors.add(pr.at("claim"), "must not be empty");
      pr.done();
      cfg.tokenClaims.push(claimPath(payload, claim));
    }
    tok.done();
  }
  const sig = r.obj("signature");
  if (sig !== null) {
    const sp = cfg.signature;
    sp.maxSkewS = sig.int("max_skew_s", sp.maxSkewS, 1, 3600);
    sp.requireNonce = sig.bool("require_nonce", sp.requireNonce);
    sp.maxNonces = <i32>sig.int("max_nonces", sp.maxNonces, 100, 1000000);
    sp.maxBodyBytes = <i32>sig.int("max_body_bytes", sp.maxBodyBytes, 0, 512 * 1024);
    sig.done();
    const budget = overBudget(accessTableBytes(cfg));
    if (budget.length > 0) errors.add(sig.at("max_nonces"), budget);
  }
  r.done();
  if (!errors.ok) return null;
  return cfg;
}

/** A keyid's problem, or "": printable ASCII without quotes or backslashes, at most 64 characters. */
function readKeyId(id: string): string {
  if (id.length > 64) return "at most 64 characters";
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (c < 0x21 || c > 0x7e || c == 0x22 || c == 0x5c) return "printable ASCII without spaces, quotes or backslashes";
  }
  return "";
}

/** A rule's `credentials`: one of CREDENTIALS, or a list of key, signature and token (any of them will do). */
function readCredentials(o: ObjReader): i32 {
  const v = o.raw("credentials");
  if (v === null) return REQUIRE_KEY;
  if (v.kind == JsonKind.String) {
    if (v.str == "anonymous") return REQUIRE_ANONYMOUS;
    if (v.str == "key") return REQUIRE_KEY;
    if (v.str == "signature") return REQUIRE_SIGNATURE;
    if (v.str == "token") return REQUIRE_TOKEN;
  } else if (v.kind == JsonKind.Array && v.items.length > 0) {
    let bits = 0;
    for (let i = 0; i < v.items.length; i++) {
      const item = v.items[i];
      if (item.kind == JsonKind.String && item.str == "key") bits |= REQUIRE_KEY;
      else if (item.kind == JsonKind.String && item.str == "signature") bits |= REQUIRE_SIGNATURE;
      else if (item.kind == JsonKind.String && item.str == "token") bits |= REQUIRE_TOKEN;
      else {
        o.errors.add(o.at("credentials") + "[" + i.toString() + "]", "must be key, signature or token");
        return REQUIRE_KEY;
      }
    }
    return bits;
  }
  o.errors.add(o.at("credentials"), "must be one of " + CREDENTIALS + ", or a list of key, signature and token");
  return REQUIRE_KEY;
}

/** A nonce's record in shared data: until when it stays used (access/stage.ts). */
export const NONCE_PAYLOAD = 8;

/** Shared memory of the nonce table: only with signing keys. */
export function accessTableBytes(cfg: AccessConfig): i64 {
  return cfg.signature.keys.length > 0 ? tableBytes(<i64>cfg.signature.maxNonces, NONCE_PAYLOAD) : 0;
}
