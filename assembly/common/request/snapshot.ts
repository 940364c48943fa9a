// One request as every stage sees it: all request headers fetched in one host call and kept as the
// host's bytes, the client address resolved once per trusted-hop count, the clock read once, and the
// header writes every stage asks for, applied once at the end of the pass. Pure: the glue fills it
// from the host, tests fill it from a list of pairs.
import { IpAddr } from "../lib/ip";
import { FROM_XFF, resolveClientIp, xffFromRightCached } from "./client_ip";
import { LocalReply } from "./stage";
import { bytesEqual } from "../lib/bytes";

/** Encodes names and values (alternating) in proxy-wasm's pair format: count, sizes, NUL-ended bytes. */
export function encodePairs(kv: string[]): ArrayBuffer {
  const n = kv.length >> 1;
  const encoded = new Array<ArrayBuffer>(n * 2);
  let size = 4 + 8 * n;
  for (let i = 0; i < n * 2; i++) {
    encoded[i] = String.UTF8.encode(kv[i]);
    size += encoded[i].byteLength + 1;
  }
  const out = new ArrayBuffer(size);
  const base = changetype<usize>(out);
  store<u32>(base, n);
  let p = base + 4 + 8 * n;
  for (let i = 0; i < n * 2; i++) {
    const e = encoded[i];
    store<u32>(base + 4 + 4 * i, e.byteLength);
    memory.copy(p, changetype<usize>(e), e.byteLength);
    p += e.byteLength;
    store<u8>(p, 0);
    p += 1;
  }
  return out;
}

/** A header name, encoded once at configure time: lookups compare bytes. */
export class HeaderName {
  bytes: ArrayBuffer;
  len: i32;
  /** Where find() last saw this name: in the snapshot load numbered `seenLoad`, at index `seenAt`. */
  seenLoad: u32 = 0;
  seenAt: i32 = -1;
  /** nameHash of the name: its home slot in a snapshot's index. */
  hash: u32;
  constructor(public name: string) {
    const bytes = String.UTF8.encode(name);
    this.bytes = bytes;
    this.len = bytes.byteLength;
    this.hash = nameHash(changetype<usize>(bytes), this.len);
  }
  @inline get ptr(): usize { return changetype<usize>(this.bytes); }
}

/**
 * A cheap hash of a header name (its length and three of its bytes), for the snapshot's index: names
 * that share it are told apart by comparing them.
 */
@inline function nameHash(p: usize, len: i32): u32 {
  if (len <= 0) return 0;
  const h = (<u32>len * 0x9e3779b1) ^ (<u32>load<u8>(p) << 8) ^ (<u32>load<u8>(p + <usize>(len >> 1)) << 16) ^ <u32>load<u8>(p + <usize>len - 1);
  return h ^ (h >> 15);
}

/** Slots of a snapshot's name index; a request with more headers than half of them is scanned instead. */
const INDEX_SLOTS: i32 = 64;

/** Where a snapshot gets its headers and peer address when it first needs them: the host in Envoy. */
export abstract class RequestSource {
  /** Bytes of pair data in the buffer headerPairs last returned. */
  pairsLength: i32 = 0;
  /**
   * The request's headers in pair format, written into `reuse` when it fits (then `reuse` is returned),
   * else into a new buffer; pairsLength says how much of it is data.
   */
  abstract headerPairs(reuse: ArrayBuffer): ArrayBuffer | null;
  abstract peerAddress(): string | null;
  /** The serialized metadata of the upstream host that served the request (response phase), or null. */
  abstract upstreamHostMetadata(): ArrayBuffer | null;
  /** A response header's value (response phase), or null. */
  abstract responseHeader(name: HeaderName): string | null;
  /** A host property as text (a path made of NUL-separated segments), or null. */
  abstract property(path: ArrayBuffer): string | null;
}

const NO_HOPS: i32 = -1;
/** Numbers every load of every snapshot, so a name's remembered index is valid only for the load it came from. */
let loads: u32 = 0;
const EMPTY = new ArrayBuffer(0);
/** A pooled snapshot keeps its header buffer for the next request up to this size. */
const KEEP_BUFFER_BYTES = 16 << 10;

export class RequestSnapshot {
  /** The host's pair buffer; offsets[4i..4i+3] = name start, name length, value start, value length. */
  private pairs: ArrayBuffer = EMPTY;
  /** The buffer the host writes the next request's headers into (kept across requests). */
  private own: ArrayBuffer = EMPTY;
  private offsets: Int32Array = new Int32Array(0);
  /** pairs and offsets' data as addresses: the hot lookups read numbers, not references. */
  private pairsPtr: usize = changetype<usize>(EMPTY);
  private offsetsPtr: usize = 0;
  count: i32 = 0;
  /** This load's number (0: none yet). */
  private loadNo: u32 = 0;
  /** Decoded values, filled on first use. */
  private strings: Array<string | null> = new Array<string | null>(0);
  private decoded: Uint8Array = new Uint8Array(0);
  /** Header names by nameHash (open addressing): header index + 1, 0 for a free slot; used when `indexed`. */
  private index: Uint16Array = new Uint16Array(INDEX_SLOTS);
  private indexed: bool = false;

  /** Fetches the headers and the peer on first use, so a pass that needs neither makes no host call. */
  private source: RequestSource | null = null;
  private headersPending: bool = false;
  private peerPending: bool = false;
  /** source.address and route_name as the host gave them (fetched only when a stage needs them), or null. */
  peer: string | null = null;
  routeName: string | null = null;
  private ip: IpAddr = new IpAddr();
  private ipHops: i32 = NO_HOPS;
  private ipOk: bool = false;

  /** Milliseconds, read once per pass by the glue when a stage needs the clock. */
  nowMs: i64 = 0;

  /** The consumer the access stage identified (its name), or null: anonymous, or no access stage. */
  consumer: string | null = null;
  /** The access stage verified a signature covering content-digest and waits for the body to check it. */
  digestPending: bool = false;
  /** The body passed the stage's max_body_bytes (onBody then gets null). */
  bodyTooLarge: bool = false;
  /**
   * Collection credits for garbage a stage made on this request beyond what the glue counts itself
   * (replies and response-header writes): the VM collects every so many credits (filter.ts), so a
   * request path that allocates says so here, and the heap stays bounded whatever the request rate.
   */
  garbage: u32 = 0;

  /** The target gray routing chose (its index among the stage's targets), for the response phase; -1 when no routing stage ran. */
  routedTarget: i32 = -1;
  /** Set by crawler_score for a request it counted as an asset by its headers alone: its response's content-type is checked. */
  assetByHeaders: bool = false;
  /** ... and counted as a page view all the same (its client was caught disguising pages before). */
  assetCountedAsPage: bool = false;
  /** For tests: the served host's metadata, used when no source is attached. */
  servedMetadata: ArrayBuffer | null = null;
  /** For tests: the response's content-type, used when no source is attached. */
  servedContentType: string | null = null;

  /** A response header (response phase), fetched on demand: one host call. */
  responseHeader(h: HeaderName): string | null {
    const src = this.source;
    if (src !== null) return src.responseHeader(h);
    if (h.name == "content-type") return this.servedContentType;
    return null;
  }

  /** For tests: host properties by their NUL-separated path, used when no source is attached. */
  testProperties: Map<string, string> | null = null;

  /** A host property as text (one host call), e.g. a claim another filter put in dynamic metadata. */
  property(path: ArrayBuffer): string | null {
    const src = this.source;
    if (src !== null) return src.property(path);
    const props = this.testProperties;
    if (props === null) return null;
    const key = String.UTF8.decode(path);
    return props.has(key) ? props.get(key) : null;
  }

  /** The upstream host's serialized metadata (response phase), fetched on demand. */
  upstreamMetadata(): ArrayBuffer | null {
    const src = this.source;
    if (src !== null) return src.upstreamHostMetadata();
    return this.servedMetadata;
  }

  /** Set by a stage that answers locally. */
  reply: LocalReply | null = null;

  /** Request-header writes, applied by the glue after the pass: a null value removes the header. */
  writeNames: HeaderName[] = [];
  writeValues: Array<string | null> = [];
  /** Response-header writes, applied when the response headers arrive. */
  responseNames: HeaderName[] = [];
  responseValues: string[] = [];
  /** Response-header lines added beside any of the same name (Set-Cookie). */
  addedNames: HeaderName[] = [];
  addedValues: string[] = [];

  /** Forgets the last request, keeping the arrays for the next one. */
  reset(): void {
    this.pairs = EMPTY;
    if (this.own.byteLength > KEEP_BUFFER_BYTES) this.own = EMPTY;
    this.pairsPtr = changetype<usize>(EMPTY);
    this.count = 0;
    if (++loads == 0) loads = 1;
    this.loadNo = loads;
    this.source = null;
    this.headersPending = false;
    this.peerPending = false;
    this.peer = null;
    this.routeName = null;
    this.ipHops = NO_HOPS;
    this.nowMs = 0;
    this.reply = null;
    this.routedTarget = -1;
    this.consumer = null;
    this.digestPending = false;
    this.bodyTooLarge = false;
    this.garbage = 0;
    this.assetByHeaders = false;
    this.assetCountedAsPage = false;
    this.servedMetadata = null;
    this.servedContentType = null;
    this.writeNames.length = 0;
    this.writeValues.length = 0;
    this.responseNames.length = 0;
    this.responseValues.length = 0;
    this.addedNames.length = 0;
    this.addedValues.length = 0;
  }

  /** Reads headers and peer from `source` when first needed. */
  attach(source: RequestSource): void {
    this.source = source;
    this.headersPending = true;
    this.peerPending = true;
  }

  private fetchHeaders(): void {
    this.headersPending = false;
    const src = this.source;
    if (src === null) return;
    const pairs = src.headerPairs(this.own);
    if (pairs === null) return;
    this.own = pairs;
    // A malformed map (never seen from Envoy) reads as a request without headers.
    this.load(pairs, src.pairsLength);
  }

  /**
   * Takes a pair buffer (proxy_get_header_map_pairs format) whose first `length` bytes are data (-1: all
   * of it). Returns false when it is malformed.
   */
  load(pairs: ArrayBuffer, length: i32 = -1): bool {
    this.pairs = pairs;
    const size = length >= 0 && length <= pairs.byteLength ? length : pairs.byteLength;
    const base = changetype<usize>(pairs);
    this.pairsPtr = base;
    this.count = 0;
    // Until the map is read whole, nothing of it (or of the last one) is looked up.
    this.indexed = false;
    if (++loads == 0) loads = 1;
    this.loadNo = loads;
    if (size < 4) return size == 0;
    const n = <i32>load<u32>(base);
    if (n < 0 || <i64>4 + <i64>8 * <i64>n > <i64>size) return false;
    if (this.offsets.length < 4 * n) {
      this.offsets = new Int32Array(4 * n + 16);
      this.offsetsPtr = this.offsets.dataStart;
    }
    // Offsets and the name index in one pass over the sizes.
    const indexed = 2 * n <= INDEX_SLOTS;
    const index = this.index.dataStart;
    if (indexed) memory.fill(index, 0, <usize>INDEX_SLOTS << 1);
    let p = 4 + 8 * n;
    let o = this.offsetsPtr;
    for (let i = 0; i < n; i++, o += 16) {
      const kl = <i32>load<u32>(base + 4 + 8 * i);
      const vl = <i32>load<u32>(base + 8 + 8 * i);
      if (kl < 0 || vl < 0 || <i64>p + <i64>kl + <i64>vl + 2 > <i64>size) return false;
      store<i32>(o, p);
      store<i32>(o, kl, 4);
      if (indexed) {
        let slot = nameHash(base + <usize>p, kl) & <u32>(INDEX_SLOTS - 1);
        while (load<u16>(index + (<usize>slot << 1)) != 0) slot = (slot + 1) & <u32>(INDEX_SLOTS - 1);
        store<u16>(index + (<usize>slot << 1), <u16>(i + 1));
      }
      p += kl + 1;
      store<i32>(o, p, 8);
      store<i32>(o, vl, 12);
      p += vl + 1;
    }
    this.count = n;
    this.indexed = indexed;
    if (this.decoded.length < n) {
      this.decoded = new Uint8Array(n + 16);
      this.strings = new Array<string | null>(n + 16);
    } else {
      memory.fill(this.decoded.dataStart, 0, n);
    }
    return true;
  }

  /** For tests and previews: a snapshot of these headers (names and values alternating). */
  static of(kv: string[]): RequestSnapshot {
    const s = new RequestSnapshot();
    s.load(encodePairs(kv));
    return s;
  }

  /** Index of the first header called `h`, or -1. Each name is looked up once per request. */
  find(h: HeaderName): i32 {
    if (this.headersPending) this.fetchHeaders();
    if (h.seenLoad == this.loadNo) return h.seenAt;
    const at = this.indexOfName(h.hash, h.ptr, h.len);
    h.seenLoad = this.loadNo;
    h.seenAt = at;
    return at;
  }

  /** Fetches the headers now if they have not been (find does it on first use). */
  fetchNow(): void {
    if (this.headersPending) this.fetchHeaders();
  }

  /**
   * Index of the first header whose name is the `len` bytes at `want` (`hash`: their nameHash), or -1;
   * the headers must have been fetched (fetchNow). For callers that keep their own per-request memo of
   * many names (header_tests.ts): no memo here, nothing of a HeaderName read.
   */
  indexOfName(hash: u32, want: usize, len: i32): i32 {
    const base = this.pairsPtr;
    if (this.indexed) {
      // Names that share a slot sit in probe order, so the first header of a name is found first.
      const index = this.index.dataStart;
      let slot = hash & <u32>(INDEX_SLOTS - 1);
      for (;;) {
        const e = <i32>load<u16>(index + (<usize>slot << 1));
        if (e == 0) return -1;
        const o = this.offsetsPtr + (<usize>(e - 1) << 4);
        if (load<i32>(o, 4) == len && bytesEqual(base + <usize>load<i32>(o), want, len)) return e - 1;
        slot = (slot + 1) & <u32>(INDEX_SLOTS - 1);
      }
    }
    let o = this.offsetsPtr;
    const n = this.count;
    for (let i = 0; i < n; i++, o += 16) {
      if (load<i32>(o, 4) != len) continue;
      if (bytesEqual(base + <usize>load<i32>(o), want, len)) return i;
    }
    return -1;
  }

  has(h: HeaderName): bool { return this.find(h) >= 0; }

  /** Whether some header's name starts with the bytes of `prefix` (one pass, however many names share it). */
  hasNamePrefix(prefix: ArrayBuffer): bool {
    if (this.headersPending) this.fetchHeaders();
    const len = prefix.byteLength;
    const base = changetype<usize>(this.pairs);
    const offsets = this.offsets;
    for (let i = 0; i < this.count; i++) {
      if (unchecked(offsets[4 * i + 1]) < len) continue;
      if (bytesEqual(base + <usize>unchecked(offsets[4 * i]), changetype<usize>(prefix), len)) return true;
    }
    return false;
  }

  @inline valuePtr(i: i32): usize { return this.pairsPtr + <usize>load<i32>(this.offsetsPtr + (<usize>i << 4), 8); }
  @inline valueLength(i: i32): i32 { return load<i32>(this.offsetsPtr + (<usize>i << 4), 12); }

  /** The i-th value as a string, decoded on first use. */
  valueAt(i: i32): string {
    if (unchecked(this.decoded[i]) == 0) {
      const s = String.UTF8.decodeUnsafe(this.valuePtr(i), <usize>this.valueLength(i));
      this.strings[i] = s;
      this.decoded[i] = 1;
      return s;
    }
    return unchecked(this.strings[i])!;
  }

  /** The value of header `h`, or null when absent. */
  header(h: HeaderName): string | null {
    const i = this.find(h);
    if (i < 0) return null;
    return this.valueAt(i);
  }

  /** Whether header `h` is present with a value starting with the bytes of `prefix`. */
  valueStartsWith(i: i32, prefix: ArrayBuffer): bool {
    const n = prefix.byteLength;
    if (this.valueLength(i) < n) return false;
    return bytesEqual(this.valuePtr(i), changetype<usize>(prefix), n);
  }

  /** valueStartsWith, ASCII letters in any case (`prefix` lower-case). */
  valueStartsWithNoCase(i: i32, prefix: ArrayBuffer): bool {
    const n = prefix.byteLength;
    if (this.valueLength(i) < n) return false;
    const p = this.valuePtr(i);
    for (let k = 0; k < n; k++) {
      let c = load<u8>(p + <usize>k);
      if (c >= 0x41 && c <= 0x5a) c += 0x20;
      if (c != load<u8>(changetype<usize>(prefix) + <usize>k)) return false;
    }
    return true;
  }

  /**
   * The client address for a stage's `source` (readClientSource: trusted XFF hops, and FROM_XFF), see
   * resolveClientIp; null when unknown. With FROM_XFF the peer is Envoy's own XFF entry, so the host is
   * asked for the peer only when that entry is missing.
   */
  clientIp(source: i32): IpAddr | null {
    if (this.ipHops != source) {
      this.ipHops = source;
      const hops = source & 0xff;
      let xff: usize = 0;
      let xffLen = 0;
      if (hops > 0 || (source & FROM_XFF) != 0) {
        const i = this.find(XFF);
        if (i >= 0) {
          xff = this.valuePtr(i);
          xffLen = this.valueLength(i);
        }
      }
      if ((source & FROM_XFF) != 0 && xffLen > 0 && xffFromRightCached(xff, xffLen, hops, this.ip)) {
        this.ipOk = true;
      } else {
        if (this.peerPending) {
          this.peerPending = false;
          const src = this.source;
          if (src !== null) this.peer = src.peerAddress();
        }
        this.ipOk = resolveClientIp(this.peer, xff, xffLen, hops, this.ip);
      }
    }
    if (this.ipOk) return this.ip;
    return null;
  }

  /** Queues a request-header write; a null value removes the header. Removing an absent header is free. */
  setRequestHeader(h: HeaderName, value: string | null): void {
    if (value === null && !this.has(h)) return;
    this.writeNames.push(h);
    this.writeValues.push(value);
  }

  setResponseHeader(h: HeaderName, value: string): void {
    this.responseNames.push(h);
    this.responseValues.push(value);
  }

  addResponseHeader(h: HeaderName, value: string): void {
    this.addedNames.push(h);
    this.addedValues.push(value);
  }
}

export const XFF = new HeaderName("x-forwarded-for");
export const PATH = new HeaderName(":path");
export const METHOD = new HeaderName(":method");
export const COOKIE = new HeaderName("cookie");
export const USER_AGENT = new HeaderName("user-agent");
