import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { ROOT } from "../runtime/paths.ts";
import { goodBotFromRanges } from "../scripts/good-bots.ts";
import { ProxyHost } from "./support/proxy_host.ts";
import { wasmPath } from "../runtime/paths.ts";

const EXAMPLE = join(ROOT, "config", "examples", "googlebot-ranges.json");
const GOOGLEBOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

describe("declared good bots", () => {
  test("an operator's published range file becomes a good_bots entry the filter accepts", () => {
    const entry = goodBotFromRanges("googlebot", "Googlebot", [{ file: EXAMPLE, json: JSON.parse(readFileSync(EXAMPLE, "utf8")) }]);
    assert.equal(entry.cidrs.length, 6);
    assert.ok(entry.cidrs.includes("66.249.64.0/27") && entry.cidrs.includes("2001:4860:4801:10::/64"));
  });

  test("a bad range file is refused, naming the file and the prefix", () => {
    assert.throws(
      () => goodBotFromRanges("g", "G", [{ file: "x.json", json: { prefixes: [{ ipv4Prefix: "1.2.3.0/24" }, { foo: 1 }] } }]),
      /x\.json: prefixes\[1\]/,
    );
    assert.throws(
      () => goodBotFromRanges("g", "G", [{ file: "x.json", json: { prefixes: [{ ipv4Prefix: "1.2.3.999/24" }] } }]),
      /good_bots\[0\]\.cidrs\[0\].*invalid/,
    );
  });

  const host = (extra: object = {}) => {
    const h = new ProxyHost(wasmPath("graywall"), "graywall");
    const cfg = { crawler_score: { good_bots: [{ name: "googlebot", user_agent_contains: "Googlebot", cidrs: ["66.249.64.0/19"] }], ...extra } };
    assert.ok(h.configure(JSON.stringify(cfg)), h.logs.join("\n"));
    return h;
  };
  const headers: [string, string][] = [
    [":path", "/"],
    ["user-agent", GOOGLEBOT_UA],
    ["accept", "*/*"],
    ["accept-encoding", "gzip"],
  ];

  test("the declared bot passes unscored from its operator's ranges", () => {
    const h = host();
    const ex = h.request({ headers, peer: "66.249.66.1:5000" });
    assert.equal(ex.reply, undefined);
    assert.equal(h.metric("graywall.crawler_score.good_bot"), 1n);
  });

  test("the same user agent from anywhere else is an impostor: blocked by default, or as unverified_bots says", () => {
    const blocked = host().request({ headers, peer: "203.0.113.9:5000" });
    assert.equal(blocked.reply?.status, 403);
    const challenged = host({ unverified_bots: "challenge" }).request({ headers, peer: "203.0.113.9:5000" });
    assert.equal(challenged.reply?.status, 429);
    const tagged = host({ unverified_bots: "tag" }).request({ headers, peer: "203.0.113.9:5000" });
    assert.equal(tagged.reply, undefined);
    const score = Number(tagged.upstreamHeaders.find(([k]) => k === "x-graywall-bot-score")?.[1]);
    assert.ok(score >= 30 && score < 80, String(score));
  });
});
