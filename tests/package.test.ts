// What a user installs: runtime dependencies declared as such, no engine warning on the README's Node
// (20), and a licence file matching package.json.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { join } from "node:path";
import { test } from "node:test";
import { ROOT } from "../runtime/paths.ts";

const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));

/** Bare package names imported by the TypeScript files of `dir`. */
function imports(dir: string): Set<string> {
  const out = new Set<string>();
  for (const f of readdirSync(join(ROOT, dir)).filter((n) => n.endsWith(".ts"))) {
    for (const m of readFileSync(join(ROOT, dir, f), "utf8").matchAll(/from "([^".][^"]*)"/g)) {
      const spec = m[1];
      if (spec.startsWith("node:") || builtinModules.includes(spec)) continue;
      out.add(spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]);
    }
  }
  return out;
}

test("everything graywall-control imports at run time is a dependency, not a dev one", () => {
  const runtime = new Set([...imports("control"), ...imports("runtime")]);
  assert.ok(runtime.has("fastify"));
  for (const name of runtime) assert.ok(name in pkg.dependencies, `${name} is imported at run time but not in dependencies`);
  // The control service is run with tsx.
  assert.ok("tsx" in pkg.dependencies);
});

test("the control service imports nothing from scripts/ (runtime code lives in runtime/)", () => {
  for (const f of readdirSync(join(ROOT, "control")).filter((n) => n.endsWith(".ts"))) {
    assert.doesNotMatch(readFileSync(join(ROOT, "control", f), "utf8"), /from "\.\.\/scripts\//, f);
  }
});

test("no locked package requires a newer Node than the README's 20", () => {
  const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8"));
  const tooNew: string[] = [];
  for (const [path, p] of Object.entries<{ engines?: { node?: string }; version?: string }>(lock.packages)) {
    const range = p.engines?.node;
    if (!range || !path) continue;
    // Each alternative's lowest major (">=22", "^22.1", ">= 18 || >= 22") must admit Node 20.
    const majors = range.split("||").map((alt) => Number(/(\d+)/.exec(alt)?.[1] ?? 0));
    if (Math.min(...majors) > 20) tooNew.push(`${path}@${p.version}: node ${range}`);
  }
  assert.deepEqual(tooNew, []);
});

test("LICENSE matches package.json's licence", () => {
  assert.equal(pkg.license, "Apache-2.0");
  assert.match(readFileSync(join(ROOT, "LICENSE"), "utf8"), /Apache License\s+Version 2\.0, January 2004/);
});
