// Istio manifests: each validated against the Istio CRD schemas (unknown fields are errors), and each
// filter's pluginConfig validated by that filter's own config compiler.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { Ajv } from "ajv";
import { parseAllDocuments } from "yaml";
import { ROOT } from "../runtime/paths.ts";
import { FILTERS, MODULE } from "../runtime/filters.ts";
import { loadBindings } from "../runtime/bindings.ts";

// The CRDs are vendored from istio/api (tests/fixtures/istio/README.md); GRAYWALL_ISTIO_CRDS overrides.
const CRDS = process.env.GRAYWALL_ISTIO_CRDS ?? join(ROOT, "tests", "fixtures", "istio", "istio-crds.yaml");
if (!existsSync(CRDS)) throw new Error(`Istio CRD schemas not found at ${CRDS}`);

// Parsed YAML and JSON trees are untyped.
type Schema = any;

/** Kubernetes prunes unknown fields; we want them as errors, so close every object that lists its properties. */
function strict(s: Schema): Schema {
  if (Array.isArray(s)) return s.map(strict);
  if (!s || typeof s !== "object") return s;
  const out: Schema = {};
  for (const [k, v] of Object.entries(s)) out[k] = k === "enum" || k === "required" ? v : strict(v);
  if (out.type === "object" && out.properties && out.additionalProperties === undefined && !out["x-kubernetes-preserve-unknown-fields"]) {
    out.additionalProperties = false;
  }
  if (out["x-kubernetes-int-or-string"]) {
    delete out.type;
    out.anyOf = [{ type: "integer" }, { type: "string" }];
  }
  if (out.nullable) {
    delete out.nullable;
    if (out.type) out.type = [out.type, "null"];
  }
  return out;
}

function validators() {
  const ajv = new Ajv({ strict: false, allErrors: true });
  const byKind = new Map<string, ReturnType<typeof ajv.compile>>();
  for (const d of parseAllDocuments(readFileSync(CRDS, "utf8"))) {
    const crd = d.toJS();
    if (crd?.kind !== "CustomResourceDefinition") continue;
    for (const v of crd.spec.versions) {
      const schema = strict(v.schema.openAPIV3Schema);
      schema.properties = { ...schema.properties, apiVersion: { type: "string" }, kind: { type: "string" }, metadata: { type: "object" } };
      schema.additionalProperties = false;
      byKind.set(`${crd.spec.group}/${v.name}/${crd.spec.names.kind}`, ajv.compile(schema));
    }
  }
  return byKind;
}

function manifests(): { file: string; doc: Schema }[] {
  const dir = join(ROOT, "envoy", "istio");
  return readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .flatMap((f) => parseAllDocuments(readFileSync(join(dir, f), "utf8")).map((d) => ({ file: f, doc: d.toJS() })));
}

test("every Istio manifest validates against the Istio CRDs, unknown fields included", () => {
  const byKind = validators();
  const docs = manifests();
  const kinds = new Set(docs.map((d) => d.doc.kind));
  for (const k of ["WasmPlugin", "EnvoyFilter", "DestinationRule", "VirtualService"]) assert.ok(kinds.has(k), `ships a ${k}`);
  for (const { file, doc } of docs) {
    const validate = byKind.get(`${doc.apiVersion.replace(/\/.*$/, "")}/${doc.apiVersion.split("/")[1]}/${doc.kind}`);
    assert.ok(validate, `${file}: no CRD for ${doc.apiVersion} ${doc.kind}`);
    assert.ok(validate(doc), `${file} ${doc.kind} ${doc.metadata?.name}: ${JSON.stringify(validate.errors)}`);
  }
});

test("the CRD check catches unknown fields and bad enums", () => {
  const byKind = validators();
  const wp = manifests().find((d) => d.doc.kind === "WasmPlugin")!.doc;
  const validate = byKind.get("extensions.istio.io/v1alpha1/WasmPlugin")!;
  assert.equal(validate({ ...wp, spec: { ...wp.spec, pahse: "AUTHN" } }), false);
  assert.equal(validate({ ...wp, spec: { ...wp.spec, phase: "EARLY" } }), false);
  assert.equal(validate({ ...wp, spec: { ...wp.spec, sha256: "abc" } }), false);
});

test("one WasmPlugin, the graywall module, its pluginConfig accepted by the module's own config compiler", () => {
  const b = loadBindings();
  const plugins = manifests()
    .filter((d) => d.doc.kind === "WasmPlugin")
    .map((d) => d.doc);
  assert.deepEqual(
    plugins.map((p) => p.spec.pluginName),
    [MODULE.name],
  );
  assert.deepEqual(
    Object.keys(plugins[0].spec.pluginConfig),
    FILTERS.map((f) => f.name),
  );
  for (const p of plugins) {
    assert.equal(b.validateFilterConfig(p.spec.pluginName, JSON.stringify(p.spec.pluginConfig)), "", p.spec.pluginName);
  }
  assert.match(b.validateFilterConfig("ip_list", '{"deny": ["nope"]}'), /deny\[0\]: invalid IP or CIDR 'nope'/);
  assert.match(
    b.validateFilterConfig("graywall", '{"ip_list": {"deny": ["nope"]}, "rate_limit": {}}'),
    /rate_limit: unknown field\nip_list\.deny\[0\]: invalid IP or CIDR 'nope'/,
  );
});

test("the VirtualService routes on the header gray_router writes, to subsets the DestinationRule defines", () => {
  const docs = manifests().map((d) => d.doc);
  const vs = docs.find((d) => d.kind === "VirtualService");
  const dr = docs.find((d) => d.kind === "DestinationRule");
  const router = JSON.parse(readFileSync(join(ROOT, "config", "filters", "gray_router.json"), "utf8"));
  const header = router.routing_header ?? "x-graywall-target";
  assert.ok(vs.spec.http.some((r: Schema) => r.match?.some((m: Schema) => m.headers?.[header])));
  const subsets = new Set(dr.spec.subsets.map((s: Schema) => s.name));
  for (const r of vs.spec.http) for (const d of r.route) assert.ok(subsets.has(d.destination.subset), d.destination.subset);
});
