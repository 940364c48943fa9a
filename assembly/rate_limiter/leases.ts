// Per-worker leases on shared token buckets. A request that finds its key's bucket far from empty takes
// worker_lease - 1 tokens more than it needs into a lease kept in this VM; the key's next requests on
// this worker spend the lease without a shared-data round trip. Nothing is admitted beyond the bucket:
// leased tokens left the shared bucket when they were taken. A lease is taken only while LEASE_SHARE
// more leases' worth are left after it, so a bucket of at most (LEASE_SHARE + 1) x (worker_lease - 1)
// tokens (1,071 by default) is taken one token per request, exactly as without leases. Leases expire after
// LEASE_TTL_MS; what is left goes back to the shared bucket on this worker's next request for the key or
// on the next tick. Pure.
import { keyHash } from "../common/lib/hash";
import { MAX_OWNED_KEY_BYTES, OwnedKey } from "../common/lib/owned_key";

/** Leases' worth a bucket must still hold after a lease is taken from it. */
export const LEASE_SHARE: i32 = 16;
export const LEASE_TTL_MS: i64 = 1000;
/** Leases one rule keeps per VM; when all are live, new keys go without (one token per request). */
export const MAX_LEASES = 4096;

export class Lease extends OwnedKey {
  tokens: i32 = 0;
  takenMs: i64 = 0;
  /** Whole tokens the shared bucket had left when the lease was taken, for RateLimit-Remaining. */
  sharedRemaining: i64 = 0;
}

export class WorkerLeases {
  private byHash: Map<u32, Lease> = new Map<u32, Lease>();
  /** Outputs of claim(): the lease a token came from; an expired lease's tokens to give back. */
  last: Lease | null = null;
  leftover: i32 = 0;
  /** The hash of the key claim() last looked up, for put() on the same request. */
  private lastHash: u32 = 0;

  constructor(public maxTokens: i32) {}

  /**
   * Spends one leased token of the key when a live lease has one (true; `last` is the lease). Otherwise
   * false, and `leftover` says how many tokens an expired lease of the key held: the caller gives them back
   * to the shared bucket in the same round trip.
   */
  claim(ptr: usize, len: i32, now: i64): bool {
    this.leftover = 0;
    const h = keyHash(ptr, len);
    this.lastHash = h;
    if (!this.byHash.has(h)) return false;
    const l = this.byHash.get(h);
    if (!l.holds(ptr, len)) return false;
    if (l.tokens > 0 && now >= l.takenMs && now - l.takenMs < LEASE_TTL_MS) {
      l.tokens--;
      this.last = l;
      return true;
    }
    this.leftover = l.tokens;
    this.byHash.delete(h);
    return false;
  }

  /** Whether a new lease can be kept for a key of `len` bytes; expired ones are freed on the tick. */
  hasRoom(len: i32): bool { return this.byHash.size < MAX_LEASES && len <= MAX_OWNED_KEY_BYTES; }

  /**
   * Keeps `tokens` leased tokens for the key claim() was last called with (replacing a lease of another
   * key with the same hash).
   */
  put(ptr: usize, len: i32, tokens: i32, now: i64, sharedRemaining: i64): void {
    const h = this.lastHash;
    let l: Lease;
    if (this.byHash.has(h) && this.byHash.get(h).holds(ptr, len)) l = this.byHash.get(h);
    else {
      l = new Lease(ptr, len);
      this.byHash.set(h, l);
    }
    l.tokens = tokens;
    l.takenMs = now;
    l.sharedRemaining = sharedRemaining;
  }

  /** Removes up to `count` expired leases and returns them, with their leftover tokens, for giving back. */
  expired(now: i64, count: i32): Lease[] {
    const out = new Array<Lease>();
    if (this.byHash.size == 0) return out;
    const all = this.byHash.values();
    for (let i = 0; i < all.length && out.length < count; i++) {
      const l = all[i];
      if (now - l.takenMs >= LEASE_TTL_MS || now < l.takenMs) {
        this.byHash.delete(keyHash(changetype<usize>(l.key), l.key.byteLength));
        out.push(l);
      }
    }
    return out;
  }
}
