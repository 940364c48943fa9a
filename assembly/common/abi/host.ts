// Non-throwing wrappers over the raw proxy-wasm 0.2.0 imports.
// The runtime's own wrappers throw (and so kill the VM) on any non-Ok result;
// here a miss is a null or a result code the caller decides on.
import * as imports from "../../../node_modules/@solo-io/proxy-runtime/assembly/imports";
import { SharedValue } from "../lib/shared";
import { encodePairs } from "../request/snapshot";

// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "random_get")
declare function wasi_random_get(buf: usize, len: usize): u16;

/** Fills `len` bytes at `buf` from the host's random source; false when the host has none. */
export function randomBytes(buf: usize, len: i32): bool {
  return wasi_random_get(buf, <usize>len) == 0;
}

export const enum LogLevel { Trace = 0, Debug = 1, Info = 2, Warn = 3, Error = 4, Critical = 5 }
export const enum MapType { RequestHeaders = 0, RequestTrailers = 1, ResponseHeaders = 2, ResponseTrailers = 3, HttpCallResponseHeaders = 6 }
export const enum BufferType { RequestBody = 0, ResponseBody = 1, HttpCallResponseBody = 4, VmConfiguration = 6, PluginConfiguration = 7 }
export const enum HostResult { Ok = 0, NotFound = 1, BadArgument = 2, CasMismatch = 8 }
export const enum MetricType { Counter = 0, Gauge = 1, Histogram = 2 }

/** A buffer the next malloc may hand out instead of allocating (see getHeaderPairsInto). */
let lend: ArrayBuffer | null = null;
/** The smallest buffer made for header pairs, so a snapshot's buffer fits most later requests. */
const MIN_PAIRS_BUFFER: usize = 2048;

/**
 * The host's allocator: every value a host call returns is written into a buffer the host asks for
 * here. It is an ArrayBuffer, pinned so no collection can take it before the caller adopts or frees it;
 * or, for header pairs, the caller's own buffer when it is large enough, so a warm request allocates
 * nothing for its headers.
 */
export function malloc(size: usize): usize {
  const l = lend;
  if (l !== null) {
    lend = null;
    if (<usize>l.byteLength >= size) return changetype<usize>(l);
    return __pin(__new(size > MIN_PAIRS_BUFFER ? size : MIN_PAIRS_BUFFER, idof<ArrayBuffer>()));
  }
  return __pin(__new(size, idof<ArrayBuffer>()));
}

/** Gives a buffer made by malloc back to the collector. */
function free(ptr: usize): void {
  __unpin(ptr);
}

// Out-parameters for host calls. The host writes a malloc'd pointer and a size here.
const outPtr = memory.data(8);
const outSize = memory.data(8);
const outCas = memory.data(8);
const outU64 = memory.data(8);

function takeString(): string {
  const ptr = load<usize>(outPtr);
  const size = load<usize>(outSize);
  if (ptr == 0) return "";
  const s = String.UTF8.decodeUnsafe(ptr, size);
  free(ptr);
  return s;
}

function takeBytes(): ArrayBuffer {
  const ptr = load<usize>(outPtr);
  const size = <i32>load<usize>(outSize);
  const out = new ArrayBuffer(size);
  if (ptr != 0) {
    memory.copy(changetype<usize>(out), ptr, size);
    free(ptr);
  }
  return out;
}

export function log(level: LogLevel, message: string): void {
  const buf = String.UTF8.encode(message);
  imports.proxy_log(level, changetype<usize>(buf), buf.byteLength);
}

export function nowNanos(): u64 {
  if (imports.proxy_get_current_time_nanoseconds(outU64) != HostResult.Ok) return 0;
  return load<u64>(outU64);
}

export function nowMillis(): i64 {
  return <i64>(nowNanos() / 1000000);
}

/** Sets the tick period of the root context the call is made for (the effective one, if set). */
export function setTickPeriod(ms: u32): void {
  imports.proxy_set_tick_period_milliseconds(ms);
}

/**
 * Makes the root context `contextId` the one this callback's next host calls act for (its timer, its HTTP
 * calls), until the callback returns. False when the host has no such context.
 */
export function setEffectiveContext(contextId: u32): bool {
  return imports.proxy_set_effective_context(contextId) == HostResult.Ok;
}

/** A property path ("source.address"), encoded once: the host wants NUL-separated segments. */
export function propertyPath(path: string): ArrayBuffer {
  return String.UTF8.encode(path.replaceAll(".", "\0"));
}

/** A host property as raw bytes, or null when the host has none. */
export function getPropertyBytes(path: string): ArrayBuffer | null {
  return getPropertyAt(propertyPath(path));
}

/** The same for a path made by propertyPath. */
export function getPropertyAt(buf: ArrayBuffer): ArrayBuffer | null {
  store<usize>(outPtr, 0);
  store<usize>(outSize, 0);
  if (imports.proxy_get_property(changetype<usize>(buf), buf.byteLength, outPtr, outSize) != HostResult.Ok) return null;
  return takeBytes();
}

export function getPropertyStringAt(buf: ArrayBuffer): string | null {
  store<usize>(outPtr, 0);
  store<usize>(outSize, 0);
  if (imports.proxy_get_property(changetype<usize>(buf), buf.byteLength, outPtr, outSize) != HostResult.Ok) return null;
  return takeString();
}

export function getPropertyString(path: string): string | null {
  const bytes = getPropertyBytes(path);
  if (bytes === null) return null;
  return String.UTF8.decode(bytes);
}

/** Bytes of pair data the last getHeaderPairsInto returned (its buffer may be larger). */
export let pairsLength: i32 = 0;

/**
 * Every header of a map in one call, in proxy-wasm's pair format, written into `reuse` when it is large
 * enough (the result is then `reuse`), else into a new buffer the caller keeps for next time. The data's
 * length is pairsLength.
 */
export function getHeaderPairsInto(map: MapType, reuse: ArrayBuffer): ArrayBuffer | null {
  store<usize>(outPtr, 0);
  store<usize>(outSize, 0);
  lend = reuse;
  const r = imports.proxy_get_header_map_pairs(map, outPtr, outSize);
  lend = null;
  if (r != HostResult.Ok) return null;
  const ptr = load<usize>(outPtr);
  if (ptr == 0) return null;
  pairsLength = <i32>load<usize>(outSize);
  if (ptr == changetype<usize>(reuse)) return reuse;
  free(ptr); // reachable from the returned reference now
  return changetype<ArrayBuffer>(ptr);
}

/** One header's value from a map, or null when absent. */
export function getHeaderValue(map: MapType, key: ArrayBuffer): string | null {
  store<usize>(outPtr, 0);
  store<usize>(outSize, 0);
  if (imports.proxy_get_header_map_value(map, changetype<usize>(key), key.byteLength, outPtr, outSize) != HostResult.Ok) return null;
  return takeString();
}

/** A header value's UTF-8, written for the host in one buffer the module keeps (no allocation a write). */
let valueBytes = new ArrayBuffer(256);

/** Encodes `value` into valueBytes (grown when needed); returns its length in bytes. */
function encodeValue(value: string): i32 {
  const n = String.UTF8.byteLength(value);
  if (n > valueBytes.byteLength) valueBytes = new ArrayBuffer(n);
  String.UTF8.encodeUnsafe(changetype<usize>(value), value.length, changetype<usize>(valueBytes));
  return n;
}

export function replaceHeader(map: MapType, key: ArrayBuffer, value: string): u32 {
  const n = encodeValue(value);
  return imports.proxy_replace_header_map_value(map, changetype<usize>(key), key.byteLength, changetype<usize>(valueBytes), n);
}

/** Adds a header line (another Set-Cookie, say) without replacing one of the same name. */
export function addHeader(map: MapType, key: ArrayBuffer, value: string): u32 {
  const n = encodeValue(value);
  return imports.proxy_add_header_map_value(map, changetype<usize>(key), key.byteLength, changetype<usize>(valueBytes), n);
}

export function removeHeader(map: MapType, key: ArrayBuffer): u32 {
  return imports.proxy_remove_header_map_value(map, changetype<usize>(key), key.byteLength);
}

export function getBufferString(type: BufferType, start: u32, length: u32): string | null {
  store<usize>(outPtr, 0);
  store<usize>(outSize, 0);
  if (imports.proxy_get_buffer_bytes(type, start, length, outPtr, outSize) != HostResult.Ok) return null;
  return takeString();
}

/** A buffer's bytes, or null when the host has none. */
export function getBufferBytes(type: BufferType, start: u32, length: u32): ArrayBuffer | null {
  store<usize>(outPtr, 0);
  store<usize>(outSize, 0);
  if (imports.proxy_get_buffer_bytes(type, start, length, outPtr, outSize) != HostResult.Ok) return null;
  return takeBytes();
}

/** Sends a local reply. `headers` alternates names and values. */
export function sendLocalResponse(status: u32, details: string, body: string, headers: string[]): u32 {
  const d = String.UTF8.encode(details);
  const b = String.UTF8.encode(body);
  const h = encodePairs(headers);
  return imports.proxy_send_local_response(status, changetype<usize>(d), d.byteLength, changetype<usize>(b), b.byteLength,
    changetype<usize>(h), h.byteLength, -1);
}

const NO_TRAILERS = encodePairs([]);
const outToken = memory.data(4);

/**
 * Starts an HTTP call to the Envoy cluster `cluster` with `headers` (pairs: `:method`, `:path` and
 * `:authority` at least) and `body`; its answer comes to the root's onCallResponse. The call's token, or
 * 0 when the host refused it at once (no such cluster, a missing pseudo-header).
 */
export function httpCall(cluster: ArrayBuffer, headers: ArrayBuffer, body: ArrayBuffer, timeoutMs: u32): u32 {
  store<u32>(outToken, 0);
  const r = imports.proxy_http_call(changetype<usize>(cluster), cluster.byteLength, changetype<usize>(headers), headers.byteLength,
    changetype<usize>(body), body.byteLength, changetype<usize>(NO_TRAILERS), NO_TRAILERS.byteLength, timeoutMs, outToken);
  if (r != HostResult.Ok) return 0;
  return load<u32>(outToken);
}

// Metric ids by type and name, for the life of the VM. Envoy loads a new configuration into the VM that
// already runs (a new root context) and keeps every id a VM defines until the VM ends, so defining the
// same metric again on each configuration would grow Envoy's memory with every publish.
const definedMetrics = new Map<string, u32>();

/** The id of the metric `name` of `type`, defined in the host once per VM; 0 when the host refused it. */
export function defineMetric(type: MetricType, name: string): u32 {
  const key = type.toString() + name;
  if (definedMetrics.has(key)) return definedMetrics.get(key);
  const n = String.UTF8.encode(name);
  const id = memory.data(4);
  if (imports.proxy_define_metric(type, changetype<usize>(n), n.byteLength, id) != HostResult.Ok) return 0;
  definedMetrics.set(key, load<u32>(id));
  return load<u32>(id);
}

export function incrementMetric(id: u32, by: i64 = 1): void {
  if (id != 0) imports.proxy_increment_metric(id, by);
}

export function recordMetric(id: u32, value: u64): void {
  if (id != 0) imports.proxy_record_metric(id, value);
}

/** A metric's value, process-wide (every worker's increments); 0 when the host has none. No VM re-entry. */
export function metricValue(id: u32): u64 {
  const out = memory.data(8);
  store<u64>(out, 0);
  if (id == 0 || imports.proxy_get_metric(id, out) != HostResult.Ok) return 0;
  return load<u64>(out);
}

// The runtime's shared-data wrappers pass no value to set and ignore CAS; these are the real calls.
export function sharedGet(key: ArrayBuffer): SharedValue {
  store<usize>(outPtr, 0);
  store<usize>(outSize, 0);
  store<u32>(outCas, 0);
  const r = imports.proxy_get_shared_data(changetype<usize>(key), key.byteLength, outPtr, outSize, outCas);
  if (r != HostResult.Ok) return new SharedValue(null, 0);
  const cas = load<u32>(outCas);
  const ptr = load<usize>(outPtr);
  if (ptr == 0) return new SharedValue(new ArrayBuffer(0), cas);
  // The host wrote into a buffer our malloc made: adopt it instead of copying.
  const value = new SharedValue(changetype<ArrayBuffer>(ptr), cas);
  free(ptr);
  return value;
}

/** Writes `size` bytes at `value` if the stored CAS still equals `cas` (0 = unconditional). Returns a HostResult. */
export function sharedSet(key: ArrayBuffer, value: usize, size: i32, cas: u32): u32 {
  return imports.proxy_set_shared_data(changetype<usize>(key), key.byteLength, value, size, cas);
}
