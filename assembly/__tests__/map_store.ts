// Shared data as Envoy keeps it, in memory: a CAS counter per write; `conflicts` forces mismatches.
import { SharedValue } from "../common/lib/shared";
import { SharedStore } from "../common/lib/slot_table";

export class MapStore extends SharedStore {
  keys: string[] = [];
  values: ArrayBuffer[] = [];
  cas: u32[] = [];
  next: u32 = 1;
  conflicts: i32 = 0;
  /** Reads so far: what a request costs in round trips. */
  reads: i32 = 0;

  /** Deterministic "randomness" (xorshift), so a test can tell two stores' secrets apart; `noRandom` fails it. */
  seed: u32 = 0x9e3779b9;
  noRandom: bool = false;
  random(buf: usize, len: i32): bool {
    if (this.noRandom) return false;
    for (let i = 0; i < len; i++) {
      let x = this.seed;
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      this.seed = x;
      store<u8>(buf + <usize>i, <u8>x);
    }
    return true;
  }

  get(key: ArrayBuffer): SharedValue {
    this.reads++;
    const i = this.keys.indexOf(String.UTF8.decode(key));
    if (i < 0) return new SharedValue(null, 0);
    return new SharedValue(this.values[i].slice(0), this.cas[i]);
  }

  set(key: ArrayBuffer, ptr: usize, size: i32, cas: u32): u32 {
    const value = new ArrayBuffer(size);
    memory.copy(changetype<usize>(value), ptr, size);
    const k = String.UTF8.decode(key);
    const i = this.keys.indexOf(k);
    if (i >= 0 && cas != 0 && (cas != this.cas[i] || this.conflicts > 0)) {
      if (this.conflicts > 0) this.conflicts--;
      return 8;
    }
    if (i < 0) {
      this.keys.push(k);
      this.values.push(value.slice(0));
      this.cas.push(this.next++);
    } else {
      this.values[i] = value.slice(0);
      this.cas[i] = this.next++;
    }
    return 0;
  }
}
