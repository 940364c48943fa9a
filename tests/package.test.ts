// What a user installs: runtime dependencies declared as such, no engine warning on the README's Node
// (20), a licence file matching package.json, and the packed package installed into an empty folder.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ROOT } from "../runtime/paths.ts";
import { eventually, freePort, loadYaml, renderConfig, startEnvoy, stopUpstream, upstream, versionOf } from "./e2e/harness.ts";

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

test("npm ci warns about no install script: every dependency's install script has been reviewed (allowScripts)", () => {
  const r = spawnSync("npm", ["install-scripts", "ls"], { cwd: ROOT, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /No packages with unreviewed install scripts/, r.stdout);
});

test("everything graywall-control imports at run time is a dependency, not a dev one", () => {
  const runtime = new Set([...imports("control"), ...imports("runtime")]);
  assert.ok(runtime.has("fastify"));
  for (const name of runtime) assert.ok(name in pkg.dependencies, `${name} is imported at run time but not in dependencies`);
  // The package runs compiled JavaScript: tsx is for development.
  assert.ok(!("tsx" in pkg.dependencies) && "tsx" in pkg.devDependencies);
});

test("the service's code imports no tooling: nothing under control/ or runtime/ imports scripts/, tests/ or bench/, and runtime/ starts no process", () => {
  const files = (dir: string): string[] =>
    readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
    );
  for (const f of [...files("control"), ...files("runtime")]) {
    const text = readFileSync(join(ROOT, f), "utf8");
    assert.doesNotMatch(text, /from "(\.\.\/)+(scripts|tests|bench|eval|fuzz)\//, f);
    if (f.startsWith("runtime")) assert.doesNotMatch(text, /node:child_process/, `${f} starts no process`);
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

test("npm pack makes a graywall package a user installs into an empty folder: its bin runs, its module loads in Envoy", async () => {
  const work = mkdtempSync(join(tmpdir(), "graywall-pack-"));
  const pack = spawnSync("npm", ["pack", "--silent", "--pack-destination", work], { cwd: ROOT, encoding: "utf8" });
  assert.equal(pack.status, 0, pack.stderr);
  const tarball = join(work, pack.stdout.trim().split("\n").pop()!);
  const files = spawnSync("tar", ["-tzf", tarball], { encoding: "utf8" }).stdout.split("\n");
  assert.ok(files.includes("package/build/graywall.wasm"));
  assert.ok(files.includes("package/bin/graywall-control.js"));
  // graywall-control runs from JavaScript compiled when packing, not from TypeScript through tsx.
  assert.ok(files.includes("package/dist/control/main.js") && files.includes("package/dist/control/validation/worker.js"));
  assert.deepEqual(
    files.filter((f) => f.endsWith(".ts")),
    [],
    "no TypeScript in the package",
  );
  assert.ok(!files.some((f) => /^package\/(tests|assembly|bench|scripts|eval)\//.test(f) || f.endsWith("noop.wasm")), "only what a user needs");

  const app = join(work, "app");
  mkdirSync(app);
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true }));
  const install = spawnSync("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error", tarball], {
    cwd: app,
    encoding: "utf8",
    timeout: 300_000,
  });
  assert.equal(install.status, 0, install.stderr);

  assert.ok(!existsSync(join(app, "node_modules", "tsx")), "tsx is a development dependency: not installed with the package");
  const help = spawnSync("npx", ["--no-install", "graywall-control", "--help"], { cwd: app, encoding: "utf8" });
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /^graywall-control: /);
  assert.match(help.stdout, new RegExp(`${join(app, "node_modules", "graywall", "build").replaceAll("/", "\\/")}`));

  // The installed service runs from the package: API up, gRPC ECDS up (its protos found where npm put them).
  const [port, xds] = [await freePort(), await freePort()];
  const control = spawn(join(app, "node_modules", ".bin", "graywall-control"), [], {
    cwd: app,
    env: { ...process.env, GRAYWALL_CONTROL_PORT: String(port), GRAYWALL_XDS_PORT: String(xds) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  control.stdout.on("data", (d) => (out += d));
  control.stderr.on("data", (d) => (out += d));
  try {
    await eventually(async () => out.includes("graywall-control on") || control.exitCode !== null, 30_000, "the installed control service");
    assert.match(out, /graywall-control on/);
    const g = await (await fetch(`http://127.0.0.1:${port}/api/gateways`)).json();
    assert.equal(g.fleet, true);
    // The validation worker (compiled JavaScript, the filters' compilers built for Node) answers.
    const checked = await fetch(`http://127.0.0.1:${port}/api/filters/ip_list/validate`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ doc: { allow: [], deny: ["300.0.0.1/8"] } }),
    });
    assert.match(JSON.stringify(await checked.json()), /invalid IP or CIDR '300\.0\.0\.1\/8'/);
    assert.ok(existsSync(join(app, ".graywall", "ecds", "graywall.ecds.yaml")), "data and ECDS files go under the user's folder");
  } finally {
    control.kill("SIGTERM");
  }

  // Envoy loads the installed module directly.
  const [stable, canary, adminPort, listenerPort] = [await upstream("stable"), await upstream("canary"), await freePort(), await freePort()];
  const cfg = renderConfig(loadYaml("envoy/envoy.yaml"), { adminPort, listenerPort, clusters: { stable: stable.port, canary: canary.port } });
  const hcm = cfg.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
  hcm.http_filters.find((f: { name: string }) => f.name === "graywall").typed_config.config.vm_config.code.local.filename = join(
    app,
    "node_modules",
    "graywall",
    "build",
    "graywall.wasm",
  );
  const envoy = await startEnvoy(cfg, adminPort, listenerPort);
  try {
    assert.equal(await versionOf(envoy.url("/"), { headers: { "x-user-group": "beta" } }), "canary");
  } finally {
    await envoy.stop();
    await stopUpstream(stable);
    await stopUpstream(canary);
  }
});
