// A signed first-party client id, so that behaviour is kept per browser rather than per address: many
// people share a NAT address, and one of them hitting a honeypot must not block the rest. The cookie is
// "<id>.<issued>.<mac>", mac = HMAC-SHA-256(secret, id "." issued), 16 bytes in hex; a second key
// keeps ids valid across a rotation. Pure.
import { ObjReader } from "../common/lib/config";
import { RotatingKeys, toHex } from "../common/lib/sha256";
import { keyHash } from "../common/lib/hash";
import { ByteSpan, cookieAt, isCookieName } from "../common/request/http";
import { bytesEqual, indexOfByte } from "../common/lib/bytes";

export class ClientIdSpec {
  /** false: no client ids; behaviour is kept per address. */
  enabled: bool = true;
  /** Empty: this Envoy's own secret (envoy_secret.ts), resolved when the stage is built. */
  secret: string = "";
  previousSecret: string = "";
  cookie: string = "graywall_id";
  maxAgeSeconds: i32 = 31536000;
}

export function readClientId(r: ObjReader | null): ClientIdSpec {
  const c = new ClientIdSpec();
  if (r === null) return c;
  c.enabled = r.bool("enabled", true);
  c.secret = r.str("secret", "");
  if (c.secret.length > 0 && c.secret.length < 16) r.errors.add(r.at("secret"), "must be at least 16 characters");
  c.previousSecret = r.str("previous_secret", "");
  if (c.previousSecret.length > 0 && c.secret.length == 0) r.errors.add(r.at("previous_secret"), "needs secret");
  c.cookie = r.str("cookie", c.cookie);
  if (!isCookieName(c.cookie)) r.errors.add(r.at("cookie"), "must be 1-64 characters of a-z, A-Z, 0-9, '_', '-'");
  c.maxAgeSeconds = <i32>r.int("max_age_s", c.maxAgeSeconds, 60, 2 * 31536000);
  r.done();
  return c;
}

/** Verified cookie values each VM remembers (direct-mapped by hash), so a returning browser costs a hash and a compare, not an HMAC. */
const VERIFIED_SLOTS = 1024;
/** A cookie value is "<24 hex>.<issued>.<32 hex>": never longer than this. */
const MAX_VALUE_BYTES = 80;
const MAC_HEX = 32;
/**
 * Whole Cookie headers whose id verified, each VM remembering 128 (direct-mapped by hash): a browser sends
 * the same Cookie header with a page and its subresources, so most of its requests cost a hash and a
 * compare of the header instead of finding the cookie in it and checking its value. Longer headers are
 * looked through every time.
 */
const HEADER_SLOTS = 128;
const MAX_HEADER_BYTES = 1024;
/** A remembered Cookie header's copy: these fields, then the header's bytes from HEADER_BYTES on. */
const HEADER_ISSUED: usize = 0;
const HEADER_OFFSET: usize = 8;
const HEADER_LENGTH: usize = 12;
const HEADER_ID_LENGTH: usize = 16;
const HEADER_BYTES: i32 = 24;
/** idInCookies: the Cookie header has no cookie of the id's name. */
export const NO_ID_COOKIE: i32 = -2;

export class ClientIds {
  private keys: RotatingKeys;
  private issued: u32 = 0;
  /** This VM's number among the workers (claimSequence), so two VMs never issue the same id. */
  vmNumber: u32 = 0;
  /** Random bytes of this VM (host randomness when there is some), so ids from two gateways differ too. */
  vmSalt: u64 = 0;
  /** The cookie's name as bytes, for the per-request lookup. */
  cookieName: ArrayBuffer;
  /** Cookie values whose MAC held, by hash; cleared on a rekey. */
  private verified: Array<ArrayBuffer | null> = new Array<ArrayBuffer | null>(VERIFIED_SLOTS);
  /**
   * Cookie headers whose id verified, by hash; cleared on a rekey. Each copy starts with what a hit
   * needs (HEADER_*: when the id was issued, the value's offset and length, the id's length), so a hit
   * reads one buffer.
   */
  private headers: Array<ArrayBuffer | null> = new Array<ArrayBuffer | null>(HEADER_SLOTS);
  /** When the value verifyAt last accepted was issued (seconds). */
  private lastIssued: i64 = 0;
  /** For tests: the Cookie headers looked through (not found among those remembered). */
  lookedThrough: u32 = 0;

  /** `secret`: the spec's, or this Envoy's when the spec names none (envoy_secret.ts). */
  constructor(public spec: ClientIdSpec, secret: string) {
    this.keys = new RotatingKeys(spec.enabled ? secret : "", spec.enabled ? spec.previousSecret : "");
    this.cookieName = String.UTF8.encode(spec.cookie);
  }

  /** Signs with `secret` from now on and still accepts `previous` (another VM's Envoy secret won the race). */
  rekey(secret: string, previous: string): void {
    if (this.spec.enabled) this.keys = new RotatingKeys(secret, previous);
    for (let i = 0; i < VERIFIED_SLOTS; i++) unchecked(this.verified[i] = null);
    for (let i = 0; i < HEADER_SLOTS; i++) unchecked(this.headers[i] = null);
  }

  /**
   * The client id in the Cookie header at [ptr, ptr + len): the length of its id, with `span` set to its
   * value in those bytes, when its MAC holds under either key and it is not past max_age_s; -1 when the
   * cookie is there but is not that (forged, foreign or expired); NO_ID_COOKIE when it is not there.
   */
  idInCookies(ptr: usize, len: i32, nowS: i64, span: ByteSpan): i32 {
    const cacheable = len <= MAX_HEADER_BYTES;
    let slot = 0;
    if (cacheable) {
      slot = <i32>(keyHash(ptr, len) & (HEADER_SLOTS - 1));
      const seen = unchecked(this.headers[slot]);
      if (seen !== null && seen.byteLength == HEADER_BYTES + len) {
        const at = changetype<usize>(seen);
        // Expiry is checked on every request, as verifyAt does.
        if (this.live(load<i64>(at, HEADER_ISSUED), nowS) && bytesEqual(at + HEADER_BYTES, ptr, len)) {
          span.ptr = ptr + <usize>load<i32>(at, HEADER_OFFSET);
          span.len = load<i32>(at, HEADER_LENGTH);
          return load<i32>(at, HEADER_ID_LENGTH);
        }
      }
    }
    this.lookedThrough++;
    if (!cookieAt(ptr, len, this.cookieName, span)) return NO_ID_COOKIE;
    const n = this.verifyAt(span.ptr, span.len, nowS);
    if (n < 0 || !cacheable) return n;
    const copy = new ArrayBuffer(HEADER_BYTES + len);
    const at = changetype<usize>(copy);
    store<i64>(at, this.lastIssued, HEADER_ISSUED);
    store<i32>(at, <i32>(span.ptr - ptr), HEADER_OFFSET);
    store<i32>(at, span.len, HEADER_LENGTH);
    store<i32>(at, n, HEADER_ID_LENGTH);
    memory.copy(at + HEADER_BYTES, ptr, len);
    unchecked(this.headers[slot] = copy);
    return n;
  }

  @inline private live(issued: i64, nowS: i64): bool {
    return nowS - issued < <i64>this.spec.maxAgeSeconds && issued <= nowS + 60;
  }

  get enabled(): bool { return this.keys.enabled; }

  /**
   * For the cookie value at [ptr, ptr + len): the length of the id it starts with when its MAC holds
   * under either key and it is not past max_age_s, else -1. Reads the bytes in place.
   */
  verifyAt(ptr: usize, len: i32, nowS: i64): i32 {
    if (len > MAX_VALUE_BYTES) return -1;
    const last = len - MAC_HEX - 1;
    if (last <= 0 || load<u8>(ptr + <usize>last) != 0x2e) return -1;
    const dot = indexOfByte(ptr, 0, last, 0x2e);
    if (dot <= 0 || dot >= last) return -1;
    let issued: i64 = 0;
    for (let i = dot + 1; i < last; i++) {
      const c = <i32>load<u8>(ptr + <usize>i);
      if (c < 0x30 || c > 0x39 || i - dot > 12) return -1;
      issued = issued * 10 + (c - 0x30);
    }
    if (!this.live(issued, nowS)) return -1;
    this.lastIssued = issued;
    const slot = <i32>(keyHash(ptr, len) & (VERIFIED_SLOTS - 1));
    const seen = unchecked(this.verified[slot]);
    if (seen !== null && seen.byteLength == len && bytesEqual(changetype<usize>(seen), ptr, len)) return dot;
    for (let k = 0; k < this.keys.count; k++) {
      if (!this.keys.macMatchesHex(k, ptr, last, ptr + <usize>last + 1, MAC_HEX / 2)) continue;
      const copy = new ArrayBuffer(len);
      memory.copy(changetype<usize>(copy), ptr, len);
      unchecked(this.verified[slot] = copy);
      return dot;
    }
    return -1;
  }

  /**
   * A new cookie value: a unique id (this VM's salt and number, and a counter), signed. One HMAC: the id
   * needs no secrecy, only the MAC does.
   */
  issue(client: string, userAgent: string, nowS: i64): string {
    this.issued++;
    const buf = memory.data(12);
    store<u64>(buf, this.vmSalt ^ (<u64>this.vmNumber << 32));
    store<u32>(buf, this.issued, 8);
    const signed = toHex(buf, 12) + "." + nowS.toString();
    return signed + "." + this.keys.macHex(0, signed, 16);
  }

}
