// npm run release [-- --registry <host>/<path>] [--base-url <url>] [--out <dir>]
// Writes dist/graywall-<version>/: every released module and SHA256SUMS; an Istio-compatible OCI image
// layout per module (oci/<module>/) and IMAGES (reference and digest of each); the Istio WasmPlugin
// pulling the image from the registry; an Envoy filter fetching the module from <base-url> with its
// sha256; and CHANGES.md, this version's CHANGELOG section. Nothing in it depends on the time or the
// machine: two runs give the same bytes.
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { stringify } from "yaml";
import { build } from "./build.ts";
import { filterDocs, renderWasmPlugins } from "./render.ts";
import { wasmTemplates, wasmTypedConfig } from "../runtime/ecds.ts";
import { composeConfig, MODULE } from "../runtime/filters.ts";
import { sha256hex, writeImageLayout } from "./lib/oci.ts";
import { ROOT, wasmPath } from "../runtime/paths.ts";
import { changelogSection, DEFAULT_REGISTRY, defaultBaseUrl, imageRef, RELEASED_MODULES, releaseImage, VERSION } from "./lib/release.ts";

export interface ReleaseOptions {
  registry?: string;
  baseUrl?: string;
  /** Parent folder of graywall-<version>/ (default dist/). */
  out?: string;
}

/** The cluster Envoy fetches released modules through, for a base URL. */
function releasesCluster(baseUrl: string) {
  const u = new URL(baseUrl);
  const https = u.protocol === "https:";
  return {
    name: "graywall_releases",
    type: "STRICT_DNS",
    connect_timeout: "5s",
    load_assignment: {
      cluster_name: "graywall_releases",
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: u.hostname, port_value: Number(u.port || (https ? 443 : 80)) } } } }] }],
    },
    ...(https
      ? {
          transport_socket: {
            name: "envoy.transport_sockets.tls",
            typed_config: { "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext", sni: u.hostname },
          },
        }
      : {}),
  };
}

/** graywall's HTTP filter loading the released module from `baseUrl` (checked by sha256), with the shipped config. */
export function remoteFilter(baseUrl: string, wasmSha256: string, pluginConfig: unknown) {
  const typed = wasmTypedConfig(wasmTemplates().get(MODULE.envoyName), pluginConfig);
  typed.config.vm_config.code = {
    remote: {
      http_uri: { uri: `${baseUrl.replace(/\/$/, "")}/${MODULE.name}.wasm`, cluster: "graywall_releases", timeout: "10s" },
      sha256: wasmSha256,
      retry_policy: { num_retries: 3 },
    },
  };
  return { name: MODULE.envoyName, typed_config: typed };
}

export function release(o: ReleaseOptions = {}): string {
  const registry = o.registry ?? DEFAULT_REGISTRY;
  const baseUrl = o.baseUrl ?? defaultBaseUrl();
  const dir = join(resolve(ROOT, o.out ?? "dist"), `graywall-${VERSION}`);
  const notes = changelogSection(); // before any work: no release without its notes
  build();
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const sums: string[] = [];
  const images: string[] = [];
  for (const m of RELEASED_MODULES) {
    const file = `${m}.wasm`;
    copyFileSync(wasmPath(m), join(dir, file));
    sums.push(`${sha256hex(readFileSync(wasmPath(m)))}  ${file}`);
    const image = releaseImage(m);
    writeImageLayout(join(dir, "oci", m), image, VERSION);
    images.push(`${imageRef(registry, m)} ${image.digest}`);
  }
  writeFileSync(join(dir, "SHA256SUMS"), `${sums.join("\n")}\n`);
  writeFileSync(join(dir, "IMAGES"), `${images.join("\n")}\n`);
  const docs = filterDocs();
  mkdirSync(join(dir, "istio"));
  writeFileSync(join(dir, "istio", "wasm-plugins.yaml"), renderWasmPlugins(docs, registry));
  mkdirSync(join(dir, "envoy"));
  const wasmSha = sha256hex(readFileSync(wasmPath(MODULE.name)));
  writeFileSync(
    join(dir, "envoy", "graywall-remote.yaml"),
    `# Graywall ${VERSION} for plain Envoy: put http_filter before the router and add the cluster.\n# Envoy fetches the module from ${baseUrl} and refuses it unless its sha256 matches.\n${stringify(
      { http_filter: remoteFilter(baseUrl, wasmSha, composeConfig(docs)), cluster: releasesCluster(baseUrl) },
      { lineWidth: 0 },
    )}`,
  );
  writeFileSync(join(dir, "CHANGES.md"), notes);
  return dir;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    const { values } = parseArgs({ options: { registry: { type: "string" }, "base-url": { type: "string" }, out: { type: "string" } } });
    const dir = release({ registry: values.registry, baseUrl: values["base-url"], out: values.out });
    console.log(`[release] graywall ${VERSION} in ${dir}`);
    console.log(readFileSync(join(dir, "IMAGES"), "utf8").trimEnd());
  } catch (e) {
    console.error(`[release] ${(e as Error).message}`);
    process.exit(1);
  }
}
