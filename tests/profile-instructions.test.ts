// The instruction profile's reading of callgrind's output (bench/profile_instructions.ts): compressed
// names, callee objects, inclusive call costs, and the VM's rare entries left out of the per-request count.
import assert from "node:assert/strict";
import { test } from "node:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  cacheTable,
  describeCache,
  functionTable,
  l2Model,
  lastLevelArg,
  moduleFunctions,
  parseCallgrind,
  perRequest,
  V8_STUBS,
} from "../bench/profile_instructions.ts";
import { PRACTICAL_FLOOR } from "../bench/setups.ts";

// Envoy's event loop (envoy, mapped low) calls the module's request callback (generated code, "???") 100 times and
// its tick twice; the callback calls a host function (envoy) twice a request.
const PROFILE = `version: 1
creator: callgrind-3.19.0
positions: line
events: Ir
summary: 31000

ob=(1) /opt/envoy
fl=(1) ???
fn=(1) 0x0000000001000000
0 5000
cob=(2) ???
cfi=(1)
cfn=(2) 0x00002350284b5000
calls=100 0
0 16000
cob=(2)
cfn=(3) 0x00002350284b6000
calls=2 0
0 10000

ob=(2)
fn=(2)
0 12000
cob=(1)
cfn=(4) 0x0000000002000000
calls=200 0
0 4000
+3 0

fn=(3)
0 10000

ob=(1)
fn=(4)
0 4000
`;

test("callgrind's output: compressed names and objects, inclusive call costs", () => {
  const fns = parseCallgrind(PROFILE);
  const loop = fns.get("/opt/envoy|0x0000000001000000");
  assert.ok(loop);
  assert.deepEqual(loop.events, [5000]);
  assert.deepEqual(loop.calls.get("???|0x00002350284b5000"), { count: 100, events: [16000] });
  assert.deepEqual(loop.calls.get("???|0x00002350284b6000"), { count: 2, events: [10000] });
  const callback = fns.get("???|0x00002350284b5000");
  assert.deepEqual(callback?.events, [12000]);
  assert.deepEqual(callback?.calls.get("/opt/envoy|0x0000000002000000"), { count: 200, events: [4000] });
  assert.deepEqual(fns.get("/opt/envoy|0x0000000002000000")?.events, [4000]);
});

test("per request: the tick's entry (fewer than one every four requests) is left out", () => {
  const r = perRequest("x", parseCallgrind(PROFILE), 100);
  assert.equal(r.total, 310); // 5,000 + 12,000 + 10,000 + 4,000 over 100 requests
  assert.equal(r.rare, 100); // the tick's 10,000
  assert.equal(r.perRequest, 210);
  // Generated code's own 22,000 of 31,000, in proportion to what is left.
  assert.ok(Math.abs(r.generated - (22000 * (21000 / 31000)) / 100) < 1e-9);
});

// The same calls with the cache and branch simulation's events: each counted per request like Ir, the
// tick's share of every event left out (a cost line may leave trailing zeros off).
const CACHE_PROFILE = `version: 1
creator: callgrind-3.19.0
positions: line
events: Ir I1mr D1mr Bcm

ob=(1) /opt/envoy
fn=(1) 0x0000000001000000
0 5000 100 50 20
cob=(2) ???
cfn=(2) 0x00002350284b5000
calls=100 0
0 16000 900 300 200
cob=(2)
cfn=(3) 0x00002350284b6000
calls=2 0
0 10000 500 400

ob=(2)
fn=(2)
0 12000 800 250 180
cob=(1)
cfn=(4) 0x0000000002000000
calls=200 0
0 4000 100 50 20

fn=(3)
0 10000 500 400

ob=(1)
fn=(4)
0 4000 100 50 20
`;

test("with the cache simulation: every event per request, the tick's share left out", () => {
  const events: string[] = [];
  const fns = parseCallgrind(CACHE_PROFILE, events);
  assert.deepEqual(events, ["Ir", "I1mr", "D1mr", "Bcm"]);
  const r = perRequest("x", fns, 100, events);
  assert.equal(r.perRequest, 210);
  assert.ok(r.events);
  // I1mr: 100 + 800 + 500 + 100 = 1,500, the tick's 500 left out: 10 a request.
  assert.equal(r.events.I1mr, 10);
  assert.equal(r.events.D1mr, (50 + 250 + 400 + 50 - 400) / 100);
  // Bcm: the tick had none (its line left the column off).
  assert.equal(r.events.Bcm, (20 + 180 + 20) / 100);
  assert.equal(r.events.Ir, r.perRequest);
});

test("the cache table: each figure a request, and beside it the difference from the practical floor", () => {
  const events = ["Ir", "I1mr", "D1mr", "Bcm"];
  const floor = perRequest(PRACTICAL_FLOOR, parseCallgrind(CACHE_PROFILE, []), 200, events);
  const r = perRequest("x", parseCallgrind(CACHE_PROFILE, []), 100, events);
  const [, , floorLine, line] = cacheTable([floor, r]).split("\n");
  // The same profile read as 200 requests: every figure (the tick still left out) halved.
  assert.equal(floorLine, `| ${PRACTICAL_FLOOR} | 5 | 2 | 0 | 0 | 1 |`);
  // As 100: L1i 10 (+5), L1d 3.5 (+1.75), last-level none (nor in the host's code), mispredicts 2.2 (+1.1).
  assert.equal(line, "| x | 10 (+5) | 4 (+2) | 0 (+0) | 0 (+0) | 2 (+1) |");
});

// The L2 as the last level: Envoy's loop (40 instruction and 20 data misses of its own), the module's
// callback (20 and 20) and a host function it calls (20 and none).
const L2_PROFILE = `version: 1
creator: callgrind-3.19.0
positions: line
events: Ir ILmr DLmr

ob=(1) /opt/envoy
fn=(1) 0x0000000001000000
0 5000 40 20
cob=(2) ???
cfn=(2) 0x00002350284b5000
calls=10 0
0 16000 40 20

ob=(2)
fn=(2)
0 12000 20 20
cob=(1)
cfn=(4) 0x0000000002000000
calls=20 0
0 4000 20

ob=(1)
fn=(4)
0 4000 20
`;

test("the cache table's last level: all its misses, and those in the host's code, each against the floor", () => {
  const events: string[] = [];
  const r = perRequest("x", parseCallgrind(L2_PROFILE, events), 10, events);
  // 120 misses over 10 requests, the module's own 40 of them.
  assert.equal(r.events?.ILmr, 8);
  assert.equal(r.generatedEvents?.ILmr, 2);
  assert.equal(r.generatedEvents?.DLmr, 2);
  const floor = perRequest(PRACTICAL_FLOOR, parseCallgrind(L2_PROFILE, []), 20, events);
  const [head, , floorLine, line] = cacheTable([floor, r], "L2 (512 KiB, 8-way)").split("\n");
  assert.match(head, /\| L2 \(512 KiB, 8-way\) misses \| of which in the host's code \|/);
  assert.equal(floorLine, `| ${PRACTICAL_FLOOR} | 0 | 0 | 6 | 4 | 0 |`);
  assert.equal(line, "| x | 0 (+0) | 0 (+0) | 12 (+6) | 8 (+4) | 0 (+0) |");
});

test("the L2 modelled: this machine's from sysfs, or a size given in KiB", () => {
  const dir = mkdtempSync(join(tmpdir(), "graywall-cache-"));
  try {
    const index = (n: number, files: Record<string, string>) => {
      mkdirSync(join(dir, `index${n}`));
      for (const [f, v] of Object.entries(files)) writeFileSync(join(dir, `index${n}`, f), `${v}\n`);
    };
    index(0, { level: "1", type: "Data", size: "32K", ways_of_associativity: "8", coherency_line_size: "64" });
    index(1, { level: "1", type: "Instruction", size: "32K", ways_of_associativity: "8", coherency_line_size: "64" });
    index(2, { level: "2", type: "Unified", size: "512K", ways_of_associativity: "8", coherency_line_size: "64" });
    index(3, { level: "3", type: "Unified", size: "32768K", ways_of_associativity: "16", coherency_line_size: "64" });
    const l2 = l2Model(undefined, dir);
    assert.deepEqual(l2, { bytes: 512 * 1024, ways: 8, line: 64 });
    assert.ok(l2);
    assert.equal(lastLevelArg(l2), "--LL=524288,8,64");
    assert.equal(describeCache(l2), "512 KiB, 8-way");
    // Another size, with this machine's ways and line.
    const big = l2Model(1024, dir);
    assert.deepEqual(big, { bytes: 1 << 20, ways: 8, line: 64 });
    assert.ok(big);
    assert.equal(describeCache(big), "1 MiB, 8-way");
    assert.throws(() => l2Model(1000, dir), /--l2: a size in KiB that is a power of two, not 1000/);
    // No sysfs: nothing to model, unless a size is given (8 ways, 64-byte lines).
    assert.equal(l2Model(undefined, join(dir, "absent")), null);
    assert.deepEqual(l2Model(256, join(dir, "absent")), { bytes: 256 * 1024, ways: 8, line: 64 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// The module's functions by their jump-table slots: Envoy (low) enters an export at its code (outside the
// table, 0x...5a000), which calls the dispatch's streamFor (slot 1) every request and a stage (slot 3)
// twice a request; the table starts at the page 0x...b5000 (8 bytes a slot). One of the module's
// functions runs only on the tick (slot 0, twice in all).
const SLOT_PROFILE = `version: 1
creator: callgrind-3.19.0
positions: line
events: Ir I1mr

ob=(1) /opt/envoy
fn=(1) 0x0000000001000000
0 5000 100
cob=(2) ???
cfn=(2) 0x00002350284a5000
calls=100 0
0 9000 350
cob=(2)
cfn=(5) 0x00002350284b5000
calls=2 0
0 600 30

ob=(2)
fn=(2)
0 1000 50
cfn=(3) 0x00002350284b5008
calls=100 0
0 2000 100
cfn=(4) 0x00002350284b5018
calls=200 0
0 6000 200

fn=(3)
0 2000 100

fn=(4)
0 6000 200

fn=(5)
0 600 30
`;

test("the module's functions: named by their jump-table slots, the exports' own code with V8's stubs", () => {
  const events: string[] = [];
  const fns = parseCallgrind(SLOT_PROFILE, events);
  const defined = ["tick", "assembly/common/abi/filter/streamFor", "unused", "stage#onRequest"];
  const rows = moduleFunctions(fns, 100, events, defined);
  assert.ok(rows);
  const by = new Map(rows.map((r) => [r.name, r]));
  assert.deepEqual(by.get("stage#onRequest"), { name: "stage#onRequest", calls: 2, events: { Ir: 60, I1mr: 2 } });
  assert.deepEqual(by.get("assembly/common/abi/filter/streamFor"), { name: "assembly/common/abi/filter/streamFor", calls: 1, events: { Ir: 20, I1mr: 1 } });
  assert.deepEqual(by.get("tick"), { name: "tick", calls: 0.02, events: { Ir: 6, I1mr: 0.3 } });
  assert.deepEqual(by.get(V8_STUBS), { name: V8_STUBS, calls: 1, events: { Ir: 10, I1mr: 0.5 } });
  assert.equal(by.has("unused"), false);
  // Sorted by L1i misses; the last line sums them all.
  const table = functionTable(rows, 2).split("\n");
  assert.equal(table[0], "| function | calls/request | instructions | L1i misses | L1d misses | L2 misses | mispredicts |");
  assert.equal(table[2], "| stage#onRequest | 2.00 | 60 | 2.0 | 0.0 | 0.0 | 0.0 |");
  assert.equal(table[3], "| common/abi/filter/streamFor | 1.00 | 20 | 1.0 | 0.0 | 0.0 | 0.0 |");
  assert.equal(table[4], "| all 4 (of which listed: 2) |  | 96 | 3.8 | 0.0 | 0.0 | 0.0 |");
});

test("the module's functions: not told apart when the dispatch is not where the slots say", () => {
  const events: string[] = [];
  const fns = parseCallgrind(SLOT_PROFILE, events);
  // One function fewer defined before it: slot 1 is another function, and streamFor's slot is never entered.
  assert.equal(moduleFunctions(fns, 100, events, ["assembly/common/abi/filter/streamFor", "other", "stage#onRequest", "x"]), null);
});
