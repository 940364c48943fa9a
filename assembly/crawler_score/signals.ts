// Crawler signals and the score. Pure: header facts and behaviour records in, signal bits out.
import { RecordUpdate } from "../common/lib/slot_table";
import { fmix32, fnv1aBytes, FNV_OFFSET, keyHash } from "../common/lib/hash";
import { pathEnd } from "../common/request/http";
import { MultiMatcher } from "../common/lib/multi_match";
import { HeaderName, RequestSnapshot, USER_AGENT } from "../common/request/snapshot";
import { knownBots } from "./known_bots_matcher";
import { bytesEqual } from "../common/lib/bytes";

// Signal bits; SIGNAL_NAMES gives each its config/debug name, in bit order.
export const UA_EMPTY: u32 = 1 << 0;
export const UA_TOOL: u32 = 1 << 1;
export const UA_HEADLESS: u32 = 1 << 2;
export const UA_BOT: u32 = 1 << 3;
export const NO_ACCEPT: u32 = 1 << 4;
export const NO_ACCEPT_LANGUAGE: u32 = 1 << 5;
export const NO_ACCEPT_ENCODING: u32 = 1 << 6;
export const NO_CLIENT_HINTS: u32 = 1 << 7;
export const NO_FETCH_METADATA: u32 = 1 << 8;
export const HIGH_RATE: u32 = 1 << 9;
export const PATH_SPREAD: u32 = 1 << 10;
export const ID_ENUMERATION: u32 = 1 << 11;
export const HONEYPOT: u32 = 1 << 12;
/** A declared good bot's user agent from outside the address ranges its operator publishes. */
export const BOT_IMPOSTOR: u32 = 1 << 13;
/** path_spread held through the last sustained_windows windows: a steady crawl, however slow. */
export const SUSTAINED_SPREAD: u32 = 1 << 14;
/**
 * A request whose headers said subresource (Sec-Fetch-Dest: image, an image Accept) was answered with an
 * HTML document: a page disguised as an asset. Holds for two windows on the client that sent it.
 */
export const DEST_MISMATCH: u32 = 1 << 15;
/** More distinct pages over the long window than a busy person reads, however slowly or padded they came. */
export const SLOW_CRAWL: u32 = 1 << 16;
/**
 * An address whose new client ids do not come back: cookie-less page views from it got ids, and too
 * few of those ids were ever seen again (a scraper that drops its cookie starts over on every request).
 */
export const ID_CHURN: u32 = 1 << 17;
/**
 * The client's network (its /24, or /56 for IPv6) crawls as a whole: a path spread, an ID run or a slow
 * crawl at the network's own thresholds, whichever of its addresses the page views came from.
 */
export const NETWORK_CRAWL: u32 = 1 << 18;

export const SIGNAL_NAMES: string[] = [
  "ua_empty", "ua_tool", "ua_headless", "ua_bot", "no_accept", "no_accept_language", "no_accept_encoding",
  "no_client_hints", "no_fetch_metadata", "high_rate", "path_spread", "id_enumeration", "honeypot", "bot_impostor",
  "sustained_spread", "dest_mismatch", "slow_crawl", "id_churn", "network_crawl",
];

// bot_impostor weighs nothing by itself: it raises the score to the threshold of `unverified_bots`.
export const DEFAULT_WEIGHTS: i32[] = [40, 45, 45, 35, 10, 15, 10, 15, 15, 30, 15, 45, 100, 0, 70, 40, 80, 45, 80];

/** Lower-case substrings of automation tools and HTTP libraries. */
export const DEFAULT_TOOL_AGENTS: string[] = [
  "curl/", "wget/", "python-requests", "python-urllib", "python-httpx", "aiohttp", "httpx/", "go-http-client",
  "java/", "okhttp", "apache-httpclient", "libwww-perl", "scrapy", "node-fetch", "axios/", "undici",
  "postmanruntime", "insomnia", "httpie", "powershell", "mechanize", "guzzlehttp", "php/", "ruby", "colly",
  "nutch", "heritrix", "httrack", "zgrab", "masscan", "nmap", "nikto", "sqlmap", "libcurl", "winhttp",
  "reqwest", "hackney", "dart:io",
];

export const DEFAULT_HEADLESS_AGENTS: string[] = [
  "headlesschrome", "phantomjs", "puppeteer", "playwright", "selenium", "webdriver", "slimerjs", "splash", "htmlunit",
];

/** Extra declared-bot substrings on top of isbot's patterns (known_bots.ts); none by default. */
export const DEFAULT_BOT_AGENTS: string[] = [];

/** The request headers the header signals look at, for tests and tools; null = absent. */
export class HeaderFacts {
  userAgent: string | null = null;
  accept: string | null = null;
  acceptLanguage: string | null = null;
  acceptEncoding: string | null = null;
  secChUa: string | null = null;
  secFetchMode: string | null = null;
  /** The scheme the gateway saw: only HTTPS requests get fetch metadata and client hints from browsers. */
  https: bool = true;

  snapshot(): RequestSnapshot {
    const kv = new Array<string>();
    kv.push(":scheme");
    kv.push(this.https ? "https" : "http");
    addIf(kv, "user-agent", this.userAgent);
    addIf(kv, "accept", this.accept);
    addIf(kv, "accept-language", this.acceptLanguage);
    addIf(kv, "accept-encoding", this.acceptEncoding);
    addIf(kv, "sec-ch-ua", this.secChUa);
    addIf(kv, "sec-fetch-mode", this.secFetchMode);
    return RequestSnapshot.of(kv);
  }
}

function addIf(kv: string[], name: string, v: string | null): void {
  if (v === null) return;
  kv.push(name);
  kv.push(v);
}

export const ACCEPT = new HeaderName("accept");
const ACCEPT_LANGUAGE = new HeaderName("accept-language");
const ACCEPT_ENCODING = new HeaderName("accept-encoding");
const SEC_CH_UA = new HeaderName("sec-ch-ua");
const SEC_FETCH_MODE = new HeaderName("sec-fetch-mode");
const SCHEME = new HeaderName(":scheme");
const FORWARDED_PROTO = new HeaderName("x-forwarded-proto");
const HTTPS = String.UTF8.encode("https");
const CHROME_TOKEN = String.UTF8.encode("chrome/");
const FIREFOX_TOKEN = String.UTF8.encode("firefox/");
const VERSION_TOKEN = String.UTF8.encode("version/");

/**
 * Whether the request reached the gateway over HTTPS: `:scheme` (Envoy sets it from the connection) or
 * `x-forwarded-proto` from a TLS-terminating hop. A client that forges `https` only makes itself liable
 * to the stricter browser checks, so the header needs no trust.
 */
export function isHttps(req: RequestSnapshot): bool {
  let i = req.find(SCHEME);
  if (i >= 0 && req.valueLength(i) == 5 && req.valueStartsWith(i, HTTPS)) return true;
  i = req.find(FORWARDED_PROTO);
  return i >= 0 && req.valueStartsWith(i, HTTPS) && (req.valueLength(i) == 5 || load<u8>(req.valuePtr(i) + 5) == 0x2c);
}

/** The number after `token` (matched case-insensitively) in the user agent, -1 when absent; `minor` picks the second. */
function versionAfter(ptr: usize, len: i32, token: ArrayBuffer, minor: bool): i32 {
  const n = token.byteLength;
  const t = changetype<usize>(token);
  for (let i = 0; i + n <= len; i++) {
    let k = 0;
    while (k < n) {
      let c = load<u8>(ptr + <usize>(i + k));
      if (c >= 0x41 && c <= 0x5a) c += 32;
      if (c != load<u8>(t + <usize>k)) break;
      k++;
    }
    if (k < n) continue;
    let at = i + n;
    if (minor) {
      while (at < len && load<u8>(ptr + <usize>at) >= 0x30 && load<u8>(ptr + <usize>at) <= 0x39) at++;
      if (at >= len || load<u8>(ptr + <usize>at) != 0x2e) return 0;
      at++;
    }
    let v = 0;
    let digits = 0;
    while (at < len && digits < 6) {
      const c = <i32>load<u8>(ptr + <usize>at);
      if (c < 0x30 || c > 0x39) break;
      v = v * 10 + (c - 0x30);
      at++;
      digits++;
    }
    return digits > 0 ? v : -1;
  }
  return -1;
}

const SET_TOOL: u32 = 1;
const SET_HEADLESS: u32 = 2;
const SET_BOT: u32 = 4;
const SET_MOZILLA: u32 = 8;
const SET_CHROME: u32 = 16;
const SET_FIREFOX: u32 = 32;
const SET_SAFARI: u32 = 64;

/** classify() flags beside the class bits: a browser user agent that sends fetch metadata / client hints over HTTPS. */
const EXPECTS_FETCH_METADATA: u32 = 1 << 30;
const EXPECTS_CLIENT_HINTS: u32 = 1 << 29;
const UA_CLASSES: u32 = UA_TOOL | UA_HEADLESS | UA_BOT;
const VERDICT_SLOTS = 512;

/**
 * The user-agent lists, compiled once into one automaton that scans a user agent in a single pass, and a
 * per-VM cache of the last 512 distinct user agents' verdicts: real traffic repeats a few thousand user
 * agents, so most requests cost a hash and a compare instead of the scans.
 */
export class AgentLists {
  tools: string[] = DEFAULT_TOOL_AGENTS;
  headless: string[] = DEFAULT_HEADLESS_AGENTS;
  bots: string[] = DEFAULT_BOT_AGENTS;
  private matcher: MultiMatcher | null = null;
  /** Direct-mapped by hash: the verdict (4 bytes), then the user agent's bytes (compared in full). */
  private keys: Array<ArrayBuffer | null> = new Array<ArrayBuffer | null>(VERDICT_SLOTS);

  /** Call after changing a list. */
  compile(): void {
    this.matcher = new MultiMatcher([this.tools, this.headless, this.bots, ["mozilla/"], ["chrome/"], ["firefox/"], ["safari/"]]);
    for (let i = 0; i < VERDICT_SLOTS; i++) this.keys[i] = null;
  }

  private matcherOf(): MultiMatcher {
    let m = this.matcher;
    if (m === null) {
      this.compile();
      m = this.matcher;
    }
    return m!;
  }

  scan(ua: string): u32 { return this.matcherOf().scan(ua); }
  scanBytes(ptr: usize, len: i32): u32 { return this.matcherOf().scanBytes(ptr, len); }

  /** The user agent's class bit (UA_TOOL, UA_HEADLESS, UA_BOT or none) and what a browser of it sends. */
  classify(ptr: usize, len: i32): u32 {
    const slot = <i32>(keyHash(ptr, len) & (VERDICT_SLOTS - 1));
    const cached = unchecked(this.keys[slot]);
    if (cached !== null && cached.byteLength == 4 + len && bytesEqual(changetype<usize>(cached) + 4, ptr, len)) {
      return load<u32>(changetype<usize>(cached));
    }
    const verdict = this.classifyUncached(ptr, len);
    // Only user agents of ordinary length are kept, so the cache stays small.
    if (len <= 512) {
      const copy = new ArrayBuffer(4 + len);
      store<u32>(changetype<usize>(copy), verdict);
      memory.copy(changetype<usize>(copy) + 4, ptr, len);
      this.keys[slot] = copy;
    }
    return verdict;
  }

  private classifyUncached(ptr: usize, len: i32): u32 {
    // One class per user agent: a tool or library, a headless browser, another known bot (isbot's
    // patterns, or the configured extra substrings), or none of these (a browser, or unknown).
    const found = this.scanBytes(ptr, len);
    if ((found & SET_TOOL) != 0) return UA_TOOL;
    if ((found & SET_HEADLESS) != 0) return UA_HEADLESS;
    if ((found & SET_BOT) != 0 || knownBots.matches(ptr, len)) return UA_BOT;
    // Browsers send fetch metadata (Chrome 76+, Firefox 90+, Safari 16.4+) and Chromium 89+ client hints,
    // but only to HTTPS origins (the caller checks the scheme).
    const browser = (found & SET_MOZILLA) != 0 && startsWithMozilla(ptr, len) && (found & (SET_CHROME | SET_FIREFOX | SET_SAFARI)) != 0;
    if (!browser) return 0;
    let fetchMetadata = false;
    let clientHints = false;
    const chrome = versionAfter(ptr, len, CHROME_TOKEN, false);
    if (chrome >= 0) {
      fetchMetadata = chrome >= 76;
      clientHints = chrome >= 89;
    } else {
      const firefox = versionAfter(ptr, len, FIREFOX_TOKEN, false);
      if (firefox >= 0) fetchMetadata = firefox >= 90;
      else {
        const safari = versionAfter(ptr, len, VERSION_TOKEN, false);
        fetchMetadata = safari > 16 || (safari == 16 && versionAfter(ptr, len, VERSION_TOKEN, true) >= 4);
      }
    }
    let v: u32 = 0;
    if (fetchMetadata) v |= EXPECTS_FETCH_METADATA;
    if (clientHints) v |= EXPECTS_CLIENT_HINTS;
    return v;
  }
}

function absent(req: RequestSnapshot, h: HeaderName): bool {
  const i = req.find(h);
  return i < 0 || req.valueLength(i) == 0;
}

function isBlank(ptr: usize, len: i32): bool {
  for (let i = 0; i < len; i++) if (load<u8>(ptr + <usize>i) > 0x20) return false;
  return true;
}

function startsWithMozilla(ptr: usize, len: i32): bool {
  if (len < 8) return false;
  const m = "mozilla/";
  for (let i = 0; i < 8; i++) {
    let c = <i32>load<u8>(ptr + <usize>i);
    if (c >= 0x41 && c <= 0x5a) c += 32;
    if (c != m.charCodeAt(i)) return false;
  }
  return true;
}

/** Signals from headers alone, for tests and tools. */
export function headerSignals(h: HeaderFacts, lists: AgentLists): u32 {
  return requestHeaderSignals(h.snapshot(), lists);
}

/** Signals from headers alone, compared as the host's bytes: nothing is decoded. */
export function requestHeaderSignals(req: RequestSnapshot, lists: AgentLists): u32 {
  let bits: u32 = 0;
  let verdict: u32 = 0;
  const ua = req.find(USER_AGENT);
  if (ua < 0 || isBlank(req.valuePtr(ua), req.valueLength(ua))) bits |= UA_EMPTY;
  else {
    verdict = lists.classify(req.valuePtr(ua), req.valueLength(ua));
    bits |= verdict & UA_CLASSES;
  }
  if (absent(req, ACCEPT)) bits |= NO_ACCEPT;
  if (absent(req, ACCEPT_LANGUAGE)) bits |= NO_ACCEPT_LANGUAGE;
  if (absent(req, ACCEPT_ENCODING)) bits |= NO_ACCEPT_ENCODING;
  // Over plain HTTP the absence of fetch metadata and client hints says nothing.
  if ((verdict & (EXPECTS_FETCH_METADATA | EXPECTS_CLIENT_HINTS)) != 0 && isHttps(req)) {
    if ((verdict & EXPECTS_FETCH_METADATA) != 0 && absent(req, SEC_FETCH_MODE)) bits |= NO_FETCH_METADATA;
    if ((verdict & EXPECTS_CLIENT_HINTS) != 0 && absent(req, SEC_CH_UA)) bits |= NO_CLIENT_HINTS;
  }
  return bits;
}

export function score(bits: u32, weights: i32[]): i32 {
  let total = 0;
  for (let i = 0; i < weights.length; i++) if ((bits & (1 << i)) != 0) total += unchecked(weights[i]);
  return total > 100 ? 100 : total;
}

export function signalList(bits: u32): string {
  let out = "";
  for (let i = 0; i < SIGNAL_NAMES.length; i++) {
    if ((bits & (1 << i)) == 0) continue;
    if (out.length > 0) out += ",";
    out += SIGNAL_NAMES[i];
  }
  return out;
}

export class BehaviourSpec {
  windowMs: i64 = 10000;
  /** Page views per window (sliding estimate) above which high_rate fires. */
  rateThreshold: f64 = 30;
  /** Requests of any kind (assets included) per window above which high_rate fires. */
  requestRateThreshold: f64 = 300;
  /** path_spread fires when at least this many page views over the last two windows ... */
  spreadMinRequests: i32 = 20;
  /** ... went to at least this share of distinct paths. */
  spreadRatio: f64 = 0.8;
  /** Page views of IDs under one path prefix, each 1 to enumerationMaxStep from the last in one direction. */
  enumerationRun: i32 = 5;
  enumerationMaxStep: i32 = 3;
  /** Consecutive windows path_spread must have held for sustained_spread. */
  sustainedWindows: i32 = 3;
  honeypotTtlMs: i64 = 600000;
  /** The long window: slow crawls and ids that never come back are judged over it (and the one before). */
  longWindowMs: i64 = 600000;
  /** Distinct pages over the long window (sliding) at which slow_crawl fires. */
  longDistinctPages: i32 = 150;
  /** id_churn: at least this many ids issued to an address over the long window ... */
  churnMinIds: i32 = 12;
  /** ... of which fewer than this share came back. */
  churnReturnRatio: f64 = 0.25;
  /**
   * The honeypot paths' fingerprint: a mark counts only under the paths it was made under, so a
   * configuration rolled back (or a honeypot removed) ends the marks it made.
   */
  honeypotEpoch: u32 = 0;
}

/** What one request contributes to a client's record. */
export class PathFacts {
  pathHash: u32 = 0;
  /** The numeric last segment (/item/1002 -> 1002), or -1. */
  numericId: i64 = -1;
  prefixHash: u32 = 0;
  honeypot: bool = false;
  /** A subresource (image, script, style, font, ...), not a page view. */
  asset: bool = false;
  /**
   * The response phase's correction of a request counted as an asset whose answer was an HTML page: it
   * counts as a page view after all (not as another request) and marks the client dest_mismatch.
   */
  mismatch: bool = false;
  /** With `mismatch`: the request was counted as a page view already (its client was marked). */
  counted: bool = false;
  /** An asset by its headers alone (no asset extension): a client marked dest_mismatch has it count as a page. */
  byHeaders: bool = false;
  /** A cookie-less page view that gets a client id (an address record). */
  issuing: bool = false;
  /** A client id's first request (its first return): counted on its address's record with the page view. */
  returning: bool = false;
  /** On a network's record: the hash of the address the page view came from (0 = not counted). */
  addressHash: u32 = 0;
}

// Record payload layout (bytes): windowStart i64 @0 | pages i32 @8 | prevPages i32 @12 | path bitmap of this
// window 64 @16 | of the previous one 64 @80 | lastId i64 @144 | prefixHash u32 @152 | run i32 @156 |
// direction i32 @160 | requests i32 @164 | honeypotUntil i64 @168 | prevRequests i32 @176 |
// spread streak i32 @180 (windows in a row with path_spread; bit 31: path_spread seen in this window) |
// honeypot epoch u32 @184 (the honeypot paths the mark was made under) | dest_mismatch until, seconds u32 @188 |
// the long window: start i64 @192 | pages i32 @200 | prevPages i32 @204 | path bitmap 64 @208 | of the
// previous one 64 @272 | ids issued i32 @336 | ids returned i32 @340 | prevIssued i32 @344 | prevReturned i32 @348 |
// the fleet's distinct pages (fleet.ts): fixed long window index i64 @352 | count in it i32 @360 | in the one before i32 @364 |
// addresses seen (a network's record: a 64-bit bitmap of address hashes) in this long window u64 @368 | in the previous one u64 @376.
export const ACTIVITY_PAYLOAD = 384;
const LONG = 192;
const FLEET = 352;
const ADDRS = 368;
export const BITMAP_BYTES = 64;
const BITMAP_BITS: f64 = 512;
const SPREAD_SEEN: i32 = 0x80000000;

/** Linear counting's estimate for each number of bits set (0..511): -m ln(zeros / m), computed once. */
function distinctTable(): StaticArray<f64> {
  const t = new StaticArray<f64>(<i32>BITMAP_BITS);
  for (let ones = 0; ones < <i32>BITMAP_BITS; ones++) t[ones] = -BITMAP_BITS * Math.log((BITMAP_BITS - <f64>ones) / BITMAP_BITS);
  return t;
}
const DISTINCT_BY_BITS = distinctTable();

/** Distinct paths in the union of two 512-bit bitmaps (linear counting); `n` when saturated. */
function distinctPaths(p: usize, q: usize, n: i32): f64 {
  let ones = 0;
  for (let i = 0; i < BITMAP_BYTES / 8; i++) ones += <i32>popcnt<u64>(load<u64>(p + 8 * i) | load<u64>(q + 8 * i));
  return ones < <i32>BITMAP_BITS ? unchecked(DISTINCT_BY_BITS[ones]) : <f64>n;
}

/**
 * Moves a record to the window containing `now` (a fresh record starts one there): the previous window
 * counts only if it is adjacent. Clock steps back restart the window rather than extend it.
 */
export function rollWindow(p: usize, fresh: bool, now: i64, w: i64): void {
  let start = load<i64>(p);
  let streak = load<i32>(p, 180);
  if (fresh) {
    start = now;
    streak = 0;
  }
  const elapsed = now - start;
  if (elapsed >= w) {
    const adjacent = elapsed < 2 * w;
    streak = adjacent && (streak & SPREAD_SEEN) != 0 ? (streak & 0xffff) + 1 : 0;
    store<i32>(p, adjacent ? load<i32>(p, 8) : 0, 12);
    store<i32>(p, adjacent ? load<i32>(p, 164) : 0, 176);
    if (adjacent) memory.copy(p + 80, p + 16, BITMAP_BYTES);
    else memory.fill(p + 80, 0, BITMAP_BYTES);
    memory.fill(p + 16, 0, BITMAP_BYTES);
    start += (elapsed / w) * w;
    store<i32>(p, 0, 8);
    store<i32>(p, 0, 164);
  } else if (elapsed < 0) {
    start = now;
  }
  store<i64>(p, start);
  store<i32>(p, streak, 180);
}

/** The long window's rollover, as rollWindow's for the short one. */
export function rollLongWindow(p: usize, fresh: bool, now: i64, w: i64): void {
  let start = load<i64>(p, LONG);
  if (fresh) start = now;
  const elapsed = now - start;
  if (elapsed >= w) {
    const adjacent = elapsed < 2 * w;
    store<i32>(p, adjacent ? load<i32>(p, LONG + 8) : 0, LONG + 12);
    store<i32>(p, adjacent ? load<i32>(p, 336) : 0, 344);
    store<i32>(p, adjacent ? load<i32>(p, 340) : 0, 348);
    if (adjacent) memory.copy(p + LONG + 80, p + LONG + 16, BITMAP_BYTES);
    else memory.fill(p + LONG + 80, 0, BITMAP_BYTES);
    memory.fill(p + LONG + 16, 0, BITMAP_BYTES);
    store<u64>(p, adjacent ? load<u64>(p, ADDRS) : 0, ADDRS + 8);
    store<u64>(p, 0, ADDRS);
    start += (elapsed / w) * w;
    store<i32>(p, 0, LONG + 8);
    store<i32>(p, 0, 336);
    store<i32>(p, 0, 340);
  } else if (elapsed < 0) {
    start = now;
  }
  store<i64>(p, start, LONG);
}

/** Sets a path's bit in a 512-bit path bitmap. */
export function markPath(bitmap: usize, pathHash: u32): void {
  const bit = pathHash & 511;
  const at = bitmap + (bit >> 3);
  store<u8>(at, load<u8>(at) | <u8>(<u32>1 << (bit & 7)));
}

/** Bits set in the record's path bitmap of the current long window. */
export function longPathBits(p: usize): i32 {
  let ones = 0;
  for (let i = 0; i < BITMAP_BYTES / 8; i++) ones += <i32>popcnt<u64>(load<u64>(p + LONG + 16 + 8 * i));
  return ones;
}

/**
 * Distinct pages a path bitmap with `ones` bits set stands for (linear counting, rounded): the bits
 * undercount once paths share them. Differences of it add up to the estimate (fleet.ts).
 */
export function distinctFromBits(ones: i32): i32 {
  const zeros = <i32>BITMAP_BITS - ones;
  if (zeros <= 0) return <i32>(BITMAP_BITS * Math.log(BITMAP_BITS));
  return <i32>Math.round(-BITMAP_BITS * Math.log(<f64>zeros / BITMAP_BITS));
}

/** Where a record keeps the fleet's count (a 16-byte block: fixed window index i64, count i32, previous i32). */
export const ACTIVITY_FLEET_AT: usize = FLEET;

/**
 * The fleet's count kept in the 16-byte block at `b` (fleet.ts), sliding over the long window: what
 * every gateway counted for this key, as last answered by the fleet's store. Its windows are fixed
 * (now / longW); 0 when the block holds nothing recent.
 */
export function fleetSliding(b: usize, now: i64, longW: i64): f64 {
  const index = now / longW;
  const at = load<i64>(b);
  let cur: i32 = 0;
  let prev: i32 = 0;
  if (at == index) {
    cur = load<i32>(b, 8);
    prev = load<i32>(b, 12);
  } else if (at == index - 1) {
    prev = load<i32>(b, 8);
  } else {
    return 0;
  }
  const left = 1.0 - <f64>(now - index * longW) / <f64>longW;
  return <f64>cur + <f64>prev * left;
}

/** The fleet's distinct pages of an activity record over the long window (fleetSliding). */
export function fleetDistinct(p: usize, now: i64, longW: i64): f64 {
  return fleetSliding(p + FLEET, now, longW);
}

/** Writes a fleet count for fixed long window `index` (an answer of the fleet's store) into the block at `offset`. */
export class FleetUpdate extends RecordUpdate {
  index: i64 = 0;
  count: i32 = 0;
  offset: usize = FLEET;
  /** Where the record counts what it added since the fleet's last answer (an i32 this answer covers), or 0. */
  pendingAt: usize = 0;

  apply(p: usize, fresh: bool, now: i64): void {
    if (this.pendingAt != 0) store<i32>(p + this.pendingAt, 0);
    const b = p + this.offset;
    const at = load<i64>(b);
    const i = this.index;
    if (i > at) {
      store<i32>(b, i == at + 1 ? load<i32>(b, 8) : 0, 12);
      store<i32>(b, this.count, 8);
      store<i64>(b, i);
    } else if (i == at) {
      // Answers can arrive out of order: a count only grows within a window.
      if (this.count > load<i32>(b, 8)) store<i32>(b, this.count, 8);
    } else if (i == at - 1 && this.count > load<i32>(b, 12)) {
      store<i32>(b, this.count, 12);
    }
  }
}

/**
 * Adds one worker's counts since its last sync to a shared record (worker_records.ts), both taken to
 * the window containing `now`: `pages` page views and `requests` requests, the paths in the bitmap at
 * `pathBits`, and from the worker's copy `view` its honeypot mark and, when it saw an ID page (`idSeen`),
 * its ID run.
 */
export function mergeActivity(p: usize, fresh: bool, now: i64, w: i64, longW: i64, view: usize, pages: i32, requests: i32, pathBits: usize, idSeen: bool, issued: i32, returned: i32): void {
  rollWindow(p, fresh, now, w);
  rollLongWindow(p, fresh, now, longW);
  store<i32>(p, load<i32>(p, 8) + pages, 8);
  store<i32>(p, load<i32>(p, 164) + requests, 164);
  store<i32>(p, load<i32>(p, LONG + 8) + pages, LONG + 8);
  store<i32>(p, load<i32>(p, 336) + issued, 336);
  store<i32>(p, load<i32>(p, 340) + returned, 340);
  for (let i = 0; i < BITMAP_BYTES; i += 8) {
    const bits = load<u64>(pathBits + i);
    store<u64>(p + 16 + i, load<u64>(p + 16 + i) | bits);
    store<u64>(p + LONG + 16 + i, load<u64>(p + LONG + 16 + i) | bits);
  }
  if (load<i64>(view, 168) > load<i64>(p, 168)) {
    store<i64>(p, load<i64>(view, 168), 168);
    store<u32>(p, load<u32>(view, 184), 184);
  }
  if (idSeen) memory.copy(p + 144, view + 144, 20); // lastId, prefix, run, direction
  // A network's addresses: the worker's copy holds the shared ones as of its last sync and its own since.
  if (load<i64>(view, LONG) == load<i64>(p, LONG)) store<u64>(p, load<u64>(p, ADDRS) | load<u64>(view, ADDRS), ADDRS);
  if (load<u32>(view, 188) > load<u32>(p, 188)) store<u32>(p, load<u32>(view, 188), 188);
  const mine = load<i32>(view, 180);
  const theirs = load<i32>(p, 180);
  let streak = (mine & 0xffff) > (theirs & 0xffff) ? mine & 0xffff : theirs & 0xffff;
  if (load<i64>(view) == load<i64>(p) && ((mine | theirs) & SPREAD_SEEN) != 0) streak |= SPREAD_SEEN;
  else streak |= theirs & SPREAD_SEEN;
  store<i32>(p, streak, 180);
}

/**
 * Updates a client's record with one request and reports the behaviour signals. Windows slide: rates
 * weigh the previous window by how much of it is still in view, and the path spread looks at this window
 * and the previous one, so no window boundary gives a steady scraper a fresh start. Page views and
 * assets are counted apart: a page's 40 images are one page view.
 */
export class ActivityUpdate extends RecordUpdate {
  spec: BehaviourSpec = new BehaviourSpec();
  facts: PathFacts = new PathFacts();
  /** Output: the behaviour signal bits for this request. */
  bits: u32 = 0;
  /** Output, for tests and debugging: the sliding page-view rate estimate. */
  rate: f64 = 0;
  /** Output: this request put a honeypot mark on a record that had none in force. */
  marked: bool = false;
  /** Output: the request counted as a page view. */
  page: bool = false;
  /** Output: page views of the record over the long window and the one before, this one included. */
  idPages: i32 = 0;
  /** Output: a network's addresses seen over the long window and the one before (a lower bound: 64 hash bits). */
  addresses: i32 = 0;

  apply(p: usize, fresh: bool, now: i64): void {
    const w = this.spec.windowMs;
    rollWindow(p, fresh, now, w);
    const lw = this.spec.longWindowMs;
    rollLongWindow(p, fresh, now, lw);
    const start = load<i64>(p);
    let pages = load<i32>(p, 8);
    const prevPages = load<i32>(p, 12);
    let requests = load<i32>(p, 164);
    const prevRequests = load<i32>(p, 176);
    let streak = load<i32>(p, 180);
    const f = this.facts;
    // A response's correction is a note about a request already counted.
    const note = f.mismatch;
    if (!note) requests++;
    let bits: u32 = 0;
    const left = 1.0 - <f64>(now - start) / <f64>w;
    if (<f64>prevRequests * left + <f64>requests > this.spec.requestRateThreshold) bits |= HIGH_RATE;

    // A page is what the upstream answers: a client caught disguising pages as subresources has its
    // header-only "subresources" counted as pages; the response's correction counts one it missed.
    let page = !f.asset;
    if (f.asset && f.byHeaders && now / 1000 < <i64>load<u32>(p, 188)) page = true;
    if (f.mismatch) page = !f.counted;
    this.page = page;
    const longLeft = 1.0 - <f64>(now - load<i64>(p, LONG)) / <f64>lw;
    if (f.issuing) store<i32>(p, load<i32>(p, 336) + 1, 336);
    if (f.returning) store<i32>(p, load<i32>(p, 340) + 1, 340);
    // Judged on the last complete long window, so the ids issued in it had time to come back: a burst of
    // new people is not churn.
    const issued = load<i32>(p, 344);
    if (issued >= this.spec.churnMinIds && <f64>load<i32>(p, 348) < <f64>issued * this.spec.churnReturnRatio) bits |= ID_CHURN;
    if (f.addressHash != 0) {
      const cur = load<u64>(p, ADDRS) | (<u64>1 << <u64>(f.addressHash >> 26));
      store<u64>(p, cur, ADDRS);
      this.addresses = <i32>popcnt<u64>(cur | load<u64>(p, ADDRS + 8));
    }
    if (page) {
      pages++;
      markPath(p + 16, f.pathHash);
      markPath(p + LONG + 16, f.pathHash);
      const longPages = load<i32>(p, LONG + 8) + 1;
      store<i32>(p, longPages, LONG + 8);
      // Distinct pages over the long window, sliding: this one's, and the previous one's still in view;
      // or the fleet's count of them, every gateway's together.
      const seenLong = longPages + load<i32>(p, LONG + 12);
      this.idPages = seenLong;
      const distinctAt = <f64>this.spec.longDistinctPages;
      if (seenLong >= this.spec.longDistinctPages) {
        const now1 = distinctPaths(p + LONG + 16, p + LONG + 16, longPages);
        const all = distinctPaths(p + LONG + 16, p + LONG + 80, seenLong);
        if (now1 + (all - now1) * longLeft >= distinctAt) bits |= SLOW_CRAWL;
      }
      if (load<i64>(p, FLEET) != 0 && fleetDistinct(p, now, lw) >= distinctAt) bits |= SLOW_CRAWL;
      this.rate = <f64>prevPages * left + <f64>pages;
      if (this.rate > this.spec.rateThreshold) bits |= HIGH_RATE;
      const seen = pages + prevPages;
      if (seen >= this.spec.spreadMinRequests && distinctPaths(p + 16, p + 80, seen) / <f64>seen >= this.spec.spreadRatio) {
        bits |= PATH_SPREAD;
        streak |= SPREAD_SEEN;
        if ((streak & 0xffff) >= this.spec.sustainedWindows) bits |= SUSTAINED_SPREAD;
      }
      if (f.numericId >= 0 && this.extendsRun(p, fresh)) bits |= ID_ENUMERATION;
    }

    let until = load<i64>(p, 168);
    // A mark made under other honeypot paths (a configuration since rolled back) is no mark.
    if (load<u32>(p, 184) != this.spec.honeypotEpoch) until = 0;
    this.marked = false;
    if (f.honeypot && !note) {
      this.marked = now >= until;
      until = now + this.spec.honeypotTtlMs;
      store<i64>(p, until, 168);
      store<u32>(p, this.spec.honeypotEpoch, 184);
    }
    if (now < until) bits |= HONEYPOT;
    if (f.mismatch) store<u32>(p, <u32>((now + 2 * w) / 1000), 188);
    if (now / 1000 < <i64>load<u32>(p, 188)) bits |= DEST_MISMATCH;

    store<i64>(p, start);
    store<i32>(p, pages, 8);
    store<i32>(p, prevPages, 12);
    store<i32>(p, requests, 164);
    store<i32>(p, prevRequests, 176);
    store<i32>(p, streak, 180);
    this.bits = bits;
  }

  /**
   * Whether any count of the record at `p` is within half of its threshold at `now`: a worker then syncs
   * the client on every request, so thresholds are judged on the shared count (worker_records.ts).
   */
  nearThreshold(p: usize, now: i64): bool {
    const w = this.spec.windowMs;
    const elapsed = now - load<i64>(p);
    if (elapsed >= 2 * w || elapsed < 0) return false;
    let pages = load<i32>(p, 8);
    let prevPages = load<i32>(p, 12);
    let requests = load<i32>(p, 164);
    let prevRequests = load<i32>(p, 176);
    let left = 1.0 - <f64>elapsed / <f64>w;
    if (elapsed >= w) {
      prevPages = pages;
      prevRequests = requests;
      pages = 0;
      requests = 0;
      left += 1.0;
    }
    const spec = this.spec;
    if (2 * (<f64>prevPages * left + <f64>pages) >= spec.rateThreshold) return true;
    if (2 * (<f64>prevRequests * left + <f64>requests) >= spec.requestRateThreshold) return true;
    const seen = load<i32>(p, 8) + load<i32>(p, 12);
    if (2 * seen < spec.spreadMinRequests) return false;
    return 2 * distinctPaths(p + 16, p + 80, seen) / <f64>seen >= spec.spreadRatio;
  }

  /**
   * Records a page view of an ID; true when it makes a run of enumerationRun: IDs under one prefix,
   * each 1 to enumerationMaxStep from the last, all in one direction. Other pages in between neither
   * break nor extend a run; the same ID again (a reload) neither; going back and forth is no run.
   */
  private extendsRun(p: usize, fresh: bool): bool {
    const f = this.facts;
    let run = load<i32>(p, 156);
    let dir = load<i32>(p, 160);
    const d = f.numericId - load<i64>(p, 144);
    const samePrefix = !fresh && run > 0 && load<u32>(p, 152) == f.prefixHash;
    if (samePrefix && d == 0) return run >= this.spec.enumerationRun;
    const step = <i64>this.spec.enumerationMaxStep;
    const sign = d > 0 ? 1 : -1;
    if (samePrefix && (d > 0 ? d : -d) <= step && (dir == 0 || dir == sign)) {
      run++;
      dir = sign;
    } else {
      run = 1;
      dir = 0;
    }
    store<i64>(p, f.numericId, 144);
    store<u32>(p, f.prefixHash, 152);
    store<i32>(p, run, 156);
    store<i32>(p, dir, 160);
    return run >= this.spec.enumerationRun;
  }
}

/**
 * Fills PathFacts from a request path's bytes (its query string and fragment are ignored); `honeypots`
 * are the honeypot paths' bytes. Reads the host's bytes in place: nothing is allocated.
 */
export function pathFactsAt(ptr: usize, len: i32, honeypots: ArrayBuffer[], out: PathFacts): void {
  const n = pathEnd(ptr, len);
  out.pathHash = fmix32(fnv1aBytes(FNV_OFFSET, ptr, n));
  out.asset = hasAssetExtension(ptr, n);
  out.mismatch = false;
  out.counted = false;
  out.byHeaders = false;
  out.honeypot = false;
  for (let i = 0; i < honeypots.length; i++) {
    const h = unchecked(honeypots[i]);
    if (h.byteLength <= n && bytesEqual(ptr, changetype<usize>(h), h.byteLength)) { out.honeypot = true; break; }
  }
  out.numericId = -1;
  let end = n;
  if (end > 1 && load<u8>(ptr + <usize>end - 1) == 0x2f) end--; // "/item/12/" counts as "/item/12"
  let slash = end - 1;
  while (slash >= 0 && load<u8>(ptr + <usize>slash) != 0x2f) slash--;
  const digits = end - slash - 1;
  if (slash < 0 || digits <= 0 || digits > 15) return;
  let id: i64 = 0;
  for (let i = slash + 1; i < end; i++) {
    const c = <i32>load<u8>(ptr + <usize>i);
    if (c < 0x30 || c > 0x39) return;
    id = id * 10 + (c - 0x30);
  }
  out.numericId = id;
  out.prefixHash = fmix32(fnv1aBytes(FNV_OFFSET, ptr, slash + 1));
}

/** pathFactsAt for a path given as a string (tests, previews). */
export function pathFacts(path: string, honeypots: string[], out: PathFacts): void {
  const bytes = String.UTF8.encode(path);
  pathFactsAt(changetype<usize>(bytes), bytes.byteLength, encodeAll(honeypots), out);
}

/** Each string's UTF-8 bytes. */
export function encodeAll(list: string[]): ArrayBuffer[] {
  const out = new Array<ArrayBuffer>(list.length);
  for (let i = 0; i < list.length; i++) out[i] = String.UTF8.encode(list[i]);
  return out;
}

const ASSET_EXTENSIONS: ArrayBuffer[] = encodeAll([".js", ".mjs", ".css", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".avif", ".ico", ".woff", ".woff2", ".ttf", ".map", ".mp4", ".webm"]);

/** Whether the path's bytes name a static subresource by its extension (any case). */
function hasAssetExtension(ptr: usize, n: i32): bool {
  let dot = n - 1;
  while (dot >= 0 && n - dot <= 6) {
    const c = load<u8>(ptr + <usize>dot);
    if (c == 0x2e) break;
    if (c == 0x2f) return false;
    dot--;
  }
  if (dot < 0 || n - dot > 6) return false;
  const len = n - dot;
  for (let i = 0; i < ASSET_EXTENSIONS.length; i++) {
    const ext = unchecked(ASSET_EXTENSIONS[i]);
    if (ext.byteLength != len) continue;
    let k = 1;
    for (; k < len; k++) {
      let c = load<u8>(ptr + <usize>(dot + k));
      if (c >= 0x41 && c <= 0x5a) c += 0x20;
      if (c != load<u8>(changetype<usize>(ext) + <usize>k)) break;
    }
    if (k == len) return true;
  }
  return false;
}

export const SEC_FETCH_DEST = new HeaderName("sec-fetch-dest");
const IMAGE_ACCEPT = String.UTF8.encode("image/");
const PAGE_DESTS: ArrayBuffer[] = [String.UTF8.encode("document"), String.UTF8.encode("iframe"), String.UTF8.encode("frame"), String.UTF8.encode("empty")];
const CSS_ACCEPT = String.UTF8.encode("text/css");

/**
 * Whether the request's headers mark a subresource: a Sec-Fetch-Dest other than a document, frame or
 * fetch ("empty"), or an image or stylesheet Accept (what browsers send where fetch metadata is absent).
 */
export function requestIsAsset(req: RequestSnapshot): bool {
  const d = req.find(SEC_FETCH_DEST);
  if (d >= 0) {
    const n = req.valueLength(d);
    for (let i = 0; i < PAGE_DESTS.length; i++) {
      const dest = unchecked(PAGE_DESTS[i]);
      if (dest.byteLength == n && req.valueStartsWith(d, dest)) return false;
    }
    return n > 0;
  }
  const a = req.find(ACCEPT);
  return a >= 0 && (req.valueStartsWith(a, IMAGE_ACCEPT) || req.valueStartsWith(a, CSS_ACCEPT));
}
