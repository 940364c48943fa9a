// The shared-data table's probing: a key may take its home slot and 7 more a step of its own apart; a
// lookup ends at a slot never used (shared data never deletes a key, so no key was placed beyond one).
import { fmix32, keyHash } from "../common/lib/hash";
import { probeStep, RecordUpdate, SlotTable, UpdateStatus } from "../common/lib/slot_table";
import { MapStore } from "./map_store";

/** Counts the requests of a key in its record, and says whether the record was new. */
class Count extends RecordUpdate {
  fresh: bool = false;
  count: i32 = 0;
  apply(p: usize, fresh: bool, now: i64): void {
    this.fresh = fresh;
    const c = load<i32>(p) + 1;
    store<i32>(p, c);
    this.count = c;
  }
}

function hashOf(k: string): u32 {
  const b = String.UTF8.encode(k);
  return keyHash(changetype<usize>(b), b.byteLength);
}

/** `n` keys whose hash lands on slot `home` of a table of `size` slots, with raw probe step `step` (0: any). */
function colliding(n: i32, size: i32, home: u32, step: u32 = 0): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < n; i++) {
    const k = "key-" + i.toString();
    const b = String.UTF8.encode(k);
    const h = keyHash(changetype<usize>(b), b.byteLength);
    if (h % <u32>size == home && (step == 0 || 1 + fmix32(h) % <u32>(size - 1) == step)) out.push(k);
  }
  return out;
}

describe("SlotTable probing", () => {
  it("a new key in a sparse table costs one shared-data read, and a key seen before one read too", () => {
    const store = new MapStore();
    const t = new SlotTable(store, "p", 4096, 8, 60000);
    const u = new Count();
    for (let i = 0; i < 50; i++) expect(t.update("client-" + i.toString(), 1000, u)).toBe(UpdateStatus.Updated);
    // Each of the 50 read its home slot, found it never used and looked no further (a few collided).
    expect(store.reads).toBeLessThanOrEqual(55);
    store.reads = 0;
    expect(t.update("client-7", 1001, u)).toBe(UpdateStatus.Updated);
    expect(u.fresh).toBe(false);
    expect(u.count).toBe(2);
    expect(store.reads).toBe(1);
  });

  it("eight keys of one home slot and step all find room and are found again; a ninth finds none", () => {
    const store = new MapStore();
    const t = new SlotTable(store, "p", 64, 8, 60000);
    const keys = colliding(9, 64, 5, 7);
    const u = new Count();
    for (let i = 0; i < 8; i++) {
      expect(t.update(keys[i], 1000, u)).toBe(UpdateStatus.Updated, keys[i]);
      expect(u.fresh).toBe(true);
    }
    expect(t.update(keys[8], 1000, u)).toBe(UpdateStatus.TableFull);
    for (let i = 0; i < 8; i++) {
      expect(t.update(keys[i], 1001, u)).toBe(UpdateStatus.Updated);
      expect(u.fresh).toBe(false, keys[i]);
      expect(u.count).toBe(2);
    }
  });

  it("keys of one home slot but steps of their own do not queue behind each other", () => {
    const store = new MapStore();
    const t = new SlotTable(store, "p", 64, 8, 60000);
    // Twelve keys share home slot 5: side by side they would need slots 5-16, and the ninth would find
    // none; each taking the first free slot of its own sequence, all find room.
    const keys = colliding(12, 64, 5);
    const u = new Count();
    for (let i = 0; i < 12; i++) expect(t.update(keys[i], 1000, u)).toBe(UpdateStatus.Updated, keys[i]);
    for (let i = 0; i < 12; i++) {
      expect(t.update(keys[i], 1001, u)).toBe(UpdateStatus.Updated);
      expect(u.count).toBe(2, keys[i]);
    }
  });

  it("a key whose second hash shares a factor with the table's size still takes 8 different slots", () => {
    const store = new MapStore();
    const t = new SlotTable(store, "p", 64, 8, 60000);
    // Eight keys of one home whose raw step is 32: stepping by 32 in 64 slots goes back and forth between two.
    const keys = colliding(8, 64, 3, 32);
    expect(probeStep(hashOf(keys[0]), 64)).toBe(33);
    const u = new Count();
    for (let i = 0; i < 8; i++) expect(t.update(keys[i], 1000, u)).toBe(UpdateStatus.Updated, keys[i]);
    // Every step is odd in 64 slots, and shares nothing with 2,500 (the e2e's nonce table).
    for (let h: u32 = 0; h < 5000; h++) {
      expect(probeStep(h * 2654435761, 64) & 1).toBe(1);
      const s = probeStep(h * 2654435761, 2500);
      expect(s % 2 != 0 && s % 5 != 0).toBe(true, s.toString());
    }
  });

  it("a slot freed before a key's own is passed over: the key keeps its one record", () => {
    const store = new MapStore();
    const t = new SlotTable(store, "p", 64, 8, 1000);
    const keys = colliding(4, 64, 9);
    const u = new Count();
    // keys[0] takes their home slot (9) at t=0; keys[1..3] a later slot of their own at t=500.
    expect(t.update(keys[0], 0, u)).toBe(UpdateStatus.Updated);
    for (let i = 1; i < 4; i++) expect(t.update(keys[i], 500, u)).toBe(UpdateStatus.Updated);
    // keys[0] goes idle and is swept to free (a used slot, not one never used); the others stay live.
    expect(t.sweep(1200, 64)).toBe(1);
    const keysBefore = store.keys.length;
    expect(t.update(keys[3], 1300, u)).toBe(UpdateStatus.Updated);
    expect(u.fresh).toBe(false);
    expect(u.count).toBe(2);
    expect(store.keys.length).toBe(keysBefore);
  });
});
