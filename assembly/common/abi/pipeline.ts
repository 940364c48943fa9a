// The ABI glue every module shares: one pass of stages over one request snapshot. It fetches what
// the stages need from the host once (all request headers in one call; source.address, route_name and
// the clock only when a stage asks), applies the header writes once at the end of the pass, and sends
// a stage's local reply. Standalone modules are a pipeline of one stage.
import { ConfigErrors } from "../lib/config";
import { DataStatus, HeadersStatus, registerFilter, RootFilter, StreamFilter } from "./filter";
import {
  addHeader, BufferType, getBufferBytes, getBufferString, getHeaderPairsInto, getHeaderValue, getPropertyAt, getPropertyStringAt, MapType, pairsLength, propertyPath, nowMillis, removeHeader, replaceHeader,
  sendLocalResponse,
} from "./host";
import { HeaderName, RequestSnapshot, RequestSource } from "../request/snapshot";
import { Outcome, Stage } from "../request/stage";

/** The longest a tally waits in the VM before it reaches the host's counter, in ms. */
export const TALLY_FLUSH_MS: u32 = 1000;

/** Compiles a module's configuration into its stages, in pass order; null (with errors) when invalid. */
export type StageCompiler = (config: string, errors: ConfigErrors) => Stage[] | null;

class PipelineRoot extends RootFilter {
  stages: Stage[] = [];
  needsRouteName: bool = false;
  needsClock: bool = false;

  constructor(rootId: string, public compiler: StageCompiler) { super(rootId); }

  configure(config: string): string | null {
    const errors = new ConfigErrors();
    const stages = this.compiler(config, errors);
    if (stages === null || !errors.ok) return errors.summary();
    let route = false;
    let clock = false;
    let tick: u32 = 0;
    for (let i = 0; i < stages.length; i++) {
      const s = stages[i];
      route = route || s.needsRouteName;
      clock = clock || s.needsClock;
      if (s.tickMs > 0 && (tick == 0 || s.tickMs < tick)) tick = s.tickMs;
    }
    // The tallies are written out on the tick (host_stats.ts): a VM with stages ticks at least this often.
    if (stages.length > 0 && (tick == 0 || tick > TALLY_FLUSH_MS)) tick = TALLY_FLUSH_MS;
    this.stages = stages;
    this.needsRouteName = route;
    this.needsClock = clock;
    this.tickMs = tick;
    return null;
  }

  onTick(): void {
    const now = nowMillis();
    for (let i = 0; i < this.stages.length; i++) this.stages[i].onTick(now);
  }

  onCallResponse(token: u32, headerCount: u32, bodySize: u32): void {
    // No headers: the call failed (reset, timeout, no healthy upstream).
    let status = 0;
    if (headerCount > 0) {
      const s = getHeaderValue(MapType.HttpCallResponseHeaders, STATUS);
      if (s !== null) status = I32.parseInt(s);
    }
    const body = bodySize > 0 ? getBufferString(BufferType.HttpCallResponseBody, 0, bodySize) : null;
    for (let i = 0; i < this.stages.length; i++) if (this.stages[i].onCallResponse(token, status, body)) return;
  }

  newStream(): StreamFilter {
    if (this.stages.length == 0) return NO_STAGES;
    if (pool.length == 0) return new PipelineStream(this);
    const s = pool.pop();
    s.root = this;
    return s;
  }
}

// Streams and their snapshots are reused: a request borrows one and gives it back when Envoy deletes its
// context, so the hot path allocates nothing once the VM is warm.
const pool = new Array<PipelineStream>();
/** The stream of a configuration with no stages: it holds nothing, so every request shares it. */
const NO_STAGES = new StreamFilter();
const POOL_MAX = 1024;
const SOURCE_ADDRESS = propertyPath("source.address");
const ROUTE_NAME = propertyPath("route_name");
const UPSTREAM_HOST_METADATA = propertyPath("xds.upstream_host_metadata");
const STATUS = String.UTF8.encode(":status");

/** The current request's headers and peer, from the host; called at most once each per request. */
class HostRequest extends RequestSource {
  headerPairs(reuse: ArrayBuffer): ArrayBuffer | null {
    const b = getHeaderPairsInto(MapType.RequestHeaders, reuse);
    this.pairsLength = pairsLength;
    return b;
  }
  peerAddress(): string | null { return getPropertyStringAt(SOURCE_ADDRESS); }
  upstreamHostMetadata(): ArrayBuffer | null { return getPropertyAt(UPSTREAM_HOST_METADATA); }
  responseHeader(name: HeaderName): string | null { return getHeaderValue(MapType.ResponseHeaders, name.bytes); }
  property(path: ArrayBuffer): string | null { return getPropertyStringAt(path); }
}
const hostRequest = new HostRequest();

/** Collection credits of a local reply (filter.ts): its LocalReply, details string and the pairs sent. */
const REPLY_CREDITS: u32 = 16;

class PipelineStream extends StreamFilter {
  req: RequestSnapshot;
  /** The stage waiting for the body, or -1. */
  waiting: i32 = -1;

  constructor(public root: PipelineRoot) {
    super();
    this.req = new RequestSnapshot();
  }

  onDelete(): u32 {
    // What a stream leaves: a local reply its object, details and header pairs; response headers written
    // their strings; what a stage reports of its own (req.garbage: a challenge page, a signature check's
    // strings). Reading leaves nothing. A refusal made of a reply kept in the configuration (a denied
    // address, a 401, a 429) so costs no more collections than a request that passes.
    const req = this.req;
    const credits: u32 = (req.reply !== null ? REPLY_CREDITS : req.responseNames.length + req.addedNames.length > 0 ? 64 : 1) + req.garbage;
    req.reset();
    this.waiting = -1;
    if (pool.length < POOL_MAX) pool.push(this);
    return credits;
  }

  onRequestHeaders(headerCount: u32, endOfStream: bool): HeadersStatus {
    const root = this.root;
    const req = this.req;
    req.attach(hostRequest);
    if (root.needsRouteName) req.routeName = getPropertyStringAt(ROUTE_NAME);
    if (root.needsClock) req.nowMs = nowMillis();
    const o = this.pass(0, endOfStream);
    if (o == Outcome.Continue) return HeadersStatus.Continue;
    return HeadersStatus.StopIteration;
  }

  /** Runs the stages from `from`; on Continue the request-header writes are applied. */
  pass(from: i32, endOfStream: bool): Outcome {
    const stages = this.root.stages;
    const req = this.req;
    for (let i = from; i < stages.length; i++) {
      const o = unchecked(stages[i]).onRequest(req, endOfStream);
      if (o == Outcome.Continue) continue;
      if (o == Outcome.NeedBody) {
        this.waiting = i;
        return o;
      }
      this.sendReply();
      return o;
    }
    this.applyRequestWrites();
    return Outcome.Continue;
  }

  onRequestBody(bodySize: u32, endOfStream: bool): DataStatus {
    let at = this.waiting;
    if (at < 0) return DataStatus.Continue;
    const stages = this.root.stages;
    const tooLarge = <i64>bodySize > <i64>stages[at].maxBodyBytes;
    // Envoy answers 413 once what a filter buffers passes its buffer limit (1 MiB by default), so a stage's
    // limit stays well under it (gray_router, access: at most 512 KiB): a larger body is decided on as too
    // large and passed on whole. (StopIterationAndWatermark would not do: the host then shows each chunk alone.)
    if (!endOfStream && !tooLarge) return DataStatus.StopIterationAndBuffer;
    this.waiting = -1;
    let body: ArrayBuffer | null = null;
    if (bodySize > 0 && !tooLarge) body = getBufferBytes(BufferType.RequestBody, 0, bodySize);
    // Every stage that asks for the body gets the one read here (a later one with a smaller limit sees it as too large).
    for (;;) {
      const stage = stages[at];
      const req = this.req;
      const over = <i64>bodySize > <i64>stage.maxBodyBytes;
      req.bodyTooLarge = over;
      let o = stage.onBody(req, over ? null : body);
      // The later stages see a request with a body when it has one (a stage that wants it asks, below).
      if (o == Outcome.Continue) o = this.pass(at + 1, bodySize == 0);
      else if (o == Outcome.Reply) this.sendReply();
      if (o == Outcome.Reply) return DataStatus.StopIterationAndBuffer;
      if (o != Outcome.NeedBody) return DataStatus.Continue;
      at = this.waiting;
      this.waiting = -1;
      if (at < 0) return DataStatus.Continue;
    }
    return DataStatus.Continue;
  }

  applyRequestWrites(): void {
    const req = this.req;
    const names = req.writeNames;
    for (let i = 0; i < names.length; i++) {
      const v = req.writeValues[i];
      if (v === null) removeHeader(MapType.RequestHeaders, unchecked(names[i]).bytes);
      else replaceHeader(MapType.RequestHeaders, unchecked(names[i]).bytes, v);
    }
  }

  sendReply(): void {
    const r = this.req.reply;
    if (r !== null) sendLocalResponse(r.status, r.details, r.body, r.headers);
  }

  onResponseHeaders(headerCount: u32, endOfStream: bool): HeadersStatus {
    const req = this.req;
    const stages = this.root.stages;
    for (let i = 0; i < stages.length; i++) unchecked(stages[i]).onResponse(req);
    const names = req.responseNames;
    for (let i = 0; i < names.length; i++) replaceHeader(MapType.ResponseHeaders, unchecked(names[i]).bytes, req.responseValues[i]);
    const added = req.addedNames;
    for (let i = 0; i < added.length; i++) addHeader(MapType.ResponseHeaders, unchecked(added[i]).bytes, req.addedValues[i]);
    return HeadersStatus.Continue;
  }
}

let moduleRootId = "";
let moduleCompiler: StageCompiler | null = null;

function newRoot(): RootFilter {
  return new PipelineRoot(moduleRootId, moduleCompiler!);
}

/** Registers this module's one root: `rootId`, whose configuration `compiler` turns into stages. */
export function registerPipeline(rootId: string, compiler: StageCompiler): void {
  moduleRootId = rootId;
  moduleCompiler = compiler;
  registerFilter(rootId, newRoot);
}
