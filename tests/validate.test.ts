// Every Envoy config the project ships passes `envoy --mode validate`.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { test } from "node:test";
import { ROOT, envoyBinary } from "../scripts/lib/paths.ts";

/** Envoy bootstrap configs: YAML under envoy/ with a static_resources or dynamic_resources section. */
export function shippedEnvoyConfigs(): string[] {
  const out: string[] = [];
  const visit = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) visit(p);
      else if (/\.ya?ml$/.test(e.name) && /^(static|dynamic)_resources:/m.test(readFileSync(p, "utf8"))) out.push(p);
    }
  };
  visit(join(ROOT, "envoy"));
  return out;
}

test("at least one Envoy config is shipped", () => {
  assert.ok(shippedEnvoyConfigs().length >= 1);
});

for (const file of shippedEnvoyConfigs()) {
  test(`envoy --mode validate ${relative(ROOT, file)}`, () => {
    const r = spawnSync(envoyBinary(), ["--mode", "validate", "-c", file, "--disable-hot-restart"], { cwd: ROOT, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout + r.stderr, /OK/);
  });
}
