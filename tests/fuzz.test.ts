// Bounded runs of the fuzz and property suite (fuzz/properties.ts) from the committed corpus: every
// compiler on mutated and random documents, every request shape through the real module, buckets across
// two workers, and the control service's rejected documents. `npm run fuzz` runs the same for longer.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { runJazzer, TARGETS } from "../fuzz/jazzer/run.ts";
import { bucketProperty, compilersProperty, rejectedNeverAppliesProperty, requestPathProperty } from "../fuzz/properties.ts";

describe("fuzzing (bounded; npm run fuzz for long runs)", () => {
  test("every compiler answers any document with nothing or field errors, and what it accepts the module configures with", () => {
    const seen = compilersProperty(1500);
    // The generator reaches both sides of every compiler's decision.
    assert.ok(seen.accepted > 50 && seen.refused > 500, JSON.stringify(seen));
  });
  test("any request through all four stages passes or is answered: no trap, no exit, no forged hand-off upstream", () => {
    const outcomes = requestPathProperty(3000);
    assert.ok(outcomes.passed > 300 && Object.keys(outcomes).length >= 2, JSON.stringify(outcomes));
  });
  test("a bucket admits exactly its size across two workers, whatever the order and lease", () => {
    bucketProperty(40);
  });
  test("a document the control service rejects never changes the one in force or what Envoy is given", async () => {
    await rejectedNeverAppliesProperty(150);
  });
});

describe("coverage-guided fuzzing with Jazzer.js (bounded; npm run fuzz:jazzer for long runs)", () => {
  for (const target of TARGETS) {
    test(`${target}: libFuzzer runs the target from the committed corpus with no finding, guided by the wasm's coverage`, async () => {
      const r = await runJazzer(target, { runs: 3000 });
      assert.equal(r.status, 0, r.output.slice(-3000));
      assert.ok(r.runs >= 3000, `ran ${r.runs} inputs`);
      // The JavaScript around the module alone gives libFuzzer a few dozen features; the counters of the
      // instrumented wasm (fuzz/jazzer/wasm_coverage.ts) give it hundreds to thousands.
      assert.ok(r.cov > 300, `coverage ${r.cov}`);
    });
  }
});
