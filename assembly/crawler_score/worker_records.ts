// Per-worker copies of clients' behaviour records, written back to shared data in batches. A request of a
// client this worker synced recently is applied to the worker's copy (no host call); every SYNC_REQUESTS
// requests or SYNC_MS, on every ID page view or honeypot hit (signals that depend on order across
// requests, or must reach the other workers at once), and on every request while one of the client's
// counts is within half of its threshold, the worker merges what it counted since the last sync into the
// shared record by CAS and takes the merged record back as its copy. So a worker's view of
// a client is the shared record as of its last sync plus its own requests since: other workers' latest
// requests reach it within SYNC_MS or SYNC_REQUESTS of theirs. A honeypot mark cannot wait that long:
// the stage calls staleAll() when any worker has marked a client since (a process-wide counter), and
// every copy is synced on its client's next request. Pure.
import { keyHash } from "../common/lib/hash";
import { MAX_OWNED_KEY_BYTES, OwnedKey } from "../common/lib/owned_key";
import { RecordUpdate, SlotTable, UpdateStatus } from "../common/lib/slot_table";
import { FleetCounts } from "./fleet";
import { ACTIVITY_PAYLOAD, ActivityUpdate, BITMAP_BYTES, distinctFromBits, longPathBits, markPath, mergeActivity, rollLongWindow } from "./signals";

export const SYNC_MS: i64 = 250;
export const SYNC_REQUESTS: i32 = 256;
/** Copies kept per table per worker; when all are in use, new clients are synced on every request. */
export const MAX_RECORDS = 4096;
/** Unsynced copies written back per tick; the rest wait for the next one. */
const FLUSH_BATCH = 512;

/** One client's record as this worker sees it, and what it counted since its last sync. */
export class WorkerRecord extends OwnedKey {
  view: ArrayBuffer = new ArrayBuffer(ACTIVITY_PAYLOAD);
  syncedMs: i64 = 0;
  pending: i32 = 0;
  pagesAdded: i32 = 0;
  /** Paths seen since the last sync, as bits of the record's path bitmap. */
  pathBits: ArrayBuffer = new ArrayBuffer(BITMAP_BYTES);
  /** An ID page view since the last sync: the copy's ID run is newer than the shared one. */
  idSeen: bool = false;
  /** Client ids issued to, and first seen back from, this address since the last sync. */
  issuedAdded: i32 = 0;
  returnedAdded: i32 = 0;
  /** WorkerRecords.generation at the last sync: an older one must sync. */
  generation: u32 = 0;

  clearPending(): void {
    this.pending = 0;
    this.pagesAdded = 0;
    this.idSeen = false;
    this.issuedAdded = 0;
    this.returnedAdded = 0;
    memory.fill(changetype<usize>(this.pathBits), 0, BITMAP_BYTES);
  }
}

/**
 * The shared-record update of a sync: merges the worker's pending counts into the shared record (in its
 * current window), then applies this request, if any, and keeps the result for the worker's copy.
 */
class SyncUpdate extends RecordUpdate {
  record: WorkerRecord | null = null;
  /** The request to apply after the merge; null for a flush. */
  activity: ActivityUpdate | null = null;
  windowMs: i64 = 10000;
  longWindowMs: i64 = 600000;
  result: ArrayBuffer = new ArrayBuffer(ACTIVITY_PAYLOAD);
  /** Output: distinct pages new to the shared record's long window (the worker's since its last sync, and this request's). */
  newPaths: i32 = 0;

  /** Count newPaths (only when fleet counts are on: it costs two bitmap counts and two logarithms). */
  countPaths: bool = false;

  apply(p: usize, fresh: bool, now: i64): void {
    const r = this.record;
    let before = 0;
    if (this.countPaths) {
      rollLongWindow(p, fresh, now, this.longWindowMs);
      before = distinctFromBits(longPathBits(p));
    }
    let isFresh = fresh;
    if (r !== null && r.pending > 0) {
      mergeActivity(p, fresh, now, this.windowMs, this.longWindowMs, changetype<usize>(r.view), r.pagesAdded, r.pending, changetype<usize>(r.pathBits), r.idSeen,
        r.issuedAdded, r.returnedAdded);
      isFresh = false;
    }
    const a = this.activity;
    if (a !== null) a.apply(p, isFresh, now);
    this.newPaths = this.countPaths ? distinctFromBits(longPathBits(p)) - before : 0;
    memory.copy(changetype<usize>(this.result), p, ACTIVITY_PAYLOAD);
  }
}

export class WorkerRecords {
  private byHash: Map<u32, WorkerRecord> = new Map<u32, WorkerRecord>();
  private sync: SyncUpdate = new SyncUpdate();
  /** Requests that made a shared-data round trip (for tests). */
  syncs: u32 = 0;
  /** Bumped by staleAll(): copies synced in an earlier generation are stale. */
  private generation: u32 = 0;

  /** Where the distinct pages this worker writes to shared records are counted for the fleet (fleet.ts), with this table's kind. */
  fleet: FleetCounts | null = null;
  fleetKind: u8 = 0;

  constructor(public table: SlotTable, windowMs: i64, longWindowMs: i64, public idleMs: i64) {
    this.sync.windowMs = windowMs;
    this.sync.longWindowMs = longWindowMs;
  }

  get size(): i32 { return this.byHash.size; }

  /** Every copy syncs on its client's next request (another worker wrote something that cannot wait). */
  staleAll(): void {
    this.generation++;
  }

  /**
   * Counts one request of the client `key` (its facts in `a.facts`) and leaves its behaviour bits in
   * `a.bits`. Returns Updated unless a needed sync found the table full or contended (bits then come
   * from the worker's copy alone, or are 0 for a client it has none of).
   */
  update(ptr: usize, len: i32, now: i64, a: ActivityUpdate): UpdateStatus {
    const h = keyHash(ptr, len);
    let r: WorkerRecord | null = null;
    const f = a.facts;
    if (this.byHash.has(h)) {
      // Another client with the same hash keeps its copy; this one is synced on every request.
      const found = this.byHash.get(h);
      if (found.holds(ptr, len)) {
        r = found;
        const age = now - found.syncedMs;
        const orderMatters = f.honeypot || f.mismatch || f.returning || (!f.asset && f.numericId >= 0);
        if (!orderMatters && age >= 0 && age < SYNC_MS && found.pending < SYNC_REQUESTS && found.generation == this.generation &&
          !a.nearThreshold(changetype<usize>(found.view), now)) {
          this.applyLocally(found, now, a);
          return UpdateStatus.Updated;
        }
      }
    } else if (this.byHash.size < MAX_RECORDS && len <= MAX_OWNED_KEY_BYTES) {
      r = new WorkerRecord(ptr, len);
      this.byHash.set(h, r);
    }
    this.syncs++;
    const s = this.sync;
    s.record = r;
    s.activity = a;
    s.newPaths = 0;
    const status = this.table.updateBytes(ptr, len, now, s);
    s.record = null;
    s.activity = null;
    if (status == UpdateStatus.Updated) this.countForFleet(ptr, len, now);
    if (r === null) return status;
    if (status == UpdateStatus.Updated) {
      memory.copy(changetype<usize>(r.view), changetype<usize>(s.result), ACTIVITY_PAYLOAD);
      r.clearPending();
      r.syncedMs = now;
      r.generation = this.generation;
      return status;
    }
    // Not written: count the request in the worker's copy, to be merged on a later sync.
    this.applyLocally(r, now, a);
    return status;
  }

  /** Counts the distinct pages this worker writes for `fleet`, as keys of `kind`. */
  countFor(fleet: FleetCounts, kind: u8): void {
    this.fleet = fleet;
    this.fleetKind = kind;
    this.sync.countPaths = true;
  }

  private countForFleet(ptr: usize, len: i32, now: i64): void {
    const fleet = this.fleet;
    if (fleet !== null && this.sync.newPaths > 0) fleet.add(this.fleetKind, ptr, len, this.sync.newPaths, now);
  }

  /** The client's copy syncs on its next request (the shared record changed: a fleet count came in). */
  expire(ptr: usize, len: i32): void {
    const h = keyHash(ptr, len);
    if (!this.byHash.has(h)) return;
    const r = this.byHash.get(h);
    if (r.holds(ptr, len)) r.syncedMs = i64.MIN_VALUE / 2;
  }

  private applyLocally(r: WorkerRecord, now: i64, a: ActivityUpdate): void {
    a.apply(changetype<usize>(r.view), false, now);
    const f = a.facts;
    r.pending++;
    if (f.issuing) r.issuedAdded++;
    if (f.returning) r.returnedAdded++;
    if (a.page) {
      r.pagesAdded++;
      markPath(changetype<usize>(r.pathBits), f.pathHash);
      if (f.numericId >= 0) r.idSeen = true;
    }
  }

  /** Writes back copies with pending counts older than SYNC_MS, and forgets copies idle past idleMs. */
  flush(now: i64): void {
    if (this.byHash.size == 0) return;
    const all = this.byHash.values();
    const s = this.sync;
    let written = 0;
    for (let i = 0; i < all.length; i++) {
      const r = all[i];
      const age = now - r.syncedMs;
      if (r.pending > 0 && (age >= SYNC_MS || age < 0) && written < FLUSH_BATCH) {
        written++;
        s.record = r;
        s.newPaths = 0;
        if (this.table.updateBytes(changetype<usize>(r.key), r.key.byteLength, now, s) == UpdateStatus.Updated) {
          this.countForFleet(changetype<usize>(r.key), r.key.byteLength, now);
          memory.copy(changetype<usize>(r.view), changetype<usize>(s.result), ACTIVITY_PAYLOAD);
          r.clearPending();
          r.syncedMs = now;
          r.generation = this.generation;
        }
        s.record = null;
      } else if (r.pending == 0 && (age > this.idleMs || age < 0)) {
        this.byHash.delete(keyHash(changetype<usize>(r.key), r.key.byteLength));
      }
    }
  }
}
