// A rule's buckets in proxy-wasm shared data, seen by every worker's VM, updated by compare-and-swap.
// Shared data cannot delete keys and does not check CAS when it creates one, so each rule owns a
// fixed table of pre-created slots: memory is bounded, and every later write is a CAS.
import { SharedValue } from "../common/shared";
import { fmix32, fnv1a, FNV_OFFSET } from "../common/hash";
import { fullBucket, take, TakeResult } from "../common/token_bucket";
import { LimitRule } from "./config";
import { decodeSlot, encodeSlot, FREE_SLOT, reclaimable, Slot } from "./slot";

export const enum TakeStatus { Taken, TableFull, Contended }

const CAS_MISMATCH: u32 = 8;

/** Shared data as the table needs it: the host in Envoy, a map in tests. */
export abstract class SharedStore {
  abstract get(key: ArrayBuffer): SharedValue;
  /** Returns 0 on success, 8 on CAS mismatch (proxy-wasm result codes). */
  abstract set(key: ArrayBuffer, value: ArrayBuffer, cas: u32): u32;
}

const PROBES = 4;
const CAS_ATTEMPTS = 64;

export class SlotTable {
  prefix: string;
  private slot: Slot = new Slot();
  private sweepCursor: i32 = 0;

  constructor(public store: SharedStore, public rule: LimitRule, public size: i32) {
    this.prefix = "graywall.rl." + rule.name + ".";
  }

  slotKey(i: i32): ArrayBuffer {
    return String.UTF8.encode(this.prefix + i.toString());
  }

  /** Creates missing slots; run at configure time, before the rule serves requests. */
  ensureSlots(): void {
    for (let i = 0; i < this.size; i++) {
      const k = this.slotKey(i);
      if (this.store.get(k).data === null) this.store.set(k, FREE_SLOT, 0);
    }
  }

  /** Takes a token for `key` at time `now`; the bucket outcome lands in `out`. */
  take(key: string, now: i64, out: TakeResult): TakeStatus {
    const h = fmix32(fnv1a(FNV_OFFSET, key));
    for (let p = 0; p < PROBES; p++) {
      const k = this.slotKey(<i32>((h + <u32>p) % <u32>this.size));
      for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        const v = this.store.get(k);
        const data = v.data;
        if (data === null) return TakeStatus.Contended; // slot missing: the table was not created
        decodeSlot(data, this.slot);
        const mine = !this.slot.free && this.slot.key == key;
        if (!mine && !reclaimable(this.slot, now, this.rule.idleMs)) break; // another live key: probe on
        let state = this.slot.state;
        if (!mine) state = fullBucket(this.rule.spec, now);
        take(this.rule.spec, state, now, out);
        const r = this.store.set(k, encodeSlot(state, key), v.cas);
        if (r == 0) return TakeStatus.Taken;
        if (r != CAS_MISMATCH) return TakeStatus.Contended;
      }
    }
    return TakeStatus.TableFull;
  }

  /** Frees up to `count` idle slots, resuming where the last sweep stopped. */
  sweep(now: i64, count: i32): i32 {
    let freed = 0;
    for (let n = 0; n < count && n < this.size; n++) {
      const k = this.slotKey(this.sweepCursor);
      this.sweepCursor = (this.sweepCursor + 1) % this.size;
      const v = this.store.get(k);
      const data = v.data;
      if (data === null) continue;
      decodeSlot(data, this.slot);
      if (!this.slot.free && reclaimable(this.slot, now, this.rule.idleMs)) {
        if (this.store.set(k, FREE_SLOT, v.cas) == 0) freed++;
      }
    }
    return freed;
  }
}
