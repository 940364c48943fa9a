// One source of truth: the filter configs in envoy.yaml, the Istio manifests and the compose setup
// are generated from config/filters/*.json; any drift fails here.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parse, parseAllDocuments } from "yaml";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { drifted, filterDocs } from "../scripts/render.ts";
import { ROOT } from "../runtime/paths.ts";
import { FILTERS, MODULE, withPeerFromHost } from "../runtime/filters.ts";

test("generated files match config/filters (run `npm run render` after editing a document)", () => {
  assert.deepEqual(drifted(), []);
});

test("every place carries the same document for each stage, as a section of the one module's config", () => {
  const docs = filterDocs();
  const fromEnvoy = (file: string) => {
    const cfg = parse(readFileSync(join(ROOT, file), "utf8"));
    const filters = cfg.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters;
    const module = filters.filter((f: any) => f.name.startsWith("graywall"));
    assert.deepEqual(
      module.map((f: any) => f.typed_config.config.root_id),
      [MODULE.name],
      file,
    );
    return JSON.parse(module[0].typed_config.config.configuration.value);
  };
  const wasmPlugins = Object.fromEntries(
    parseAllDocuments(readFileSync(join(ROOT, "envoy/istio/wasm-plugins.yaml"), "utf8"))
      .map((d) => d.toJS())
      .map((p) => [p.spec.pluginName, p.spec.pluginConfig]),
  );
  const envoyFilter = parse(readFileSync(join(ROOT, "envoy/istio/envoy-filter.yaml"), "utf8"));
  const patches = envoyFilter.spec.configPatches;
  assert.deepEqual(
    patches.map((p: any) => p.patch.value.typed_config.config.root_id),
    [MODULE.name],
  );
  const fromEnvoyFilter = JSON.parse(patches[0].patch.value.typed_config.config.configuration.value);
  const wasmPlugin = wasmPlugins[MODULE.name];
  for (const f of FILTERS) {
    assert.deepEqual(fromEnvoy("envoy/envoy.yaml")[f.name], docs[f.name], `envoy.yaml ${f.name}`);
    assert.deepEqual(fromEnvoy("envoy/compose/envoy.yaml")[f.name], docs[f.name], `compose ${f.name}`);
    // Istio's gateway is not an Envoy whose connection manager Graywall renders: the peer comes from the host there.
    const forIstio = withPeerFromHost(docs)[f.name] as Record<string, unknown>;
    assert.equal(forIstio.client_address, undefined);
    assert.deepEqual(wasmPlugin[f.name], forIstio, `WasmPlugin ${f.name}`);
    assert.deepEqual(fromEnvoyFilter[f.name], forIstio, `EnvoyFilter ${f.name}`);
  }
});
