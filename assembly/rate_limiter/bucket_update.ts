// The rate limiter's record in a SlotTable: one token bucket. Pure.
import { RecordUpdate } from "../common/lib/slot_table";
import { BucketSpec, BucketState, refill, take, TakeResult } from "../common/lib/token_bucket";
import { LEASE_SHARE } from "./leases";

/** Payload: f64 tokens | i64 updatedMs. */
export const BUCKET_PAYLOAD = 16;

export class BucketUpdate extends RecordUpdate {
  spec: BucketSpec = new BucketSpec(1, 1, 1000);
  result: TakeResult = new TakeResult();
  /** Input: tokens of an expired lease to put back first (capped at the bucket's size). */
  giveBack: i32 = 0;
  /** Input: false = only give back, take nothing. */
  taking: bool = true;
  /** Input: the most tokens a request may take (its own plus a lease); 1 = no lease. */
  maxTake: i32 = 1;
  /** Output: tokens taken beyond the request's own, for this worker's lease. */
  leased: i32 = 0;
  private state: BucketState = new BucketState();

  apply(payload: usize, fresh: bool, now: i64): void {
    const s = this.state;
    if (fresh) {
      s.tokens = this.spec.size;
      s.updatedMs = now;
    } else {
      s.tokens = load<f64>(payload);
      s.updatedMs = load<i64>(payload, 8);
    }
    this.leased = 0;
    if (this.giveBack > 0 && !fresh) {
      refill(this.spec, s, now);
      s.tokens = Math.min(this.spec.size, s.tokens + <f64>this.giveBack);
    }
    if (this.taking) {
      take(this.spec, s, now, this.result);
      // A lease only from a bucket far from empty: LEASE_SHARE more leases' worth must be left after it.
      // So a bucket of fewer tokens is exact to the request across workers, and what leases can hold
      // back when the bucket runs dry is small next to what it gave.
      const extra = this.maxTake - 1;
      if (this.result.allowed && extra > 0 && s.tokens >= <f64>(LEASE_SHARE + 1) * <f64>extra) {
        s.tokens -= <f64>extra;
        this.leased = extra;
      }
    } else {
      refill(this.spec, s, now);
    }
    store<f64>(payload, s.tokens);
    store<i64>(payload, s.updatedMs, 8);
  }
}
