// A stage: one filter's decision over a request snapshot. Stages are pure: the host reaches them only
// through the snapshot, a StatSink and a SharedStore, so as-pect drives them with in-memory ones.
import { RequestSnapshot } from "./snapshot";

export const enum Outcome {
  /** Next stage. */
  Continue,
  /** The stage answered locally (RequestSnapshot.reply): the pass ends here. */
  Reply,
  /** The stage needs the request body to decide; the pipeline calls onBody when it has it. */
  NeedBody,
}

/** A local reply: status, details for the access log, body, and headers as alternating names and values. */
export class LocalReply {
  constructor(public status: u32, public details: string, public body: string, public headers: string[]) {}
}

/**
 * Counters and gauges, declared once per configuration. The host's in Envoy, an array in tests. A metric
 * is process-wide: read() sees every worker's increments at once, so a counter doubles as a cheap signal
 * between workers (no VM re-entry, unlike shared data).
 */
export abstract class StatSink {
  abstract counter(name: string): u32;
  /**
   * A counter that counts (nearly) every request, such as ip_list.allowed: the host's sink sums it in the
   * VM and writes it out on the VM's next tick (at most a second behind), a host call saved per request.
   * Counters of decisions (denied, limited, a signal) stay counter(): alerts see them at once.
   */
  abstract tally(name: string): u32;
  abstract gauge(name: string): u32;
  /**
   * A histogram: each `set` records one value in it (Envoy's proxy_record_metric). The host's sink holds
   * values in the VM and records them in runs (at most a second later), a cold host call saved per request.
   */
  abstract histogram(name: string): u32;
  abstract inc(id: u32): void;
  abstract add(id: u32, by: i64): void;
  abstract set(id: u32, value: u64): void;
  abstract read(id: u32): u64;
}

/**
 * Calls to other services through the host (an Envoy cluster), answered later on the root context
 * (Stage.onCallResponse). The host's in Envoy, an in-memory one in tests.
 */
export abstract class HostCalls {
  /** POSTs `body` to `path` on `cluster`; the call's token, or 0 when the host refused it at once. */
  abstract post(cluster: string, path: string, contentType: string, body: string, timeoutMs: u32): u32;
}

export abstract class Stage {
  /** Whether the pipeline must fetch the route_name property before the pass (RequestSnapshot.routeName). */
  needsRouteName: bool = false;
  /** Whether the pipeline must read the clock before the pass (RequestSnapshot.nowMs). */
  needsClock: bool = false;
  /** The most body bytes this stage wants (NeedBody only); 0 = none. */
  maxBodyBytes: i32 = 0;
  /** Tick period this stage wants for upkeep, in ms; 0 = none. */
  tickMs: u32 = 0;

  abstract onRequest(req: RequestSnapshot, endOfStream: bool): Outcome;
  /** The body's bytes, or null when it was absent or over maxBodyBytes (req.bodyTooLarge). Continue or Reply. */
  onBody(req: RequestSnapshot, body: ArrayBuffer | null): Outcome { return Outcome.Continue; }
  onTick(nowMs: i64): void {}
  /** The response headers arrived (not called after a local reply). May queue response-header writes. */
  onResponse(req: RequestSnapshot): void {}
  /**
   * The answer to a HostCalls call: its HTTP status (0 when the call failed: reset, timeout, no upstream)
   * and body. True when the call was this stage's.
   */
  onCallResponse(token: u32, status: i32, body: string | null): bool { return false; }
}
