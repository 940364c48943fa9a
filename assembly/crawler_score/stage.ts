// crawler_score's decision: header signals plus behaviour per client (id cookie, account or address) in
// sliding windows, kept in shared data and in each worker's copy of it (worker_records.ts), weighted into
// a score that tags, challenges or blocks.
import { findCookie, pathOnly } from "../common/request/http";
import { KeyBuilder } from "../common/request/key_builder";
import { COOKIE, HeaderName, METHOD, PATH, RequestSnapshot, USER_AGENT } from "../common/request/snapshot";
import { IpAddr, ipKey } from "../common/lib/ip";
import { Challenger } from "./challenge";
import { ClientIds } from "./client_id";
import { envoySecret, secretHalf, storedEnvoySecret } from "./envoy_secret";
import { claimSequence, SharedStore, SlotTable, UpdateStatus } from "../common/lib/slot_table";
import { LocalReply, Outcome, Stage, StatSink } from "../common/request/stage";
import { CrawlerConfig, impostorScore } from "./config";
import { WorkerRecords } from "./worker_records";
import { ACCEPT, ActivityUpdate, ACTIVITY_PAYLOAD, BOT_IMPOSTOR, isHttps, pathFacts, requestHeaderSignals, requestIsAsset, score, SEC_FETCH_DEST, SIGNAL_NAMES, signalList } from "./signals";

const SWEEP_BATCH = 2000;
const SWEEP_MS: i64 = 10000;
const DOCUMENT = String.UTF8.encode("document");
const GET = String.UTF8.encode("GET");
const SET_COOKIE = new HeaderName("set-cookie");

/** A page load a browser would render: GET, and fetch metadata saying document or an HTML accept. */
function isNavigation(req: RequestSnapshot): bool {
  const m = req.find(METHOD);
  if (m < 0 || req.valueLength(m) != 3 || !req.valueStartsWith(m, GET)) return false;
  const d = req.find(SEC_FETCH_DEST);
  if (d >= 0) return req.valueLength(d) == 8 && req.valueStartsWith(d, DOCUMENT);
  const a = req.header(ACCEPT);
  return a !== null && a.includes("text/html");
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
  /** Process-wide count of new honeypot marks; a change means some worker's copies are stale. */
  honeypotMarks: u32;
  marksSeen: u64;
  /** Per signal bit: requests it fired on. */
  signalFired: u32[] = [];
  /** Output of the last onRequest, for tests: the score and the signal bits. */
  lastScore: i32 = 0;
  lastBits: u32 = 0;

  constructor(public cfg: CrawlerConfig, store: SharedStore, public stats: StatSink) {
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
    const idle = b.honeypotTtlMs > 2 * b.windowMs ? b.honeypotTtlMs : 2 * b.windowMs;
    const ipTable = new SlotTable(store, "cs.ip", cfg.maxClients, ACTIVITY_PAYLOAD, idle);
    ipTable.ensureSlots();
    this.ipTable = ipTable;
    this.ipRecords = new WorkerRecords(ipTable, b.windowMs, 2 * b.windowMs);
    if (cfg.accountHeader.length > 0 || cfg.accountCookie.length > 0) {
      const t = new SlotTable(store, "cs.account", cfg.maxClients, ACTIVITY_PAYLOAD, idle);
      t.ensureSlots();
      this.accountTable = t;
      this.accountRecords = new WorkerRecords(t, b.windowMs, 2 * b.windowMs);
    }
    this.activity.spec = b;
    this.passed = stats.counter("graywall.crawler_score.passed");
    this.tagged = stats.counter("graywall.crawler_score.tagged");
    this.challenged = stats.counter("graywall.crawler_score.challenged");
    this.blocked = stats.counter("graywall.crawler_score.blocked");
    this.goodBot = stats.counter("graywall.crawler_score.good_bot");
    this.impostorAt = impostorScore(cfg);
    if (clientIds.enabled) clientIds.vmNumber = claimSequence(store, "cs.vm_number");
    this.clientIdIssued = stats.counter("graywall.crawler_score.client_id_issued");
    this.clientIdInvalid = stats.counter("graywall.crawler_score.client_id_invalid");
    this.challengePages = stats.counter("graywall.crawler_score.challenge_page");
    this.clearedCount = stats.counter("graywall.crawler_score.cleared");
    this.clearanceInvalid = stats.counter("graywall.crawler_score.clearance_invalid");
    this.honeypotMarks = stats.counter("graywall.crawler_score.honeypot_marks");
    this.marksSeen = stats.read(this.honeypotMarks);
    for (let i = 0; i < SIGNAL_NAMES.length; i++) this.signalFired.push(stats.counter("graywall.crawler_score.signal." + SIGNAL_NAMES[i]));
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
      const ua = req.header(USER_AGENT);
      if (ua !== null) {
        const lower = ua.toLowerCase();
        for (let i = 0; i < cfg.goodBots.length; i++) {
          const g = cfg.goodBots[i];
          if (!lower.includes(g.agent)) continue;
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

    let path = req.header(PATH);
    if (path === null) path = "/";
    const facts = this.activity.facts;
    pathFacts(pathOnly(path), cfg.honeypots, facts);
    if (!facts.asset) facts.asset = requestIsAsset(req);
    const now = req.nowMs;
    // One record per request: the account's when the request names one
    // (it follows a user across addresses), else the client id's when a valid one comes back (a NAT's
    // browsers each have their own), else the address's (only cookie-less clients are judged by it).
    let clientId: string | null = null;
    if (this.clientIds.enabled) clientId = this.clientIdOf(req);
    const acctRecords = this.accountRecords;
    // A honeypot mark made on any worker blocks its client here from the next request on, not the next sync.
    if (cfg.honeypots.length > 0) {
      const marks = this.stats.read(this.honeypotMarks);
      if (marks != this.marksSeen) {
        this.marksSeen = marks;
        this.ipRecords.staleAll();
        if (acctRecords !== null) acctRecords.staleAll();
      }
    }
    this.activity.marked = false;
    if (acctRecords !== null && this.accountKey(req)) {
      if (acctRecords.update(this.key.ptr, this.key.length, now, this.activity) == UpdateStatus.Updated) bits |= this.activity.bits;
    } else {
      const key = this.key;
      key.reset();
      if (clientId !== null) {
        key.addByte(0x63); // 'c': never an address key
        key.addString(clientId);
      } else if (ip !== null) {
        key.addIp(ip);
      }
      if (key.length > 0 && this.ipRecords.update(key.ptr, key.length, now, this.activity) == UpdateStatus.Updated) bits |= this.activity.bits;
    }

    if (this.activity.marked) this.stats.inc(this.honeypotMarks);
    for (let b = bits, i = 0; b != 0; b >>= 1, i++) if ((b & 1) != 0) this.stats.inc(unchecked(this.signalFired[i]));
    let s = score(bits, cfg.weights);
    if (impostor && s < this.impostorAt) s = this.impostorAt;
    this.lastScore = s;
    this.lastBits = bits;
    if (s >= cfg.blockAt) {
      this.stats.inc(this.blocked);
      req.reply = new LocalReply(<u32>cfg.block.status, "graywall_crawler_score", cfg.block.body, ["content-type", "text/plain"]);
      return Outcome.Reply;
    }
    // A solved challenge lets its client through (tagged) until it expires, unless it scores for block.
    if (s >= cfg.challengeAt && !(this.challenger.enabled && this.cleared(req, ip))) {
      this.stats.inc(this.challenged);
      return this.challenge(req, ip);
    }
    if (s >= cfg.challengeAt) this.stats.inc(this.clearedCount);
    // A page view from a browser without a valid id gets one.
    if (this.clientIds.enabled && clientId === null && !facts.asset && isNavigation(req)) {
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

  /** The request's valid client id, or null (none, forged or expired). */
  clientIdOf(req: RequestSnapshot): string | null {
    const cookies = req.header(COOKIE);
    if (cookies === null) return null;
    const value = findCookie(cookies, this.clientIds.spec.cookie);
    if (value === null) return null;
    const id = this.clientIds.verify(value, req.nowMs / 1000);
    if (id === null) this.stats.inc(this.clientIdInvalid);
    return id;
  }

  /** Whether the request carries a valid clearance for this client. Hashing happens only here. */
  cleared(req: RequestSnapshot, ip: IpAddr | null): bool {
    const cookies = req.header(COOKIE);
    if (cookies === null) return false;
    const value = findCookie(cookies, this.challenger.spec.cookie);
    if (value === null) return false;
    if (this.challenger.verify(value, clientText(ip), userAgentOf(req), req.nowMs / 1000)) return true;
    this.stats.inc(this.clearanceInvalid);
    return false;
  }

  /** The challenge: the proof-of-work page for an HTML navigation (when a secret is set), else a plain reply. */
  challenge(req: RequestSnapshot, ip: IpAddr | null): Outcome {
    const spec = this.challenger.spec;
    if (this.challenger.enabled && isNavigation(req)) {
      this.stats.inc(this.challengePages);
      const page = this.challenger.page(clientText(ip), userAgentOf(req), req.nowMs / 1000);
      req.reply = new LocalReply(<u32>spec.status, "graywall_crawler_challenge", page, ["content-type", "text/html; charset=utf-8", "cache-control", "no-store"]);
      return Outcome.Reply;
    }
    req.reply = new LocalReply(<u32>spec.status, "graywall_crawler_score", spec.body, ["content-type", "text/plain", "retry-after", spec.retryAfterSeconds.toString()]);
    return Outcome.Reply;
  }

  onTick(nowMs: i64): void {
    if (this.envoySecret.length > 0) this.settleEnvoySecret();
    this.ipRecords.flush(nowMs);
    const acctRecords = this.accountRecords;
    if (acctRecords !== null) acctRecords.flush(nowMs);
    if (nowMs - this.lastSweepMs < SWEEP_MS && nowMs >= this.lastSweepMs) return;
    this.lastSweepMs = nowMs;
    this.ipTable.sweep(nowMs, SWEEP_BATCH);
    const acct = this.accountTable;
    if (acct !== null) acct.sweep(nowMs, SWEEP_BATCH);
  }
}
