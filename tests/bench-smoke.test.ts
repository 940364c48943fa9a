// The benchmark is not a test, but it must not rot: run it once in smoke mode (a few hundred requests
// per setup, no timing asserted), and check every setup ran against real Envoy without failures.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { ROOT } from "../runtime/paths.ts";
import { setups } from "../bench/setups.ts";

test("npm run bench -- --smoke runs every setup", () => {
  const r = spawnSync(process.execPath, ["--import", "tsx", "bench/run.ts", "--smoke"], { cwd: ROOT, encoding: "utf8", timeout: 600_000 });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  // Every setup has its CPU time per request (median and spread) and both RSS figures.
  for (const s of setups())
    assert.match(
      r.stdout,
      new RegExp(`\\| ${s.name.replace(/[()]/g, "\\$&")} \\| [\\d.]+ \\([\\d.]+-[\\d.]+\\) \\|.*\\| [\\d.]+ \\| [\\d.]+ \\|$`, "m"),
      s.name,
    );
  assert.match(r.stdout, /all four stages in the one module: [\d.]+x no filter/, "reports the targets");
  assert.match(r.stdout, /\| graywall \| \d+ \|/, "reports .wasm sizes");
});

test("npm run profile names the module's functions and the host calls of a request", () => {
  const r = spawnSync(process.execPath, ["--import", "tsx", "bench/profile.ts", "--requests", "3000", "--setup", "crawler_score"], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 300_000,
  });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /^# graywall: crawler_score: 3000 requests/m);
  assert.match(r.stdout, /module self time: [\d.]+ µs\/request/);
  assert.match(r.stdout, /^ {2}[\d.]+ {2}assembly\/crawler_score\//m, "a crawler stage function among the top ones");
  // One header map and the peer address per request; behaviour stays in the worker's copy.
  assert.match(r.stdout, /host calls per request: .*"proxy_get_header_map_pairs":1/);
  assert.doesNotMatch(r.stdout, /host calls per request: .*proxy_get_shared_data/);
});
