// The gray targets a gateway actually routes: the values its route table matches on the routing header.
// A rule whose target has no route would silently land on the default route.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { ROOT } from "../runtime/paths.ts";

/** Exact values of `routingHeader` that some route of `envoyYaml` matches, sorted. */
export function routedTargets(routingHeader = "x-graywall-target", envoyYaml = join(ROOT, "envoy", "envoy.yaml")): string[] {
  const found = new Set<string>();
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const n of node) visit(n);
      return;
    }
    if (!node || typeof node !== "object") return;
    const o = node as Record<string, unknown>;
    if (o.name === routingHeader && o.string_match && typeof (o.string_match as { exact?: unknown }).exact === "string") {
      found.add((o.string_match as { exact: string }).exact.toLowerCase());
    }
    for (const v of Object.values(o)) visit(v);
  };
  visit(parse(readFileSync(envoyYaml, "utf8")).static_resources?.listeners);
  return [...found].sort();
}

interface GrayDoc {
  routing_header?: unknown;
  default_target?: unknown;
  mark_default?: unknown;
  rules?: { target?: unknown }[];
}

/**
 * Field errors for rule targets no route serves. `known` overrides what the route table says (for a
 * gateway whose routes live elsewhere). The default target must be what the catch-all route serves (its
 * cluster's name), or a target routed by header with `mark_default: true`, so requests land where it says.
 */
export function unroutedTargets(doc: unknown, known?: string[], envoyYaml = join(ROOT, "envoy", "envoy.yaml")): { field: string; message: string }[] {
  const d = (doc ?? {}) as GrayDoc;
  const header = typeof d.routing_header === "string" ? d.routing_header.toLowerCase() : undefined;
  const targets = new Set(known ?? routedTargets(header, envoyYaml));
  const fallback = typeof d.default_target === "string" ? d.default_target.toLowerCase() : "stable";
  // What the catch-all route (no routing header) serves: its cluster's name stands for it.
  const catchAll = routeClusters("\0", undefined, envoyYaml)["\0"];
  const out: { field: string; message: string }[] = [];
  if (catchAll !== undefined && fallback !== catchAll) {
    if (!targets.has(fallback)) {
      out.push({
        field: "default_target",
        message: `no route serves target '${fallback}'; the gateway routes: ${[...targets, catchAll].sort().join(", ")}`,
      });
    } else if (d.mark_default !== true) {
      out.push({
        field: "default_target",
        message: `'${fallback}' is routed only by the routing header, which requests for the default target do not carry: set mark_default: true, or use '${catchAll}'`,
      });
    }
  }
  targets.add(fallback);
  if (catchAll !== undefined) targets.add(catchAll);
  const list = [...targets].sort().join(", ");
  (Array.isArray(d.rules) ? d.rules : []).forEach((r, i) => {
    const t = typeof r?.target === "string" ? r.target.toLowerCase() : undefined;
    if (t !== undefined && !targets.has(t)) out.push({ field: `rules[${i}].target`, message: `no route serves target '${t}'; the gateway routes: ${list}` });
  });
  return out;
}

/**
 * The upstream cluster each target's traffic is routed to, from the route table: a route matching the
 * routing header exactly serves that target; the first route without a header match serves the default
 * target (`defaultTarget`). Envoy's router counts completions, 5xx and latency on these clusters.
 */
export function routeClusters(
  defaultTarget = "stable",
  routingHeader = "x-graywall-target",
  envoyYaml = join(ROOT, "envoy", "envoy.yaml"),
): Record<string, string> {
  const out: Record<string, string> = {};
  type Route = { match?: { headers?: { name?: string; string_match?: { exact?: string } }[] }; route?: { cluster?: string } };
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const n of node) visit(n);
      return;
    }
    if (!node || typeof node !== "object") return;
    const routes = (node as { routes?: Route[] }).routes;
    for (const r of Array.isArray(routes) ? routes : []) {
      const cluster = r.route?.cluster;
      if (!cluster) continue;
      const h = r.match?.headers?.find((x) => x.name === routingHeader && typeof x.string_match?.exact === "string");
      if (h) out[h.string_match!.exact!.toLowerCase()] ??= cluster;
      else if (!r.match?.headers?.length) out[defaultTarget] ??= cluster;
    }
    for (const v of Object.values(node)) visit(v);
  };
  visit(parse(readFileSync(envoyYaml, "utf8")).static_resources?.listeners);
  return out;
}

/**
 * Whether every HTTP connection manager of `envoyYaml`'s listeners appends the peer to X-Forwarded-For
 * before the filters run (`use_remote_address: true`, no `skip_xff_append`): only then is the rightmost
 * entry the peer, and `client_address: "envoy_xff"` safe. The listeners that do not, by name.
 */
export function listenersNotAppendingXff(envoyYaml = join(ROOT, "envoy", "envoy.yaml")): string[] {
  type Listener = {
    name?: string;
    filter_chains?: { filters?: { name?: string; typed_config?: { use_remote_address?: boolean; skip_xff_append?: boolean } }[] }[];
  };
  const listeners: Listener[] = parse(readFileSync(envoyYaml, "utf8")).static_resources?.listeners ?? [];
  const out: string[] = [];
  for (const l of listeners) {
    for (const chain of l.filter_chains ?? []) {
      for (const f of chain.filters ?? []) {
        if (f.name !== "envoy.filters.network.http_connection_manager") continue;
        if (f.typed_config?.use_remote_address !== true || f.typed_config?.skip_xff_append === true) out.push(l.name ?? "(unnamed)");
      }
    }
  }
  return out;
}
