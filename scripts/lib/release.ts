// What a release is made of: the version (package.json is its only source), the modules it ships, their
// OCI images and where the manifests point. Used by `npm run release`, `npm run render` and the tests.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { FILTERS, MODULE } from "../../runtime/filters.ts";
import { wasmImage, type WasmImage } from "./oci.ts";
import { ROOT, VERSION, wasmPath } from "../../runtime/paths.ts";

export { VERSION };

/** The modules a release ships: the one module and each stage alone (not the benchmark's no-op). */
export const RELEASED_MODULES = [MODULE.name, ...FILTERS.map((f) => f.name)];

/** Where images are pushed unless told otherwise (`npm run release -- --registry <host>/<path>`). */
export const DEFAULT_REGISTRY = "registry.example.com/graywall";
/** Where the plain .wasm files are served from, for Envoy's remote fetch, unless told otherwise. */
export const defaultBaseUrl = (version = VERSION) => `https://graywall.example.com/releases/v${version}`;

export const imageRef = (registry: string, module: string, version = VERSION) => `${registry}/${module}:${version}`;

/** The compat OCI image of a built module. */
export function releaseImage(module: string): WasmImage {
  return wasmImage(readFileSync(wasmPath(module)), {
    "org.opencontainers.image.title": module,
    "org.opencontainers.image.version": VERSION,
    "org.opencontainers.image.licenses": "Apache-2.0",
  });
}

/** The CHANGELOG.md section of `version` (its heading to the next one), or throws if it has none. */
export function changelogSection(version = VERSION, changelog = readFileSync(join(ROOT, "CHANGELOG.md"), "utf8")): string {
  const lines = changelog.split("\n");
  const start = lines.findIndex((l) => l.startsWith(`## [${version}]`));
  if (start < 0) throw new Error(`CHANGELOG.md has no section '## [${version}]': add one before releasing`);
  let end = lines.findIndex((l, i) => i > start && l.startsWith("## "));
  if (end < 0) end = lines.length;
  return `${lines.slice(start, end).join("\n").trim()}\n`;
}
