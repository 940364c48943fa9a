// crawler_score's header signals on public data it was not built from (eval/crawler.ts): the committed
// report reproduces, and the targets hold.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { behaviour } from "../eval/behaviour.ts";
import { evaluate, REPORT, renderReport } from "../eval/crawler.ts";

test("npm run eval:crawler reproduces the committed report", () => {
  assert.equal(readFileSync(REPORT, "utf8"), renderReport(), "run `npm run eval:crawler -- --write`");
});

test("bots are tagged with either header set; browsers are never challenged or blocked, and seldom tagged", () => {
  const { crawlerRates, browserRates } = evaluate();
  for (const r of crawlerRates.filter((x) => x.set.startsWith("isbot crawlers"))) assert.ok(r.tag >= 0.99, `${r.set}: ${r.tag}`);
  for (const r of browserRates) {
    assert.equal(r.challenge, 0, r.set);
    assert.equal(r.block, 0, r.set);
    if (r.set.includes("full headers")) assert.ok(r.tag <= 0.01, `${r.set}: ${r.tag}`);
    if (r.set.includes("plain HTTP")) assert.ok(r.tag <= 0.05, `${r.set}: ${r.tag}`);
  }
});

test("behaviour: every scraper family gets a small share of what it asks for; people get every page, challenged at most once each", () => {
  for (const o of behaviour()) {
    if (o.kind === "person") {
      assert.equal(o.served, o.asked, o.family);
      assert.equal(o.blocked, 0, o.family);
      const people = Number(/^(\d+) readers/.exec(o.family)?.[1] ?? 1);
      assert.ok(o.challenged <= people, `${o.family}: ${o.challenged} challenges`);
    } else if (o.family.includes("polling")) {
      // A solver gets one budget (300 page views a long window) per solve, and pays for each solve.
      assert.ok(o.served / o.challenged <= 300, `${o.family}: ${o.served} pages on ${o.challenged} solves`);
    } else {
      assert.ok(o.served / o.asked <= 0.2, `${o.family}: ${o.served} of ${o.asked}`);
    }
  }
});
