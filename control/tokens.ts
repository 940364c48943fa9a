// Short-lived tokens for consumers: graywall-control signs JWTs (ES256) for a consumer that shows one of
// its API keys, and serves the public keys as a JWKS, which Envoy's jwt_authn filter fetches to verify
// tokens before the access stage maps the verified `sub` to its consumer. The signing keys live in
// <data>/token-keys.json (mode 0600), never in a response; a rotation makes a new current key and keeps
// the old one's public half in the JWKS until every token it signed has expired.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK, SignJWT } from "jose";
import { writeAtomic } from "../runtime/files.ts";

export const TOKEN_ISSUER = "graywall-control";
export const TOKEN_AUDIENCE = "graywall";
/** 24 hours, unless the service is configured otherwise. */
export const DEFAULT_TOKEN_LIFETIME_S = 86400;

/**
 * After a rotation the new key is published in the JWKS at once but signs only from this long after
 * (ms): gateways cache the JWKS (envoy/envoy.yaml: 30 s), so a token is never signed by a key a gateway
 * has not fetched yet.
 */
export const KEY_ACTIVATION_MS = 60_000;

interface StoredKey {
  kid: string;
  privateJwk: JWK;
  publicJwk: JWK;
  /** When it starts signing (ms); unset: from its making. */
  activeFromMs?: number;
  /** Until when its public key stays in the JWKS (ms); unset while it may still sign. */
  retireAfterMs?: number;
}

export class TokenKeys {
  private file: string;
  private keys: StoredKey[] = [];

  constructor(
    dataDir: string,
    public lifetimeS = DEFAULT_TOKEN_LIFETIME_S,
  ) {
    this.file = join(dataDir, "token-keys.json");
    if (existsSync(this.file)) this.keys = (JSON.parse(readFileSync(this.file, "utf8")) as { keys: StoredKey[] }).keys;
  }

  private save(): void {
    writeAtomic(this.file, JSON.stringify({ keys: this.keys }), 0o600);
  }

  private async make(): Promise<StoredKey> {
    const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
    const publicJwk = await exportJWK(publicKey);
    const kid = (await calculateJwkThumbprint(publicJwk)).slice(0, 16);
    return { kid, privateJwk: await exportJWK(privateKey), publicJwk: { ...publicJwk, kid, alg: "ES256", use: "sig" } };
  }

  /** The key that signs now (the newest one active), made on first use. */
  private async current(): Promise<StoredKey> {
    const now = Date.now();
    const active = this.keys.filter((x) => (x.activeFromMs ?? 0) <= now && (x.retireAfterMs === undefined || x.retireAfterMs > now));
    let k = active[active.length - 1];
    if (!k) {
      k = await this.make();
      this.keys.push(k);
      this.save();
    }
    return k;
  }

  /** The public keys Envoy verifies with: the current one and those whose tokens may still be valid. */
  async jwks(): Promise<{ keys: JWK[] }> {
    await this.current();
    const now = Date.now();
    const live = this.keys.filter((k) => k.retireAfterMs === undefined || k.retireAfterMs > now);
    if (live.length !== this.keys.length) {
      this.keys = live;
      this.save();
    }
    return { keys: live.map((k) => k.publicJwk) };
  }

  /** A token for `consumer`, valid for lifetimeS. */
  async issue(consumer: string): Promise<{ token: string; expiresAt: number }> {
    const k = await this.current();
    const now = Math.floor(Date.now() / 1000);
    const exp = now + this.lifetimeS;
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: "ES256", kid: k.kid, typ: "JWT" })
      .setIssuer(TOKEN_ISSUER)
      .setAudience(TOKEN_AUDIENCE)
      .setSubject(consumer)
      .setIssuedAt(now)
      .setExpirationTime(exp)
      .sign(await importJWK(k.privateJwk, "ES256"));
    return { token, expiresAt: exp };
  }

  /**
   * A new key: published now, signing from KEY_ACTIVATION_MS on; the old one signs until then and stays
   * published until its last token expires.
   */
  async rotate(): Promise<{ kid: string; signsFromMs: number }> {
    const old = await this.current();
    const signsFromMs = Date.now() + KEY_ACTIVATION_MS;
    old.retireAfterMs = signsFromMs + this.lifetimeS * 1000 + 60_000;
    const next = await this.make();
    next.activeFromMs = signsFromMs;
    this.keys.push(next);
    this.save();
    return { kid: next.kid, signsFromMs };
  }
}
