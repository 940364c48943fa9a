// graywall.wasm with its name section, for the profilers: the same compile as the release build (the same
// functions in the same order), with names kept.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import binaryen from "binaryen";
import { BUILD_DIR, ROOT, wasmPath } from "../runtime/paths.ts";

const NAMED = join(BUILD_DIR, "profile", "graywall.wasm");

/** The named build's path, rebuilt when the release build is newer. */
export function namedBuild(): string {
  if (existsSync(NAMED) && statSync(NAMED).mtimeMs >= statSync(wasmPath("graywall")).mtimeMs) return NAMED;
  mkdirSync(join(BUILD_DIR, "profile"), { recursive: true });
  const asc = join(ROOT, "node_modules", "assemblyscript", "bin", "asc.js");
  const r = spawnSync(
    process.execPath,
    [asc, "assembly/graywall/index.ts", "--config", "asconfig.json", "--target", "release", "--debug", "--use", "abort=abort_proc_exit", "-o", NAMED],
    { cwd: ROOT, encoding: "utf8" },
  );
  if (r.status !== 0) throw new Error(`asc failed:\n${r.stderr}${r.stdout}`);
  return NAMED;
}

/** The names of a module's own functions (imports left out), in the order it defines them. */
export function definedFunctionNames(file: string): string[] {
  const m = binaryen.readBinary(readFileSync(file));
  const names: string[] = [];
  for (let i = 0; i < m.getNumFunctions(); i++) {
    const info = binaryen.getFunctionInfo(m.getFunctionByIndex(i));
    if (!info.module) names.push(info.name);
  }
  m.dispose();
  return names;
}
