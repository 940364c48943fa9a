// SlotTable storage backed by Envoy's shared data (shared by every VM with the same vm_id).
import { randomBytes, sharedGet, sharedSet } from "./host";
import { SharedValue } from "../lib/shared";
import { SharedStore } from "../lib/slot_table";

class HostStore extends SharedStore {
  get(key: ArrayBuffer): SharedValue { return sharedGet(key); }
  set(key: ArrayBuffer, value: usize, size: i32, cas: u32): u32 { return sharedSet(key, value, size, cas); }
  random(buf: usize, len: i32): bool { return randomBytes(buf, len); }
}

export const hostStore = new HostStore();
