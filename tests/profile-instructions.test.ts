// The instruction profile's reading of callgrind's output (bench/profile_instructions.ts): compressed
// names, callee objects, inclusive call costs, and the VM's rare entries left out of the per-request count.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseCallgrind, perRequest } from "../bench/profile_instructions.ts";

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
  assert.equal(loop.self, 5000);
  assert.deepEqual(loop.calls.get("???|0x00002350284b5000"), { count: 100, inclusive: 16000 });
  assert.deepEqual(loop.calls.get("???|0x00002350284b6000"), { count: 2, inclusive: 10000 });
  const callback = fns.get("???|0x00002350284b5000");
  assert.equal(callback?.self, 12000);
  assert.deepEqual(callback?.calls.get("/opt/envoy|0x0000000002000000"), { count: 200, inclusive: 4000 });
  assert.equal(fns.get("/opt/envoy|0x0000000002000000")?.self, 4000);
});

test("per request: the tick's entry (fewer than one every four requests) is left out", () => {
  const r = perRequest("x", parseCallgrind(PROFILE), 100);
  assert.equal(r.total, 310); // 5,000 + 12,000 + 10,000 + 4,000 over 100 requests
  assert.equal(r.rare, 100); // the tick's 10,000
  assert.equal(r.perRequest, 210);
  // Generated code's own 22,000 of 31,000, in proportion to what is left.
  assert.ok(Math.abs(r.generated - (22000 * (21000 / 31000)) / 100) < 1e-9);
});
