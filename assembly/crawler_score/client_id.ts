// A signed first-party client id, so that behaviour is kept per browser rather than per address: many
// people share a NAT address, and one of them hitting a honeypot must not block the rest. The cookie is
// "<id>.<issued>.<mac>", mac = HMAC-SHA-256(secret, id "." issued), 16 bytes in hex; a second key
// keeps ids valid across a rotation. Pure.
import { ObjReader } from "../common/lib/config";
import { RotatingKeys, toHex } from "../common/lib/sha256";
import { isCookieName } from "../common/request/http";

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

/** Verified cookie values each VM remembers, so a returning browser costs a lookup, not an HMAC. */
const VERIFIED_CACHE = 1024;

export class ClientIds {
  private keys: RotatingKeys;
  private issued: u32 = 0;
  /** This VM's number among the workers (claimSequence), so two VMs never issue the same id. */
  vmNumber: u32 = 0;
  /** Random bytes of this VM (host randomness when there is some), so ids from two gateways differ too. */
  vmSalt: u64 = 0;
  /** Cookie value -> its issue time, for values whose MAC held; cleared when full and on a rekey. */
  private verified: Map<string, i64> = new Map<string, i64>();

  /** `secret`: the spec's, or this Envoy's when the spec names none (envoy_secret.ts). */
  constructor(public spec: ClientIdSpec, secret: string) {
    this.keys = new RotatingKeys(spec.enabled ? secret : "", spec.enabled ? spec.previousSecret : "");
  }

  /** Signs with `secret` from now on and still accepts `previous` (another VM's Envoy secret won the race). */
  rekey(secret: string, previous: string): void {
    if (this.spec.enabled) this.keys = new RotatingKeys(secret, previous);
    this.verified.clear();
  }

  get enabled(): bool { return this.keys.enabled; }

  /** The id in a cookie value when its MAC holds under either key and it is not past max_age_s; else null. */
  verify(value: string, nowS: i64): string | null {
    const last = value.lastIndexOf(".");
    if (last <= 0 || value.length - last - 1 != 32 || value.length > 80) return null;
    const signed = value.substring(0, last);
    const dot = signed.indexOf(".");
    if (dot <= 0) return null;
    let issued: i64 = 0;
    for (let i = dot + 1; i < signed.length; i++) {
      const c = signed.charCodeAt(i);
      if (c < 0x30 || c > 0x39 || i - dot > 12) return null;
      issued = issued * 10 + (c - 0x30);
    }
    if (nowS - issued >= <i64>this.spec.maxAgeSeconds || issued > nowS + 60) return null;
    if (this.verified.has(value)) return signed.substring(0, dot);
    const mac = value.substring(last + 1);
    for (let k = 0; k < this.keys.count; k++) {
      if (this.keys.macHex(k, signed, 16) != mac) continue;
      if (this.verified.size >= VERIFIED_CACHE) this.verified.clear();
      this.verified.set(value, issued);
      return signed.substring(0, dot);
    }
    return null;
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
