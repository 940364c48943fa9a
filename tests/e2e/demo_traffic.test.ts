// The demo's traffic generator (npm run demo:traffic) against the shipped gateway in real Envoy: simulated
// people behind one address, browser headers, cookies kept, at a person's pace, all get their pages, the
// crawler defence on. What the demo prints for a release to judge works as printed.
import assert from "node:assert/strict";
import { describe } from "node:test";
import { runTraffic } from "../../scripts/demo-traffic.ts";
import { e2e, startRig, stopRig } from "./harness.ts";

describe("demo traffic", () => {
  e2e("30 simulated people browsing for 8 s all get their pages through the shipped crawler defence", async () => {
    const rig = await startRig("envoy/envoy.yaml", undefined, { concurrency: 2 });
    try {
      const stats = await runTraffic({ url: rig.envoy.url("").replace(/\/$/, ""), users: 30, seconds: 8 });
      assert.ok(stats.requests >= 60, `${stats.requests} pages`);
      assert.deepEqual(Object.keys(stats.statuses), ["200"], JSON.stringify(stats.statuses));
      assert.equal(stats.versions.stable, stats.requests, "no release running: stable serves them");
    } finally {
      await stopRig(rig);
    }
  });
});
