// One slot of a rule's shared-data table: bucket state plus the key that owns it. Pure.
// Layout: f64 tokens | i64 updatedMs | UTF-8 key. A slot with no key is free.
import { BucketState } from "../common/token_bucket";

export const SLOT_HEADER = 16;

export class Slot {
  state: BucketState = new BucketState();
  key: string = "";
  get free(): bool { return this.key.length == 0; }
}

export function encodeSlot(state: BucketState, key: string): ArrayBuffer {
  const k = String.UTF8.encode(key);
  const out = new ArrayBuffer(SLOT_HEADER + k.byteLength);
  const p = changetype<usize>(out);
  store<f64>(p, state.tokens);
  store<i64>(p, state.updatedMs, 8);
  memory.copy(p + SLOT_HEADER, changetype<usize>(k), k.byteLength);
  return out;
}

export const FREE_SLOT = new ArrayBuffer(SLOT_HEADER);

/** Decodes into `out`; a value shorter than the header reads as a free slot. */
export function decodeSlot(data: ArrayBuffer, out: Slot): void {
  if (data.byteLength < SLOT_HEADER) {
    out.key = "";
    out.state.tokens = 0;
    out.state.updatedMs = 0;
    return;
  }
  const p = changetype<usize>(data);
  out.state.tokens = load<f64>(p);
  out.state.updatedMs = load<i64>(p, 8);
  out.key = String.UTF8.decodeUnsafe(p + SLOT_HEADER, data.byteLength - SLOT_HEADER);
}

/** A slot another key may take over: free, or untouched for longer than idleMs. */
export function reclaimable(s: Slot, nowMs: i64, idleMs: i64): bool {
  return s.free || nowMs - s.state.updatedMs > idleMs;
}
