// OCI images of Wasm modules in the "compat" variant Istio's fetcher (and Envoy's) accept: an OCI image
// manifest with one application/vnd.oci.image.layer.v1.tar+gzip layer holding plugin.wasm, annotated
// module.wasm.image/variant: compat; written as an OCI image layout directory, without Docker. Every byte
// is a function of the module, so two builds give the same digests.
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";

export const MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json";
export const CONFIG_TYPE = "application/vnd.oci.image.config.v1+json";
export const LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip";
export const VARIANT_ANNOTATION = "module.wasm.image/variant";

export const sha256hex = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");

/** A one-file ustar archive: `name` holding `data`, owner root, mode 0644, mtime 0. */
export function tarOneFile(name: string, data: Uint8Array): Buffer {
  const header = Buffer.alloc(512);
  const field = (text: string, offset: number, length: number) => header.write(text, offset, length, "ascii");
  const octal = (n: number, length: number) => n.toString(8).padStart(length - 1, "0");
  field(name, 0, 100);
  field(octal(0o644, 8), 100, 8);
  field(octal(0, 8), 108, 8);
  field(octal(0, 8), 116, 8);
  field(octal(data.length, 12), 124, 12);
  field(octal(0, 12), 136, 12);
  field("        ", 148, 8); // checksum counts as spaces while summing
  field("0", 156, 1);
  field("ustar\u000000", 257, 8);
  field("root", 265, 32);
  field("root", 297, 32);
  let sum = 0;
  for (const b of header) sum += b;
  field(`${octal(sum, 7)}\u0000 `, 148, 8);
  const pad = (512 - (data.length % 512)) % 512;
  return Buffer.concat([header, Buffer.from(data), Buffer.alloc(pad), Buffer.alloc(1024)]);
}

/** The files of a one-file-per-entry ustar archive (enough to read back what tarOneFile writes). */
export function untar(tar: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let at = 0;
  while (at + 512 <= tar.length) {
    const h = tar.subarray(at, at + 512);
    if (h.every((b) => b === 0)) break;
    const name = h.subarray(0, 100).toString("ascii").replace(/\0.*$/s, "");
    const size = Number.parseInt(h.subarray(124, 136).toString("ascii").replace(/\0.*$/s, "").trim() || "0", 8);
    out.set(name, tar.subarray(at + 512, at + 512 + size));
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

export interface WasmImage {
  manifest: Buffer;
  /** sha256:<hex> of the manifest: the image digest a registry and Istio's `sha256` refer to. */
  digest: string;
  blobs: Map<string, Buffer>;
}

const descriptor = (mediaType: string, blob: Buffer): Descriptor => ({ mediaType, digest: `sha256:${sha256hex(blob)}`, size: blob.length });

/** The compat image of one module. */
export function wasmImage(wasm: Uint8Array, labels: Record<string, string> = {}): WasmImage {
  const tar = tarOneFile("plugin.wasm", wasm);
  // level 9, and gzip's header has no name and mtime 0 in Node: the same bytes every time.
  const layer = gzipSync(tar, { level: 9 });
  const config = Buffer.from(
    JSON.stringify({
      // A platform image (as `FROM scratch` builds are) so every client takes it; the module runs anywhere.
      architecture: "amd64",
      os: "linux",
      config: { Labels: labels },
      rootfs: { type: "layers", diff_ids: [`sha256:${sha256hex(tar)}`] },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST_TYPE,
      config: descriptor(CONFIG_TYPE, config),
      layers: [descriptor(LAYER_TYPE, layer)],
      annotations: { [VARIANT_ANNOTATION]: "compat" },
    }),
  );
  const blobs = new Map<string, Buffer>();
  for (const b of [config, layer, manifest]) blobs.set(sha256hex(b), b);
  return { manifest, digest: `sha256:${sha256hex(manifest)}`, blobs };
}

/** Writes `image` as an OCI image layout at `dir`, tagged `tag` (org.opencontainers.image.ref.name). */
export function writeImageLayout(dir: string, image: WasmImage, tag: string): void {
  mkdirSync(join(dir, "blobs", "sha256"), { recursive: true });
  writeFileSync(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  for (const [hex, blob] of image.blobs) writeFileSync(join(dir, "blobs", "sha256", hex), blob);
  const index = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [{ mediaType: MANIFEST_TYPE, digest: image.digest, size: image.manifest.length, annotations: { "org.opencontainers.image.ref.name": tag } }],
  };
  writeFileSync(join(dir, "index.json"), JSON.stringify(index));
}

/**
 * Checks an image the way Istio's Wasm image fetcher reads a compat image: an OCI manifest whose last
 * layer is a gzipped tar holding plugin.wasm. Returns plugin.wasm, or throws saying what is wrong.
 */
export function pluginFromImage(manifestBytes: Buffer, blob: (digest: string) => Buffer): Buffer {
  const m = JSON.parse(manifestBytes.toString("utf8"));
  if (m.schemaVersion !== 2) throw new Error(`manifest schemaVersion ${m.schemaVersion}, expected 2`);
  if (m.mediaType !== MANIFEST_TYPE) throw new Error(`manifest media type ${m.mediaType}, expected ${MANIFEST_TYPE}`);
  if (m.config?.mediaType !== CONFIG_TYPE) throw new Error(`config media type ${m.config?.mediaType}`);
  if (m.annotations?.[VARIANT_ANNOTATION] !== "compat") throw new Error(`no ${VARIANT_ANNOTATION}: compat annotation`);
  const last = m.layers?.[m.layers.length - 1];
  if (last?.mediaType !== LAYER_TYPE) throw new Error(`last layer media type ${last?.mediaType}, expected ${LAYER_TYPE}`);
  const gz = blob(last.digest);
  if (`sha256:${sha256hex(gz)}` !== last.digest || gz.length !== last.size) throw new Error(`layer ${last.digest} does not match its descriptor`);
  const plugin = untar(gunzipSync(gz)).get("plugin.wasm");
  if (!plugin) throw new Error("the layer holds no plugin.wasm");
  return plugin;
}
