// Coverage-guided fuzz target (Jazzer.js): every filter's compiler on any bytes. The input's last byte
// picks the filter (ip_list, crawler_score, rate_limiter, gray_router, graywall), the rest is the document.
// Holds when the compiler answers "" or field errors (never an abort or trap) and an accepted document is
// one the real module configures with. Coverage: the compilers' wasm, instrumented (wasm_coverage.ts).
// Run by `npm run fuzz:jazzer` (fuzz/jazzer/run.ts); seeds in fuzz/jazzer/corpus/compilers/.
import { FuzzedDataProvider } from "@jazzer.js/core";
import { loadBindings } from "../../runtime/bindings.ts";
import { NODE_BINDINGS, wasmPath } from "../../runtime/paths.ts";
import { checkDocument, FILTERS, hostsByFilter } from "../properties.ts";
import { coverageImport, instrumented } from "./wasm_coverage.ts";

const coverage = coverageImport();
const bindings = loadBindings(instrumented(NODE_BINDINGS), coverage);
const modules = new Map(FILTERS.map((f) => [f, instrumented(wasmPath(f))]));
const hostFor = hostsByFilter((f) => modules.get(f as (typeof FILTERS)[number])!, coverage);

export function fuzz(data: Buffer): void {
  const input = new FuzzedDataProvider(data);
  const filter = input.pickValue(FILTERS);
  checkDocument(bindings, hostFor, filter, input.consumeRemainingAsString());
}
