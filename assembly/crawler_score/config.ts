// crawler_score configuration, validated and compiled once.
import { readClientSource } from "../common/request/client_ip";
import { overBudget, tableBytes } from "../common/lib/memory_budget";
import { fmix32, fnv1a, FNV_OFFSET } from "../common/lib/hash";
import { ConfigErrors, ObjReader, readConfigRoot } from "../common/lib/config";
import { CidrSet } from "../common/lib/cidr_set";
import { writableHeaderProblem } from "../common/request/header_names";
import { ChallengeSpec, readChallenge } from "./challenge";
import { BUDGET_PAYLOAD } from "./clearance_budget";
import { ClientIdSpec, readClientId } from "./client_id";
import { FleetSpec } from "./fleet";
import { ACTIVITY_PAYLOAD, AgentLists, BehaviourSpec, DEFAULT_WEIGHTS, encodeAll, SIGNAL_NAMES } from "./signals";

export class GoodBot {
  name: string = "";
  /** Lower-case user-agent substring, and its bytes. */
  agent: string = "";
  agentBytes: ArrayBuffer = new ArrayBuffer(0);
  cidrs: CidrSet = new CidrSet();
}

export class Reply {
  status: i32 = 0;
  body: string = "";
}

/** Behaviour per network: page views of all its addresses, judged at thresholds of their own. */
export class NetworkSpec {
  enabled: bool = true;
  ipv4Prefix: i32 = 24;
  ipv6Prefix: i32 = 56;
  maxNetworks: i32 = 2500;
  behaviour: BehaviourSpec = networkBehaviour();
}

/** A network's defaults: what a busy office or NAT does stays under them (docs/crawler_score.md). */
function networkBehaviour(): BehaviourSpec {
  const s = new BehaviourSpec();
  s.rateThreshold = 1e6; // a network's rate alone says nothing
  s.requestRateThreshold = 1e7;
  s.spreadMinRequests = 80;
  s.enumerationRun = 20; // one person paging through a gallery makes a short run
  s.spreadRatio = 0.8;
  s.longDistinctPages = 600;
  s.churnMinIds = 1 << 30;
  return s;
}

/** What a client class gets at least on a page view: allow (its score decides), tag, challenge or block. */
export const ACT_ALLOW = 0;
export const ACT_TAG = 1;
export const ACT_CHALLENGE = 2;
export const ACT_BLOCK = 3;
const ACTS = ["allow", "tag", "challenge", "block"];

/**
 * A policy per client class, applied to page views (Anubis-style, in words). Verified good bots pass before
 * any of this; impostors get `unverified_bots`. On `api_prefixes` paths, `api` replaces the class's action,
 * so an API's programs are not sent a challenge for being programs.
 */
export class PolicySpec {
  tools: i32 = ACT_CHALLENGE;
  headless: i32 = ACT_CHALLENGE;
  declaredBots: i32 = ACT_TAG;
  browsers: i32 = ACT_ALLOW;
  api: i32 = ACT_ALLOW;
}

function readAct(r: ObjReader, key: string, def: i32): i32 {
  return ACTS.indexOf(r.oneOf(key, ACTS[def], ACTS));
}

/**
 * Under-attack mode: every page view without a valid clearance is challenged (feeds and API paths
 * excepted). On until `untilMs` (graywall-control's switch), or by itself for `durationMs` when the
 * site-wide request rate exceeds `multiple` times its usual rate and `minRps`.
 */
export class UnderAttackSpec {
  untilMs: i64 = 0;
  auto: bool = true;
  multiple: f64 = 5;
  minRps: f64 = 50;
  durationMs: i64 = 900000;
}

export class CrawlerConfig {
  weights: i32[] = DEFAULT_WEIGHTS.slice(0);
  lists: AgentLists = new AgentLists();
  behaviour: BehaviourSpec = new BehaviourSpec();
  honeypots: string[] = [];
  /** The honeypot paths' bytes, for the per-request match. */
  honeypotBytes: ArrayBuffer[] = [];
  goodBots: GoodBot[] = [];
  tagAt: i32 = 30;
  challengeAt: i32 = 80;
  blockAt: i32 = 95;
  scoreHeader: string = "x-graywall-bot-score";
  signalsHeader: string = "";
  challenge: ChallengeSpec = new ChallengeSpec();
  clientId: ClientIdSpec = new ClientIdSpec();
  block: Reply = new Reply();
  /** Where the client address comes from (common/request/client_ip.ts readClientSource). */
  clientSource: i32 = 0;
  /** Account key: a header or cookie naming the user, tracked beside the IP when present. */
  accountHeader: string = "";
  accountCookie: string = "";
  maxClients: i32 = 10000;
  network: NetworkSpec = new NetworkSpec();
  underAttack: UnderAttackSpec = new UnderAttackSpec();
  policy: PolicySpec = new PolicySpec();
  /** Path prefixes of an API: never sent a challenge page, exempt from under-attack mode. */
  apiPrefixes: string[] = ["/api/"];
  /** The score a declared good bot from outside its ranges gets at least: the block, challenge or tag threshold. */
  unverifiedBots: string = "block";
  /** Counts that add up across a fleet (fleet.ts); off without a cluster. */
  fleet: FleetSpec = new FleetSpec();
}

function readReply(r: ObjReader | null, status: i32, body: string): Reply {
  const out = new Reply();
  out.status = status;
  out.body = body;
  if (r === null) return out;
  out.status = <i32>r.int("status", status, 200, 599);
  out.body = r.str("body", body);
  r.done();
  return out;
}

function lowerList(r: ObjReader, key: string, def: string[]): string[] {
  if (!r.has(key)) return def;
  const l = r.strList(key, MAX_AGENT_ENTRIES);
  for (let i = 0; i < l.length; i++) l[i] = l[i].toLowerCase();
  return l;
}

/** Documented maximums (docs/crawler_score.md): each list is scanned or compiled per configuration. */
export const MAX_AGENT_ENTRIES = 1000;
export const MAX_HONEYPOTS = 100;
export const MAX_GOOD_BOTS = 100;
export const MAX_GOOD_BOT_CIDRS = 10000;

export function compileCrawlerConfig(src: string, errors: ConfigErrors): CrawlerConfig | null {
  const r = readConfigRoot(src, errors);
  if (r === null) return null;
  return readCrawlerConfig(r);
}

/** Compiles the document `r` reads (the whole config, or the crawler_score section of graywall's). */
export function readCrawlerConfig(r: ObjReader): CrawlerConfig | null {
  const errors = r.errors;
  const cfg = new CrawlerConfig();

  const w = r.obj("weights");
  if (w !== null) {
    for (let i = 0; i < SIGNAL_NAMES.length; i++) cfg.weights[i] = <i32>w.int(SIGNAL_NAMES[i], DEFAULT_WEIGHTS[i], 0, 100);
    w.done();
  }
  const t = r.obj("thresholds");
  if (t !== null) {
    cfg.tagAt = <i32>t.int("tag", cfg.tagAt, 1, 101);
    cfg.challengeAt = <i32>t.int("challenge", cfg.challengeAt, 1, 101);
    cfg.blockAt = <i32>t.int("block", cfg.blockAt, 1, 101);
    t.done();
    if (!(cfg.tagAt <= cfg.challengeAt && cfg.challengeAt <= cfg.blockAt)) errors.add(r.at("thresholds"), "must satisfy tag <= challenge <= block (101 = never)");
  }
  const a = r.obj("user_agents");
  if (a !== null) {
    cfg.lists.tools = lowerList(a, "tools", cfg.lists.tools);
    cfg.lists.headless = lowerList(a, "headless", cfg.lists.headless);
    cfg.lists.bots = lowerList(a, "bots", cfg.lists.bots);
    a.done();
  }
  cfg.lists.compile();
  const b = r.obj("behaviour");
  if (b !== null) {
    const s = cfg.behaviour;
    s.windowMs = b.int("window_ms", s.windowMs, 1000, 3600000);
    s.rateThreshold = b.num("rate_threshold", s.rateThreshold, 1, 1e6);
    s.spreadMinRequests = <i32>b.int("spread_min_requests", s.spreadMinRequests, 2, 100000);
    s.spreadRatio = b.num("spread_ratio", s.spreadRatio, 0.01, 1);
    s.requestRateThreshold = b.num("request_rate_threshold", s.requestRateThreshold, 1, 1e7);
    s.enumerationRun = <i32>b.int("enumeration_run", s.enumerationRun, 2, 1000);
    s.enumerationMaxStep = <i32>b.int("enumeration_max_step", s.enumerationMaxStep, 1, 1000);
    s.sustainedWindows = <i32>b.int("sustained_windows", s.sustainedWindows, 1, 1000);
    s.honeypotTtlMs = b.int("honeypot_ttl_ms", s.honeypotTtlMs, 0, 86400000);
    s.longWindowMs = b.int("long_window_ms", s.longWindowMs, 10000, 86400000);
    s.longDistinctPages = <i32>b.int("long_distinct_pages", s.longDistinctPages, 2, 100000);
    s.churnMinIds = <i32>b.int("churn_min_ids", s.churnMinIds, 2, 100000);
    s.churnReturnRatio = b.num("churn_return_ratio", s.churnReturnRatio, 0, 1);
    b.done();
  }
  cfg.honeypots = r.strList("honeypot_paths", MAX_HONEYPOTS);
  for (let i = 0; i < cfg.honeypots.length; i++) {
    const at = r.at("honeypot_paths[" + i.toString() + "]");
    const h = cfg.honeypots[i];
    if (!h.startsWith("/")) errors.add(at, "must start with '/'");
    // A honeypot is a prefix: "/" (or "/?...") would mark every visitor.
    else if (h.length < 2 || h.charCodeAt(1) == 0x3f || h.charCodeAt(1) == 0x23) errors.add(at, "covers every page: a honeypot must be a path no person visits, such as /wp-admin");
  }
  cfg.honeypotBytes = encodeAll(cfg.honeypots);
  let epoch = fnv1a(FNV_OFFSET, cfg.behaviour.honeypotTtlMs.toString());
  for (let i = 0; i < cfg.honeypots.length; i++) epoch = fnv1a(fnv1a(epoch, "\u0000"), cfg.honeypots[i]);
  cfg.behaviour.honeypotEpoch = fmix32(epoch);
  const bots = r.objList("good_bots", MAX_GOOD_BOTS);
  for (let i = 0; i < bots.length; i++) {
    const g = new GoodBot();
    g.name = bots[i].requiredStr("name");
    g.agent = bots[i].requiredStr("user_agent_contains").toLowerCase();
    g.agentBytes = String.UTF8.encode(g.agent);
    const cidrs = bots[i].strList("cidrs", MAX_GOOD_BOT_CIDRS);
    if (cidrs.length == 0) bots[i].errors.add(bots[i].at("cidrs"), "must list at least one CIDR (a user agent alone is trivially forged)");
    for (let k = 0; k < cidrs.length; k++) {
      if (!g.cidrs.add(cidrs[k])) bots[i].errors.add(bots[i].at("cidrs") + "[" + k.toString() + "]", "invalid IP or CIDR '" + cidrs[k] + "'");
    }
    // Built now, so no request pays for it.
    g.cidrs.seal();
    bots[i].done();
    cfg.goodBots.push(g);
  }
  cfg.unverifiedBots = r.oneOf("unverified_bots", "block", ["block", "challenge", "tag"]);
  cfg.scoreHeader = r.str("score_header", cfg.scoreHeader).toLowerCase();
  const score = writableHeaderProblem(cfg.scoreHeader);
  if (score.length > 0) errors.add(r.at("score_header"), score);
  cfg.signalsHeader = r.str("signals_header", "").toLowerCase();
  const signals = writableHeaderProblem(cfg.signalsHeader);
  if (cfg.signalsHeader.length > 0 && signals.length > 0) errors.add(r.at("signals_header"), signals);
  cfg.challenge = readChallenge(r.obj("challenge"));
  cfg.clientId = readClientId(r.obj("client_id"));
  cfg.block = readReply(r.obj("block"), 403, "forbidden\n");
  cfg.clientSource = readClientSource(r);
  const acct = r.obj("account");
  if (acct !== null) {
    cfg.accountHeader = acct.str("header", "").toLowerCase();
    cfg.accountCookie = acct.str("cookie", "");
    if ((cfg.accountHeader.length > 0) == (cfg.accountCookie.length > 0)) acct.errors.add(acct.path, "needs exactly one of header, cookie");
    acct.done();
  }
  cfg.maxClients = <i32>r.int("max_clients", 10000, 1, 200000);
  const pol = r.obj("policy");
  if (pol !== null) {
    const p = cfg.policy;
    p.tools = readAct(pol, "tools", p.tools);
    p.headless = readAct(pol, "headless", p.headless);
    p.declaredBots = readAct(pol, "declared_bots", p.declaredBots);
    p.browsers = readAct(pol, "browsers", p.browsers);
    p.api = readAct(pol, "api", p.api);
    pol.done();
  }
  const u = r.obj("under_attack");
  if (u !== null) {
    const ua = cfg.underAttack;
    ua.untilMs = u.int("until_ms", 0, 0, 9007199254740991);
    ua.auto = u.bool("auto", true);
    ua.multiple = u.num("multiple", ua.multiple, 1.5, 1000);
    ua.minRps = u.num("min_rps", ua.minRps, 1, 1e7);
    ua.durationMs = u.int("duration_ms", ua.durationMs, 10000, 86400000);
    u.done();
  }
  if (r.has("api_prefixes")) {
    cfg.apiPrefixes = r.strList("api_prefixes", 100);
    for (let i = 0; i < cfg.apiPrefixes.length; i++) {
      if (!cfg.apiPrefixes[i].startsWith("/") || cfg.apiPrefixes[i].length < 2) errors.add(r.at("api_prefixes[" + i.toString() + "]"), "must be a path prefix other than '/'");
    }
  }
  const n = r.obj("network");
  if (n !== null) {
    const net = cfg.network;
    net.enabled = n.bool("enabled", true);
    net.ipv4Prefix = <i32>n.int("ipv4_prefix", net.ipv4Prefix, 8, 32);
    net.ipv6Prefix = <i32>n.int("ipv6_prefix", net.ipv6Prefix, 16, 128);
    net.maxNetworks = <i32>n.int("max_networks", net.maxNetworks, 1, 100000);
    const s = net.behaviour;
    s.spreadMinRequests = <i32>n.int("spread_min_requests", s.spreadMinRequests, 2, 100000);
    s.spreadRatio = n.num("spread_ratio", s.spreadRatio, 0.01, 1);
    s.longDistinctPages = <i32>n.int("long_distinct_pages", s.longDistinctPages, 2, 1000000);
    s.enumerationRun = <i32>n.int("enumeration_run", s.enumerationRun, 2, 1000);
    n.done();
  }
  const fl = r.obj("fleet");
  if (fl !== null) {
    cfg.fleet.cluster = fl.requiredStr("cluster");
    cfg.fleet.timeoutMs = <i32>fl.int("timeout_ms", cfg.fleet.timeoutMs, 50, 10000);
    fl.done();
  }
  const nb = cfg.network.behaviour;
  const cb = cfg.behaviour;
  nb.windowMs = cb.windowMs;
  nb.longWindowMs = cb.longWindowMs;
  nb.enumerationMaxStep = cb.enumerationMaxStep;
  nb.sustainedWindows = cb.sustainedWindows;
  r.done();
  const budget = overBudget(crawlerTableBytes(cfg));
  if (budget.length > 0) errors.add(r.at("max_clients"), budget);
  if (!errors.ok) return null;
  return cfg;
}

/** Estimated shared memory of the client tables (by address, and by account when configured). */
export function crawlerTableBytes(cfg: CrawlerConfig): i64 {
  const tables: i64 = cfg.accountHeader.length > 0 || cfg.accountCookie.length > 0 ? 2 : 1;
  const networks: i64 = cfg.network.enabled ? <i64>cfg.network.maxNetworks : 0;
  const clearances: i64 = cfg.challenge.enabled ? tableBytes(<i64>budgetSlots(cfg), BUDGET_PAYLOAD) : 0;
  return tableBytes(tables * <i64>cfg.maxClients + networks, ACTIVITY_PAYLOAD) + clearances;
}

/** Clearance budgets kept at once: one per four client records (only clients that score for a challenge hold one). */
export function budgetSlots(cfg: CrawlerConfig): i32 {
  return cfg.maxClients / 4 > 100 ? cfg.maxClients / 4 : 100;
}

/** The least score of an unverified declared bot under this config. */
export function impostorScore(cfg: CrawlerConfig): i32 {
  if (cfg.unverifiedBots == "tag") return cfg.tagAt;
  if (cfg.unverifiedBots == "challenge") return cfg.challengeAt;
  return cfg.blockAt;
}
