// Guards crawler_score's header-signal quality on the labelled set (eval/crawler-dataset.json).
import assert from "node:assert/strict";
import { test } from "node:test";
import { evaluate } from "../eval/crawler.ts";

test("crawler_score flags no human browser and most automated clients at the tag threshold", () => {
  const { rows, scored } = evaluate();
  const tag = rows.find((r) => r.threshold === "tag")!;
  assert.equal(tag.fp, 0, "no human browser is tagged on headers alone");
  assert.ok(tag.recall >= 0.85, `recall ${tag.recall}`);
  assert.ok(scored.length >= 60);
});
