// The rate limiter's record in a SlotTable: one token bucket. Pure.
import { RecordUpdate } from "../common/slot_table";
import { BucketSpec, BucketState, take, TakeResult } from "../common/token_bucket";

/** Payload: f64 tokens | i64 updatedMs. */
export const BUCKET_PAYLOAD = 16;

export class BucketUpdate extends RecordUpdate {
  spec: BucketSpec = new BucketSpec(1, 1, 1000);
  result: TakeResult = new TakeResult();
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
    take(this.spec, s, now, this.result);
    store<f64>(payload, s.tokens);
    store<i64>(payload, s.updatedMs, 8);
  }
}
