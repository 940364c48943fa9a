// Every Envoy config the project ships passes `envoy --mode validate`.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { Delivery } from "../control/delivery.ts";
import { ECDS_DIR } from "../scripts/render.ts";
import { FILTERS } from "../runtime/filters.ts";
import { join, relative } from "node:path";
import { test } from "node:test";
import { ROOT, envoyBinary } from "../runtime/paths.ts";

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

/**
 * A config whose filters come from ECDS files (envoy-ecds.yaml) needs those files: write them with the
 * control service's Delivery into a temp dir, and point a copy of the config there.
 */
function withEcdsFiles(file: string): string {
  const text = readFileSync(file, "utf8");
  if (!text.includes("path_config_source")) return file;
  const dir = mkdtempSync(join(tmpdir(), "graywall-validate-"));
  const delivery = new Delivery({ ecdsDir: dir });
  for (const f of FILTERS) delivery.deliver(f.name, JSON.parse(readFileSync(join(ROOT, "config", "filters", `${f.name}.json`), "utf8")));
  const copy = join(dir, "envoy.yaml");
  writeFileSync(copy, text.replaceAll(ECDS_DIR, dir));
  return copy;
}

for (const file of shippedEnvoyConfigs()) {
  test(`envoy --mode validate ${relative(ROOT, file)}`, () => {
    const r = spawnSync(envoyBinary(), ["--mode", "validate", "-c", withEcdsFiles(file), "--disable-hot-restart"], { cwd: ROOT, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout + r.stderr, /OK/);
  });
}
