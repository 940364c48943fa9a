// A proxy-wasm 0.2.0 host emulator, as the Go SDK's proxytest and Higress's test host are: it loads a
// built module and drives its exported callbacks the way Envoy does, with request and response headers,
// properties, a request body, shared data with CAS, metrics, local replies and logs in memory. It counts
// every host call, so tests can prove what the glue fetches and writes per request.
import { readFileSync } from "node:fs";
import { getRandomValues } from "node:crypto";

const enc = new TextEncoder();
const dec = new TextDecoder();

export enum MapType {
  RequestHeaders = 0,
  ResponseHeaders = 2,
}
const OK = 0;
const NOT_FOUND = 1;
const BAD_ARGUMENT = 2;
const CAS_MISMATCH = 8;

export interface LocalReply {
  status: number;
  details: string;
  body: string;
  headers: [string, string][];
}

export interface RequestSpec {
  headers: [string, string][];
  body?: string;
  /** Defaults to "127.0.0.1:40000". */
  peer?: string;
  responseHeaders?: [string, string][];
  /** Host properties for this request only, by dotted path (dynamic metadata another filter wrote, say). */
  properties?: Record<string, string>;
}

export interface Exchange {
  /** What proxy_on_request_headers returned: 0 Continue, 1 StopIteration. */
  headersStatus: number;
  bodyStatus?: number;
  /** The request headers as the upstream would get them (after the filter's writes). */
  upstreamHeaders: [string, string][];
  /** The response headers as the client would get them; absent when the filter replied locally. */
  responseHeaders?: [string, string][];
  reply?: LocalReply;
  /** Host calls made for this request, by import name. */
  calls: Record<string, number>;
}

/** Serialises pairs the way the host does for proxy_get_header_map_pairs. */
export function encodePairs(pairs: [string, string][]): Uint8Array {
  const parts = pairs.map(([k, v]) => [enc.encode(k), enc.encode(v)]);
  const size = 4 + 8 * pairs.length + parts.reduce((a, [k, v]) => a + k.length + v.length + 2, 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint32(0, pairs.length, true);
  let p = 4 + 8 * pairs.length;
  parts.forEach(([k, v], i) => {
    view.setUint32(4 + 8 * i, k.length, true);
    view.setUint32(8 + 8 * i, v.length, true);
    out.set(k, p);
    p += k.length + 1;
    out.set(v, p);
    p += v.length + 1;
  });
  return out;
}

function decodePairs(bytes: Uint8Array): [string, string][] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getUint32(0, true);
  const out: [string, string][] = [];
  let p = 4 + 8 * n;
  for (let i = 0; i < n; i++) {
    const kl = view.getUint32(4 + 8 * i, true);
    const vl = view.getUint32(8 + 8 * i, true);
    const k = dec.decode(bytes.subarray(p, p + kl));
    p += kl + 1;
    const v = dec.decode(bytes.subarray(p, p + vl));
    p += vl + 1;
    out.push([k, v]);
  }
  return out;
}

/**
 * What outlives a VM and is seen by every worker's VM, as in Envoy: shared data (per vm_id) and metrics
 * (process-wide, by name). Pass one to several hosts to emulate several workers.
 */
export class SharedData {
  entries = new Map<string, { value: Uint8Array; cas: number }>();
  /** Envoy's metrics; a histogram (type 2) also keeps every value recorded in it, in order. */
  readonly metrics = new Map<number, { name: string; type: number; value: bigint; values?: bigint[] }>();
  nextMetric = 1;
  private nextCas = 1;
  get(key: string) {
    return this.entries.get(key);
  }
  set(key: string, value: Uint8Array, cas: number): number {
    const cur = this.entries.get(key);
    if (cur && cas !== 0 && cur.cas !== cas) return CAS_MISMATCH;
    this.entries.set(key, { value: value.slice(), cas: this.nextCas++ });
    return OK;
  }
}

/** An HTTP call a module made (proxy_http_call), waiting for the test to answer it (ProxyHost.answer). */
export interface HttpCall {
  token: number;
  cluster: string;
  headers: [string, string][];
  body: string;
  timeoutMs: number;
  /** The root context the call was made for: its answer goes there. */
  root: number;
}

export class ProxyHost {
  readonly logs: string[] = [];
  /** The clusters this host has, as Envoy's cluster manager would: a call to any other is refused (BadArgument). */
  clusters = new Set<string>();
  /** Calls made and not answered yet, in order. */
  readonly httpCalls: HttpCall[] = [];
  private nextToken = 1;
  private callResponse: { headers: [string, string][]; body: Uint8Array } = { headers: [], body: new Uint8Array(0) };
  nowMs = 1_700_000_000_000;
  /** Bytes of the plugin configuration the module has read (proxy_get_buffer_bytes). */
  configBytesRead = 0;
  /**
   * The tick period each root context set, by context id: as Envoy's, an entry outlives its root context
   * and stays for the life of the VM (its size is what Envoy keeps).
   */
  readonly timers = new Map<number, number>();
  /** Metric ids defined in this VM: Envoy makes a new id on every define and keeps it for the life of the VM. */
  metricIdsDefined = 0;
  /** Root contexts Envoy would keep after their configuration was replaced (on_done said "not done"). */
  readonly pendingRoots = new Set<number>();
  private memory!: WebAssembly.Memory;
  private exports!: Record<string, CallableFunction>;
  private config = "";
  private requestHeaders: [string, string][] = [];
  private responseHeaders: [string, string][] = [];
  private body = new Uint8Array(0);
  private properties = new Map<string, string>();
  private reply: LocalReply | undefined;
  private calls: Record<string, number> = {};
  private requestProperties: string[] = [];
  private nextContext = 1;
  /** The root context of the configuration in force (0: none yet), and every root context not shut down. */
  private root = 0;
  private liveRoots = new Set<number>();
  /** Each stream's root context. */
  private streamRoot = new Map<number, number>();
  /** The context the module is being called for, and the one it made effective (0: none). */
  private current = 0;
  private effective = 0;

  /**
   * `file`: the module's path, or its bytes (the fuzzer's coverage-instrumented copy); `extraEnv`: imports
   * such a copy needs besides the host's (not counted as host calls).
   */
  constructor(
    file: string | Uint8Array<ArrayBuffer>,
    public rootId: string,
    public shared = new SharedData(),
    extraEnv: Record<string, CallableFunction> = {},
  ) {
    const env: Record<string, CallableFunction> = { ...extraEnv };
    for (const [name, fn] of Object.entries(this.imports())) {
      env[name] = (...a: unknown[]) => {
        this.calls[name] = (this.calls[name] ?? 0) + 1;
        return (fn as CallableFunction)(...a);
      };
    }
    const inst = new WebAssembly.Instance(new WebAssembly.Module(typeof file === "string" ? readFileSync(file) : file), {
      env,
      wasi_snapshot_preview1: {
        proc_exit: (code: number) => {
          throw new Error(`the module exited (${code}): a VM Envoy would have lost`);
        },
        random_get: (buf: number, len: number) => {
          this.calls.random_get = (this.calls.random_get ?? 0) + 1;
          if (this.noRandom) return 52; // ENOSYS
          getRandomValues(new Uint8Array(this.memory.buffer as ArrayBuffer, buf, len));
          return 0;
        },
      },
    });
    this.exports = inst.exports as Record<string, CallableFunction>;
    this.memory = inst.exports.memory as WebAssembly.Memory;
  }

  /** Calls the module's `name` for context `ctx`, as Envoy does: no effective context until the module sets one. */
  private call(ctx: number, name: string, ...args: unknown[]): number {
    const fn = this.exports[name];
    if (!fn) return 1; // Envoy skips a callback the module does not export; on_done's default is "done".
    const [current, effective] = [this.current, this.effective];
    [this.current, this.effective] = [ctx, 0];
    try {
      return fn(...args) as number;
    } finally {
      [this.current, this.effective] = [current, effective];
    }
  }

  /** The root context the module's host call acts for: the effective one, else the callback's (a stream's root). */
  private actingRoot(): number {
    const ctx = this.effective || this.current;
    return this.streamRoot.get(ctx) ?? ctx;
  }

  /**
   * Configures the VM as Envoy does on load and on each ECDS update: a new root context in the VM already
   * running; once it accepts, the previous root is shut down (on_done, then on_delete when it is done). A
   * refused configuration leaves the one in force (the first one stays, as the filter Envoy would fail).
   */
  configure(config: string): boolean {
    this.config = config;
    this.properties.set("plugin_root_id", this.rootId);
    const id = this.nextContext++;
    this.liveRoots.add(id);
    this.call(id, "proxy_on_context_create", id, 0);
    this.call(id, "proxy_on_vm_start", id, 0);
    const ok = this.call(id, "proxy_on_configure", id, enc.encode(config).length) === 1;
    if (ok || this.root === 0) {
      if (this.root !== 0) this.shutdownRoot(this.root);
      this.root = id;
    } else this.shutdownRoot(id);
    return ok;
  }

  private shutdownRoot(id: number): void {
    this.liveRoots.delete(id);
    if (this.call(id, "proxy_on_done", id) !== 0) this.call(id, "proxy_on_delete", id);
    else this.pendingRoots.add(id);
  }

  private alive(id: number): boolean {
    return this.liveRoots.has(id) || this.pendingRoots.has(id);
  }

  /** One tick of every timer whose root context is alive, as Envoy's timers fire. */
  tick(): void {
    for (const [id, ms] of this.timers) if (ms > 0 && this.alive(id)) this.call(id, "proxy_on_tick", id);
  }

  /** The shortest tick period set (0: none). */
  get tickMs(): number {
    const set = [...this.timers.values()].filter((ms) => ms > 0);
    return set.length > 0 ? Math.min(...set) : 0;
  }

  /** Host calls of `name` since the last request began (or since the host was made). */
  callCount(name: string): number {
    return this.calls[name] ?? 0;
  }

  /** One request through the filter: headers, then the body if any, then the response headers. */
  request(spec: RequestSpec): Exchange {
    const ctx = this.nextContext++;
    this.calls = {};
    this.reply = undefined;
    this.requestHeaders = spec.headers.map(([k, v]) => [k, v]);
    this.responseHeaders = (spec.responseHeaders ?? [[":status", "200"]]).map(([k, v]) => [k, v]);
    this.body = enc.encode(spec.body ?? "");
    // As an HTTP/1.1 client sends a body of known length (unless the test says chunked).
    if (this.body.length > 0 && !this.requestHeaders.some(([k]) => k === "content-length" || k === "transfer-encoding")) {
      this.requestHeaders.push(["content-length", String(this.body.length)]);
    }
    this.properties.set("source.address", spec.peer ?? "127.0.0.1:40000");
    this.properties.set("route_name", "app");
    for (const k of this.requestProperties) this.properties.delete(k);
    this.requestProperties = Object.keys(spec.properties ?? {});
    for (const [k, v] of Object.entries(spec.properties ?? {})) this.properties.set(k, v);
    this.streamRoot.set(ctx, this.root);
    this.call(ctx, "proxy_on_context_create", ctx, this.root);
    const ex: Exchange = { headersStatus: 0, upstreamHeaders: [], calls: this.calls };
    const hasBody = this.body.length > 0;
    ex.headersStatus = this.call(ctx, "proxy_on_request_headers", ctx, this.requestHeaders.length, hasBody ? 0 : 1);
    if (hasBody && !this.reply) ex.bodyStatus = this.call(ctx, "proxy_on_request_body", ctx, this.body.length, 1);
    if (!this.reply) {
      ex.upstreamHeaders = this.requestHeaders.map(([k, v]) => [k, v]);
      this.call(ctx, "proxy_on_response_headers", ctx, this.responseHeaders.length, 0);
      ex.responseHeaders = this.responseHeaders;
    }
    // As Envoy does: on_log, on_done and on_delete, each skipped when the module does not export it.
    this.call(ctx, "proxy_on_log", ctx);
    this.call(ctx, "proxy_on_done", ctx);
    this.call(ctx, "proxy_on_delete", ctx);
    this.streamRoot.delete(ctx);
    ex.reply = this.reply;
    return ex;
  }

  /**
   * Answers a call the module made, as Envoy does on the root context: `status` 0 is a failed call (no
   * headers, as for a reset or a timeout).
   */
  answer(call: HttpCall, status: number, body = ""): void {
    const i = this.httpCalls.indexOf(call);
    if (i < 0) throw new Error(`call ${call.token} is not pending`);
    this.httpCalls.splice(i, 1);
    this.callResponse = { headers: status === 0 ? [] : [[":status", String(status)]], body: enc.encode(body) };
    this.call(call.root, "proxy_on_http_call_response", call.root, call.token, this.callResponse.headers.length, this.callResponse.body.length, 0);
  }

  /** The garbage collections the VM has run (the module's graywall_collections; 0 for a module without it). */
  collections(): number {
    const fn = this.exports.graywall_collections;
    return fn ? (fn() as number) : 0;
  }

  /** The VM's linear memory in bytes (it only grows: a leak shows as growth). */
  memoryBytes(): number {
    return this.memory.buffer.byteLength;
  }

  /**
   * The metrics as Envoy shows them a tick later: the module's tallies (counters it sums in the VM and
   * writes out on its tick) are written out first. metricNow reads what the host holds this moment.
   */
  get metrics() {
    if (this.exports.graywall_flush_tallies) {
      // Its host calls are no request's.
      const calls = this.calls;
      this.calls = {};
      this.call(0, "graywall_flush_tallies");
      this.calls = calls;
    }
    return this.shared.metrics;
  }

  metric(name: string): bigint | undefined {
    for (const m of this.metrics.values()) if (m.name === name) return m.value;
    return undefined;
  }

  metricNow(name: string): bigint | undefined {
    for (const m of this.shared.metrics.values()) if (m.name === name) return m.value;
    return undefined;
  }

  // ---- the host side of the ABI ----

  private bytes(ptr: number, len: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, ptr, len);
  }
  private str(ptr: number, len: number): string {
    return dec.decode(this.bytes(ptr, len));
  }
  /** A host without randomness (random_get fails). */
  noRandom = false;
  /** Where the module's malloc put each request-header map the host handed over, in order (tests of buffer reuse). */
  headerPairsAt: number[] = [];
  /** Where each header value the module wrote (replaced or added) lay in its memory, in order (tests of buffer reuse). */
  headerValuesAt: number[] = [];
  /** Hands data to the module as Envoy does: in memory from the module's own malloc. */
  private give(data: Uint8Array, ptrPtr: number, sizePtr: number): number {
    const p = this.exports.malloc(data.length) as number;
    this.bytes(p, data.length).set(data);
    const view = new DataView(this.memory.buffer);
    view.setUint32(ptrPtr, p, true);
    view.setUint32(sizePtr, data.length, true);
    return OK;
  }
  private map(type: number): [string, string][] {
    if (type === MapType.RequestHeaders) return this.requestHeaders;
    if (type === MapType.ResponseHeaders) return this.responseHeaders;
    if (type === 6) return this.callResponse.headers;
    throw new Error(`header map ${type} is not emulated`);
  }

  private imports(): Record<string, CallableFunction> {
    return {
      proxy_log: (_level: number, p: number, n: number) => {
        this.logs.push(this.str(p, n));
        return OK;
      },
      proxy_get_property: (p: number, n: number, out: number, outSize: number) => {
        const v = this.properties.get(this.str(p, n).split("\0").join("."));
        return v === undefined ? NOT_FOUND : this.give(enc.encode(v), out, outSize);
      },
      proxy_get_buffer_bytes: (type: number, start: number, len: number, out: number, outSize: number) => {
        if (type === 7) {
          this.configBytesRead += Math.min(len, enc.encode(this.config).length - start);
          return this.give(enc.encode(this.config).subarray(start, start + len), out, outSize);
        }
        if (type === 0) return this.give(this.body.subarray(start, start + len), out, outSize);
        if (type === 4) return this.give(this.callResponse.body.subarray(start, start + len), out, outSize);
        return NOT_FOUND;
      },
      proxy_get_header_map_pairs: (type: number, out: number, outSize: number) => {
        const r = this.give(encodePairs(this.map(type)), out, outSize);
        if (type === MapType.RequestHeaders && this.headerPairsAt.length < 10_000)
          this.headerPairsAt.push(new DataView(this.memory.buffer).getUint32(out, true));
        return r;
      },
      proxy_get_header_map_value: (type: number, kp: number, kl: number, out: number, outSize: number) => {
        const key = this.str(kp, kl);
        const hit = this.map(type).find(([k]) => k === key);
        return hit ? this.give(enc.encode(hit[1]), out, outSize) : NOT_FOUND;
      },
      proxy_replace_header_map_value: (type: number, kp: number, kl: number, vp: number, vl: number) => {
        if (this.headerValuesAt.length < 10_000) this.headerValuesAt.push(vp);
        const key = this.str(kp, kl);
        const m = this.map(type);
        const rest = m.filter(([k]) => k !== key);
        m.length = 0;
        m.push(...rest, [key, this.str(vp, vl)]);
        return OK;
      },
      proxy_add_header_map_value: (type: number, kp: number, kl: number, vp: number, vl: number) => {
        if (this.headerValuesAt.length < 10_000) this.headerValuesAt.push(vp);
        this.map(type).push([this.str(kp, kl), this.str(vp, vl)]);
        return OK;
      },
      proxy_remove_header_map_value: (type: number, kp: number, kl: number) => {
        const key = this.str(kp, kl);
        const m = this.map(type);
        const rest = m.filter(([k]) => k !== key);
        m.length = 0;
        m.push(...rest);
        return OK;
      },
      proxy_send_local_response: (status: number, dp: number, dl: number, bp: number, bl: number, hp: number, hl: number) => {
        this.reply = { status, details: this.str(dp, dl), body: this.str(bp, bl), headers: hl > 0 ? decodePairs(this.bytes(hp, hl).slice()) : [] };
        return OK;
      },
      proxy_define_metric: (type: number, np: number, nl: number, idPtr: number) => {
        const name = this.str(np, nl);
        let id = [...this.shared.metrics].find(([, m]) => m.name === name)?.[0];
        if (id === undefined) {
          id = this.shared.nextMetric++;
          this.shared.metrics.set(id, { name, type, value: 0n });
        }
        this.metricIdsDefined++;
        new DataView(this.memory.buffer).setUint32(idPtr, id, true);
        return OK;
      },
      proxy_increment_metric: (id: number, by: bigint) => {
        const m = this.shared.metrics.get(id);
        if (!m) return NOT_FOUND;
        m.value += by;
        return OK;
      },
      proxy_record_metric: (id: number, value: bigint) => {
        const m = this.shared.metrics.get(id);
        if (!m) return NOT_FOUND;
        m.value = value;
        if (m.type === 2) {
          m.values ??= [];
          m.values.push(value);
        }
        return OK;
      },
      proxy_get_metric: (id: number, out: number) => {
        const m = this.shared.metrics.get(id);
        if (!m) return NOT_FOUND;
        new DataView(this.memory.buffer).setBigUint64(out, m.value, true);
        return OK;
      },
      proxy_get_shared_data: (kp: number, kl: number, out: number, outSize: number, casPtr: number) => {
        const e = this.shared.get(this.str(kp, kl));
        if (!e) return NOT_FOUND;
        this.give(e.value, out, outSize);
        new DataView(this.memory.buffer).setUint32(casPtr, e.cas, true);
        return OK;
      },
      proxy_set_shared_data: (kp: number, kl: number, vp: number, vl: number, cas: number) => this.shared.set(this.str(kp, kl), this.bytes(vp, vl), cas),
      proxy_get_current_time_nanoseconds: (out: number) => {
        new DataView(this.memory.buffer).setBigUint64(out, BigInt(this.nowMs) * 1_000_000n, true);
        return OK;
      },
      proxy_http_call: (
        up: number,
        ul: number,
        hp: number,
        hl: number,
        bp: number,
        bl: number,
        _tp: number,
        _tl: number,
        timeout: number,
        tokenPtr: number,
      ) => {
        const cluster = this.str(up, ul);
        const headers = decodePairs(this.bytes(hp, hl).slice());
        const has = (k: string) => headers.some(([name]) => name === k);
        if (!this.clusters.has(cluster) || !has(":method") || !has(":path") || !has(":authority")) return BAD_ARGUMENT;
        const token = this.nextToken++;
        this.httpCalls.push({ token, cluster, headers, body: this.str(bp, bl), timeoutMs: timeout, root: this.actingRoot() });
        new DataView(this.memory.buffer).setUint32(tokenPtr, token, true);
        return OK;
      },
      proxy_set_tick_period_milliseconds: (ms: number) => {
        this.timers.set(this.actingRoot(), ms);
        return OK;
      },
      proxy_set_effective_context: (id: number) => {
        if (!this.alive(id) && !this.streamRoot.has(id)) return BAD_ARGUMENT;
        this.effective = id;
        return OK;
      },
    };
  }
}
