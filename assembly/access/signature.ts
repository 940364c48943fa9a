// HTTP Message Signatures (RFC 9421) with hmac-sha256: the request's Signature-Input and Signature
// fields, the signature base rebuilt from the request as the gateway sees it, the HMAC under the key the
// signature names (keyid), its created time within a clock-skew window, and the components a policy
// needs covered. What Content-Digest (RFC 9530) says of the body is checked after this, only once the
// signature holds, so a bad signature never costs a body's hash. Pure.
import { base64Decode } from "../common/lib/base64";
import { HmacSha256, sameBytes } from "../common/lib/sha256";
import { HeaderName, METHOD, PATH, RequestSnapshot } from "../common/request/snapshot";

export const SIGNATURE_INPUT = new HeaderName("signature-input");
export const SIGNATURE = new HeaderName("signature");
export const CONTENT_DIGEST = new HeaderName("content-digest");
const SCHEME = new HeaderName(":scheme");
const AUTHORITY = new HeaderName(":authority");

/** Why a signature was refused (or OK); each has its counter (graywall.access.signature.<name>). */
export const SIG_OK = 0;
export const SIG_MALFORMED = 1;
export const SIG_UNKNOWN_KEY = 2;
export const SIG_BAD = 3;
export const SIG_SKEW = 4;
export const SIG_MISSING_COMPONENT = 5;
export const SIG_REPLAY = 6;
export const SIG_DIGEST = 7;
export const SIG_REASONS: string[] = ["ok", "malformed", "unknown_key", "bad_signature", "clock_skew", "missing_component", "replayed_nonce", "digest_mismatch"];

/** A consumer's signing key: its id (the signature's keyid), and the HMAC prepared from its secret. */
export class SigningKey {
  constructor(public id: string, public consumer: i32, public hmac: HmacSha256) {}
}

export class SignatureSpec {
  /** How far a signature's created time may be from the gateway's clock, either way, in seconds. */
  maxSkewS: i64 = 300;
  /** Whether a signature must carry a nonce (remembered for the skew window: a replay is refused). */
  requireNonce: bool = true;
  /** Signed requests' nonces remembered at once, across workers. */
  maxNonces: i32 = 20000;
  /** The most body bytes whose Content-Digest is checked; a larger signed body gets 413. */
  maxBodyBytes: i32 = 262144;
  keys: SigningKey[] = [];
  /** The keys by id (built with `keys`). */
  byId: Map<string, SigningKey> = new Map<string, SigningKey>();
}

/** What a verified signature said. */
export class SignatureFacts {
  consumer: i32 = -1;
  keyId: string = "";
  nonce: string = "";
  created: i64 = 0;
  /** The signature covers content-digest: the body must match it. */
  coversDigest: bool = false;
}

/**
 * The member `label=...` of a structured-field dictionary (RFC 8941), as its raw text, found outside
 * quoted strings and inner lists; the first member when `label` is "". Null when absent.
 */
export function dictionaryMember(field: string, label: string, labelOut: string[]): string | null {
  let i = 0;
  const n = field.length;
  while (i < n) {
    while (i < n && (field.charCodeAt(i) == 0x20 || field.charCodeAt(i) == 0x09)) i++;
    const keyStart = i;
    while (i < n && field.charCodeAt(i) != 0x3d && field.charCodeAt(i) != 0x2c) i++;
    const key = field.substring(keyStart, i);
    if (i >= n || field.charCodeAt(i) != 0x3d) return null;
    i++;
    const valueStart = i;
    let quoted = false;
    let depth = 0;
    while (i < n) {
      const c = field.charCodeAt(i);
      if (quoted) {
        if (c == 0x5c) i++;
        else if (c == 0x22) quoted = false;
      } else if (c == 0x22) quoted = true;
      else if (c == 0x28) depth++;
      else if (c == 0x29) depth--;
      else if (c == 0x2c && depth == 0) break;
      i++;
    }
    if (label.length == 0 || key == label) {
      if (labelOut.length > 0) labelOut[0] = key;
      return field.substring(valueStart, i).trim();
    }
    i++;
  }
  return null;
}

/** The components (inner list) and parameters of a Signature-Input member's value. */
export class SignatureInput {
  components: string[] = [];
  created: i64 = -1;
  expires: i64 = -1;
  keyId: string = "";
  nonce: string = "";
  alg: string = "";
  ok: bool = false;

  /** Parses `("@method" "@target-uri");created=1;keyid="k";nonce="n"`. Component parameters are refused. */
  static parse(value: string): SignatureInput {
    const out = new SignatureInput();
    if (!value.startsWith("(")) return out;
    let i = 1;
    const n = value.length;
    while (i < n) {
      const c = value.charCodeAt(i);
      if (c == 0x20) { i++; continue; }
      if (c == 0x29) { i++; break; }
      if (c != 0x22) return out;
      const end = value.indexOf('"', i + 1);
      if (end < 0) return out;
      const name = value.substring(i + 1, end);
      // A component with parameters (;sf, ;key, ;name, ;req, ;bs) is not supported: refused, not misread.
      if (end + 1 < n && value.charCodeAt(end + 1) == 0x3b) return out;
      for (let k = 0; k < name.length; k++) {
        const ch = name.charCodeAt(k);
        if (ch < 0x20 || ch > 0x7e || (ch >= 0x41 && ch <= 0x5a)) return out;
      }
      out.components.push(name);
      i = end + 1;
    }
    // Parameters: ;name=value, value an integer or a quoted string.
    while (i < n) {
      if (value.charCodeAt(i) != 0x3b) return out;
      i++;
      const eq = value.indexOf("=", i);
      if (eq < 0) return out;
      const name = value.substring(i, eq);
      i = eq + 1;
      let text = "";
      let number: i64 = -1;
      if (i < n && value.charCodeAt(i) == 0x22) {
        const end = value.indexOf('"', i + 1);
        if (end < 0) return out;
        text = value.substring(i + 1, end);
        if (text.includes("\\")) return out;
        i = end + 1;
      } else {
        const start = i;
        number = 0;
        while (i < n && value.charCodeAt(i) >= 0x30 && value.charCodeAt(i) <= 0x39 && i - start < 15) {
          number = number * 10 + <i64>(value.charCodeAt(i) - 0x30);
          i++;
        }
        if (i == start) return out;
      }
      if (name == "created") out.created = number;
      else if (name == "expires") out.expires = number;
      else if (name == "keyid") out.keyId = text;
      else if (name == "nonce") out.nonce = text;
      else if (name == "alg") out.alg = text;
      // Other parameters (tag, ...) are signed like the rest and otherwise ignored.
    }
    out.ok = out.components.length > 0;
    return out;
  }
}

/** The value of a byte-sequence item `:base64:`, decoded into `out`; -1 when it is not one. */
export function byteSequence(item: string, out: Uint8Array): i32 {
  const s = item.trim();
  if (s.length < 2 || s.charCodeAt(0) != 0x3a || s.charCodeAt(s.length - 1) != 0x3a) return -1;
  return base64Decode(s.substring(1, s.length - 1), out);
}

/** The path and query of a :path ("/a?b" -> "/a", "?b"; no query -> "?"). */
function splitPath(path: string, query: bool): string {
  const q = path.indexOf("?");
  if (query) return q < 0 ? "?" : path.substring(q);
  return q < 0 ? path : path.substring(0, q);
}

/**
 * The value of one covered component as the gateway sees the request, or null when the request has no
 * such component (or it is one this verifier does not derive).
 */
export function componentValue(req: RequestSnapshot, name: string): string | null {
  if (name.startsWith("@")) {
    const path = req.header(PATH);
    if (name == "@method") return req.header(METHOD);
    if (name == "@path") return path === null ? null : splitPath(path, false);
    if (name == "@query") return path === null ? null : splitPath(path, true);
    if (name == "@request-target") return path;
    if (name == "@authority") {
      const a = req.header(AUTHORITY);
      return a === null ? null : a.toLowerCase();
    }
    if (name == "@scheme") {
      const s = req.header(SCHEME);
      return s === null ? null : s.toLowerCase();
    }
    if (name == "@target-uri") {
      const s = req.header(SCHEME);
      const a = req.header(AUTHORITY);
      if (s === null || a === null || path === null) return null;
      return s.toLowerCase() + "://" + a.toLowerCase() + path;
    }
    return null;
  }
  const v = req.header(new HeaderName(name));
  return v === null ? null : v.trim();
}

/**
 * The signature base (RFC 9421 section 2.5): each covered component's line, then `@signature-params`
 * with the Signature-Input member as received. Null when the request lacks a covered component.
 */
export function signatureBase(req: RequestSnapshot, components: string[], member: string): string | null {
  let base = "";
  for (let i = 0; i < components.length; i++) {
    const v = componentValue(req, unchecked(components[i]));
    if (v === null) return null;
    base += '"' + unchecked(components[i]) + '": ' + v + "\n";
  }
  return base + '"@signature-params": ' + member;
}

export class SignatureVerifier {
  private given: Uint8Array = new Uint8Array(64);
  private label: string[] = [""];
  facts: SignatureFacts = new SignatureFacts();

  constructor(public spec: SignatureSpec) {}

  /** The key named `id`, or null. */
  key(id: string): SigningKey | null {
    const byId = this.spec.byId;
    return byId.has(id) ? byId.get(id) : null;
  }

  /**
   * Verifies the request's first signature at `nowS` (seconds): SIG_OK with `facts` filled, or why not.
   * The signature must cover @method, the target (@target-uri, or @path with @query when the request
   * has a query), and content-digest when the request has a body; carry created (within the skew
   * window), keyid and, by default, a nonce.
   */
  verify(req: RequestSnapshot, nowS: i64, hasBody: bool): i32 {
    const inputField = req.header(SIGNATURE_INPUT);
    const sigField = req.header(SIGNATURE);
    if (inputField === null || sigField === null) return SIG_MALFORMED;
    const member = dictionaryMember(inputField, "", this.label);
    if (member === null) return SIG_MALFORMED;
    const input = SignatureInput.parse(member);
    if (!input.ok || input.created < 0 || input.keyId.length == 0) return SIG_MALFORMED;
    if (input.alg.length > 0 && input.alg != "hmac-sha256") return SIG_MALFORMED;
    const sigItem = dictionaryMember(sigField, this.label[0], []);
    if (sigItem === null) return SIG_MALFORMED;
    const sigLen = byteSequence(sigItem, this.given);
    if (sigLen != 32) return SIG_MALFORMED;
    const key = this.key(input.keyId);
    if (key === null) return SIG_UNKNOWN_KEY;
    // What a policy needs covered: the method, the target, and the body's digest when there is a body.
    const c = input.components;
    const path = req.header(PATH);
    const hasQuery = path !== null && path.includes("?");
    const target = c.includes("@target-uri") || c.includes("@request-target") || (c.includes("@path") && (!hasQuery || c.includes("@query")));
    if (!c.includes("@method") || !target || (hasBody && !c.includes("content-digest"))) return SIG_MISSING_COMPONENT;
    if (this.spec.requireNonce && input.nonce.length == 0) return SIG_MISSING_COMPONENT;
    const base = signatureBase(req, c, member);
    if (base === null) return SIG_MISSING_COMPONENT;
    const mac = key.hmac.signString(base);
    if (!sameBytes(mac.dataStart, this.given.dataStart, 32)) return SIG_BAD;
    // Only a valid signature's times are looked at: a forged one learns nothing from the answer.
    const skew = this.spec.maxSkewS;
    if (input.created > nowS + skew || input.created < nowS - skew) return SIG_SKEW;
    if (input.expires >= 0 && input.expires < nowS) return SIG_SKEW;
    const f = this.facts;
    f.consumer = key.consumer;
    f.keyId = input.keyId;
    f.nonce = input.nonce;
    f.created = input.created;
    f.coversDigest = c.includes("content-digest");
    return SIG_OK;
  }
}

/**
 * Whether a Content-Digest field's sha-256 member equals the 32 bytes at `digest` (RFC 9530). Other
 * algorithms in the field are ignored; without a sha-256 member it does not match.
 */
export function contentDigestMatches(field: string, digest: usize, scratch: Uint8Array): bool {
  const item = dictionaryMember(field, "sha-256", []);
  if (item === null) return false;
  if (byteSequence(item, scratch) != 32) return false;
  return sameBytes(scratch.dataStart, digest, 32);
}
