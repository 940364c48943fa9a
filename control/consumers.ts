// Credentials for the access stage's consumers. API keys: graywall-control makes a key, puts only its
// SHA-256 digest into the access document, and shows the key once, in the answer to the call that made
// it; revoking takes a digest out by its fingerprint (the digest's first 16 hex characters). Signing keys
// (RFC 9421 hmac-sha256): made here too and shown once; their secrets are kept apart from the document
// (secrets.ts) and reach only the gateway; revoking takes one out by its id.
import { createHash, randomBytes } from "node:crypto";

export interface SigningKey {
  id: string;
  /** The secret (a new one), or the marker a stored document holds in its place. */
  secret: unknown;
}

export interface RetiringKey {
  sha256: string;
  /** The end of its grace period, epoch seconds: the gateway refuses it from then on by itself. */
  until_s: number;
}

export interface Consumer {
  name: string;
  key_sha256?: string[];
  retiring_keys?: RetiringKey[];
  signing_keys?: SigningKey[];
  [other: string]: unknown;
}

export interface AccessDoc {
  consumers?: Consumer[];
  [other: string]: unknown;
}

export const CONSUMER_NAME = "^[A-Za-z0-9_.-]{1,64}$";
export const FINGERPRINT = "^[0-9a-f]{16}$";
export const SIGNING_KEY_ID = "^[A-Za-z0-9_.-]{1,64}$";
/** What the access stage takes per consumer. */
export const MAX_SIGNING_KEYS = 4;

export const digestOf = (key: string) => createHash("sha256").update(key).digest("hex");
export const fingerprintOf = (digest: string) => digest.slice(0, 16);

/** The consumer named `name` in a copy of `doc`, created if it has none. */
function consumerIn(doc: AccessDoc, name: string): { next: AccessDoc; c: Consumer } {
  const next = structuredClone(doc);
  if (!next.consumers) next.consumers = [];
  let c = next.consumers.find((x) => x.name === name);
  if (!c) {
    c = { name };
    next.consumers.push(c);
  }
  return { next, c };
}

/** A new key (32 random bytes, base64url, with a prefix that says what it is) and the document holding its digest. */
export function addKey(doc: AccessDoc, name: string): { doc: AccessDoc; key: string; fingerprint: string } {
  const key = `gwk_${randomBytes(32).toString("base64url")}`;
  const digest = digestOf(key);
  const { next, c } = consumerIn(doc, name);
  c.key_sha256 = [...(c.key_sha256 ?? []), digest];
  return { doc: next, key, fingerprint: fingerprintOf(digest) };
}

/**
 * A new signing key for `name`: an id (`<name>-<8 hex>`) and a secret of 32 random bytes (`gws_` +
 * base64url), in a document that holds it (the caller seals it, so only a marker is stored). Null when
 * the consumer has MAX_SIGNING_KEYS already (revoke one first).
 */
export function addSigningKey(doc: AccessDoc, name: string): { doc: AccessDoc; id: string; secret: string } | null {
  const { next, c } = consumerIn(doc, name);
  const keys = c.signing_keys ?? [];
  if (keys.length >= MAX_SIGNING_KEYS) return null;
  const id = `${name.slice(0, 55)}-${randomBytes(4).toString("hex")}`;
  const secret = `gws_${randomBytes(32).toString("base64url")}`;
  c.signing_keys = [...keys, { id, secret }];
  return { doc: next, id, secret };
}

/** The document without the signing key `id`; null when the consumer has none such. */
export function removeSigningKey(doc: AccessDoc, name: string, id: string): AccessDoc | null {
  const next = structuredClone(doc);
  const c = next.consumers?.find((x) => x.name === name);
  const keys = c?.signing_keys ?? [];
  const kept = keys.filter((k) => k.id !== id);
  if (!c || kept.length === keys.length) return null;
  c.signing_keys = kept;
  return next;
}

/** The document without the key whose digest has this fingerprint; null when the consumer has none such. */
export function removeKey(doc: AccessDoc, name: string, fingerprint: string): AccessDoc | null {
  const next = structuredClone(doc);
  const c = next.consumers?.find((x) => x.name === name);
  const keys = c?.key_sha256 ?? [];
  const kept = keys.filter((d) => fingerprintOf(d) !== fingerprint);
  if (!c || kept.length === keys.length) return null;
  c.key_sha256 = kept;
  return next;
}

/** The consumer one of whose API keys is `key`, or undefined. */
export function consumerOfKey(doc: AccessDoc, key: string): string | undefined {
  if (key.length > 256) return undefined;
  const d = digestOf(key);
  return doc.consumers?.find((c) => c.key_sha256?.includes(d))?.name;
}

/** The document without the consumer `name` (its keys, signing keys and tokens stop at once); null when there is none. */
/** A new consumer with no credential yet; null when one of that name exists. */
export function addConsumer(doc: AccessDoc, name: string): AccessDoc | null {
  if ((doc.consumers ?? []).some((c) => c.name === name)) return null;
  return { ...doc, consumers: [...(doc.consumers ?? []), { name }] };
}

/** The consumers as the API lists them: names, key fingerprints, replaced keys' deadlines, signing key ids; no secret, no digest. */
export function listConsumers(doc: AccessDoc, nowS = Math.floor(Date.now() / 1000)) {
  return (doc.consumers ?? []).map((c) => ({
    name: c.name,
    keys: (c.key_sha256 ?? []).map(fingerprintOf),
    replaced_keys: (c.retiring_keys ?? []).filter((r) => r.until_s > nowS).map((r) => ({ fingerprint: fingerprintOf(r.sha256), works_until_s: r.until_s })),
    signing_keys: (c.signing_keys ?? []).map((k) => k.id),
  }));
}

export function removeConsumer(doc: AccessDoc, name: string): AccessDoc | null {
  const next = structuredClone(doc);
  const before = next.consumers?.length ?? 0;
  next.consumers = (next.consumers ?? []).filter((c) => c.name !== name);
  return next.consumers.length === before ? null : next;
}

/** The default grace period of a rotated key (24 hours), and the longest (30 days). */
export const DEFAULT_GRACE_S = 86400;
export const MAX_GRACE_S = 30 * 86400;

/**
 * A new key for `name` in place of the one with this fingerprint, which stays valid for `graceS` seconds
 * (the gateway refuses it after that by itself) so clients can move over. Null when there is no such key.
 */
export function rotateKey(doc: AccessDoc, name: string, fingerprint: string, graceS: number, nowS = Math.floor(Date.now() / 1000)) {
  const c0 = doc.consumers?.find((x) => x.name === name);
  const old = c0?.key_sha256?.find((d) => fingerprintOf(d) === fingerprint);
  if (!c0 || !old) return null;
  const made = addKey(doc, name);
  const c = made.doc.consumers!.find((x) => x.name === name)!;
  c.key_sha256 = (c.key_sha256 ?? []).filter((d) => d !== old);
  // Grace periods already over are dropped while we are here.
  c.retiring_keys = [...(c.retiring_keys ?? []).filter((r) => r.until_s > nowS), { sha256: old, until_s: nowS + graceS }];
  return { ...made, retiring: { fingerprint, until_s: nowS + graceS } };
}
