// Fuzz target: every filter's config compiler (build/node/graywall.wasm, the code Envoy runs) on any
// bytes. A finding is a failure inside the compiler (an abort or trap) or an answer that is neither ""
// nor field errors. Run by tests/fuzz.test.ts (bounded) and `npm run fuzz` (longer; fuzz/README.md).
import { register } from "tsx/esm/api";

register();
const { loadBindings } = await import("../runtime/bindings.ts");
const bindings = loadBindings();
const FILTERS = ["ip_list", "crawler_score", "rate_limiter", "gray_router", "graywall"];

/** @param {Buffer} data */
export function fuzz(data) {
  if (data.length < 1) return;
  const filter = FILTERS[data[0] % FILTERS.length];
  const text = data.subarray(1).toString("utf8");
  const out = bindings.validateFilterConfig(filter, text);
  if (out !== "" && !out.split("\n").every((line) => /^[^:\n]*: ./.test(line))) throw new Error(`${filter}: not field errors: ${JSON.stringify(out.slice(0, 200))}`);
}
