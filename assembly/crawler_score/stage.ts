// crawler_score's decision: header signals plus behaviour per client (id cookie, account or address) in
// sliding windows, kept in shared data and in each worker's copy of it (worker_records.ts), weighted into
// a score that tags, challenges or blocks.
import { ByteSpan, containsNoCase, findCookie, findQueryParam, pathOnly } from "../common/request/http";
import { KeyBuilder } from "../common/request/key_builder";
import { COOKIE, HeaderName, METHOD, PATH, RequestSnapshot, USER_AGENT } from "../common/request/snapshot";
import { fmix32 } from "../common/lib/hash";
import { IpAddr, ipKey } from "../common/lib/ip";
import { Challenger, CLEARANCE_NO_JS, CLEARANCE_NONE, WAIT_PARAM, sameSitePath, withoutParam } from "./challenge";
import { ClientIds, NO_ID_COOKIE } from "./client_id";
import { envoySecret, secretHalf, storedEnvoySecret } from "./envoy_secret";
import { BUDGET_FLEET_AT, BUDGET_PAYLOAD, BUDGET_PENDING_AT, BudgetUpdate } from "./clearance_budget";
import { claimSequence, SharedStore, SlotTable, UpdateStatus } from "../common/lib/slot_table";
import { HostCalls, LocalReply, Outcome, Stage, StatSink } from "../common/request/stage";
import { FleetCounts, KIND_ACCOUNT, KIND_CLEARANCE, KIND_CLIENT, KIND_NETWORK } from "./fleet";
import { ACT_ALLOW, ACT_BLOCK, ACT_CHALLENGE, ACT_TAG, budgetSlots, CrawlerConfig, impostorScore, PolicySpec } from "./config";
import { WorkerRecords } from "./worker_records";
import { ACCEPT, ACTIVITY_FLEET_AT, ActivityUpdate, ACTIVITY_PAYLOAD, BOT_IMPOSTOR, FleetUpdate, HONEYPOT, UA_BOT, UA_EMPTY, UA_HEADLESS, UA_TOOL, ID_ENUMERATION, NETWORK_CRAWL, PATH_SPREAD, SLOW_CRAWL, SUSTAINED_SPREAD, isHttps, PathFacts, pathFactsAt, requestHeaderSignals, requestIsAsset, score, SEC_FETCH_DEST, SIGNAL_NAMES, signalList } from "./signals";

const SWEEP_BATCH = 2000;
const SWEEP_MS: i64 = 10000;
/** A client id's page views before it has a history of its own; until then its address judges it too. */
const YOUNG_ID_PAGES: i32 = 3;
/** Collection credits (RequestSnapshot.garbage) of a challenge page (KiB of strings) and of a no-JS redirect. */
const CHALLENGE_PAGE_GARBAGE: u32 = 512;
const NO_JS_GARBAGE: u32 = 64;
const NOT_CLEARED = 0;
const CLEARED = 1;
const REVOKED = 2;
const DOCUMENT = String.UTF8.encode("document");
const GET = String.UTF8.encode("GET");
const TEXT_HTML = String.UTF8.encode("text/html");
const ROOT_PATH = String.UTF8.encode("/");
const SET_COOKIE = new HeaderName("set-cookie");
const CONTENT_TYPE = new HeaderName("content-type");

const FEED_SUFFIXES = [".rss", ".atom", "/feed", "/feed/", "/rss", "/rss/", "feed.xml", "atom.xml", "rss.xml", "index.xml", "feed.json"];
const FEED_TYPES = ["rss+xml", "atom+xml", "feed+json"];

/** A feed request: an Accept naming a feed type, or a feed's usual path. Never sent a challenge. */
function isFeed(req: RequestSnapshot, path: string): bool {
  for (let i = 0; i < FEED_SUFFIXES.length; i++) if (path.endsWith(unchecked(FEED_SUFFIXES[i]))) return true;
  const accept = req.header(ACCEPT);
  if (accept === null) return false;
  for (let i = 0; i < FEED_TYPES.length; i++) if (accept.includes(unchecked(FEED_TYPES[i]))) return true;
  return false;
}

/**
 * A refusal's reason for Envoy's access log (the local reply's details, never sent to the client): the
 * signals that fired, or "policy" when none did (a client class's policy, or under-attack mode).
 */
function reasonOf(bits: u32): string {
  return bits == 0 ? "policy" : signalList(bits).replaceAll(",", "+");
}

/** The policy's action for the class the request's headers put it in. */
function classAction(headerBits: u32, p: PolicySpec): i32 {
  if ((headerBits & (UA_TOOL | UA_EMPTY)) != 0) return p.tools;
  if ((headerBits & UA_HEADLESS) != 0) return p.headless;
  if ((headerBits & UA_BOT) != 0) return p.declaredBots;
  return p.browsers;
}

function isApi(path: string, prefixes: string[]): bool {
  for (let i = 0; i < prefixes.length; i++) if (path.startsWith(unchecked(prefixes[i]))) return true;
  return false;
}

/** Whether a content-type names an HTML document ("text/html", "text/html; charset=utf-8", any case). */
function isHtml(ct: string): bool {
  return ct.length >= 9 && ct.substring(0, 9).toLowerCase() == "text/html";
}

/** A page load a browser would render: GET, and fetch metadata saying document or an HTML accept. */
function isNavigation(req: RequestSnapshot): bool {
  const m = req.find(METHOD);
  if (m < 0 || req.valueLength(m) != 3 || !req.valueStartsWith(m, GET)) return false;
  const d = req.find(SEC_FETCH_DEST);
  if (d >= 0) return req.valueLength(d) == 8 && req.valueStartsWith(d, DOCUMENT);
  const a = req.find(ACCEPT);
  return a >= 0 && containsNoCase(req.valuePtr(a), req.valueLength(a), TEXT_HTML);
}

/** The request's path without its query string, as a string (for the checks only a challenge needs). */
function pathText(req: RequestSnapshot): string {
  const path = req.header(PATH);
  return path === null ? "/" : pathOnly(path);
}

/** PathFacts of the request's path (no :path reads as "/"). */
function requestPathFacts(req: RequestSnapshot, honeypots: ArrayBuffer[], out: PathFacts): void {
  const i = req.find(PATH);
  if (i < 0) pathFactsAt(changetype<usize>(ROOT_PATH), 1, honeypots, out);
  else pathFactsAt(req.valuePtr(i), req.valueLength(i), honeypots, out);
}

function clientText(ip: IpAddr | null): string {
  if (ip === null) return "";
  return ipKey(ip);
}

function userAgentOf(req: RequestSnapshot): string {
  const ua = req.header(USER_AGENT);
  if (ua === null) return "";
  return ua;
}

export class CrawlerStage extends Stage {
  ipTable: SlotTable;
  accountTable: SlotTable | null = null;
  /** This worker's copies of the tables' records (worker_records.ts): most requests make no round trip. */
  ipRecords: WorkerRecords;
  accountRecords: WorkerRecords | null = null;
  /** Page views per network (config.network), when on. */
  netRecords: WorkerRecords | null = null;
  netTable: SlotTable | null = null;
  netActivity: ActivityUpdate = new ActivityUpdate();
  /** Page views per clearance (clearance_budget.ts), when the challenge is on. */
  budgetTable: SlotTable | null = null;
  budget: BudgetUpdate = new BudgetUpdate();
  clearanceRevoked: u32;
  /** Clearances bought by waiting without JavaScript. */
  noJsCleared: u32;
  /** Automatic under-attack mode (watchRate). */
  attackUntil: i64 = 0;
  usualRps: f64 = 0;
  rateAtMs: i64 = 0;
  rateTotal: u64 = 0;
  rateSinceMs: i64 = 0;
  underAttackGauge: u32;
  attacksDetected: u32;
  lastSweepMs: i64 = 0;
  scoreName: HeaderName;
  signalsName: HeaderName;
  accountName: HeaderName;
  activity: ActivityUpdate = new ActivityUpdate();
  key: KeyBuilder = new KeyBuilder();
  passed: u32;
  tagged: u32;
  challenged: u32;
  blocked: u32;
  goodBot: u32;
  impostorAt: i32;
  challenger: Challenger;
  clientIds: ClientIds;
  /** This Envoy's secret when a section uses it, until the tick has seen it is the one stored; else "". */
  envoySecret: string;
  store: SharedStore;
  clientIdIssued: u32;
  clientIdInvalid: u32;
  challengePages: u32;
  clearedCount: u32;
  clearanceInvalid: u32;
  /** Requests counted as assets by their headers that the upstream answered with a page. */
  disguisedPages: u32;
  /** Process-wide count of new honeypot marks; a change means some worker's copies are stale. */
  honeypotMarks: u32;
  /** The histogram of scores. */
  scores: u32;
  marksSeen: u64;
  /** The millisecond of the last read of `honeypotMarks` (read at most once a millisecond). */
  marksReadMs: i64 = -1;
  /** Counts sent to the fleet's store and the totals it answers (fleet.ts), when the config names a cluster. */
  fleet: FleetCounts | null = null;
  fleetUpdate: FleetUpdate = new FleetUpdate();
  fleetSent: u32;
  fleetFailed: u32;
  fleetDropped: u32;
  /** Per signal bit: requests it fired on. */
  signalFired: u32[] = [];
  /** Where the request's client id lies in its Cookie header (clientIdLength). */
  idSpan: ByteSpan = new ByteSpan();
  /** Why the current request is challenged (its signals, or the policy), for the local reply's details. */
  challengeReason: string = "";
  /** Output of the last onRequest, for tests: the score and the signal bits. */
  lastScore: i32 = 0;
  lastBits: u32 = 0;

  constructor(public cfg: CrawlerConfig, store: SharedStore, public stats: StatSink, calls: HostCalls | null = null) {
    super();
    this.scoreName = new HeaderName(cfg.scoreHeader);
    this.signalsName = new HeaderName(cfg.signalsHeader);
    this.accountName = new HeaderName(cfg.accountHeader);
    // A section without a secret signs with this Envoy's own (envoy_secret.ts).
    const c = cfg.challenge;
    const id = cfg.clientId;
    let envoy = "";
    if ((c.enabled && c.secret.length == 0) || (id.enabled && id.secret.length == 0)) envoy = envoySecret(store);
    this.envoySecret = envoy;
    this.store = store;
    this.challenger = new Challenger(c, c.secret.length > 0 ? c.secret : secretHalf(envoy, 0));
    const clientIds = new ClientIds(id, id.secret.length > 0 ? id.secret : secretHalf(envoy, 1));
    this.clientIds = clientIds;
    this.needsClock = true;
    // Workers write their copies back on the tick; the shared tables are swept every SWEEP_MS.
    this.tickMs = 500;
    const b = cfg.behaviour;
    // Keep a record at least as long as anything in it matters: two windows, or a honeypot mark.
    // Keep a record at least as long as anything in it matters: two long windows, or a honeypot mark.
    let idle = 2 * b.windowMs;
    if (2 * b.longWindowMs > idle) idle = 2 * b.longWindowMs;
    if (b.honeypotTtlMs > idle) idle = b.honeypotTtlMs;
    const ipTable = new SlotTable(store, "cs.ip", cfg.maxClients, ACTIVITY_PAYLOAD, idle);
    this.ipTable = ipTable;
    this.ipRecords = new WorkerRecords(ipTable, b.windowMs, b.longWindowMs, 2 * b.windowMs);
    if (cfg.accountHeader.length > 0 || cfg.accountCookie.length > 0) {
      const t = new SlotTable(store, "cs.account", cfg.maxClients, ACTIVITY_PAYLOAD, idle);
      this.accountTable = t;
      this.accountRecords = new WorkerRecords(t, b.windowMs, b.longWindowMs, 2 * b.windowMs);
    }
    this.activity.spec = b;
    if (c.enabled) {
      const t = new SlotTable(store, "cs.clear", budgetSlots(cfg), BUDGET_PAYLOAD, 2 * b.longWindowMs);
      this.budgetTable = t;
      this.budget.windowMs = b.longWindowMs;
      this.budget.budget = c.pageBudget;
    }
    const net = cfg.network;
    if (net.enabled) {
      const t = new SlotTable(store, "cs.net", net.maxNetworks, ACTIVITY_PAYLOAD, idle);
      this.netTable = t;
      this.netRecords = new WorkerRecords(t, b.windowMs, b.longWindowMs, 2 * b.windowMs);
      this.netActivity.spec = net.behaviour;
    }
    this.passed = stats.tally("graywall.crawler_score.passed");
    this.tagged = stats.counter("graywall.crawler_score.tagged");
    this.challenged = stats.counter("graywall.crawler_score.challenged");
    this.blocked = stats.counter("graywall.crawler_score.blocked");
    this.goodBot = stats.counter("graywall.crawler_score.good_bot");
    this.impostorAt = impostorScore(cfg);
    if (clientIds.enabled) {
      clientIds.vmNumber = claimSequence(store, "cs.vm_number");
      const salt = memory.data(8);
      if (store.random(salt, 8)) clientIds.vmSalt = load<u64>(salt);
    }
    this.clientIdIssued = stats.counter("graywall.crawler_score.client_id_issued");
    this.clientIdInvalid = stats.counter("graywall.crawler_score.client_id_invalid");
    this.challengePages = stats.counter("graywall.crawler_score.challenge_page");
    this.clearedCount = stats.counter("graywall.crawler_score.cleared");
    this.clearanceInvalid = stats.counter("graywall.crawler_score.clearance_invalid");
    this.clearanceRevoked = stats.counter("graywall.crawler_score.clearance_revoked");
    this.noJsCleared = stats.counter("graywall.crawler_score.no_js_cleared");
    this.underAttackGauge = stats.gauge("graywall.crawler_score.under_attack");
    this.attacksDetected = stats.counter("graywall.crawler_score.attacks_detected");
    this.disguisedPages = stats.counter("graywall.crawler_score.disguised_page");
    this.honeypotMarks = stats.counter("graywall.crawler_score.honeypot_marks");
    this.scores = stats.histogram("graywall.crawler_score.score");
    this.marksSeen = stats.read(this.honeypotMarks);
    for (let i = 0; i < SIGNAL_NAMES.length; i++) this.signalFired.push(stats.counter("graywall.crawler_score.signal." + SIGNAL_NAMES[i]));
    this.fleetSent = stats.counter("graywall.crawler_score.fleet.sent");
    this.fleetFailed = stats.counter("graywall.crawler_score.fleet.failed");
    this.fleetDropped = stats.counter("graywall.crawler_score.fleet.dropped");
    if (cfg.fleet.cluster.length > 0 && calls !== null) {
      const fleet = new FleetCounts(cfg.fleet, calls, b.longWindowMs);
      this.fleet = fleet;
      this.ipRecords.countFor(fleet, KIND_CLIENT);
      const acct = this.accountRecords;
      if (acct !== null) acct.countFor(fleet, KIND_ACCOUNT);
      const net = this.netRecords;
      if (net !== null) net.countFor(fleet, KIND_NETWORK);
    }
  }

  onRequest(req: RequestSnapshot, endOfStream: bool): Outcome {
    const cfg = this.cfg;
    const withSignals = cfg.signalsHeader.length > 0;
    // Upstreams trust these headers; a client must not be able to send its own.
    req.setRequestHeader(this.scoreName, null);
    if (withSignals) req.setRequestHeader(this.signalsName, null);

    const ip = req.clientIp(cfg.clientSource);
    // A declared good bot passes unscored from its operator's ranges; from anywhere else it is an impostor.
    let impostor = false;
    if (cfg.goodBots.length > 0) {
      const ua = req.find(USER_AGENT);
      if (ua >= 0) {
        for (let i = 0; i < cfg.goodBots.length; i++) {
          const g = cfg.goodBots[i];
          if (!containsNoCase(req.valuePtr(ua), req.valueLength(ua), g.agentBytes)) continue;
          if (ip !== null && g.cidrs.contains(ip)) {
            this.stats.inc(this.goodBot);
            return Outcome.Continue;
          }
          impostor = true;
        }
      }
    }
    let bits = requestHeaderSignals(req, cfg.lists);
    if (impostor) bits |= BOT_IMPOSTOR;
    const headerBits = bits;

    const facts = this.activity.facts;
    requestPathFacts(req, cfg.honeypotBytes, facts);
    if (!facts.asset && requestIsAsset(req)) {
      facts.asset = true;
      facts.byHeaders = true;
      req.assetByHeaders = true;
    }
    const now = req.nowMs;
    // One record per request (recordKey).
    const idLength = this.clientIds.enabled ? this.clientIdLength(req) : -1;
    const acctRecords = this.accountRecords;
    // A honeypot mark made on any worker blocks its client here within a millisecond, not at the next
    // sync: the counter is read on this worker's first request of each millisecond (a host call, which
    // a busy worker would otherwise make on every request).
    if (cfg.honeypots.length > 0 && now != this.marksReadMs) {
      this.marksReadMs = now;
      const marks = this.stats.read(this.honeypotMarks);
      if (marks != this.marksSeen) {
        this.marksSeen = marks;
        this.ipRecords.staleAll();
        if (acctRecords !== null) acctRecords.staleAll();
      }
    }
    this.activity.marked = false;
    this.activity.page = false;
    // A cookie-less page view gets an id: its address counts the ids it was issued (id_churn).
    const navigation = isNavigation(req);
    const issuing = this.clientIds.enabled && idLength < 0 && !facts.asset && navigation;
    facts.issuing = issuing;
    const records = this.recordKey(req, idLength, ip);
    if (records !== null && records.update(this.key.ptr, this.key.length, now, this.activity) == UpdateStatus.Updated) bits |= this.activity.bits;
    facts.issuing = false;
    // What the client did itself (its headers, its own record): only this can block a browser-like client.
    let ownBits = bits;
    req.assetCountedAsPage = req.assetByHeaders && this.activity.page;
    let marked = this.activity.marked;
    // Judged by a shared address: cookie-less, or an id too young to have a history of its own.
    const identified = idLength >= 0 || req.consumer !== null;
    let byAddress = records === this.ipRecords && !identified;
    // A honeypot hit is the request's own act, whoever shares its address.
    if (byAddress) ownBits = headerBits | (facts.honeypot ? HONEYPOT : 0);
    if (identified && records === this.ipRecords && ip !== null && this.activity.page) {
      const idPages = this.activity.idPages;
      if (idPages < YOUNG_ID_PAGES) {
        // A new id's first page views count where cookie-less ones do, so identity is not free to reset;
        // its first one tells the address the id came back (id_churn).
        byAddress = true;
        facts.returning = idPages == 1;
        this.key.reset();
        this.key.addIp(ip);
        if (this.ipRecords.update(this.key.ptr, this.key.length, now, this.activity) == UpdateStatus.Updated) bits |= this.activity.bits;
        facts.returning = false;
        marked = marked || this.activity.marked;
      }
    }

    // Every page view also counts on its network's record, at the network's thresholds.
    const netRecords = this.netRecords;
    if (netRecords !== null && ip !== null && this.activity.page) {
      const nf = this.netActivity.facts;
      nf.addressHash = fmix32(<u32>ip.lo ^ <u32>(ip.lo >> 32) ^ <u32>ip.hi ^ <u32>(ip.hi >> 32)) | 1;
      nf.pathHash = facts.pathHash;
      nf.numericId = facts.numericId;
      nf.prefixHash = facts.prefixHash;
      this.key.reset();
      this.key.addNetwork(ip, cfg.network.ipv4Prefix, cfg.network.ipv6Prefix);
      // A network crawls only when more than one of its addresses did it: one client's own run or spread
      // is its own record's to judge (a person paging through a long gallery is no network crawl).
      if (netRecords.update(this.key.ptr, this.key.length, now, this.netActivity) == UpdateStatus.Updated &&
        (this.netActivity.bits & (PATH_SPREAD | SUSTAINED_SPREAD | ID_ENUMERATION | SLOW_CRAWL)) != 0 && this.netActivity.addresses >= 2) bits |= NETWORK_CRAWL;
    }

    if (marked) this.stats.inc(this.honeypotMarks);
    for (let b = bits, i = 0; b != 0; b >>= 1, i++) if ((b & 1) != 0) this.stats.inc(unchecked(this.signalFired[i]));
    let s = score(bits, cfg.weights);
    // A shared address's or a network's behaviour challenges a browser-like client, never blocks it: the
    // people there solve the challenge once; a scraper there cannot get further without solving it either.
    if (s >= cfg.blockAt && score(ownBits, cfg.weights) < cfg.tagAt && cfg.challengeAt < cfg.blockAt) s = cfg.challengeAt;
    // A network, shared by many, never makes the block by itself either.
    if (s >= cfg.blockAt && (bits & NETWORK_CRAWL) != 0 && score(bits & ~NETWORK_CRAWL, cfg.weights) < cfg.blockAt && cfg.challengeAt < cfg.blockAt) s = cfg.challengeAt;
    if (impostor && s < this.impostorAt) s = this.impostorAt;
    // The client's class sets a least action on an HTML page view (policy), the API's on API paths.
    if (!facts.asset && navigation) {
      let act = classAction(headerBits, cfg.policy);
      if (act != ACT_ALLOW && cfg.apiPrefixes.length > 0 && isApi(pathText(req), cfg.apiPrefixes)) act = cfg.policy.api;
      const least = act == ACT_BLOCK ? cfg.blockAt : act == ACT_CHALLENGE ? cfg.challengeAt : act == ACT_TAG ? cfg.tagAt : 0;
      if (s < least) s = least;
    }
    // Under attack, every HTML page view must hold a clearance (API paths and feeds excepted below).
    if (s < cfg.challengeAt && !facts.asset && navigation && this.underAttack(now) && !isApi(pathText(req), cfg.apiPrefixes)) s = cfg.challengeAt;
    // A feed reader is never sent a challenge, even under attack: it is tagged instead.
    if (s >= cfg.challengeAt && s < cfg.blockAt && isFeed(req, pathText(req))) s = cfg.tagAt < cfg.challengeAt ? cfg.tagAt : cfg.challengeAt - 1;
    this.lastScore = s;
    this.lastBits = bits;
    // Every scored request's score, for the distribution (a histogram in Envoy: /stats/prometheus buckets).
    this.stats.set(this.scores, <u64>s);
    if (s >= cfg.blockAt) {
      this.stats.inc(this.blocked);
      req.reply = new LocalReply(<u32>cfg.block.status, "graywall_crawler_blocked." + reasonOf(bits), cfg.block.body, ["content-type", "text/plain"]);
      return Outcome.Reply;
    }
    // A solved challenge lets its client through (tagged) until it expires, unless it scores for block.
    if (s >= cfg.challengeAt) {
      const clearance = this.challenger.enabled ? this.clearance(req, ip, facts.asset) : NOT_CLEARED;
      if (clearance != CLEARED) {
        // A client without JavaScript back from the page's wait gets its no-JS clearance.
        if (navigation && this.challenger.enabled && this.redeemWait(req, ip)) return Outcome.Reply;
        this.stats.inc(this.challenged);
        this.challengeReason = clearance == REVOKED ? "clearance_revoked" : reasonOf(bits);
        return this.challenge(req, ip, s, clearance == REVOKED, navigation);
      }
    }
    if (s >= cfg.challengeAt) this.stats.inc(this.clearedCount);
    // A page view from a browser without a valid id gets one.
    if (issuing) {
      let cookie = this.clientIds.spec.cookie + "=" + this.clientIds.issue(clientText(ip), userAgentOf(req), now / 1000) + "; Path=/; Max-Age=" +
        this.clientIds.spec.maxAgeSeconds.toString() + "; HttpOnly; SameSite=Lax";
      if (isHttps(req)) cookie += "; Secure";
      req.addResponseHeader(SET_COOKIE, cookie);
      this.stats.inc(this.clientIdIssued);
    }
    if (s >= cfg.tagAt) {
      this.stats.inc(this.tagged);
      req.setRequestHeader(this.scoreName, s.toString());
    } else {
      this.stats.inc(this.passed);
    }
    // For the upstream's logs only: never on a response, where it would coach a scraper.
    if (withSignals) req.setRequestHeader(this.signalsName, signalList(bits));
    return Outcome.Continue;
  }

  /**
   * Two VMs that configured at the same moment may each have written an Envoy secret; the one stored
   * wins. A VM that signed with the other moves to it, keeping its own as the previous key so what it
   * issued stays valid. Checked on the tick until the secret in use is the one stored.
   */
  settleEnvoySecret(): void {
    const stored = storedEnvoySecret(this.store);
    if (stored.length == 0) return;
    const mine = this.envoySecret;
    if (stored != mine) {
      const c = this.cfg.challenge;
      if (c.secret.length == 0) this.challenger.rekey(secretHalf(stored, 0), secretHalf(mine, 0));
      const id = this.cfg.clientId;
      if (id.secret.length == 0) this.clientIds.rekey(secretHalf(stored, 1), secretHalf(mine, 1));
    }
    this.envoySecret = "";
  }

  /**
   * The records a request goes to, with its key built in this.key: the consumer's when the access stage
   * identified one by its API key (a verified identity), else the account's when the request names one
   * (it follows a user across addresses), else the client id's when a valid one came back (a NAT's
   * browsers each have their own), else the address's (only cookie-less clients are judged by it). Null
   * when there is no key at all.
   */
  recordKey(req: RequestSnapshot, idLength: i32, ip: IpAddr | null): WorkerRecords | null {
    const key = this.key;
    const consumer = req.consumer;
    if (consumer !== null) {
      key.reset();
      key.addByte(0x75); // 'u': never an address or id key
      key.addString(consumer);
      return this.ipRecords;
    }
    const acctRecords = this.accountRecords;
    if (acctRecords !== null && this.accountKey(req)) return acctRecords;
    key.reset();
    if (idLength >= 0) {
      key.addByte(0x63); // 'c': never an address key
      key.addBytes(this.idSpan.ptr, idLength);
    } else if (ip !== null) {
      key.addIp(ip);
    }
    return key.length > 0 ? this.ipRecords : null;
  }

  /**
   * A page is what the upstream answers: a request counted as an asset by its headers alone whose answer
   * is an HTML document counts as a page view after all, and marks its client dest_mismatch. Only such
   * requests cost a look at the response (one host call).
   */
  onResponse(req: RequestSnapshot): void {
    if (!req.assetByHeaders) return;
    const ct = req.responseHeader(CONTENT_TYPE);
    if (ct === null || !isHtml(ct)) return;
    const facts = this.activity.facts;
    requestPathFacts(req, this.cfg.honeypotBytes, facts);
    facts.asset = false;
    facts.mismatch = true;
    facts.counted = req.assetCountedAsPage;
    facts.numericId = -1;
    facts.honeypot = false;
    const idLength = this.clientIds.enabled ? this.clientIdLength(req) : -1;
    const records = this.recordKey(req, idLength, req.clientIp(this.cfg.clientSource));
    if (records !== null) records.update(this.key.ptr, this.key.length, req.nowMs, this.activity);
    facts.mismatch = false;
    this.stats.inc(this.disguisedPages);
  }

  /** Builds the account key into this.key (the header's bytes as sent, or the cookie's value); false when absent. */
  accountKey(req: RequestSnapshot): bool {
    const cfg = this.cfg;
    const key = this.key;
    key.reset();
    if (cfg.accountHeader.length > 0) {
      const i = req.find(this.accountName);
      if (i < 0 || req.valueLength(i) == 0) return false;
      key.addBytes(req.valuePtr(i), req.valueLength(i));
      return true;
    }
    const cookies = req.header(COOKIE);
    if (cookies === null) return false;
    const value = findCookie(cookies, cfg.accountCookie);
    if (value === null || value.length == 0) return false;
    key.addString(value);
    return true;
  }

  /**
   * The length of the request's valid client id, which then starts at this.idSpan.ptr (in the Cookie
   * header's bytes), or -1 (none, forged or expired).
   */
  clientIdLength(req: RequestSnapshot): i32 {
    const c = req.find(COOKIE);
    if (c < 0) return -1;
    const n = this.clientIds.idInCookies(req.valuePtr(c), req.valueLength(c), req.nowMs / 1000, this.idSpan);
    if (n == NO_ID_COOKIE) return -1;
    if (n < 0) this.stats.inc(this.clientIdInvalid);
    return n;
  }

  /**
   * Whether the request carries a valid clearance for this client with budget left (a page view spends
   * one). Hashing and the budget's shared-data round trip happen only here, for clients that score for a
   * challenge. A solved challenge has a budget of its own; the no-JS clearances of an address share one.
   */
  clearance(req: RequestSnapshot, ip: IpAddr | null, asset: bool): i32 {
    const cookies = req.header(COOKIE);
    if (cookies === null) return NOT_CLEARED;
    const value = findCookie(cookies, this.challenger.spec.cookie);
    if (value === null) return NOT_CLEARED;
    const kind = this.challenger.clearanceKind(value, clientText(ip), userAgentOf(req), req.nowMs / 1000);
    if (kind == CLEARANCE_NONE) {
      this.stats.inc(this.clearanceInvalid);
      return NOT_CLEARED;
    }
    const table = this.budgetTable;
    if (asset || table === null) return CLEARED;
    const key = this.key;
    key.reset();
    if (kind == CLEARANCE_NO_JS && ip !== null) {
      key.addByte(0x6e); // 'n': the address's no-JS budget
      key.addIp(ip);
      this.budget.budget = this.challenger.spec.noJs.pageBudget;
    } else {
      key.addByte(0x6b); // 'k'
      key.addString(value);
      this.budget.budget = this.challenger.spec.pageBudget;
    }
    this.budget.over = false;
    const fleet = this.fleet;
    this.budget.withFleet = fleet !== null && fleet.enabled;
    table.updateBytes(key.ptr, key.length, req.nowMs, this.budget);
    if (fleet !== null) fleet.add(KIND_CLEARANCE, key.ptr, key.length, 1, req.nowMs);
    if (!this.budget.over) return CLEARED;
    this.stats.inc(this.clearanceRevoked);
    return REVOKED;
  }

  /**
   * A navigation carrying a wait token (WAIT_PARAM) whose wait is over gets a 303 to the same URL without
   * it and the no-JS clearance the token buys; true when that reply is set. Too early, or not this
   * client's: false (the challenge again).
   */
  redeemWait(req: RequestSnapshot, ip: IpAddr | null): bool {
    const path = req.header(PATH);
    if (path === null || !path.includes(WAIT_PARAM)) return false;
    const token = findQueryParam(path, WAIT_PARAM);
    if (token === null) return false;
    const clearance = this.challenger.redeemWait(token, clientText(ip), userAgentOf(req), req.nowMs / 1000);
    if (clearance === null) return false;
    const spec = this.challenger.spec;
    let cookie = spec.cookie + "=" + clearance + "; Path=/; Max-Age=" + spec.expirySeconds.toString() + "; HttpOnly; SameSite=Lax";
    if (isHttps(req)) cookie += "; Secure";
    this.stats.inc(this.noJsCleared);
    req.garbage += NO_JS_GARBAGE;
    req.reply = new LocalReply(303, "graywall_crawler_no_js", "", ["location", sameSitePath(withoutParam(path, WAIT_PARAM)), "set-cookie", cookie,
      "cache-control", "no-store", "x-robots-tag", "noindex"]);
    return true;
  }

  /** The challenge: the proof-of-work page for an HTML navigation (when a secret is set), else a plain reply. */
  challenge(req: RequestSnapshot, ip: IpAddr | null, score: i32, revoked: bool, navigation: bool): Outcome {
    const spec = this.challenger.spec;
    if (this.challenger.enabled && navigation) {
      this.stats.inc(this.challengePages);
      const bits = this.challenger.difficultyFor(score, this.cfg.challengeAt, revoked);
      let path = req.header(PATH);
      if (path === null) path = "/";
      const page = this.challenger.page(clientText(ip), userAgentOf(req), req.nowMs / 1000, bits, path);
      // The page is KiB of strings: collected after some 32 of them.
      req.garbage += CHALLENGE_PAGE_GARBAGE;
      req.reply = new LocalReply(<u32>spec.status, "graywall_crawler_challenge." + this.challengeReason, page, ["content-type", "text/html; charset=utf-8", "cache-control", "no-store", "x-robots-tag", "noindex"]);
      return Outcome.Reply;
    }
    req.reply = new LocalReply(<u32>spec.status, "graywall_crawler_challenge." + this.challengeReason, spec.body, ["content-type", "text/plain", "retry-after", spec.retryAfterSeconds.toString(), "x-robots-tag", "noindex"]);
    return Outcome.Reply;
  }

  /**
   * An answer of the fleet's store: each key's fleet-wide count of distinct pages goes into its record
   * (slow_crawl reads it there), and this worker's copy syncs on the client's next request.
   */
  onCallResponse(token: u32, status: i32, body: string | null): bool {
    const fleet = this.fleet;
    if (fleet === null) return false;
    const counts = fleet.take(token, status, body);
    if (counts === null) return false;
    const u = this.fleetUpdate;
    const now = this.rateAtMs;
    for (let i = 0; i < counts.length; i++) {
      const c = counts[i];
      u.index = c.index;
      u.count = c.count;
      const ptr = changetype<usize>(c.key);
      if (c.kind == KIND_CLEARANCE) {
        // A clearance's budget: every gateway's page views on it.
        const budgets = this.budgetTable;
        u.offset = BUDGET_FLEET_AT;
        u.pendingAt = BUDGET_PENDING_AT;
        if (budgets !== null) budgets.updateBytes(ptr, c.key.byteLength, now, u);
        u.pendingAt = 0;
        continue;
      }
      const records = c.kind == KIND_NETWORK ? this.netRecords : c.kind == KIND_ACCOUNT ? this.accountRecords : this.ipRecords;
      if (records === null) continue;
      u.offset = ACTIVITY_FLEET_AT;
      records.table.updateBytes(ptr, c.key.byteLength, now, u);
      records.expire(ptr, c.key.byteLength);
    }
    this.syncFleetStats(fleet);
    return true;
  }

  private fleetSeen: i32 = 0;
  private fleetFailedSeen: i32 = 0;
  private fleetDroppedSeen: i32 = 0;

  /** Adds what the fleet counts did since the last call to the stats. */
  private syncFleetStats(fleet: FleetCounts): void {
    if (fleet.sent != this.fleetSeen) this.stats.add(this.fleetSent, fleet.sent - this.fleetSeen);
    if (fleet.failed != this.fleetFailedSeen) this.stats.add(this.fleetFailed, fleet.failed - this.fleetFailedSeen);
    if (fleet.dropped != this.fleetDroppedSeen) this.stats.add(this.fleetDropped, fleet.dropped - this.fleetDroppedSeen);
    this.fleetSeen = fleet.sent;
    this.fleetFailedSeen = fleet.failed;
    this.fleetDroppedSeen = fleet.dropped;
  }

  /** Whether under-attack mode is on: graywall-control's switch, or this VM's own detection. */
  underAttack(now: i64): bool {
    return now < this.cfg.underAttack.untilMs || now < this.attackUntil;
  }

  /**
   * Automatic under-attack mode, on the tick: the site-wide request rate (the process-wide counters every
   * worker adds to, so every VM sees the same) against its usual rate, an average over the long window.
   * It can switch on only after one long window of history, and stays on for duration_ms.
   */
  watchRate(nowMs: i64): void {
    const ua = this.cfg.underAttack;
    const total = this.stats.read(this.passed) + this.stats.read(this.tagged) + this.stats.read(this.challenged) + this.stats.read(this.blocked);
    const last = this.rateAtMs;
    const lastTotal = this.rateTotal;
    this.rateAtMs = nowMs;
    this.rateTotal = total;
    if (last == 0 || nowMs <= last) {
      this.rateSinceMs = nowMs;
      return;
    }
    const rps = <f64>(total - lastTotal) * 1000.0 / <f64>(nowMs - last);
    const warm = nowMs - this.rateSinceMs >= this.cfg.behaviour.longWindowMs;
    if (ua.auto && warm && rps > ua.minRps && rps > ua.multiple * this.usualRps) {
      if (nowMs >= this.attackUntil) this.stats.inc(this.attacksDetected);
      this.attackUntil = nowMs + ua.durationMs;
    } else if (nowMs >= this.attackUntil) {
      // The usual rate learns only outside an attack.
      const a = <f64>(nowMs - last) / <f64>this.cfg.behaviour.longWindowMs;
      this.usualRps = this.rateSinceMs == last ? rps : this.usualRps + (a < 1 ? a : 1) * (rps - this.usualRps);
    }
    this.stats.set(this.underAttackGauge, this.underAttack(nowMs) ? 1 : 0);
  }

  onTick(nowMs: i64): void {
    this.watchRate(nowMs);
    if (this.envoySecret.length > 0) this.settleEnvoySecret();
    this.ipRecords.flush(nowMs);
    const netRecords = this.netRecords;
    if (netRecords !== null) netRecords.flush(nowMs);
    const acctRecords = this.accountRecords;
    if (acctRecords !== null) acctRecords.flush(nowMs);
    const fleet = this.fleet;
    if (fleet !== null) {
      fleet.send();
      this.syncFleetStats(fleet);
    }
    if (nowMs - this.lastSweepMs < SWEEP_MS && nowMs >= this.lastSweepMs) return;
    this.lastSweepMs = nowMs;
    this.ipTable.sweep(nowMs, SWEEP_BATCH);
    const acct = this.accountTable;
    if (acct !== null) acct.sweep(nowMs, SWEEP_BATCH);
    const netTable = this.netTable;
    if (netTable !== null) netTable.sweep(nowMs, SWEEP_BATCH);
  }
}
