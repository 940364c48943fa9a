// The benchmark's rule for a disturbed run (bench/disturbed.ts): Envoy below 85% of its usual share of
// its core is measured again. The rule, not a timing: no time is asserted here. And which setups a run
// measures, and which run's report is kept (bench/results/latest); and how the RSS target is judged.
import assert from "node:assert/strict";
import { test } from "node:test";
import { disturbed } from "../bench/disturbed.ts";
import { rssVerdict } from "../bench/targets.ts";
import { BASELINE_BUILD, benchSelection, PRACTICAL_FLOOR, setups } from "../bench/setups.ts";

test("a run whose Envoy got well under its usual share of its core is disturbed; normal spread is not", () => {
  assert.equal(disturbed(0.5, []), false, "nothing to compare with yet");
  assert.equal(disturbed(0.5, [0.98]), false, "one run is no usual share");
  const usual = [0.97, 0.99, 0.96, 0.98];
  assert.equal(disturbed(0.93, usual), false);
  assert.equal(disturbed(0.84, usual), false, "85% of the median 0.975 is 0.829");
  assert.equal(disturbed(0.82, usual), true);
  assert.equal(disturbed(0.4, usual), true);
});

test("a bench run without --only measures every setup and is kept as the latest; with it, the floors and its matches", () => {
  const all = setups("/tmp/earlier.wasm");
  const whole = benchSelection(all, null);
  assert.equal(whole.whole, true);
  assert.deepEqual(
    whole.chosen.map((s) => s.name),
    all.map((s) => s.name),
  );
  const some = benchSelection(all, "all four$|all five");
  assert.equal(some.whole, false, "a partial run does not replace bench/results/latest");
  assert.deepEqual(
    some.chosen.map((s) => s.name),
    [BASELINE_BUILD, "no filter", "no-op wasm filter", PRACTICAL_FLOOR, "graywall: all four", "graywall: all five (API keys too)"],
  );
});

test("the RSS target is judged on what all four add over the same run's no-op module, the absolute figures beside it", () => {
  // When the target was set: all four 96.1 MiB, the no-op module 82.0 (+14.1), no filter 64.4.
  assert.match(rssVerdict(96.0, 82.0, 64.3), /all four: 96\.0 MiB \(no filter 64\.3, the no-op module 82\.0\); \+14\.0 over the no-op module .*: met\)$/);
  // A machine whose Envoy and V8 alone take 6.5 MiB more: the same module's 102.6 MiB holds.
  assert.match(rssVerdict(102.6, 88.5, 68.8), /\+14\.1 over the no-op module .*: met\)$/);
  assert.match(rssVerdict(103.0, 88.5, 68.8), /\+14\.5 over .*: missed by 0\.4 MiB\)$/);
  assert.match(rssVerdict(95.0, 78.0, 60.0), /\+17\.0 over .*: missed by 2\.9 MiB\)$/, "a lower absolute figure does not hide a larger module");
});
