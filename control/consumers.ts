// API keys for the access stage's consumers: graywall-control makes a key, puts only its SHA-256 digest
// into the access document, and shows the key once, in the answer to the call that made it. Revoking
// takes a digest out by its fingerprint (the digest's first 16 hex characters).
import { createHash, randomBytes } from "node:crypto";

export interface Consumer {
  name: string;
  key_sha256?: string[];
  [other: string]: unknown;
}

export interface AccessDoc {
  consumers?: Consumer[];
  [other: string]: unknown;
}

export const CONSUMER_NAME = "^[A-Za-z0-9_.-]{1,64}$";
export const FINGERPRINT = "^[0-9a-f]{16}$";

export const digestOf = (key: string) => createHash("sha256").update(key).digest("hex");
export const fingerprintOf = (digest: string) => digest.slice(0, 16);

/** A new key (32 random bytes, base64url, with a prefix that says what it is) and the document holding its digest. */
export function addKey(doc: AccessDoc, name: string): { doc: AccessDoc; key: string; fingerprint: string } {
  const key = `gwk_${randomBytes(32).toString("base64url")}`;
  const digest = digestOf(key);
  const next = structuredClone(doc);
  if (!next.consumers) next.consumers = [];
  const consumers = next.consumers;
  let c = consumers.find((x) => x.name === name);
  if (!c) {
    c = { name, key_sha256: [] };
    consumers.push(c);
  }
  c.key_sha256 = [...(c.key_sha256 ?? []), digest];
  return { doc: next, key, fingerprint: fingerprintOf(digest) };
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
