// crawler_score: scores each client from its headers and recent behaviour; tags, challenges or blocks.
export * from "../common/exports";
import { registerFilter, RootFilter, StreamFilter, HeadersStatus } from "../common/filter";
import {
  MapType, getHeaderEncoded, sendLocalResponse, defineMetric, incrementMetric, MetricType, nowMillis,
  setTickPeriod, replaceHeader, removeHeader,
} from "../common/host";
import { ConfigErrors } from "../common/config";
import { IpAddr, ipKey } from "../common/ip";
import { COOKIE_KEY, PATH_KEY, USER_AGENT_KEY, hostClientIp } from "../common/request";
import { findCookie, pathOnly } from "../common/http";
import { SlotTable, UpdateStatus } from "../common/slot_table";
import { hostStore } from "../common/host_store";
import { compileCrawlerConfig, CrawlerConfig } from "./config";
import { ActivityUpdate, ACTIVITY_PAYLOAD, HeaderFacts, headerSignals, pathFacts, score, signalList } from "./signals";

const ROOT_ID = "crawler_score";
const SWEEP_BATCH = 2000;

const ACCEPT_KEY = String.UTF8.encode("accept");
const ACCEPT_LANGUAGE_KEY = String.UTF8.encode("accept-language");
const ACCEPT_ENCODING_KEY = String.UTF8.encode("accept-encoding");
const SEC_CH_UA_KEY = String.UTF8.encode("sec-ch-ua");
const SEC_FETCH_MODE_KEY = String.UTF8.encode("sec-fetch-mode");

class Compiled {
  ipTable: SlotTable;
  accountTable: SlotTable | null = null;
  scoreKey: ArrayBuffer;
  signalsKey: ArrayBuffer;
  accountKey: ArrayBuffer;
  activity: ActivityUpdate = new ActivityUpdate();
  passed: u32 = defineMetric(MetricType.Counter, "graywall.crawler_score.passed");
  tagged: u32 = defineMetric(MetricType.Counter, "graywall.crawler_score.tagged");
  challenged: u32 = defineMetric(MetricType.Counter, "graywall.crawler_score.challenged");
  blocked: u32 = defineMetric(MetricType.Counter, "graywall.crawler_score.blocked");
  goodBot: u32 = defineMetric(MetricType.Counter, "graywall.crawler_score.good_bot");

  constructor(public cfg: CrawlerConfig) {
    const b = cfg.behaviour;
    // Keep a record at least as long as anything in it matters: two windows, or a honeypot mark.
    const idle = b.honeypotTtlMs > 2 * b.windowMs ? b.honeypotTtlMs : 2 * b.windowMs;
    this.ipTable = new SlotTable(hostStore, "cs.ip", cfg.maxClients, ACTIVITY_PAYLOAD, idle);
    if (cfg.accountHeader.length > 0 || cfg.accountCookie.length > 0) {
      this.accountTable = new SlotTable(hostStore, "cs.account", cfg.maxClients, ACTIVITY_PAYLOAD, idle);
    }
    this.activity.spec = b;
    this.scoreKey = String.UTF8.encode(cfg.scoreHeader);
    this.signalsKey = String.UTF8.encode(cfg.signalsHeader);
    this.accountKey = String.UTF8.encode(cfg.accountHeader);
  }
}

class CrawlerRoot extends RootFilter {
  c: Compiled | null = null;

  configure(config: string): string | null {
    const errors = new ConfigErrors();
    const cfg = compileCrawlerConfig(config, errors);
    if (cfg === null) return errors.summary();
    const c = new Compiled(cfg);
    c.ipTable.ensureSlots();
    const acct = c.accountTable;
    if (acct !== null) acct.ensureSlots();
    this.c = c;
    setTickPeriod(10000);
    return null;
  }

  onTick(): void {
    const c = this.c;
    if (c === null) return;
    const now = nowMillis();
    c.ipTable.sweep(now, SWEEP_BATCH);
    const acct = c.accountTable;
    if (acct !== null) acct.sweep(now, SWEEP_BATCH);
  }

  newStream(): StreamFilter {
    const c = this.c;
    if (c === null) return new StreamFilter();
    return new CrawlerStream(c);
  }
}

const facts = new HeaderFacts();
const clientIp = new IpAddr();

class CrawlerStream extends StreamFilter {
  signals: string = "";

  constructor(public c: Compiled) { super(); }

  onRequestHeaders(headerCount: u32, endOfStream: bool): HeadersStatus {
    const c = this.c;
    const cfg = c.cfg;
    // Upstreams trust these headers; a client must not be able to send its own.
    removeHeader(MapType.RequestHeaders, c.scoreKey);
    if (cfg.signalsHeader.length > 0) removeHeader(MapType.RequestHeaders, c.signalsKey);

    facts.userAgent = getHeaderEncoded(MapType.RequestHeaders, USER_AGENT_KEY);
    const haveIp = hostClientIp(cfg.xffTrustedHops, clientIp);
    const ua = facts.userAgent;
    if (haveIp && ua !== null && cfg.goodBots.length > 0) {
      const lower = ua.toLowerCase();
      for (let i = 0; i < cfg.goodBots.length; i++) {
        const g = cfg.goodBots[i];
        if (lower.includes(g.agent) && g.cidrs.contains(clientIp)) {
          incrementMetric(c.goodBot);
          return HeadersStatus.Continue;
        }
      }
    }
    facts.accept = getHeaderEncoded(MapType.RequestHeaders, ACCEPT_KEY);
    facts.acceptLanguage = getHeaderEncoded(MapType.RequestHeaders, ACCEPT_LANGUAGE_KEY);
    facts.acceptEncoding = getHeaderEncoded(MapType.RequestHeaders, ACCEPT_ENCODING_KEY);
    facts.secChUa = getHeaderEncoded(MapType.RequestHeaders, SEC_CH_UA_KEY);
    facts.secFetchMode = getHeaderEncoded(MapType.RequestHeaders, SEC_FETCH_MODE_KEY);
    let bits = headerSignals(facts, cfg.lists);

    let path = getHeaderEncoded(MapType.RequestHeaders, PATH_KEY);
    if (path === null) path = "/";
    pathFacts(pathOnly(path), cfg.honeypots, c.activity.facts);
    const now = nowMillis();
    if (haveIp && c.ipTable.update(ipKey(clientIp), now, c.activity) == UpdateStatus.Updated) bits |= c.activity.bits;
    const acctTable = c.accountTable;
    if (acctTable !== null) {
      const account = this.accountOf();
      if (account !== null && account.length > 0 && acctTable.update(account, now, c.activity) == UpdateStatus.Updated) {
        bits |= c.activity.bits;
      }
    }

    const s = score(bits, cfg.weights);
    if (cfg.signalsHeader.length > 0) this.signals = signalList(bits);
    if (s >= cfg.blockAt) {
      incrementMetric(c.blocked);
      return this.reply(cfg.block.status, cfg.block.body, s);
    }
    if (s >= cfg.challengeAt) {
      incrementMetric(c.challenged);
      return this.reply(cfg.challenge.status, cfg.challenge.body, s);
    }
    if (s >= cfg.tagAt) {
      incrementMetric(c.tagged);
      replaceHeader(MapType.RequestHeaders, c.scoreKey, s.toString());
    } else {
      incrementMetric(c.passed);
    }
    if (cfg.signalsHeader.length > 0) replaceHeader(MapType.RequestHeaders, c.signalsKey, this.signals);
    return HeadersStatus.Continue;
  }

  accountOf(): string | null {
    const cfg = this.c.cfg;
    if (cfg.accountHeader.length > 0) return getHeaderEncoded(MapType.RequestHeaders, this.c.accountKey);
    const cookies = getHeaderEncoded(MapType.RequestHeaders, COOKIE_KEY);
    if (cookies === null) return null;
    return findCookie(cookies, cfg.accountCookie);
  }

  reply(status: i32, body: string, s: i32): HeadersStatus {
    const cfg = this.c.cfg;
    const headers = ["content-type", "text/plain", cfg.scoreHeader, s.toString()];
    if (cfg.signalsHeader.length > 0) {
      headers.push(cfg.signalsHeader);
      headers.push(this.signals);
    }
    sendLocalResponse(<u32>status, "graywall_crawler_score", body, headers);
    return HeadersStatus.StopIteration;
  }

  onResponseHeaders(headerCount: u32, endOfStream: bool): HeadersStatus {
    if (this.c.cfg.signalsHeader.length > 0 && this.signals.length > 0) {
      replaceHeader(MapType.ResponseHeaders, this.c.signalsKey, this.signals);
    }
    return HeadersStatus.Continue;
  }
}

registerFilter(ROOT_ID, (): RootFilter => new CrawlerRoot(ROOT_ID));
