// The benchmark is not a test, but it must not rot: run it once in smoke mode (a few hundred requests
// per setup, no timing asserted), and check every setup ran against real Envoy without failures.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { ROOT } from "../runtime/paths.ts";
import { setups } from "../bench/setups.ts";
import { countPlaces } from "../bench/profile_envoy.ts";

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
  assert.match(r.stdout, /the practical floor \(no-op wasm filter reading the header map\): [\d.]+x no filter/, "and the practical floor");
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

test("npm run profile -- --envoy splits real Envoy's CPU per request into module code, host calls, kernel and Envoy", () => {
  const r = spawnSync(process.execPath, ["--import", "tsx", "bench/profile.ts", "--envoy", "graywall: ip_list", "--seconds", "1"], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 300_000,
  });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const row = (name: string) => {
    const m = new RegExp(`^\\| ${name} \\| ([\\d.]+) \\| ([\\d.]+) \\| ([\\d.]+) \\| ([\\d.]+) \\| ([\\d.]+) \\| (\\d+) \\|$`, "m").exec(r.stdout);
    assert.ok(m, `${name}:\n${r.stdout}`);
    return m.slice(1).map(Number);
  };
  const [total, module, host, kernel, envoy, samples] = row("graywall: ip_list \\(10 CIDRs\\)");
  assert.ok(samples > 100, `${samples} samples`);
  assert.ok(module > 0 && host > 0, "the module's code and its host calls are seen in real Envoy");
  assert.ok(Math.abs(module + host + kernel + envoy - total) < 0.05, "the places add up to the total");
  // Without a filter there is no generated code: nothing is the module's.
  const none = row("no filter");
  assert.equal(none[1], 0);
  assert.equal(none[2], 0);
  assert.match(r.stdout, /^\| graywall: ip_list \(10 CIDRs\), over the no-op floor \|/m);
  // And over the practical floor, the no-op module reading the header map (one host call that returns data).
  const practical = row("no-op wasm filter reading the header map");
  assert.ok(practical[2] > 0, "the header map's host call is seen below the no-op module");
  assert.match(r.stdout, /^\| graywall: ip_list \(10 CIDRs\), over the practical floor \|/m);
});

test("a perf sample is placed by its stack: generated code at the leaf, generated code above Envoy's, the kernel, Envoy", () => {
  const script = [
    "\t7f01 [unknown] (/tmp/perf-12.map)\n\t5b4e [unknown] (/x/envoy)",
    "\t60d6 [unknown] (/x/envoy)\n\t7f02 [unknown] (/tmp/perf-12.map)\n\t5b4e [unknown] (/x/envoy)",
    "\t1089 memcpy (/usr/lib/x86_64-linux-gnu/libc.so.6)\n\t7f02 [unknown] (/tmp/perf-12.map)",
    "\tffff do_epoll_wait ([kernel.kallsyms])\n\t5b4e [unknown] (/x/envoy)",
    "\t60d6 [unknown] (/x/envoy)\n\t5b4e [unknown] (/x/envoy)",
  ].join("\n\n");
  assert.deepEqual(countPlaces(script), { "module code": 1, "host calls": 2, kernel: 1, Envoy: 1 });
});
