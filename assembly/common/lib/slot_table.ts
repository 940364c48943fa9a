// A fixed table of per-key records in proxy-wasm shared data, seen by every worker's VM, updated by
// compare-and-swap. Shared data cannot delete keys, so a table's memory is bounded by its size x (16
// bytes + payload + key), and a slot is created only when a key first lands in it: shared data creates
// an absent key whatever CAS a write names and refuses a present one whose CAS differs, so a write with
// a CAS no record holds (CREATE_ONLY) creates the slot or, when another worker created it first, is
// refused and the update reads again. A table costs nothing until it is used (a table of 10,000 slots
// created up front took about 2 MiB of Envoy's heap). Tables of one pool share one key space: a table
// takes slots [base, base + size) of it, and its records carry the table's tag, so a table of a later
// configuration reuses the slots of an earlier one (a renamed rule adds no memory) and takes over slots
// whose records are another tag's (a rule of an earlier configuration) as free.
import { SharedValue } from "./shared";
import { fmix32, keyHash } from "./hash";
import { bytesEqual } from "./bytes";

export const enum UpdateStatus { Updated, TableFull, Contended }

const CAS_MISMATCH: u32 = 8;
/** A CAS no record holds (the host would reach it after 4 billion writes): a write that only creates. */
const CREATE_ONLY: u32 = 0xffffffff;
/**
 * Slots a key may take: its home slot (its hash), then slots a step of its own apart (a second hash), so
 * keys that share a home do not queue behind each other: a new key finds no slot with about fill^PROBES
 * odds (a nonce is then refused as a replay). With slots side by side (linear probing) runs of taken
 * slots grow together, and a table of nonces 22% full refused one fresh nonce in a few hundred. A probe
 * goes past a slot never used only when it must: no key was ever placed beyond one (shared data never
 * deletes a key, so that slot was never used when any key was placed), so a lookup ends there, and at a
 * low fill a key costs one read.
 */
const PROBES = 8;
const CAS_ATTEMPTS = 64;

/**
 * The step between a key's probes in a table of `size` slots: from a second hash, and sharing no factor
 * with `size`, so its 8 slots are 8 different ones (a step of 1,250 in 2,500 slots went back and forth
 * between two).
 */
export function probeStep(h: u32, size: u32): u32 {
  if (size <= 1) return 0;
  let step: u32 = 1 + fmix32(h) % (size - 1);
  while (gcd(step, size) != 1) step = step + 1 < size ? step + 1 : 1;
  return step;
}

function gcd(a: u32, b: u32): u32 {
  while (b != 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}
// Slot layout: i64 touchedMs | i32 key length | u32 tag | payload | UTF-8 key. Key length 0 = free.
const HEADER = 16;

/** Shared data as the table needs it: the host in Envoy, a map in tests. */
export abstract class SharedStore {
  abstract get(key: ArrayBuffer): SharedValue;
  /** Stores `size` bytes at `value`. Returns 0 on success, 8 on CAS mismatch (proxy-wasm result codes). */
  abstract set(key: ArrayBuffer, value: usize, size: i32, cas: u32): u32;
  /** Fills `len` bytes at `buf` with the host's randomness (for secrets kept here); false when it has none. */
  abstract random(buf: usize, len: i32): bool;
}

/**
 * Takes the next number of a counter in shared data, by CAS: unique across the VMs (workers) sharing
 * `store`. Used once per VM, e.g. to tell apart ids two workers issue in the same instant.
 */
export function claimSequence(shared: SharedStore, key: string): u32 {
  const k = String.UTF8.encode(key);
  const buf = new ArrayBuffer(4);
  for (let attempt = 0; attempt < 64; attempt++) {
    const v = shared.get(k);
    const data = v.data;
    let next: u32 = 1;
    if (data !== null && data.byteLength >= 4) next = load<u32>(changetype<usize>(data)) + 1;
    store<u32>(changetype<usize>(buf), next);
    if (shared.set(k, changetype<usize>(buf), 4, v.cas) == 0) return next;
  }
  return 0;
}

/** What a table's user does to one key's record. AssemblyScript has no closures, hence a class. */
export abstract class RecordUpdate {
  /** Mutates the payload at `payload` in place; `fresh` = zeroed, new to this key. May keep results in fields. */
  abstract apply(payload: usize, fresh: bool, now: i64): void;
}

export class SlotTable {
  private prefix: string;
  private sweepCursor: i32 = 0;
  private scratch: ArrayBuffer;
  private free: ArrayBuffer;
  /** The record being written; grown when a longer key needs it, never shrunk. */
  private out: ArrayBuffer;
  /** Encoded slot keys, filled as slots are used: a key is built once per VM, not per request. */
  private slotKeys: Array<ArrayBuffer | null>;

  /**
   * `pool` names the key space; `base` is this table's first slot in it; `tag` marks its records (0 for
   * a table alone in its pool).
   */
  constructor(public store: SharedStore, pool: string, public size: i32, public payloadSize: i32, public idleMs: i64, public base: i32 = 0, public tag: u32 = 0) {
    this.prefix = "graywall.t." + pool + ".";
    this.scratch = new ArrayBuffer(payloadSize);
    this.free = new ArrayBuffer(HEADER + payloadSize);
    this.out = new ArrayBuffer(HEADER + payloadSize + 64);
    this.slotKeys = new Array<ArrayBuffer | null>(size);
  }

  private buildKey(i: i32): ArrayBuffer {
    return String.UTF8.encode(this.prefix + (this.base + i).toString());
  }

  /** The key of a slot a request uses; cached, since live keys come back. */
  private slotKey(i: i32): ArrayBuffer {
    const cached = unchecked(this.slotKeys[i]);
    if (cached !== null) return cached;
    const k = this.buildKey(i);
    this.slotKeys[i] = k;
    return k;
  }

  /** Applies `u` to the record of `key`, creating it (zeroed) in a free or idle slot if needed. */
  update(key: string, now: i64, u: RecordUpdate): UpdateStatus {
    const keyBytes = String.UTF8.encode(key);
    return this.updateBytes(changetype<usize>(keyBytes), keyBytes.byteLength, now, u);
  }

  /**
   * The same for a key given as `klen` bytes at `keyPtr` (e.g. a KeyBuilder's). Each attempt reads the
   * key's probe slots and writes, by CAS, the one that holds the key, else the first free or idle one:
   * so a key never has two records, even when a slot before its own was freed meanwhile. A CAS lost
   * CAS_ATTEMPTS times in a row is contention, reported as such (never as a full table).
   */
  updateBytes(keyPtr: usize, klen: i32, now: i64, u: RecordUpdate): UpdateStatus {
    const h = keyHash(keyPtr, klen);
    const size = <u32>this.size;
    const home = h % size;
    const step = probeStep(h, size);
    const payload = changetype<usize>(this.scratch);
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      let target: ArrayBuffer | null = null;
      let targetValue: SharedValue | null = null;
      let mine = false;
      for (let p = 0, at = home; p < PROBES && !mine; p++, at = (at + step) % size) {
        const k = this.slotKey(<i32>at);
        const v = this.store.get(k);
        const data = v.data;
        if (data === null) {
          // A slot never used: free, created by the write (CREATE_ONLY); the key has no record beyond it.
          if (target === null) {
            target = k;
            targetValue = v;
          }
          break;
        }
        if (data.byteLength < HEADER + this.payloadSize) return UpdateStatus.Contended;
        const d = changetype<usize>(data);
        const len = load<i32>(d, 8);
        const ours = load<u32>(d, 12) == this.tag;
        if (ours && len == klen && len > 0 && bytesEqual(d + HEADER + this.payloadSize, keyPtr, klen)) {
          mine = true;
          target = k;
          targetValue = v;
        } else if (target === null && (len == 0 || !ours || now - load<i64>(d) > this.idleMs)) {
          target = k; // free or idle: taken only if the key has no record of its own
          targetValue = v;
        }
      }
      if (target === null || targetValue === null) return UpdateStatus.TableFull;
      const existing = targetValue.data;
      const touched = existing === null ? <i64>0 : load<i64>(changetype<usize>(existing));
      if (mine) memory.copy(payload, changetype<usize>(existing) + HEADER, this.payloadSize);
      else memory.fill(payload, 0, this.payloadSize);
      u.apply(payload, !mine, now);
      const size = HEADER + this.payloadSize + klen;
      if (this.out.byteLength < size) this.out = new ArrayBuffer(size + 64);
      const o = changetype<usize>(this.out);
      store<i64>(o, now > touched ? now : touched);
      store<i32>(o, klen, 8);
      store<u32>(o, this.tag, 12);
      memory.copy(o + HEADER, payload, this.payloadSize);
      memory.copy(o + HEADER + this.payloadSize, keyPtr, klen);
      const r = this.store.set(target, o, size, existing === null ? CREATE_ONLY : targetValue.cas);
      if (r == 0) return UpdateStatus.Updated;
      if (r != CAS_MISMATCH) return UpdateStatus.Contended;
    }
    return UpdateStatus.Contended;
  }

  /** Frees up to `count` idle slots, resuming where the last sweep stopped. Returns how many it freed. */
  sweep(now: i64, count: i32): i32 {
    let freed = 0;
    for (let n = 0; n < count && n < this.size; n++) {
      const k = this.buildKey(this.sweepCursor);
      this.sweepCursor = (this.sweepCursor + 1) % this.size;
      const v = this.store.get(k);
      const data = v.data;
      if (data === null || data.byteLength < HEADER) continue;
      const d = changetype<usize>(data);
      if (load<i32>(d, 8) > 0 && (load<u32>(d, 12) != this.tag || now - load<i64>(d) > this.idleMs)) {
        if (this.store.set(k, changetype<usize>(this.free), this.free.byteLength, v.cas) == 0) freed++;
      }
    }
    return freed;
  }
}
