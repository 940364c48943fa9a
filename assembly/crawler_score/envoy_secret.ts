// The secret a gateway signs clearances and client ids with when its configuration names none: 64 random
// bytes from the host, made by the first VM to configure the crawler and kept in shared data, so every
// worker (and every later configuration of this Envoy) uses the same one. Another Envoy makes its own:
// clearances and ids hold across a fleet only with graywall-control (it delivers one secret to every
// gateway) or a secret in the configuration. Pure: the host is reached through the SharedStore.
import { SharedStore } from "../common/lib/slot_table";
import { toHex } from "../common/lib/sha256";

const KEY = String.UTF8.encode("cs.envoy_secret");
const BYTES = 64;

/** The secret in force in this Envoy (128 hex characters), or "" when there is none yet. */
export function storedEnvoySecret(store: SharedStore): string {
  const d = store.get(KEY).data;
  if (d === null || d.byteLength != BYTES) return "";
  return toHex(changetype<usize>(d), BYTES);
}

/**
 * This Envoy's secret, made now if no VM has made it: "" only when the host has no randomness (challenge
 * pages and client ids then stay off, and the stage says so in its log). Two VMs configuring at the very
 * same moment may each write one; the stage re-reads it on its tick and moves to the one stored.
 */
export function envoySecret(store: SharedStore): string {
  const v = store.get(KEY);
  const d = v.data;
  if (d !== null && d.byteLength == BYTES) return toHex(changetype<usize>(d), BYTES);
  const fresh = new ArrayBuffer(BYTES);
  if (!store.random(changetype<usize>(fresh), BYTES)) return "";
  store.set(KEY, changetype<usize>(fresh), BYTES, v.cas);
  return storedEnvoySecret(store);
}

/** The half of an Envoy secret a use of it gets: 0 for clearances, 1 for client ids. */
export function secretHalf(secret: string, half: i32): string {
  if (secret.length == 0) return "";
  return secret.substring(half * 64, half * 64 + 64);
}
