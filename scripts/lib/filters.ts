// The filters, in chain order, with where each sits in an Istio proxy. The single list every
// generated file follows.
export interface FilterInfo {
  /** Root id, module name (build/<name>.wasm) and config document (config/filters/<name>.json). */
  name: string;
  /** The HTTP filter's name in Envoy configs. */
  envoyName: string;
  istioPhase: "AUTHN" | "AUTHZ" | "STATS" | "UNSPECIFIED_PHASE";
  /** Within a phase, higher runs first. */
  istioPriority: number;
}

export const FILTERS: FilterInfo[] = [
  { name: "ip_list", envoyName: "graywall.ip_list", istioPhase: "AUTHN", istioPriority: 100 },
  { name: "crawler_score", envoyName: "graywall.crawler_score", istioPhase: "AUTHZ", istioPriority: 200 },
  { name: "rate_limiter", envoyName: "graywall.rate_limiter", istioPhase: "AUTHZ", istioPriority: 100 },
  { name: "gray_router", envoyName: "graywall.gray_router", istioPhase: "UNSPECIFIED_PHASE", istioPriority: 100 },
];
