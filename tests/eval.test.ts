// crawler_score's header signals on public data it was not built from (eval/crawler.ts): the committed
// report reproduces, and the targets hold.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
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
