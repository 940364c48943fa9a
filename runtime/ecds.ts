// ECDS (extension config discovery) files for the Graywall filters: the filter's Wasm config from
// envoy/envoy.yaml, with a plugin configuration swapped in, wrapped as a discovery response.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { ROOT } from "./paths.ts";

// Parsed YAML and JSON trees are untyped.
type Json = any;

/** The typed_config of each graywall HTTP filter in envoy/envoy.yaml, by Envoy filter name. */
export function wasmTemplates(envoyYaml = join(ROOT, "envoy", "envoy.yaml")): Map<string, Json> {
  const cfg = parse(readFileSync(envoyYaml, "utf8"));
  const out = new Map<string, Json>();
  for (const l of cfg.static_resources?.listeners ?? []) {
    for (const fc of l.filter_chains ?? []) {
      for (const f of fc.filters ?? []) {
        for (const h of f.typed_config?.http_filters ?? []) {
          if (typeof h.name === "string" && h.name.startsWith("graywall") && h.typed_config) out.set(h.name, h.typed_config);
        }
      }
    }
  }
  return out;
}

export const ecdsFileName = (envoyName: string) => `${envoyName.replace(/[^a-z0-9_]/gi, "_")}.ecds.yaml`;

/** The filter's typed_config (Envoy's JSON form) with `pluginConfig` (a string is sent as is). */
export function wasmTypedConfig(template: Json, pluginConfig: unknown, wasmDir?: string): Json {
  const tpl = structuredClone(template);
  if (wasmDir) {
    const file = tpl.config.vm_config.code.local.filename as string;
    tpl.config.vm_config.code.local.filename = join(wasmDir, file.split("/").pop()!);
  }
  tpl.config.configuration = {
    "@type": "type.googleapis.com/google.protobuf.StringValue",
    value: typeof pluginConfig === "string" ? pluginConfig : JSON.stringify(pluginConfig),
  };
  return tpl;
}

/** The ECDS file content serving `envoyName` with `pluginConfig` (a string is sent as is). */
export function ecdsResource(envoyName: string, template: Json, pluginConfig: unknown, wasmDir?: string): string {
  return stringify({
    resources: [
      {
        "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
        name: envoyName,
        typed_config: wasmTypedConfig(template, pluginConfig, wasmDir),
      },
    ],
  });
}
