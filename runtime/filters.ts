// The stages, in pass order, and the one module that runs them. The single list every generated file
// and the control service follow.
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

/** graywall's configuration from the stage documents: a section per stage, in pass order. */
export function composeConfig(docs: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of FILTERS) if (docs[f.name] !== undefined) out[f.name] = docs[f.name];
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
