// Compiles each filter under assembly/<name>/index.ts to build/<name>.wasm. `--use abort=abort_proc_exit` is
// passed here, not in asconfig.json, because as-pect also reads asconfig.json. Skips up-to-date outputs
// unless --force.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { BUILD_DIR, NODE_BINDINGS, ROOT, wasmPath } from "../runtime/paths.ts";
import { MODULES } from "../runtime/filters.ts";

function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (e.name.endsWith(".ts")) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/** Runs asc with `args` (after the entry file) and writes `out`; throws with asc's output on failure. */
function asc(entry: string, out: string, args: string[], what: string): void {
  const bin = join(ROOT, "node_modules", "assemblyscript", "bin", "asc.js");
  const r = spawnSync(process.execPath, [bin, entry, "--config", "asconfig.json", "--target", "release", ...args, "-o", out], { cwd: ROOT, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`asc failed for ${what}:\n${r.stderr}${r.stdout}`);
}

export function build(force = false): string[] {
  mkdirSync(BUILD_DIR, { recursive: true });
  const sources = Math.max(newestSource(join(ROOT, "assembly")), statSync(join(ROOT, "asconfig.json")).mtimeMs);
  const built: string[] = [];
  for (const name of MODULES) {
    const out = wasmPath(name);
    if (!force && existsSync(out) && statSync(out).mtimeMs >= sources) continue;
    asc(`assembly/${name}/index.ts`, out, ["--use", "abort=abort_proc_exit"], name);
    built.push(name);
    console.log(`[build] ${name} -> build/${name}.wasm (${statSync(out).size} bytes)`);
  }
  if (built.length === 0) console.log("[build] all modules up to date");
  buildNodeBindings(force);
  return built;
}

/** The Node bindings' memory limit in 64 KiB pages: 256 MiB, several times what the largest accepted document needs. */
export const NODE_MAX_PAGES = 4096;

/** Compiles assembly/node/bindings.ts (the filters' pure logic, for Node) if it is out of date. */
function buildNodeBindings(force = false): string {
  const sources = Math.max(newestSource(join(ROOT, "assembly")), statSync(join(ROOT, "asconfig.json")).mtimeMs, statSync(new URL(import.meta.url)).mtimeMs);
  if (!force && existsSync(NODE_BINDINGS) && statSync(NODE_BINDINGS).mtimeMs >= sources) return NODE_BINDINGS;
  mkdirSync(join(BUILD_DIR, "node"), { recursive: true });
  // Memory capped (NODE_MAX_PAGES): a hostile document fails the call inside the bindings (and the
  // validation worker gets a fresh instance) rather than taking the service to gigabytes.
  // The incremental runtime: graywall-control makes many calls into one instance, and only that runtime
  // collects inside a call (the minimal one, the filter's, collects only when asked between callbacks).
  asc("assembly/node/bindings.ts", NODE_BINDINGS, ["--exportRuntime", "--runtime", "incremental", "--maximumMemory", String(NODE_MAX_PAGES)], "node bindings");
  console.log(`[build] node bindings -> build/node/graywall.wasm`);
  return NODE_BINDINGS;
}

/**
 * graywall.wasm built with another AssemblyScript runtime than asconfig.json's (build/variants/), for the
 * bench's A/B line: the runtime is chosen by measurement.
 */
export function buildRuntimeVariant(runtime: "incremental" | "minimal"): string {
  const out = join(BUILD_DIR, "variants", `graywall-${runtime}.wasm`);
  const sources = Math.max(newestSource(join(ROOT, "assembly")), statSync(join(ROOT, "asconfig.json")).mtimeMs);
  if (existsSync(out) && statSync(out).mtimeMs >= sources) return out;
  mkdirSync(join(BUILD_DIR, "variants"), { recursive: true });
  asc("assembly/graywall/index.ts", out, ["--runtime", runtime, "--use", "abort=abort_proc_exit"], `the ${runtime} variant`);
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    build(process.argv.includes("--force"));
  } catch (e) {
    console.error(`[build] ${(e as Error).message}`);
    process.exit(1);
  }
}
