// A per-worker entry that owns a copy of its table key's bytes, so a lookup by hash can tell a
// collision from the key itself. Pure.
import { bytesEqual } from "./bytes";
/** Longer keys get no per-worker entry (they go to shared data every time), so these stay small. */
export const MAX_OWNED_KEY_BYTES = 256;

export class OwnedKey {
  key: ArrayBuffer;

  constructor(ptr: usize, len: i32) {
    this.key = new ArrayBuffer(len);
    memory.copy(changetype<usize>(this.key), ptr, len);
  }

  holds(ptr: usize, len: i32): bool {
    return this.key.byteLength == len && bytesEqual(changetype<usize>(this.key), ptr, len);
  }
}
