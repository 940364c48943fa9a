// The release analysis rule on its own: traffic floor, error-rate and latency limits, ejections, and p99
// from Envoy's cumulative histogram buckets.
import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_LIMITS, judge, p99Between, readSpec, type Side } from "../control/releases.ts";

const side = (requests: number, errors: number, p99_ms: number | null, ejections = 0): Side => ({
  requests,
  errors,
  ejections,
  error_rate: requests ? errors / requests : null,
  p99_ms,
});
const limits = { ...DEFAULT_LIMITS, min_requests: 10 };

test("no traffic at all says so in words, and waits", () => {
  const none = judge(side(0, 0, 0), side(0, 0, 0), limits);
  assert.equal(none.verdict, "waiting");
  assert.match(none.reason, /^no requests from users in the last interval/);
  assert.match(judge(side(3, 0, 1), side(50, 0, 1), limits).reason, /^too little traffic to judge: canary 3, stable 50 requests/);
});

test("too little traffic on either side waits; an ejection fails even then", () => {
  assert.equal(judge(side(9, 0, 1), side(100, 0, 1), limits).verdict, "waiting");
  assert.equal(judge(side(100, 0, 1), side(9, 0, 1), limits).verdict, "waiting");
  const ejected = judge(side(3, 0, 1, 1), side(100, 0, 1), limits);
  assert.equal(ejected.verdict, "fail");
  assert.match(ejected.reason, /outlier detection ejected canary hosts \(1 in the interval or still out\)/);
});

test("error rate over stable's by more than the limit fails; at the limit passes", () => {
  assert.equal(judge(side(100, 6, 1), side(100, 0, 1), limits).verdict, "fail");
  assert.equal(judge(side(100, 5, 1), side(100, 0, 1), limits).verdict, "pass");
  assert.equal(judge(side(100, 12, 1), side(100, 8, 1), limits).verdict, "pass");
});

test("p99 fails only when both over the ratio and more than the floor above stable's", () => {
  assert.equal(judge(side(100, 0, 200), side(100, 0, 20), limits).verdict, "fail");
  assert.equal(judge(side(100, 0, 9), side(100, 0, 2), limits).verdict, "pass"); // 4.5x, but 7 ms
  assert.equal(judge(side(100, 0, 300), side(100, 0, 200), limits).verdict, "pass"); // 1.5x
  assert.equal(judge(side(100, 0, null), side(100, 0, 5), limits).verdict, "pass");
});

test("p99 from the growth of cumulative buckets, interpolated in its bucket", () => {
  const before = new Map([
    [1, 10],
    [5, 10],
    [250, 10],
  ]);
  // 100 new: 90 under 1 ms, 9 in (1, 5], 1 in (5, 250].
  const after = new Map([
    [1, 100],
    [5, 109],
    [250, 110],
  ]);
  assert.equal(p99Between(before, after), 5);
  assert.equal(p99Between(after, after), null);
  const slow = new Map([
    [1, 10],
    [5, 10],
    [250, 110],
  ]);
  assert.ok(p99Between(before, slow)! > 240);
});

test("a release spec gets defaults and field errors", () => {
  const { spec } = readSpec({ target: "Canary", hash_on: "cookie", name: "UID" });
  assert.deepEqual(spec?.steps, [1, 5, 25, 50, 100]);
  assert.equal(spec?.target, "canary");
  assert.equal(spec?.name, "uid");
  const bad = readSpec({ target: "", steps: [10, 90], hash_on: "query", webhook: "ftp://x" });
  assert.deepEqual(
    bad.errors.map((e) => e.field),
    ["target", "steps", "hash_on", "name", "webhook"],
  );
});
