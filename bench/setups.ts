// The Envoy setups the bench compares: no filter, the no-op floor, each stage alone in the one graywall
// module, all four in it, the four separate modules chained, and Envoy's native peers.
import { createHash, createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { packIpLists } from "../runtime/filters.ts";
import { ROOT } from "../runtime/paths.ts";

// Parsed YAML and JSON trees are untyped.
type Json = any;

// A browser-like request, so the crawler stage passes it (and still does all its work).
/** The bench's crawler signs client ids with this secret, so the bench client can be a returning browser. */
const BENCH_ID_SECRET = "bench-client-id-secret-0123456789";

/** A client id cookie value as the filter issues it (client_id.ts): "<24 hex>.<issued>.<HMAC-SHA-256 hex, 16 bytes>". */
export function clientIdCookie(secret: string, id: string, issuedS: number): string {
  const signed = `${id}.${issuedS}`;
  return `${signed}.${createHmac("sha256", secret).update(signed).digest("hex").slice(0, 32)}`;
}

/** The bench client's API key (access stage): its consumer is the one whose key digest matches. */
const BENCH_API_KEY = "gwk_bench-key-0123456789abcdefghijklmnopqrstu";

/** The bench client's signing key (access stage, signed requests); its signature covers @method and @path. */
const BENCH_SIGNING_SECRET = "gws_bench-signing-secret-0123456789abcdefghij";
const SIG_PARAMS = `("@method" "@path");created=${Math.floor(Date.now() / 1000)};keyid="bench-k1";alg="hmac-sha256"`;
const SIG = createHmac("sha256", BENCH_SIGNING_SECRET).update(`"@method": GET\n"@path": /\n"@signature-params": ${SIG_PARAMS}`).digest("base64");

export const BENCH_HEADERS = [
  "user-agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
  "accept: text/html",
  "accept-language: en-US",
  "accept-encoding: gzip",
  'sec-ch-ua: "Chromium";v="131"',
  "sec-fetch-mode: navigate",
  "x-user-id: user-42",
  // A returning browser: it keeps the client id the crawler gave it (a first visit gets one issued).
  `cookie: graywall_id=${clientIdCookie(BENCH_ID_SECRET, "0123456789abcdef01234567", Math.floor(Date.now() / 1000))}`,
  // A merchant's API key: the access stage identifies it (setups without the stage pass it on).
  `x-api-key: ${BENCH_API_KEY}`,
  // And a signature (RFC 9421) over the request, for the signed-requests setup (the others ignore it).
  `signature-input: sig1=${SIG_PARAMS}`,
  `signature: sig1=:${SIG}:`,
];

export interface Setup {
  name: string;
  /** What it is compared against besides the no-filter baseline. */
  peer?: string;
  httpFilters: Json[];
  routes?: Json[];
  /** With the shipped configs' observability: their stats tags and their JSON access log (to /dev/null). */
  observability?: boolean;
}

/** The shipped envoy.yaml's stats tags and its listener's access log, for setups with `observability`. */
function shippedObservability(): { statsConfig: Json; accessLog: Json[] } {
  const shipped = parse(readFileSync(join(ROOT, "envoy", "envoy.yaml"), "utf8"));
  const log = structuredClone(shipped.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.access_log);
  for (const l of log) {
    // The same JSON line (and the same filter deciding which requests get one), formatted and written by
    // Envoy's file logger, to nowhere.
    l.name = "envoy.access_loggers.file";
    l.typed_config = {
      "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
      path: "/dev/null",
      log_format: l.typed_config.log_format,
    };
  }
  return { statsConfig: shipped.stats_config, accessLog: log };
}

const wasm = (name: string, config: unknown, extra: Json = {}, file = join(ROOT, "build", `${name}.wasm`)): Json => ({
  name: `graywall.${name}`,
  typed_config: {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
    config: {
      name,
      root_id: name,
      ...extra,
      vm_config: { vm_id: name, runtime: "envoy.wasm.runtime.v8", code: { local: { filename: file } } },
      configuration: { "@type": "type.googleapis.com/google.protobuf.StringValue", value: JSON.stringify(config) },
    },
  },
});

const direct = (body: string) => ({ direct_response: { status: 200, body: { inline_string: body } } });
const defaultRoutes = [
  { match: { prefix: "/", headers: [{ name: "x-graywall-target", string_match: { exact: "canary" } }] }, ...direct("canary") },
  { match: { prefix: "/" }, ...direct("stable") },
];

/** 50 rules of every header kind that the bench request does not match, so all 50 are evaluated. */
export function grayRules(n = 50): Json {
  const ops = ["exact", "prefix", "suffix", "contains"];
  const rules = Array.from({ length: n - 1 }, (_, i) => ({
    name: `rule-${i}`,
    target: "canary",
    match: { headers: [{ name: `x-exp-${i % 10}`, [ops[i % 4]]: `on-${i}` }] },
  }));
  rules.push({ name: "sticky", target: "canary", match: { percentage: { value: 0, hash_on: "header", name: "x-user-id" } } } as Json);
  return { rules };
}

/** The native equivalent: 50 routes matching the same headers, then the default. */
function nativeHeaderRoutes(n = 50): Json[] {
  const ops = ["exact", "prefix", "suffix", "contains"];
  const routes = Array.from({ length: n }, (_, i) => ({
    match: { prefix: "/", headers: [{ name: `x-exp-${i % 10}`, string_match: { [ops[i % 4]]: `on-${i}` } }] },
    ...direct("canary"),
  }));
  return [...routes, { match: { prefix: "/" }, ...direct("stable") }];
}

/**
 * n CIDRs scattered over the unicast IPv4 space like a real block list (three /24s to one /32, no two
 * adjacent, so none merge), never containing 127.0.0.1.
 */
export function cidrs(n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    // An odd multiplier permutes the 2^23 even /24 numbers: distinct, never neighbours.
    const net = (Math.imul(i, 0x9e3779b1) & 0x7fffff) << 1;
    const a = 1 + ((net >> 16) % 222); // 1-222, then 127 moved to 223
    const first = a === 127 ? 223 : a;
    const prefix = `${first}.${(net >> 8) & 255}.${net & 255}`;
    out.push(i % 4 === 3 ? `${prefix}.7/32` : `${prefix}.0/24`);
  }
  return out;
}

const rbacDeny = (list: string[]): Json => ({
  name: "envoy.filters.http.rbac",
  typed_config: {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
    rules: {
      action: "DENY",
      policies: {
        denylist: {
          permissions: [{ any: true }],
          principals: [{ or_ids: { ids: list.map((c) => ({ remote_ip: { address_prefix: c.split("/")[0], prefix_len: Number(c.split("/")[1]) } })) } }],
        },
      },
    },
  },
});

/** Envoy's native local_ratelimit with one token bucket, enabled and enforced for every request. */
export function nativeLocalRateLimit(tokens: number, fillInterval: string): Json {
  return {
    name: "envoy.filters.http.local_ratelimit",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
      stat_prefix: "native_rl",
      token_bucket: { max_tokens: tokens, tokens_per_fill: tokens, fill_interval: fillInterval },
      filter_enabled: { runtime_key: "rl_enabled", default_value: { numerator: 100, denominator: "HUNDRED" } },
      filter_enforced: { runtime_key: "rl_enforced", default_value: { numerator: 100, denominator: "HUNDRED" } },
    },
  };
}

const RATE_LIMITER = {
  rules: [{ name: "per-client", key: ["client_ip"], bucket_size: 1_000_000_000, refill_tokens: 1_000_000_000, refill_interval_ms: 1000 }],
};
// Thresholds out of reach of one wrk client, so the stage passes it (score 0) and still does all its work.
const CRAWLER = {
  honeypot_paths: ["/.env", "/wp-admin"],
  behaviour: { rate_threshold: 1e6, request_rate_threshold: 1e7 },
  client_id: { secret: BENCH_ID_SECRET },
};
const BODY_RULES = { allow_on_headers_stop_iteration: true };
// 100 consumers, one of them the bench client's; every path requires a key.
const ACCESS = {
  consumers: Array.from({ length: 100 }, (_, i) => ({
    name: `merchant-${i}`,
    key_sha256: [
      createHash("sha256")
        .update(i === 42 ? BENCH_API_KEY : `gwk_other-${i}`)
        .digest("hex"),
    ],
  })),
  require: [{ prefix: "/", credentials: "key" }],
};
// The same consumers signing their requests (RFC 9421, hmac-sha256). wrk repeats one request, so the
// nonce (a replay check in shared data) is off here and the skew window covers the run.
const ACCESS_SIGNED = {
  consumers: ACCESS.consumers.map((c, i) => ({
    name: c.name,
    signing_keys: [{ id: i === 42 ? "bench-k1" : `other-${i}`, secret: `${BENCH_SIGNING_SECRET}-${i === 42 ? "" : i}`.replace(/-$/, "") }],
  })),
  require: [{ prefix: "/", credentials: "signature" }],
  signature: { require_nonce: false, max_skew_s: 3600 },
};

/**
 * The one module with only the given sections: a missing section turns its stage off. As in the shipped
 * configs, each stage reads the peer from Envoy's own X-Forwarded-For entry (the bench's connection
 * manager has use_remote_address: true); `peerFromHost` asks the host for it instead (the A/B line).
 */
const graywall = (sections: Record<string, unknown>, peerFromHost = false, file?: string): Json =>
  wasm(
    "graywall",
    // access reads no address.
    peerFromHost
      ? sections
      : Object.fromEntries(Object.entries(sections).map(([k, v]) => [k, k === "access" ? v : { client_address: "envoy_xff", ...(v as object) }])),
    BODY_RULES,
    file,
  );

/** The AssemblyScript runtime graywall.wasm is built with (asconfig.json), and the other one for the A/B line. */
const RUNTIME: string = JSON.parse(readFileSync(join(ROOT, "asconfig.json"), "utf8")).options.runtime;
export const OTHER_RUNTIME = RUNTIME === "minimal" ? "incremental" : "minimal";

export const PRACTICAL_FLOOR = "no-op wasm filter reading the header map";
export const STAGE_CALLS_PROBE = "no-op wasm filter reading the header map, the clock and a gauge";

/**
 * The setups a bench run measures: with `only` (`--only`, a regular expression), those it matches plus
 * the floors and the baseline build; without, all. `whole`: no `--only`, so the report is the bench's
 * latest (bench/results).
 */
export function benchSelection(all: Setup[], only: string | null): { chosen: Setup[]; whole: boolean } {
  if (only === null) return { chosen: all, whole: true };
  const pattern = new RegExp(only);
  const always = (n: string) => n === "no filter" || n === "no-op wasm filter" || n === PRACTICAL_FLOOR || n === BASELINE_BUILD;
  return { chosen: all.filter((s) => always(s.name) || pattern.test(s.name)), whole: false };
}

/** The setup of an earlier build given to `npm run bench -- --baseline`. */
export const BASELINE_BUILD = "graywall: all four, baseline build";
/** `baseline`: an earlier build of graywall.wasm, measured as BASELINE_BUILD beside this one. */
export function setups(baseline?: string): Setup[] {
  const big = cidrs(100_000);
  const allFour = { ip_list: { deny: cidrs(10) }, crawler_score: CRAWLER, rate_limiter: RATE_LIMITER, gray_router: grayRules() };
  const earlier = baseline ? [{ name: BASELINE_BUILD, httpFilters: [graywall(allFour, false, baseline)] }] : [];
  return [
    ...earlier,
    { name: "no filter", httpFilters: [] },
    { name: "no-op wasm filter", httpFilters: [wasm("noop", {})] },
    // The practical floor of any filter that reads a header: the no-op module fetching the header map
    // (one host call that returns data) and doing nothing with it.
    { name: PRACTICAL_FLOOR, httpFilters: [wasm("noop", { fetch_headers: true })] },
    // ... and making the other host calls all four make (the clock a request, a gauge read a millisecond).
    { name: STAGE_CALLS_PROBE, httpFilters: [wasm("noop", { fetch_headers: true, stage_calls: true })] },
    { name: "graywall: all four", httpFilters: [graywall(allFour)] },
    // The same with what "See it and be told" added around the filter: labelled stats and the JSON access log.
    { name: "graywall: all four, shipped metrics and access log", httpFilters: [graywall(allFour)], observability: true },
    { name: "graywall: no stages", httpFilters: [graywall({})] },
    // The fifth stage: API keys for every request (100 consumers), before the other four.
    { name: "graywall: all five (API keys too)", httpFilters: [graywall({ access: ACCESS, ...allFour })] },
    { name: "graywall: access (API keys)", httpFilters: [graywall({ access: ACCESS })] },
    { name: "graywall: access (signed requests)", httpFilters: [graywall({ access: ACCESS_SIGNED })] },
    // A/B: the client address asked of the host (one more host call that returns data) instead of read
    // from Envoy's own X-Forwarded-For entry.
    { name: "graywall: all four, peer from the host", httpFilters: [graywall(allFour, true)] },
    // A/B: the same module built with the other AssemblyScript runtime (scripts/build.ts buildRuntimeVariant).
    {
      name: `graywall: all four, ${OTHER_RUNTIME} runtime`,
      httpFilters: [graywall(allFour, false, join(ROOT, "build", "variants", `graywall-${OTHER_RUNTIME}.wasm`))],
    },
    // What a stage adds to the one pass, where the header map and the peer address are fetched anyway.
    {
      name: "graywall: all four, without crawler_score",
      httpFilters: [graywall({ ip_list: allFour.ip_list, rate_limiter: RATE_LIMITER, gray_router: grayRules() })],
    },
    {
      name: "four modules chained",
      httpFilters: [
        wasm("ip_list", allFour.ip_list),
        wasm("crawler_score", CRAWLER),
        wasm("rate_limiter", RATE_LIMITER),
        wasm("gray_router", grayRules(), BODY_RULES),
      ],
    },
    { name: "graywall: ip_list (10 CIDRs)", peer: "native RBAC (10 CIDRs)", httpFilters: [graywall({ ip_list: { deny: cidrs(10) } })] },
    // The list as graywall-control delivers it (packed, docs/ip_list.md).
    { name: "graywall: ip_list (100k CIDRs)", peer: "native RBAC (100k CIDRs)", httpFilters: [graywall({ ip_list: packIpLists({ deny: big }) })] },
    // What Envoy alone spends on carrying that document: the no-op module given it (it reads 64 bytes).
    { name: "no-op wasm filter, given the 100k-CIDR document", httpFilters: [wasm("noop", { ip_list: packIpLists({ deny: big }) })] },
    { name: "graywall: crawler_score", httpFilters: [graywall({ crawler_score: CRAWLER })] },
    { name: "graywall: rate_limiter", peer: "native local_ratelimit", httpFilters: [graywall({ rate_limiter: RATE_LIMITER })] },
    { name: "graywall: gray_router (50 rules)", peer: "native route header matching (50 routes)", httpFilters: [graywall({ gray_router: grayRules() })] },
    // A/B lines for where the time goes: the routing-header write (Envoy then selects the route again)
    // and the three RateLimit-* response headers.
    { name: "graywall: gray_router (50 rules), mark_default", httpFilters: [graywall({ gray_router: { ...grayRules(), mark_default: true } })] },
    { name: "graywall: rate_limiter, response_headers on", httpFilters: [graywall({ rate_limiter: { ...RATE_LIMITER, response_headers: true } })] },
    { name: "native route header matching (50 routes)", httpFilters: [], routes: nativeHeaderRoutes() },
    { name: "native local_ratelimit", httpFilters: [nativeLocalRateLimit(1_000_000_000, "1s")] },
    { name: "native RBAC (10 CIDRs)", httpFilters: [rbacDeny(cidrs(10))] },
    { name: "native RBAC (100k CIDRs)", httpFilters: [rbacDeny(big)] },
  ];
}

export function envoyConfig(s: Setup, adminPort: number, listenerPort: number): Json {
  const obs = s.observability ? shippedObservability() : undefined;
  return {
    ...(obs ? { stats_config: obs.statsConfig } : {}),
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: adminPort } } },
    static_resources: {
      listeners: [
        {
          name: "bench",
          address: { socket_address: { address: "127.0.0.1", port_value: listenerPort } },
          filter_chains: [
            {
              filters: [
                {
                  name: "envoy.filters.network.http_connection_manager",
                  typed_config: {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    stat_prefix: "bench",
                    use_remote_address: true,
                    ...(obs ? { access_log: obs.accessLog } : {}),
                    route_config: { virtual_hosts: [{ name: "bench", domains: ["*"], routes: s.routes ?? defaultRoutes }] },
                    http_filters: [
                      ...s.httpFilters,
                      { name: "envoy.filters.http.router", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } },
                    ],
                  },
                },
              ],
            },
          ],
        },
      ],
    },
  };
}
