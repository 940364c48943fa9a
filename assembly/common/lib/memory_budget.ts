// The shared memory a configuration may reserve for per-key tables (slot_table.ts), checked when it is
// compiled: a document whose tables would need more is refused with the bytes named, so no accepted
// configuration can take a gateway to gigabytes. Estimates are per slot, as Envoy keeps them.

/** The module-wide budget: 64 MiB of shared data for all tables of one configuration. */
export const MEMORY_BUDGET_BYTES: i64 = 64 << 20;

/**
 * Envoy's own cost of one shared-data entry beyond the bytes of its value (its key text, hash-map node,
 * CAS): measured about 200 bytes per rate-limit slot in all (2,000,000 slots took Envoy from 101 to 501 MB).
 */
const ENTRY_OVERHEAD: i64 = 160;
/** Slot header (slot_table.ts) and the longest key a client may bring before it is hashed (owned_key.ts). */
const SLOT_HEADER: i64 = 16;
const KEY_BYTES: i64 = 64;

/** Estimated bytes of `slots` slots whose records carry `payload` bytes. */
export function tableBytes(slots: i64, payload: i32): i64 {
  return slots * (ENTRY_OVERHEAD + SLOT_HEADER + <i64>payload + KEY_BYTES);
}

/** "67108864 bytes (64 MiB)" */
export function describeBytes(n: i64): string {
  return n.toString() + " bytes (" + (n >> 20).toString() + " MiB)";
}

/** The error text for tables of `need` bytes, or "" within the budget. */
export function overBudget(need: i64): string {
  if (need <= MEMORY_BUDGET_BYTES) return "";
  return "the tables this needs take about " + describeBytes(need) + " of shared memory, over the module's budget of " + describeBytes(MEMORY_BUDGET_BYTES);
}
