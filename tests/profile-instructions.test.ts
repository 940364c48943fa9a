// The instruction profile's reading of callgrind's output (bench/profile_instructions.ts): compressed
// names, callee objects, inclusive call costs, and the VM's rare entries left out of the per-request count.
import assert from "node:assert/strict";
import { test } from "node:test";
import { cacheTable, functionTable, moduleFunctions, parseCallgrind, perRequest, V8_STUBS } from "../bench/profile_instructions.ts";
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
  assert.equal(floorLine, `| ${PRACTICAL_FLOOR} | 5 | 2 | 0 | 1 |`);
  // As 100: L1i 10 (+5), L1d 3.5 (+1.75), last-level none, mispredicts 2.2 (+1.1).
  assert.equal(line, "| x | 10 (+5) | 4 (+2) | 0 (+0) | 2 (+1) |");
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
  assert.equal(table[2], "| stage#onRequest | 2.00 | 60 | 2.0 | 0.0 | 0.0 |");
  assert.equal(table[3], "| common/abi/filter/streamFor | 1.00 | 20 | 1.0 | 0.0 | 0.0 |");
  assert.equal(table[4], "| all 4 (of which listed: 2) |  | 96 | 3.8 | 0.0 | 0.0 |");
});

test("the module's functions: not told apart when the dispatch is not where the slots say", () => {
  const events: string[] = [];
  const fns = parseCallgrind(SLOT_PROFILE, events);
  // One function fewer defined before it: slot 1 is another function, and streamFor's slot is never entered.
  assert.equal(moduleFunctions(fns, 100, events, ["assembly/common/abi/filter/streamFor", "other", "stage#onRequest", "x"]), null);
});
