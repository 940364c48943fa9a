// What a hostile or careless configuration cannot do: take a gateway's memory, slow its compiler
// quadratically, block every visitor with a honeypot, or read a JSON body differently from the upstream.
import { ConfigErrors, readConfigRoot } from "../common/lib/config";
import { lookupJsonPath } from "../common/lib/json";
import { MEMORY_BUDGET_BYTES } from "../common/lib/memory_budget";
import { SlotTable, UpdateStatus } from "../common/lib/slot_table";
import { compileCrawlerConfig } from "../crawler_score/config";
import { ActivityUpdate, ACTIVITY_PAYLOAD, HONEYPOT, pathFacts } from "../crawler_score/signals";
import { compileGrayConfig, MAX_RULES } from "../gray_router/config";
import { compileGraywallConfig } from "../graywall/config";
import { compileRateLimitConfig } from "../rate_limiter/config";
import { BucketUpdate, BUCKET_PAYLOAD } from "../rate_limiter/bucket_update";
import { BucketSpec } from "../common/lib/token_bucket";
import { MapStore } from "./map_store";

function limiterDoc(rules: i32, maxKeys: i32, prefix: string = "r"): string {
  let s = '{"max_keys": ' + maxKeys.toString() + ', "rules": [';
  for (let i = 0; i < rules; i++) {
    if (i > 0) s += ",";
    s += '{"name": "' + prefix + i.toString() + '", "key": ["client_ip"], "bucket_size": 10, "refill_tokens": 1, "refill_interval_ms": 1000}';
  }
  return s + "]}";
}

describe("the shared-memory budget", () => {
  it("refuses a rate_limiter document whose tables exceed it, naming the field and the bytes", () => {
    const errors = new ConfigErrors();
    expect(compileRateLimitConfig(limiterDoc(10, 200000), errors)).toBeNull();
    expect(errors.list.length).toBe(1);
    expect(errors.list[0].startsWith("max_keys: 10 rules with a bucket x 200000 keys:")).toBe(true, errors.list[0]);
    expect(errors.list[0].includes(MEMORY_BUDGET_BYTES.toString() + " bytes (64 MiB)")).toBe(true, errors.list[0]);
  });

  it("accepts the defaults and one rule at the largest max_keys", () => {
    const errors = new ConfigErrors();
    expect(compileRateLimitConfig(limiterDoc(3, 10000), errors)).not.toBeNull();
    expect(compileRateLimitConfig(limiterDoc(1, 200000), errors)).not.toBeNull();
    expect(errors.ok).toBe(true, errors.summary());
  });

  it("refuses a crawler with max_clients for two tables over it, and counts both stages together", () => {
    const errors = new ConfigErrors();
    expect(compileCrawlerConfig('{"max_clients": 200000, "account": {"header": "x-account"}}', errors)).toBeNull();
    expect(errors.list[0].startsWith("max_clients: the tables this needs take about")).toBe(true, errors.summary());
    const alone = new ConfigErrors();
    expect(compileCrawlerConfig('{"max_clients": 80000}', alone)).not.toBeNull();
    expect(compileRateLimitConfig(limiterDoc(1, 200000), alone)).not.toBeNull();
    const both = new ConfigErrors();
    expect(compileGraywallConfig('{"crawler_score": {"max_clients": 80000}, "rate_limiter": ' + limiterDoc(1, 200000) + "}", both)).toBeNull();
    expect(both.list[0].startsWith("rate_limiter.max_keys: with crawler_score.max_clients, the tables")).toBe(true, both.summary());
  });
});

describe("rate_limiter tables across configurations", () => {
  it("a renamed rule reuses its slots (no new shared keys) and never reads the old rule's buckets", () => {
    const store = new MapStore();
    const spec = new BucketSpec(2, 1, 60000);
    const u = new BucketUpdate();
    u.spec = spec;
    u.maxTake = 1;
    const before = new SlotTable(store, "rl", 64, BUCKET_PAYLOAD, 60000, 0, 111);
    expect(before.update("1.2.3.4", 1000, u)).toBe(UpdateStatus.Updated);
    const keys = store.keys.length;
    expect(before.update("1.2.3.4", 1000, u)).toBe(UpdateStatus.Updated);
    expect(u.result.allowed).toBe(true);
    expect(before.update("1.2.3.4", 1000, u)).toBe(UpdateStatus.Updated);
    expect(u.result.allowed).toBe(false);
    // The same pool and slots under another rule's tag: the old records are free to it.
    const after = new SlotTable(store, "rl", 64, BUCKET_PAYLOAD, 60000, 0, 222);
    expect(store.keys.length).toBe(keys);
    expect(after.update("1.2.3.4", 1001, u)).toBe(UpdateStatus.Updated);
    expect(u.result.allowed).toBe(true);
    // The old rule's live records fill the table; none is idle yet, yet the new rule finds room (but where its own keys hold all four probes), where a
    // table of the same tag finds the slots held.
    for (let i = 0; i < 64; i++) before.update("k" + i.toString(), 1002, u);
    let full = 0;
    let fullSameTag = 0;
    const same = new SlotTable(store, "rl", 64, BUCKET_PAYLOAD, 60000, 0, 111);
    for (let i = 0; i < 32; i++) if (same.update("s" + i.toString(), 1003, u) == UpdateStatus.TableFull) fullSameTag++;
    for (let i = 0; i < 32; i++) if (after.update("n" + i.toString(), 1003, u) == UpdateStatus.TableFull) full++;
    expect(fullSameTag).toBeGreaterThan(16);
    expect(full).toBeLessThan(fullSameTag / 4);
  });
});

describe("document maximums and linear compile time", () => {
  it("gray_router: duplicate names found among many rules; more than MAX_RULES refused", () => {
    let s = '{"rules": [';
    for (let i = 0; i < MAX_RULES; i++) s += (i > 0 ? "," : "") + '{"name": "r' + (i % (MAX_RULES - 1)).toString() + '", "target": "canary", "match": {}}';
    const errors = new ConfigErrors();
    expect(compileGrayConfig(s + "]}", errors)).toBeNull();
    expect(errors.list.length).toBe(1);
    expect(errors.list[0]).toBe("rules[" + (MAX_RULES - 1).toString() + "].name: duplicate rule name 'r0'");
    const over = new ConfigErrors();
    expect(compileGrayConfig(s + ',{"name": "x", "target": "canary", "match": {}}]}', over)).toBeNull();
    expect(over.list[0]).toBe("rules: at most " + MAX_RULES.toString() + " entries, got " + (MAX_RULES + 1).toString());
  });

  it("a list over its maximum is one error naming the field; none of it is read", () => {
    let s = '{"deny": [';
    for (let i = 0; i < 300; i++) s += (i > 0 ? "," : "") + '"10.0.' + (i >> 8).toString() + "." + (i & 255).toString() + '"';
    const errors = new ConfigErrors();
    const r = readConfigRoot(s + "]}", errors)!;
    expect(r.strList("deny", 299).length).toBe(0);
    expect(errors.list[0]).toBe("deny: at most 299 entries, got 300");
    const ok = new ConfigErrors();
    expect(readConfigRoot(s + "]}", ok)!.strList("deny", 300).length).toBe(300);
    expect(ok.ok).toBe(true);
  });

  it("crawler_score: user-agent lists capped", () => {
    let s = '{"user_agents": {"bots": [';
    for (let i = 0; i < 1001; i++) s += (i > 0 ? "," : "") + '"bot' + i.toString() + '"';
    const errors = new ConfigErrors();
    expect(compileCrawlerConfig(s + "]}}", errors)).toBeNull();
    expect(errors.list[0]).toBe("user_agents.bots: at most 1000 entries, got 1001");
  });
});

describe("configurations that would block everyone", () => {
  it("a honeypot covering every page is refused", () => {
    const bad = ['"/"', '"/?x=1"', '"/#top"'];
    for (let i = 0; i < bad.length; i++) {
      const errors = new ConfigErrors();
      expect(compileCrawlerConfig('{"honeypot_paths": ["/.env", ' + bad[i] + "]}", errors)).toBeNull();
      expect(errors.list[0].startsWith("honeypot_paths[1]: covers every page")).toBe(true, errors.summary());
    }
    const ok = new ConfigErrors();
    expect(compileCrawlerConfig('{"honeypot_paths": ["/.env", "/wp-admin"]}', ok)).not.toBeNull();
  });

  it("a mark made under other honeypot paths ends when they are rolled back", () => {
    const errors = new ConfigErrors();
    const bad = compileCrawlerConfig('{"honeypot_paths": ["/shop"]}', errors)!;
    const good = compileCrawlerConfig('{"honeypot_paths": ["/.env"]}', errors)!;
    expect(bad.behaviour.honeypotEpoch).not.toBe(good.behaviour.honeypotEpoch);
    const t = new SlotTable(new MapStore(), "c", 16, ACTIVITY_PAYLOAD, 600000);
    const u = new ActivityUpdate();
    u.spec = bad.behaviour;
    pathFacts("/shop", bad.honeypots, u.facts);
    t.update("shopper", 1000, u);
    expect(u.bits & HONEYPOT).toBe(HONEYPOT);
    // Rolled back: the shopper's next page is no honeypot, and the mark made under /shop is gone.
    u.spec = good.behaviour;
    pathFacts("/", good.honeypots, u.facts);
    t.update("shopper", 2000, u);
    expect(u.bits & HONEYPOT).toBe(0);
    // A mark made under the paths in force still holds.
    pathFacts("/.env", good.honeypots, u.facts);
    t.update("scanner", 3000, u);
    pathFacts("/", good.honeypots, u.facts);
    t.update("scanner", 4000, u);
    expect(u.bits & HONEYPOT).toBe(HONEYPOT);
  });
});

describe("a key given twice", () => {
  it("the last value counts, in a body lookup as in a config (as JSON.parse reads it)", () => {
    expect(lookupJsonPath('{"tier": "free", "tier": "gold"}', ["tier"])).toBe("gold");
    expect(lookupJsonPath('{"u": {"tier": "free"}, "u": {"tier": "gold"}}', ["u", "tier"])).toBe("gold");
    expect(lookupJsonPath('{"tier": "gold", "x": 1}', ["tier"])).toBe("gold");
    expect(lookupJsonPath('{"tier": "gold", "x": }', ["tier"])).toBeNull();
    const errors = new ConfigErrors();
    const r = readConfigRoot('{"a": "first", "a": "last"}', errors)!;
    expect(r.str("a", "")).toBe("last");
    r.done();
    expect(errors.ok).toBe(true, errors.summary());
  });
});

describe("errors quoting the document", () => {
  it("are one line each: a newline or other control character in a name or value is written as an escape", () => {
    // Found by Jazzer.js (fuzz/jazzer/corpus/compilers/regression-newline-in-value).
    const errors = new ConfigErrors();
    const doc = '{"rules": [{"name": "a", "key": ["cli\\nt_ip"], "bucket_size": 4, "refill_tokens": 5, "r\\u0001fill\\rx": 1}]}';
    expect(compileRateLimitConfig(doc, errors)).toBeNull();
    expect(errors.list.length).toBe(2);
    for (let i = 0; i < errors.list.length; i++) {
      expect(errors.list[i].includes("\n")).toBe(false, errors.list[i]);
      expect(errors.list[i].includes("\r")).toBe(false, errors.list[i]);
    }
    expect(errors.list[0]).toBe("rules[0].key[0]: 'cli\\nt_ip' is not one of client_ip, consumer, path, route, method, header:<name>");
    expect(errors.list[1]).toBe("rules[0].r\\u0001fill\\rx: unknown field");
  });
});
