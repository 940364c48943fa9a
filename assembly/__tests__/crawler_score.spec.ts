import { ConfigErrors } from "../common/lib/config";
import { SlotTable, UpdateStatus } from "../common/lib/slot_table";
import { compileCrawlerConfig } from "../crawler_score/config";
import {
  ActivityUpdate, ACTIVITY_PAYLOAD, AgentLists, HeaderFacts, headerSignals, pathFacts, PathFacts, score, signalList,
  DEFAULT_WEIGHTS, UA_EMPTY, UA_TOOL, UA_HEADLESS, UA_BOT, NO_ACCEPT, NO_ACCEPT_LANGUAGE, NO_ACCEPT_ENCODING,
  NO_CLIENT_HINTS, NO_FETCH_METADATA, HIGH_RATE, PATH_SPREAD, ID_ENUMERATION, HONEYPOT, SUSTAINED_SPREAD,
} from "../crawler_score/signals";
import { MapStore } from "./map_store";
import { SYNC_MS, SYNC_REQUESTS, WorkerRecords } from "../crawler_score/worker_records";
import { RequestSnapshot } from "../common/request/snapshot";
import { requestHeaderSignals, requestIsAsset } from "../crawler_score/signals";
import { CrawlerStage } from "../crawler_score/stage";
import { Outcome } from "../common/request/stage";
import { MemoryStats } from "./memory_stats";

const lists = new AgentLists();
const CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

function browser(): HeaderFacts {
  const h = new HeaderFacts();
  h.userAgent = CHROME;
  h.accept = "text/html";
  h.acceptLanguage = "en-US";
  h.acceptEncoding = "gzip, br";
  h.secChUa = '"Chromium";v="131"';
  h.secFetchMode = "navigate";
  return h;
}

describe("header signals", () => {
  it("a full browser header set fires nothing", () => {
    expect(headerSignals(browser(), lists)).toBe(0);
  });
  it("user agents: empty, tools, headless, declared bots", () => {
    const h = browser();
    h.userAgent = null;
    expect(headerSignals(h, lists) & UA_EMPTY).toBe(UA_EMPTY);
    h.userAgent = "curl/8.4.0";
    expect(headerSignals(h, lists) & UA_TOOL).toBe(UA_TOOL);
    h.userAgent = "python-requests/2.31.0";
    expect(headerSignals(h, lists) & UA_TOOL).toBe(UA_TOOL);
    h.userAgent = "Go-http-client/1.1";
    expect(headerSignals(h, lists) & UA_TOOL).toBe(UA_TOOL);
    h.userAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0 Safari/537.36";
    expect(headerSignals(h, lists) & UA_HEADLESS).toBe(UA_HEADLESS);
    h.userAgent = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
    expect(headerSignals(h, lists) & UA_BOT).toBe(UA_BOT);
  });
  it("missing accept headers", () => {
    const h = browser();
    h.accept = null;
    h.acceptLanguage = "";
    h.acceptEncoding = null;
    expect(headerSignals(h, lists)).toBe(NO_ACCEPT | NO_ACCEPT_LANGUAGE | NO_ACCEPT_ENCODING);
  });
  it("a browser user agent without client hints or fetch metadata", () => {
    const h = browser();
    h.secChUa = null;
    expect(headerSignals(h, lists)).toBe(NO_CLIENT_HINTS);
    h.secFetchMode = null;
    expect(headerSignals(h, lists)).toBe(NO_CLIENT_HINTS | NO_FETCH_METADATA);
    // Firefox sends no client hints: only fetch metadata is expected.
    h.userAgent = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
    expect(headerSignals(h, lists)).toBe(NO_FETCH_METADATA);
  });
  it("expects fetch metadata and client hints only over HTTPS, and only from versions that send them", () => {
    const h = browser();
    h.secChUa = null;
    h.secFetchMode = null;
    h.https = false;
    expect(headerSignals(h, lists)).toBe(0);
    h.https = true;
    h.userAgent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36";
    expect(headerSignals(h, lists)).toBe(0);
    h.userAgent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/80.0.3987.149 Safari/537.36";
    expect(headerSignals(h, lists)).toBe(NO_FETCH_METADATA);
    h.userAgent = "Mozilla/5.0 (Windows NT 10.0; rv:78.0) Gecko/20100101 Firefox/78.0";
    expect(headerSignals(h, lists)).toBe(0);
    h.userAgent = "Mozilla/5.0 (iPhone; CPU iPhone OS 16_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.3 Mobile/15E148 Safari/604.1";
    expect(headerSignals(h, lists)).toBe(0);
    h.userAgent = "Mozilla/5.0 (iPhone; CPU iPhone OS 16_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.4 Mobile/15E148 Safari/604.1";
    expect(headerSignals(h, lists)).toBe(NO_FETCH_METADATA);
  });
  it("HTTPS as the gateway saw it: :scheme, or x-forwarded-proto from a TLS-terminating hop", () => {
    const plain = RequestSnapshot.of([":scheme", "http", "user-agent", CHROME, "accept", "text/html", "accept-language", "en", "accept-encoding", "gzip"]);
    expect(requestHeaderSignals(plain, lists)).toBe(0);
    const forwarded = RequestSnapshot.of([":scheme", "http", "x-forwarded-proto", "https", "user-agent", CHROME, "accept", "text/html", "accept-language", "en", "accept-encoding", "gzip"]);
    expect(requestHeaderSignals(forwarded, lists)).toBe(NO_CLIENT_HINTS | NO_FETCH_METADATA);
  });
  it("no signal from an ordinary word in a device or app name", () => {
    const h = browser();
    h.userAgent = "Mozilla/5.0 (Linux; Android 10; Cubot X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36";
    expect(headerSignals(h, lists)).toBe(0);
    h.userAgent = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 CamScanner/6.50";
    expect(headerSignals(h, lists) & (UA_TOOL | UA_HEADLESS | UA_BOT)).toBe(0);
    h.userAgent = "MyShop/3.2 (iPhone; iOS 17.1) CFNetwork/1474 Darwin/23.1.0";
    expect(headerSignals(h, lists) & (UA_TOOL | UA_HEADLESS | UA_BOT)).toBe(0);
  });
  it("one user-agent class: a tool is not also counted as a known bot", () => {
    const h = browser();
    h.userAgent = "curl/8.4.0";
    expect(headerSignals(h, lists) & (UA_TOOL | UA_HEADLESS | UA_BOT)).toBe(UA_TOOL);
  });
});

describe("score", () => {
  it("adds weights and caps at 100", () => {
    expect(score(UA_TOOL | NO_ACCEPT_LANGUAGE, DEFAULT_WEIGHTS)).toBe(60);
    expect(score(HONEYPOT | UA_TOOL, DEFAULT_WEIGHTS)).toBe(100);
    expect(score(0, DEFAULT_WEIGHTS)).toBe(0);
  });
  it("names the signals that fired", () => {
    expect(signalList(UA_TOOL | ID_ENUMERATION)).toBe("ua_tool,id_enumeration");
  });
});

const facts = new PathFacts();

/** A fresh table of behaviour records over an in-memory store. */
function activityTable(): SlotTable {
  const t = new SlotTable(new MapStore(), "c", 16, ACTIVITY_PAYLOAD, 60000);
  return t;
}

describe("behaviour over a shared record", () => {
  it("detects sequential ID enumeration, and only that", () => {
    const t = activityTable();
    const u = new ActivityUpdate();
    for (let i = 0; i < 5; i++) {
      pathFacts("/item/" + (1000 + i).toString(), [], u.facts);
      expect(t.update("scraper", 1000 * i, u)).toBe(UpdateStatus.Updated);
      expect((u.bits & ID_ENUMERATION) != 0).toBe(i >= 4);
    }
    // Other pages neither break the run nor carry the flag.
    pathFacts("/cart", [], u.facts);
    t.update("scraper", 5500, u);
    expect(u.bits & ID_ENUMERATION).toBe(0);
    pathFacts("/item/1005", [], u.facts);
    t.update("scraper", 5600, u);
    expect(u.bits & ID_ENUMERATION).toBe(ID_ENUMERATION);
    // A different prefix starts another run.
    pathFacts("/user/1006", [], u.facts);
    t.update("scraper", 6000, u);
    expect(u.bits & ID_ENUMERATION).toBe(0);
    // Another client is unaffected.
    pathFacts("/item/1005", [], u.facts);
    t.update("human", 6000, u);
    expect(u.bits & ID_ENUMERATION).toBe(0);
  });

  it("near-sequential runs count; going back and forth between two IDs does not", () => {
    const t = activityTable();
    const u = new ActivityUpdate();
    const gaps = [1000, 1002, 1003, 1006, 1007];
    for (let i = 0; i < gaps.length; i++) {
      pathFacts("/p/" + gaps[i].toString(), [], u.facts);
      t.update("skipper", 1000 * i, u);
    }
    expect(u.bits & ID_ENUMERATION).toBe(ID_ENUMERATION);
    for (let i = 0; i < 12; i++) {
      pathFacts("/p/" + (500 + (i % 2)).toString(), [], u.facts);
      t.update("person", 1000 * i, u);
      expect(u.bits & ID_ENUMERATION).toBe(0);
    }
    // Too large a step, or a change of direction, starts over.
    const mixed = [10, 11, 12, 20, 19, 18];
    for (let i = 0; i < mixed.length; i++) {
      pathFacts("/p/" + mixed[i].toString(), [], u.facts);
      t.update("mixed", 1000 * i, u);
      expect(u.bits & ID_ENUMERATION).toBe(0);
    }
  });

  it("counts a page's assets apart: 40 images are one page view", () => {
    const t = activityTable();
    const u = new ActivityUpdate();
    u.spec.rateThreshold = 5;
    pathFacts("/products/1", [], u.facts);
    t.update("shopper", 0, u);
    for (let i = 0; i < 40; i++) {
      pathFacts("/img/p" + i.toString() + ".webp", [], u.facts);
      expect(u.facts.asset).toBe(true);
      t.update("shopper", 10 + i, u);
      expect(u.bits & (HIGH_RATE | PATH_SPREAD)).toBe(0);
    }
    pathFacts("/products/2", [], u.facts);
    t.update("shopper", 100, u);
    expect(u.rate).toBe(2);
    // Headers mark assets where the path does not.
    expect(requestIsAsset(RequestSnapshot.of(["sec-fetch-dest", "image"]))).toBe(true);
    expect(requestIsAsset(RequestSnapshot.of(["sec-fetch-dest", "document"]))).toBe(false);
    expect(requestIsAsset(RequestSnapshot.of(["sec-fetch-dest", "empty"]))).toBe(false);
    expect(requestIsAsset(RequestSnapshot.of(["accept", "image/avif,image/webp,*/*"]))).toBe(true);
    expect(requestIsAsset(RequestSnapshot.of(["accept", "text/html"]))).toBe(false);
  });

  it("keeps the path spread across a window boundary", () => {
    const t = activityTable();
    const u = new ActivityUpdate();
    u.spec.windowMs = 10000;
    u.spec.rateThreshold = 1000;
    // 5 distinct pages a second: once 20 are seen, every later page is flagged, new window or not.
    for (let i = 0; i < 100; i++) {
      pathFacts("/product/" + (7 * i).toString(), [], u.facts);
      t.update("steady", 200 * i, u);
      if (i >= 19) expect(u.bits & PATH_SPREAD).toBe(PATH_SPREAD, "page " + i.toString());
    }
  });

  it("flags a slow but steady crawl once the spread has held for sustained_windows windows", () => {
    const t = activityTable();
    const u = new ActivityUpdate();
    u.spec.windowMs = 10000;
    let firstAt: i64 = -1;
    // 2.5 distinct pages a second, for a minute.
    for (let i = 0; i < 150; i++) {
      pathFacts("/product/" + ((i * 7919) % 100000).toString(), [], u.facts);
      t.update("slow", 400 * i, u);
      if ((u.bits & SUSTAINED_SPREAD) != 0 && firstAt < 0) firstAt = 400 * i;
    }
    expect(firstAt >= 30000 && firstAt <= 45000).toBe(true, "first at " + firstAt.toString());
    // A reader going back and forth among a few pages never spreads.
    for (let i = 0; i < 150; i++) {
      pathFacts("/product/" + (i % 4).toString(), [], u.facts);
      t.update("reader", 400 * i, u);
      expect(u.bits & (PATH_SPREAD | SUSTAINED_SPREAD)).toBe(0);
    }
  });

  it("estimates the request rate over a sliding window", () => {
    const t = activityTable();
    const u = new ActivityUpdate();
    u.spec.windowMs = 10000;
    u.spec.rateThreshold = 30;
    pathFacts("/", [], u.facts);
    for (let i = 0; i < 31; i++) t.update("fast", 100 + i, u);
    expect(u.bits & HIGH_RATE).toBe(HIGH_RATE);
    // Half a window later, half the previous window still counts.
    t.update("fast", 15100, u);
    expect(u.rate).toBeCloseTo(16.5, 0);
    expect(u.bits & HIGH_RATE).toBe(0);
    // Two windows later, nothing from before counts.
    t.update("fast", 40000, u);
    expect(u.rate).toBe(1);
  });

  it("flags a spread over distinct paths, not a browser revisiting", () => {
    const t = activityTable();
    const u = new ActivityUpdate();
    u.spec.rateThreshold = 1000;
    for (let i = 0; i < 25; i++) {
      pathFacts("/page-" + i.toString(), [], u.facts);
      t.update("spider", 10 * i, u);
    }
    expect(u.bits & PATH_SPREAD).toBe(PATH_SPREAD);
    for (let i = 0; i < 25; i++) {
      pathFacts("/page-" + (i % 3).toString(), [], u.facts);
      t.update("reader", 10 * i, u);
    }
    expect(u.bits & PATH_SPREAD).toBe(0);
  });

  it("remembers a honeypot hit for its TTL", () => {
    const t = activityTable();
    const u = new ActivityUpdate();
    u.spec.honeypotTtlMs = 5000;
    pathFacts("/.env", ["/.env", "/wp-admin"], u.facts);
    expect(u.facts.honeypot).toBe(true);
    t.update("x", 0, u);
    expect(u.bits & HONEYPOT).toBe(HONEYPOT);
    pathFacts("/", ["/.env"], u.facts);
    t.update("x", 4000, u);
    expect(u.bits & HONEYPOT).toBe(HONEYPOT);
    t.update("x", 6000, u);
    expect(u.bits & HONEYPOT).toBe(0);
  });

  it("reads numeric IDs from paths", () => {
    pathFacts("/item/1002", [], facts);
    expect(facts.numericId).toBe(1002);
    pathFacts("/item/1002/", [], facts);
    expect(facts.numericId).toBe(1002);
    pathFacts("/item/abc", [], facts);
    expect(facts.numericId).toBe(-1);
    pathFacts("/", [], facts);
    expect(facts.numericId).toBe(-1);
  });
});

/** A worker's copies over a shared table of 64 records. */
function worker(store: MapStore): WorkerRecords {
  const t = new SlotTable(store, "w", 64, ACTIVITY_PAYLOAD, 60000);
  return new WorkerRecords(t, 10000, 600000, 20000);
}

function key(s: string): ArrayBuffer {
  return String.UTF8.encode(s);
}

describe("behaviour in each worker's copy, synced with the shared record", () => {
  it("a client's pages and assets are counted in the worker's copy, with a round trip every SYNC_REQUESTS or SYNC_MS", () => {
    const store = new MapStore();
    const w = worker(store);
    const u = new ActivityUpdate();
    // Far from every threshold (near one, every request syncs: the next test).
    u.spec.rateThreshold = 1e6;
    u.spec.requestRateThreshold = 1e6;
    const k = key("client");
    const before = store.reads;
    // A sync, SYNC_REQUESTS in the copy, a sync, SYNC_REQUESTS in the copy, a sync.
    for (let i = 0; i < 2 * SYNC_REQUESTS + 3; i++) {
      pathFacts("/page/" + (i % 3 == 0 ? "a" : "b"), [], u.facts);
      expect(w.update(changetype<usize>(k), k.byteLength, 1000, u)).toBe(UpdateStatus.Updated);
    }
    // The first request reads the key's home slot (never used: no key lies beyond it); two later syncs read its own.
    expect(store.reads - before).toBe(1 + 2);
    expect(w.syncs).toBe(3);
    // Once SYNC_MS has passed, the next request syncs again.
    w.update(changetype<usize>(k), k.byteLength, 1000 + SYNC_MS, u);
    expect(w.syncs).toBe(4);
    // ID page views and honeypot hits always go through the shared record.
    pathFacts("/item/7", [], u.facts);
    w.update(changetype<usize>(k), k.byteLength, 1000 + SYNC_MS, u);
    pathFacts("/.env", ["/.env"], u.facts);
    w.update(changetype<usize>(k), k.byteLength, 1000 + SYNC_MS, u);
    expect(w.syncs).toBe(6);
    expect(u.bits & HONEYPOT).toBe(HONEYPOT);
  });

  it("two workers sharing a client lose and double no request, and cross a threshold when one shared record would", () => {
    const store = new MapStore();
    const a = worker(store);
    const b = worker(store);
    const u = new ActivityUpdate();
    u.spec.rateThreshold = 30;
    const k = key("10.0.0.1");
    let firstHigh = -1;
    // 60 page views 20 ms apart, alternating between the workers: an exact count fires high_rate at the 31st.
    for (let i = 0; i < 60; i++) {
      pathFacts("/p/x" + i.toString(), [], u.facts);
      if (i % 2 == 0) a.update(changetype<usize>(k), k.byteLength, 1000 + 20 * i, u);
      else b.update(changetype<usize>(k), k.byteLength, 1000 + 20 * i, u);
      if (firstHigh < 0 && (u.bits & HIGH_RATE) != 0) firstHigh = i + 1;
    }
    // Within half of the threshold each worker syncs every request, so the threshold is judged on the
    // shared count: on time, as with one shared record.
    expect(firstHigh).toBe(31);
    expect(a.syncs + b.syncs).toBeLessThan(60);
    // The tick writes back what is pending; a third worker then sees all 60 (and its own).
    a.flush(1000 + 20 * 60 + SYNC_MS);
    b.flush(1000 + 20 * 60 + SYNC_MS);
    const c = worker(store);
    pathFacts("/p/last", [], u.facts);
    c.update(changetype<usize>(k), k.byteLength, 1000 + 20 * 60 + SYNC_MS, u);
    expect(u.rate).toBe(61);
  });

  it("a key longer than 256 bytes gets no copy: it is synced on every request", () => {
    const store = new MapStore();
    const w = worker(store);
    const u = new ActivityUpdate();
    const k = key("a".repeat(300));
    pathFacts("/", [], u.facts);
    for (let i = 0; i < 3; i++) w.update(changetype<usize>(k), k.byteLength, 1000, u);
    expect(w.syncs).toBe(3);
    expect(w.size).toBe(0);
  });

  it("a honeypot hit on one worker reaches the other at its next sync", () => {
    const store = new MapStore();
    const a = worker(store);
    const b = worker(store);
    const u = new ActivityUpdate();
    const k = key("c-trap");
    pathFacts("/", [], u.facts);
    b.update(changetype<usize>(k), k.byteLength, 1000, u);
    pathFacts("/.env", ["/.env"], u.facts);
    a.update(changetype<usize>(k), k.byteLength, 1010, u);
    expect(u.bits & HONEYPOT).toBe(HONEYPOT);
    pathFacts("/", [], u.facts);
    b.update(changetype<usize>(k), k.byteLength, 1000 + SYNC_MS, u);
    expect(u.bits & HONEYPOT).toBe(HONEYPOT);
  });
});

describe("a honeypot mark across workers", () => {
  it("a request marks a record only when no mark is in force", () => {
    const store = new MapStore();
    const w = worker(store);
    const u = new ActivityUpdate();
    const k = key("c-marks");
    pathFacts("/.env", ["/.env"], u.facts);
    w.update(changetype<usize>(k), k.byteLength, 1000, u);
    expect(u.marked).toBe(true);
    w.update(changetype<usize>(k), k.byteLength, 1010, u);
    expect(u.marked).toBe(false);
    // Once the TTL (600 s by default) has passed since the last hit, a new hit is a new mark.
    w.update(changetype<usize>(k), k.byteLength, 1010 + 600000, u);
    expect(u.marked).toBe(true);
  });

  it("staleAll() makes every copy sync on its client's next request", () => {
    const store = new MapStore();
    const w = worker(store);
    const u = new ActivityUpdate();
    const k = key("c-stale");
    pathFacts("/", [], u.facts);
    w.update(changetype<usize>(k), k.byteLength, 1000, u);
    w.update(changetype<usize>(k), k.byteLength, 1001, u);
    expect(w.syncs).toBe(1);
    w.staleAll();
    w.update(changetype<usize>(k), k.byteLength, 1002, u);
    w.update(changetype<usize>(k), k.byteLength, 1003, u);
    expect(w.syncs).toBe(2);
  });

  it("a client marked on one worker is blocked on the other within a millisecond, well within SYNC_MS", () => {
    const errors = new ConfigErrors();
    const cfg = compileCrawlerConfig('{"honeypot_paths": ["/.env"]}', errors)!;
    const store = new MapStore();
    // Envoy's metrics are process-wide: both workers see one counter.
    const stats = new MemoryStats();
    const a = new CrawlerStage(cfg, store, stats);
    const b = new CrawlerStage(cfg, store, stats);
    const on = (stage: CrawlerStage, path: string, now: i64): Outcome => {
      const r = RequestSnapshot.of([":method", "GET", ":path", path, "user-agent", CHROME, "accept", "text/html", "accept-language", "en",
        "accept-encoding", "gzip", "sec-fetch-mode", "navigate", "sec-fetch-dest", "document", "sec-ch-ua", '"Chromium";v="131"']);
      r.peer = "203.0.113.5:4000";
      r.nowMs = now;
      return stage.onRequest(r, true);
    };
    // Each worker holds a fresh copy of the client.
    expect(on(a, "/", 1000)).toBe(Outcome.Continue);
    expect(on(b, "/", 1001)).toBe(Outcome.Continue);
    expect(on(b, "/", 1002)).toBe(Outcome.Continue);
    expect(b.ipRecords.syncs).toBe(1);
    // Each scored request's score goes into the score histogram: the browser's, then the honeypot's block.
    expect(stats.value("graywall.crawler_score.score")).toBe(<u64>b.lastScore);
    expect(on(a, "/.env/x", 1002)).toBe(Outcome.Reply);
    expect(stats.value("graywall.crawler_score.score")).toBe(<u64>a.lastScore);
    expect(a.lastScore).toBeGreaterThanOrEqual(95);
    expect(stats.value("graywall.crawler_score.honeypot_marks")).toBe(1);
    // b reads the marks counter at most once a millisecond: later in the millisecond of its last read
    // (1002), the mark's, it has not seen it yet.
    expect(on(b, "/", 1002)).toBe(Outcome.Continue);
    expect(b.ipRecords.syncs).toBe(1);
    // 3 ms later, far inside b's SYNC_MS: b syncs because of the mark, and blocks.
    expect(on(b, "/", 1005)).toBe(Outcome.Reply);
    expect(b.lastBits & HONEYPOT).toBe(HONEYPOT);
    // Marked once: the blocked client's later honeypot hits are no new marks.
    on(a, "/.env/y", 1006);
    expect(stats.value("graywall.crawler_score.honeypot_marks")).toBe(1);
  });
});

describe("crawler_score config", () => {
  it("rejects bad configs with the field named", () => {
    const errors = new ConfigErrors();
    expect(compileCrawlerConfig('{"weights": {"ua_tool": 200, "ua_nope": 1}, "thresholds": {"tag": 90, "block": 50},' +
      ' "good_bots": [{"name": "g", "user_agent_contains": "Googlebot", "cidrs": []}], "account": {}}', errors)).toBeNull();
    expect(errors.list[0]).toBe("weights.ua_tool: must be between 0 and 100, got 200");
    expect(errors.list[1]).toBe("weights.ua_nope: unknown field");
    expect(errors.list[2]).toBe("thresholds: must satisfy tag <= challenge <= block (101 = never)");
    expect(errors.list[3]).toBe("good_bots[0].cidrs: must list at least one CIDR (a user agent alone is trivially forged)");
    expect(errors.list[4]).toBe("account: needs exactly one of header, cookie");
  });
});

import { MultiMatcher } from "../common/lib/multi_match";

describe("MultiMatcher", () => {
  it("finds every set with a pattern in the string, case-insensitively, like a naive scan", () => {
    const sets: string[][] = [["curl/", "bot", "ot/"], ["spider", "der"], ["x"], ["abcabd"]];
    const m = new MultiMatcher(sets);
    const probes = ["Mozilla/5.0 curl/8", "GoogleBot", "SpiDer", "nothing here", "abcabcabd", "robot/1", "", "x", "ÄÖÜ bot"];
    for (let i = 0; i < probes.length; i++) {
      let want: u32 = 0;
      const lower = probes[i].toLowerCase();
      for (let s = 0; s < sets.length; s++) {
        for (let k = 0; k < sets[s].length; k++) if (lower.includes(sets[s][k])) want |= <u32>(1 << s);
      }
      expect(m.scan(probes[i])).toBe(want, probes[i]);
    }
  });
});
