// Token bucket math, pure: time is passed in, so tests drive the clock.

export class BucketSpec {
  constructor(public size: f64, public refillTokens: f64, public refillIntervalMs: f64) {}
  /** Tokens added per millisecond. */
  @inline get rate(): f64 { return this.refillTokens / this.refillIntervalMs; }
}

/** Bucket state as stored: the tokens left at `updatedMs`. */
export class BucketState {
  tokens: f64 = 0;
  updatedMs: i64 = 0;
}

export class TakeResult {
  allowed: bool = false;
  /** Whole tokens left after this request. */
  remaining: i64 = 0;
  /** Milliseconds until one token is available (0 if one is). */
  retryAfterMs: i64 = 0;
  /** Milliseconds until the bucket is full again. */
  resetMs: i64 = 0;
}

/** Adds the tokens earned since state.updatedMs. A clock that went backwards earns nothing. */
export function refill(spec: BucketSpec, state: BucketState, nowMs: i64): void {
  const elapsed = nowMs - state.updatedMs;
  if (elapsed > 0) {
    state.tokens = Math.min(spec.size, state.tokens + <f64>elapsed * spec.rate);
    state.updatedMs = nowMs;
  } else if (elapsed < 0) {
    // Keep the later timestamp: tokens are earned once the clock passes it again.
    state.tokens = Math.min(spec.size, state.tokens);
  }
}

/** Refills, then takes one token if there is one. Mutates state; fills `out`. */
export function take(spec: BucketSpec, state: BucketState, nowMs: i64, out: TakeResult): void {
  refill(spec, state, nowMs);
  out.allowed = state.tokens >= 1.0;
  if (out.allowed) state.tokens -= 1.0;
  out.remaining = <i64>Math.floor(state.tokens);
  const rate = spec.rate;
  out.retryAfterMs = state.tokens >= 1.0 ? 0 : <i64>Math.ceil((1.0 - state.tokens) / rate);
  out.resetMs = <i64>Math.ceil((spec.size - state.tokens) / rate);
}

export function fullBucket(spec: BucketSpec, nowMs: i64): BucketState {
  const s = new BucketState();
  s.tokens = spec.size;
  s.updatedMs = nowMs;
  return s;
}
