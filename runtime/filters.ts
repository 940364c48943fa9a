// The stages, in pass order, and the one module that runs them. The single list every generated file
// and the control service follow.
import { type Bindings, loadBindings } from "./bindings.ts";

export interface FilterInfo {
  /** Stage name: the section of graywall's config, the standalone module's root id and build/<name>.wasm,
   * and the rule document config/filters/<name>.json. */
  name: string;
  /** The standalone module's HTTP filter name in Envoy configs. */
  envoyName: string;
}

export const FILTERS: FilterInfo[] = [
  { name: "access", envoyName: "graywall.access" },
  { name: "ip_list", envoyName: "graywall.ip_list" },
  { name: "crawler_score", envoyName: "graywall.crawler_score" },
  { name: "rate_limiter", envoyName: "graywall.rate_limiter" },
  { name: "gray_router", envoyName: "graywall.gray_router" },
];

/** Every module `npm run build` makes: the one module, each stage alone, and the benchmark's no-op floor. */
export const MODULES: string[] = ["graywall", ...FILTERS.map((f) => f.name), "noop"];

/** The one module everything shipped uses: root id, vm id, build/graywall.wasm and its Envoy filter name. */
export const MODULE = { name: "graywall", envoyName: "graywall", istioPhase: "AUTHN" as const, istioPriority: 100 };

/**
 * graywall's configuration from the stage documents: a section per stage, in pass order, as Envoy is
 * given it: ip_list's long lists go in their packed form (docs/ip_list.md, "Packed lists").
 */
export function composeConfig(docs: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of FILTERS) if (docs[f.name] !== undefined) out[f.name] = f.name === "ip_list" ? packIpLists(docs[f.name]) : docs[f.name];
  return out;
}

/** ip_list lists of at least this many entries are delivered packed. */
export const PACK_AT = 1000;

let packer: Bindings | undefined;
/**
 * Each document's delivered form, computed once (every publish of any stage composes them all again),
 * with the lengths of its lists when it was: a document is a stored version, never changed in place.
 */
const packedForms = new WeakMap<object, { lengths: string; out: unknown }>();
const listLengths = (doc: Record<string, unknown>) => ["allow", "deny"].map((k) => (Array.isArray(doc[k]) ? doc[k].length : -1)).join();

/**
 * An ip_list document with each list of PACK_AT entries or more in its packed form (`deny` becomes
 * `deny_packed`): the same addresses, in 3-5 bytes an IPv4 entry instead of about 18, for Envoy and each
 * VM to carry. A list that already has a packed part, or an entry the filter's parser refuses, is left
 * as it is (the filter reports such an entry).
 */
export function packIpLists(doc: unknown): unknown {
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) return doc;
  const lengths = listLengths(doc as Record<string, unknown>);
  const known = packedForms.get(doc);
  if (known && known.lengths === lengths) return known.out;
  let out = doc as Record<string, unknown>;
  for (const key of ["allow", "deny"]) {
    const list = out[key];
    if (!Array.isArray(list) || list.length < PACK_AT || `${key}_packed` in out || !list.every((c) => typeof c === "string")) continue;
    packer ??= loadBindings();
    const packed = packer.packCidrList(list as string[]);
    if (packed === null) continue;
    const { [key]: _list, ...rest } = out;
    out = { ...rest, [`${key}_packed`]: packed };
  }
  packedForms.set(doc, { lengths, out });
  return out;
}

/**
 * The documents for an Envoy whose HTTP connection manager Graywall does not render (Istio's gateway):
 * the client address comes from the host there (`client_address` dropped), since nothing here
 * guarantees that Envoy appends the peer to X-Forwarded-For.
 */
export function withPeerFromHost(docs: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(docs)) {
    if (v && typeof v === "object" && !Array.isArray(v) && "client_address" in v) {
      const { client_address: _dropped, ...rest } = v as Record<string, unknown>;
      out[k] = rest;
    } else out[k] = v;
  }
  return out;
}
