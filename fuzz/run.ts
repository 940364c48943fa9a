// npm run fuzz -- [--runs N] [--seed S]: the fuzz and property suite of tests/fuzz.test.ts, N times longer
// (default 50). Prints each property's runs, outcome counts and time; exits non-zero on a counterexample,
// which fast-check prints with the seed and path to replay it.
import { bucketProperty, compilersProperty, rejectedNeverAppliesProperty, requestPathProperty } from "./properties.ts";

const arg = (name: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : undefined;
};
const times = arg("--runs") ?? 50;
const seed = arg("--seed") ?? Date.now() % 2 ** 31;
console.log(`[fuzz] seed ${seed}, ${times}x the bounded runs`);
const timed = async (name: string, runs: number, fn: () => unknown) => {
  const t0 = Date.now();
  const out = await fn();
  console.log(`[fuzz] ${name}: ${runs} runs, ${((Date.now() - t0) / 1000).toFixed(0)} s, ${JSON.stringify(out ?? "ok")}`);
};
await timed("compilers", 1500 * times, () => compilersProperty(1500 * times, seed));
await timed("request path", 3000 * times, () => requestPathProperty(3000 * times, seed));
await timed("buckets across workers", 40 * times, () => bucketProperty(40 * times, seed));
await timed("rejected documents", 150 * times, () => rejectedNeverAppliesProperty(150 * times, seed));
console.log("[fuzz] 0 crashes, aborts, timeouts or broken properties");
