// Minimal proxy-wasm 0.2.0 dispatch. It replaces the runtime's, which builds debug-log
// strings (including a join over every live context) on each request and throws on host misses.
import { log, LogLevel, getPropertyString, BufferType, getBufferString, nowMillis, setEffectiveContext, setTickPeriod } from "./host";
import { hostStats } from "./host_stats";

export const enum HeadersStatus { Continue = 0, StopIteration = 1 }
export const enum DataStatus { Continue = 0, StopIterationAndBuffer = 1 }

/** Per-request filter: small, holds only what one request needs. */
export class StreamFilter {
  onRequestHeaders(headerCount: u32, endOfStream: bool): HeadersStatus { return HeadersStatus.Continue; }
  onRequestBody(bodySize: u32, endOfStream: bool): DataStatus { return DataStatus.Continue; }
  onResponseHeaders(headerCount: u32, endOfStream: bool): HeadersStatus { return HeadersStatus.Continue; }
  /**
   * The stream is gone: give back what it borrowed. Returns how much garbage it is taken to have left, in
   * collection credits (see collectBetweenCallbacks): 1 for a stream that only read.
   */
  onDelete(): u32 { return 1; }
}

/** Per-plugin root: parses config once in configure() and creates stream filters. */
export class RootFilter {
  /** How often this root wants onTick, in milliseconds (0: never); set by configure(). */
  tickMs: u32 = 0;
  /** The host's id of this root context. */
  contextId: u32 = 0;
  /** When this root's next tick is due (ms), if it wants them less often than the VM's timer fires. */
  nextTickAt: i64 = 0;

  constructor(public rootId: string) {}
  /** How much of the plugin configuration configure() is given: all of it (-1), or at most this many bytes. */
  configurationBytes(): i32 { return -1; }
  /** Returns an error message, or null when the configuration was accepted and is now in force. */
  configure(config: string): string | null { return null; }
  onTick(): void {}
  /** The answer to an HTTP call this root made (host.httpCall). */
  onCallResponse(token: u32, headerCount: u32, bodySize: u32): void {}
  newStream(): StreamFilter { return new StreamFilter(); }
}

/**
 * The live streams by context id: open addressing with linear probing, deletion by backward shift, so a
 * stream's start and end allocate nothing (a Map reallocates its entries every so many insertions). It
 * doubles when half full, which a VM reaches only with that many requests in flight.
 */
class StreamTable {
  private ids: Uint32Array = new Uint32Array(256);
  private filters: Array<StreamFilter | null> = new Array<StreamFilter | null>(256);
  private count: i32 = 0;

  @inline private slotOf(id: u32, mask: u32): u32 { return (id * 0x9e3779b1) & mask; }

  /** The slot holding `id`, or -1. */
  private find(id: u32): i32 {
    const mask = <u32>this.ids.length - 1;
    let i = this.slotOf(id, mask);
    while (unchecked(this.ids[i]) != id) {
      if (unchecked(this.ids[i]) == 0) return -1;
      i = (i + 1) & mask;
    }
    return <i32>i;
  }

  get(id: u32): StreamFilter | null {
    const i = this.find(id);
    return i < 0 ? null : unchecked(this.filters[i]);
  }

  /** `id` is a context id: never 0, which marks a free slot. */
  set(id: u32, f: StreamFilter): void {
    if (id == 0) return;
    if (2 * (this.count + 1) > this.ids.length) this.grow();
    const mask = <u32>this.ids.length - 1;
    let i = this.slotOf(id, mask);
    while (unchecked(this.ids[i]) != 0 && unchecked(this.ids[i]) != id) i = (i + 1) & mask;
    if (unchecked(this.ids[i]) == 0) this.count++;
    unchecked(this.ids[i] = id);
    unchecked(this.filters[i] = f);
  }

  /** Removes `id`'s stream and returns it, or null. */
  take(id: u32): StreamFilter | null {
    const at = this.find(id);
    if (at < 0) return null;
    const mask = <u32>this.ids.length - 1;
    const i = <u32>at;
    const f = unchecked(this.filters[i]);
    this.count--;
    // Backward shift: move later entries of the probe run into the hole, so lookups never stop early.
    let hole = i;
    let j = (i + 1) & mask;
    while (unchecked(this.ids[j]) != 0) {
      const home = this.slotOf(unchecked(this.ids[j]), mask);
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        unchecked(this.ids[hole] = this.ids[j]);
        unchecked(this.filters[hole] = this.filters[j]);
        hole = j;
      }
      j = (j + 1) & mask;
    }
    unchecked(this.ids[hole] = 0);
    unchecked(this.filters[hole] = null);
    return f;
  }

  private grow(): void {
    const ids = this.ids;
    const filters = this.filters;
    this.ids = new Uint32Array(ids.length * 2);
    this.filters = new Array<StreamFilter | null>(ids.length * 2);
    this.count = 0;
    for (let i = 0; i < ids.length; i++) if (unchecked(ids[i]) != 0) this.set(unchecked(ids[i]), unchecked(filters[i])!);
  }
}

let rootFactory: (() => RootFilter) | null = null;
let expectedRootId = "";
const roots = new Map<u32, RootFilter>();
const streams = new StreamTable();
const noopStream = new StreamFilter();

/** Each filter module registers exactly one root factory under its root id. */
export function registerFilter(rootId: string, factory: () => RootFilter): void {
  expectedRootId = rootId;
  rootFactory = factory;
}

// The root of the last lookup: a configuration's streams all name the same one.
let lastRootId: u32 = 0;
let lastRoot: RootFilter | null = null;

function rootFor(id: u32): RootFilter | null {
  if (id == lastRootId && lastRoot !== null) return lastRoot;
  if (!roots.has(id)) return null;
  const root = roots.get(id);
  lastRootId = id;
  lastRoot = root;
  return root;
}

// The stream of the last callback: a request's callbacks mostly follow each other, so most lookups
// skip the map.
let lastId: u32 = 0;
let lastStream: StreamFilter = noopStream;

function streamFor(id: u32): StreamFilter {
  if (id == lastId) return lastStream;
  const s = streams.get(id);
  if (s === null) return noopStream;
  lastId = id;
  lastStream = s;
  return s;
}

// ---- calls in ----

export function proxy_abi_version_0_2_0(): void {}

export function proxy_on_context_create(contextId: u32, rootContextId: u32): void {
  if (rootContextId == 0) {
    const factory = rootFactory;
    if (factory === null) return;
    const root = factory();
    root.contextId = contextId;
    roots.set(contextId, root);
    return;
  }
  const root = rootFor(rootContextId);
  if (root !== null) {
    const s = root.newStream();
    streams.set(contextId, s);
    lastId = contextId;
    lastStream = s;
  }
}

export function proxy_on_vm_start(rootContextId: u32, vmConfigSize: u32): u32 { return 1; }

export function proxy_validate_configuration(rootContextId: u32, size: u32): u32 { return 1; }

export function proxy_on_configure(rootContextId: u32, size: u32): u32 {
  const root = rootFor(rootContextId);
  if (root === null) return 0;
  const rootId = getPropertyString("plugin_root_id");
  if (rootId === null || rootId != expectedRootId) {
    let got = "";
    if (rootId !== null) got = rootId;
    log(LogLevel.Error, "graywall: this module serves root_id '" + expectedRootId + "', not '" + got + "'");
    return 0;
  }
  let config = "";
  const most = root.configurationBytes();
  if (most >= 0 && <u32>most < size) size = <u32>most;
  if (size > 0) {
    const s = getBufferString(BufferType.PluginConfiguration, 0, size);
    if (s !== null) config = s;
  }
  const err = root.configure(config);
  if (err !== null) {
    log(LogLevel.Error, expectedRootId + ": configuration rejected: " + err);
    return 0;
  }
  log(LogLevel.Info, expectedRootId + ": configuration accepted");
  const at = tickers.indexOf(root);
  if (root.tickMs > 0 && at < 0) tickers.push(root);
  else if (root.tickMs == 0 && at >= 0) tickers.splice(at, 1);
  retime(rootContextId);
  collectBetweenCallbacks(true);
  return 1;
}

// ---- ticks ----
// Envoy keeps a timer for every root context that ever sets a tick period, for the life of the VM, and
// each new configuration is a new root context in the VM already running: a tick period set per
// configuration would grow Envoy's memory with every publish. So one root per VM, the first to want
// ticks, holds the VM's one timer, at the shortest period any live root wants; each tick runs every live
// root that is due, acting as itself (its HTTP calls are answered to it). When that root's configuration
// is replaced, proxy_on_done answers "not done" and Envoy keeps the context (no configuration, no stages)
// until the VM ends, so its timer goes on.

/** The live roots that want ticks. */
const tickers = new Array<RootFilter>();
/** The root context holding the VM's timer (0: none yet), and the period it is set to. */
let tickOwner: u32 = 0;
let tickPeriod: u32 = 0;

/** Sets the VM's timer to the shortest period a live root wants; `current` is the callback's root context. */
function retime(current: u32): void {
  let period: u32 = 0;
  for (let i = 0; i < tickers.length; i++) {
    const ms = unchecked(tickers[i]).tickMs;
    if (period == 0 || ms < period) period = ms;
  }
  if (period == tickPeriod) return;
  if (tickOwner == 0) {
    if (period == 0) return;
    tickOwner = current;
  }
  const other = tickOwner != current;
  // The owner is kept by Envoy until the VM ends; should it be gone after all, the current root takes over.
  if (other && !setEffectiveContext(tickOwner)) tickOwner = current;
  setTickPeriod(period);
  tickPeriod = period;
  if (other) setEffectiveContext(current);
}

export function proxy_on_tick(rootContextId: u32): void {
  // The tallies first: a stage's tick reads them (crawler_score's site-wide rate).
  hostStats.flush();
  if (tickers.length == 0) return;
  const now = tickers.length > 1 ? nowMillis() : 0;
  for (let i = 0; i < tickers.length; i++) {
    const root = unchecked(tickers[i]);
    // A root at the timer's period runs on every tick; a slower one when due (within half a timer period).
    if (root.tickMs > tickPeriod) {
      if (now < root.nextTickAt) continue;
      root.nextTickAt = now + <i64>(root.tickMs - (tickPeriod >> 1));
    }
    if (root.contextId != rootContextId) setEffectiveContext(root.contextId);
    root.onTick();
  }
  // A tick's work (syncs, sweeps, leases given back) allocates: an idle VM sees no stream end to collect at.
  collectBetweenCallbacks(true);
}

export function proxy_on_http_call_response(rootContextId: u32, token: u32, headers: u32, bodySize: u32, trailers: u32): void {
  const root = rootFor(rootContextId);
  if (root === null) return;
  root.onCallResponse(token, headers, bodySize);
  collectBetweenCallbacks(true);
}

export function proxy_on_request_headers(contextId: u32, headers: u32, endOfStream: u32): i32 {
  return streamFor(contextId).onRequestHeaders(headers, endOfStream != 0);
}

export function proxy_on_request_body(contextId: u32, size: u32, endOfStream: u32): i32 {
  return streamFor(contextId).onRequestBody(size, endOfStream != 0);
}

export function proxy_on_response_headers(contextId: u32, headers: u32, endOfStream: u32): i32 {
  return streamFor(contextId).onResponseHeaders(headers, endOfStream != 0);
}

/**
 * A context ends. Envoy calls on_done and then on_delete for every stream, and on_delete for a root only
 * once on_done says it is done; the module exports on_done alone (one call into the VM per stream, as
 * before), so a stream's end is handled here, and a root's: done, except the root holding the VM's timer
 * (see ticks), which Envoy keeps.
 */
export function proxy_on_done(contextId: u32): u32 {
  if (contextId == lastId) {
    lastId = 0;
    lastStream = noopStream;
  }
  const s = streams.take(contextId);
  if (s !== null) {
    collectBetweenCallbacks(false, s.onDelete());
    return 1;
  }
  if (!roots.has(contextId)) return 1;
  hostStats.flush();
  const root = roots.get(contextId);
  roots.delete(contextId);
  if (contextId == lastRootId) {
    lastRootId = 0;
    lastRoot = null;
  }
  const at = tickers.indexOf(root);
  if (at >= 0) {
    tickers.splice(at, 1);
    retime(contextId);
  }
  collectBetweenCallbacks(true);
  return contextId == tickOwner ? 0 : 1;
}

/**
 * Not part of the ABI (Envoy never calls it): writes the tallies and held histogram values out as the
 * next tick would, so the host emulator's tests read a metric as Envoy shows it a tick later.
 */
export function graywall_flush_tallies(): void {
  hostStats.flush();
}

// ---- memory ----

/** Collection credits between two collections (minimal runtime). */
const COLLECT_EVERY: u32 = 16384;
let finished: u32 = 0;

/**
 * With the minimal runtime (asconfig.json) nothing is collected unless the module asks, and it asks only
 * here: at the end of a callback, when no local of any callback holds a reference and the globals are
 * the only roots. A collection marks everything reachable (the configuration's tables above all: about
 * a million instructions for all four stages), while a steady-state request allocates nothing, so streams
 * are counted by what they leave: 1 credit for one that only read, 16 for one answered with a local
 * reply (its object and details: a refusal's body and headers are the configuration's), 64 for one that
 * wrote response headers, and what a stage reports of its own (RequestSnapshot.garbage: 512 for a
 * challenge page, KiB of strings; 64 for a signature check); a collection runs every COLLECT_EVERY
 * credits: every 32 challenge pages, and at most hundreds of KiB of garbage. An accepted
 * configuration, a tick (at least once a second with stages: pipeline.ts) and a root's end collect at
 * once, so a replaced configuration's tables go back to the allocator, an idle VM's ticks leave nothing
 * behind, and streams that only read are collected after by the tick.
 */
function collectBetweenCallbacks(now: bool, credits: u32 = 1): void {
  if (ASC_RUNTIME != 1) return;
  finished += credits;
  if (!now && finished < COLLECT_EVERY) return;
  finished = 0;
  collections++;
  __collect();
}

/** Collections so far (minimal runtime). */
let collections: u32 = 0;

/** Not part of the ABI (Envoy never calls it): the collections this VM ran, for the host emulator's tests. */
export function graywall_collections(): u32 {
  return collections;
}
