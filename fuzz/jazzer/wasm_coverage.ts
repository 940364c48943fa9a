// Coverage of the WebAssembly the fuzz targets run, for libFuzzer: Jazzer.js instruments JavaScript, but
// the compilers and stages are AssemblyScript compiled to wasm, where it sees nothing. So the targets
// run a copy of each module instrumented by Binaryen's `log-execution` pass (a call to an imported
// `env.log_execution(id)` at every function entry, loop header and return, each place its own id), and
// that import bumps a counter in a region registered with libFuzzer, as Jazzer's own edges do.
import { readFileSync } from "node:fs";
import binaryen from "binaryen";

/** The module at `path` with a coverage call at each function entry, loop header and return. */
export function instrumented(path: string): Uint8Array<ArrayBuffer> {
  const m = binaryen.readBinary(readFileSync(path));
  m.runPasses(["log-execution"]);
  const out = new Uint8Array(m.emitBinary());
  m.dispose();
  return out;
}

interface CoverageTracker {
  createModuleCounters(size: number): Buffer;
}

const SIZE = 1 << 16;

/**
 * The `env.log_execution` import for an instrumented module: counts into a region of libFuzzer's
 * coverage map (AFL's never-zero counters); outside Jazzer (no tracker) it counts nothing.
 */
export function coverageImport(): Record<string, CallableFunction> {
  const tracker = (globalThis as { Fuzzer?: { coverageTracker?: CoverageTracker } }).Fuzzer?.coverageTracker;
  if (!tracker) return { log_execution: () => {} };
  const counters = tracker.createModuleCounters(SIZE);
  return {
    log_execution: (id: number) => {
      const i = id & (SIZE - 1);
      counters[i] = counters[i] === 255 ? 1 : counters[i] + 1;
    },
  };
}
