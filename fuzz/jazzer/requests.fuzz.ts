// Coverage-guided fuzz target (Jazzer.js): any request through all four stages of the real module
// (build/graywall.wasm, instrumented for coverage, on the host emulator) configured with the corpus's
// all-four document. The input's bytes pick the method, path, peer, up to 16 headers (names from the
// fuzzers' list or any) and the body. Holds when every request passes or gets a local reply (no trap, no
// exit), no client-sent hand-off header reaches the upstream and routing only names known targets.
import { FuzzedDataProvider } from "@jazzer.js/core";
import { wasmPath } from "../../runtime/paths.ts";
import { ProxyHost, type RequestSpec } from "../../tests/support/proxy_host.ts";
import { checkExchange, FUZZ_HEADER_NAMES, requestPathConfig } from "../properties.ts";
import { coverageImport, instrumented } from "./wasm_coverage.ts";

const host = new ProxyHost(instrumented(wasmPath("graywall")), "graywall", undefined, coverageImport());
if (!host.configure(requestPathConfig())) throw new Error(`the corpus config is refused: ${host.logs.join(" ")}`);
const METHODS = ["GET", "POST", "HEAD", "PUT", "OPTIONS", "DELETE", "X"];
const PEERS = ["198.51.100.7:5000", "203.0.113.9:1", "10.0.0.1:80", "[2001:db8::1]:443", "[::1]:2", "not-an-address", ""];
let n = 0;

export function fuzz(data: Buffer): void {
  const input = new FuzzedDataProvider(data);
  const headers: [string, string][] = [
    [":method", input.pickValue(METHODS)],
    [":path", input.consumeString(input.consumeIntegralInRange(0, 200), "utf-8")],
    [":authority", "shop.example"],
  ];
  const peer = input.consumeBoolean() ? input.pickValue(PEERS) : `${input.consumeIntegralInRange(0, 255)}.${input.consumeIntegralInRange(0, 255)}.0.1:4000`;
  const count = input.consumeIntegralInRange(0, 16);
  for (let i = 0; i < count; i++) {
    const name = input.consumeBoolean() ? input.pickValue(FUZZ_HEADER_NAMES) : input.consumeString(20, "utf-8").toLowerCase();
    headers.push([name, input.consumeString(input.consumeIntegralInRange(0, 300), "utf-8")]);
  }
  const body = input.consumeBoolean() ? input.consumeRemainingAsString() : undefined;
  const req: RequestSpec = { headers, peer, body };
  // Time moves, and the tick runs, as in Envoy.
  host.nowMs += 7;
  if (++n % 50 === 0) host.tick();
  checkExchange(req, host.request(req));
}
