// Whether a benchmark run was disturbed: Envoy, pinned to its core and saturated by wrk, normally keeps
// that core busy for the whole run. When another process takes the core, Envoy's share of it drops, its
// requests take longer and its CPU time per request is no longer comparable. Such a run is retried.

/** A run below this fraction of the usual share counts as disturbed. */
export const DISTURBED_BELOW = 0.85;

const median = (xs: number[]) => {
  const a = [...xs].sort((x, y) => x - y);
  const m = a.length >> 1;
  return a.length % 2 ? a[m] : (a[m - 1] + a[m]) / 2;
};

/**
 * `share`: Envoy's CPU time over the run's wall time (1 = its core busy all along). `accepted`: the shares
 * of the runs kept so far (every setup saturates Envoy alike). Judged once two runs are kept.
 */
export function disturbed(share: number, accepted: number[]): boolean {
  return accepted.length >= 2 && share < DISTURBED_BELOW * median(accepted);
}
