// Shared e2e harness: real Envoy (scripts/lib/envoy_process.ts) with the built .wasm, real upstreams, free loopback ports.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { isAbsolute, join } from "node:path";
import { test, after } from "node:test";
import { parse } from "yaml";
import { ROOT } from "../../runtime/paths.ts";
import {
  type Envoy,
  freePort,
  liveEnvoys,
  type StartOptions as ProcessOptions,
  sleep,
  startEnvoy as startEnvoyProcess,
} from "../../scripts/lib/envoy_process.ts";
import { ecdsFileName, ecdsResource } from "../../runtime/ecds.ts";
import { writeAtomic } from "../../runtime/files.ts";
import { ECDS_DIR } from "../../scripts/render.ts";
import { FILTERS, MODULE } from "../../runtime/filters.ts";
import { buildServer, type ControlOptions } from "../../control/server.ts";
import { startUpstream } from "../../scripts/upstream.ts";

export { adminStats, type Envoy, EnvoyExited, freePort, sleep } from "../../scripts/lib/envoy_process.ts";
import { accessLogToFile } from "../../scripts/lib/envoy_process.ts";

export type Upstream = Awaited<ReturnType<typeof startUpstream>> & { port: number; name: string };

const liveUpstreams = new Set<Upstream>();

export async function upstream(name: string): Promise<Upstream> {
  const port = await freePort();
  const s = (await startUpstream({ name, port })) as Upstream;
  s.port = port;
  s.name = name;
  liveUpstreams.add(s);
  return s;
}

export function stopUpstream(u: Upstream): Promise<void> {
  liveUpstreams.delete(u);
  u.closeAllConnections();
  return new Promise((r) => u.close(() => r()));
}

// Parsed YAML and JSON trees are untyped.
type Yaml = any;

export function loadYaml(path: string): Yaml {
  return parse(readFileSync(isAbsolute(path) ? path : join(ROOT, path), "utf8"));
}

export interface RenderOptions {
  listenerPort: number;
  adminPort: number;
  /** cluster name -> upstream port */
  clusters: Record<string, number>;
  /** HTTP filter name -> plugin configuration (object, serialised to JSON) */
  filterConfig?: Record<string, unknown>;
  /** Listener bind address (default from the config, 127.0.0.1); "::1" for an IPv6 client. */
  listenerAddress?: string;
  /** HTTP filters to serve through ECDS from a watched file in the Envoy's temp dir (see writeEcds). */
  ecds?: string[];
}

/** Walks every object in a config tree. */
function walk(node: Yaml, fn: (o: Yaml) => void): void {
  if (Array.isArray(node)) {
    for (const n of node) walk(n, fn);
  } else if (node && typeof node === "object") {
    fn(node);
    for (const n of Object.values(node)) walk(n, fn);
  }
}

/** Fills a shipped Envoy config with test ports and absolute wasm paths; optionally swaps plugin configs. */
export function renderConfig(base: Yaml, o: RenderOptions): Yaml {
  const cfg = structuredClone(base);
  cfg.admin.address.socket_address.port_value = o.adminPort;
  for (const l of cfg.static_resources?.listeners ?? []) {
    l.address.socket_address.port_value = o.listenerPort;
    if (o.listenerAddress) l.address.socket_address.address = o.listenerAddress;
  }
  for (const c of cfg.static_resources?.clusters ?? []) {
    const port = o.clusters[c.name];
    if (port === undefined) continue;
    walk(c.load_assignment, (n) => {
      if (n.socket_address) n.socket_address.port_value = port;
    });
  }
  walk(cfg, (n) => {
    if (n.local?.filename && !isAbsolute(n.local.filename)) n.local.filename = join(ROOT, n.local.filename);
    if (!n.name || !o.filterConfig || !n.typed_config?.config) return;
    if (n.name in o.filterConfig) {
      n.typed_config.config.configuration = {
        "@type": "type.googleapis.com/google.protobuf.StringValue",
        value: JSON.stringify(o.filterConfig[n.name]),
      };
    } else if (n.name === MODULE.envoyName) {
      // "graywall.<stage>" names a stage of the one module: replace that section, keep the others.
      const sections = JSON.parse(n.typed_config.config.configuration.value);
      for (const [key, doc] of Object.entries(o.filterConfig)) {
        const stage = stageOf(key);
        if (stage) sections[stage] = doc;
      }
      n.typed_config.config.configuration.value = JSON.stringify(sections);
    }
  });
  for (const key of o.ecds ?? []) {
    const name = stageOf(key) ? MODULE.envoyName : key;
    walk(cfg, (n) => {
      if (n.name !== name || !n.typed_config) return;
      ecdsTemplates.set(name, n.typed_config);
      ecdsSections = JSON.parse(n.typed_config.config.configuration?.value ?? "{}");
      const typeUrl = n.typed_config["@type"];
      delete n.typed_config;
      n.config_discovery = {
        config_source: {
          path_config_source: { path: `\${DIR}/${ecdsFileName(name)}`, watched_directory: { path: "${DIR}" } },
        },
        type_urls: [typeUrl],
      };
    });
  }
  return cfg;
}

/** The Wasm filter configs that renderConfig moved out to ECDS, by filter name. */
const ecdsTemplates = new Map<string, Yaml>();
/** The one module's sections as last served through ECDS. */
let ecdsSections: Record<string, unknown> = {};

/** The stage a "graywall.<stage>" filter key names, when the shipped configs run the one module. */
function stageOf(key: string): string | undefined {
  return FILTERS.find((f) => f.envoyName === key)?.name;
}

/** The ECDS resource name and plugin configuration for a filter key ("graywall.<stage>" composes). */
function ecdsPlugin(key: string, pluginConfig: unknown): [string, unknown] {
  const stage = stageOf(key);
  if (!stage) return [key, pluginConfig];
  ecdsSections = { ...ecdsSections, [stage]: pluginConfig };
  return [MODULE.envoyName, ecdsSections];
}

/** Replaces a filter's ECDS file atomically (write, then rename), as a control plane would. */
export function writeEcds(envoy: Envoy, key: string, pluginConfig: unknown): void {
  const [name, pc] = ecdsPlugin(key, pluginConfig);
  writeAtomic(join(envoy.dir, ecdsFileName(name)), ecdsResource(name, ecdsTemplates.get(name), pc));
}

/** Polls until fn() holds, or fails after timeoutMs. */
export async function eventually(fn: () => Promise<boolean>, timeoutMs = 5000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * Envoy's stats once the counter `name` reads `value`: a tally (a counter of every request, such as
 * ip_list.allowed) reaches Envoy on the module's next tick, within a second. Fails with the last reading.
 */
export async function statsOnceAt(
  envoy: { stats(): Promise<Record<string, number>> },
  name: string,
  value: number,
  timeoutMs = 5000,
): Promise<Record<string, number>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await envoy.stats();
    if (s[name] === value) return s;
    if (Date.now() > deadline) throw new Error(`${name} reads ${s[name]}, not ${value}, after ${timeoutMs} ms`);
    await sleep(50);
  }
}

/**
 * Envoy's stats once the module's counters have been still for longer than a tally waits (a second):
 * every request made before the call is counted in them. For a count taken before more requests.
 */
export async function settledStats(envoy: { stats(): Promise<Record<string, number>> }, timeoutMs = 10_000): Promise<Record<string, number>> {
  const ours = (s: Record<string, number>) => JSON.stringify(Object.entries(s).filter(([k]) => k.startsWith("wasmcustom.graywall.")));
  const deadline = Date.now() + timeoutMs;
  let s = await envoy.stats();
  let last = ours(s);
  let since = Date.now();
  while (Date.now() - since < 1200) {
    if (Date.now() > deadline) throw new Error(`the module's counters were still moving after ${timeoutMs} ms`);
    await sleep(100);
    s = await envoy.stats();
    const now = ours(s);
    if (now !== last) [last, since] = [now, Date.now()];
  }
  return s;
}

export interface StartOptions extends ProcessOptions {
  listenerAddress?: string;
  /** Initial ECDS plugin configurations, by filter name (needs renderConfig's ecds). */
  ecdsConfig?: Record<string, unknown>;
}

/** Starts Envoy on `config` with the ECDS files its filters start from, and waits for admin /ready. */
export function startEnvoy(config: Yaml, adminPort: number, listenerPort: number, opts: StartOptions = {}): Promise<Envoy> {
  const files: Record<string, string> = {};
  for (const [key, config] of Object.entries(opts.ecdsConfig ?? {})) {
    const [name, pc] = ecdsPlugin(key, config);
    files[ecdsFileName(name)] = ecdsResource(name, ecdsTemplates.get(name), pc);
  }
  return startEnvoyProcess(config, adminPort, listenerPort, { ...opts, files });
}

export interface Reply {
  status: number;
  headers: Headers;
  body: string;
  /** Parsed JSON body when the upstream echo answered. */
  json: { version: string; headers: Record<string, string>; path: string; bodyBytes: number } | null;
}

export async function request(url: string, init: RequestInit = {}): Promise<Reply> {
  // A hung request fails the test in seconds instead of stalling the run.
  const r = await fetch(url, { signal: AbortSignal.timeout(10000), ...init });
  const body = await r.text();
  let json = null;
  try {
    json = JSON.parse(body);
  } catch {
    /* a local reply */
  }
  return { status: r.status, headers: r.headers, body, json };
}

/**
 * A request with exactly the given headers (plus Host), over a new connection. fetch() adds its own
 * accept-language, sec-fetch-mode and user-agent, which would hide what a crawler scorer must see.
 */
export function rawRequest(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string; localAddress?: string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method: opts.method ?? "GET", headers: opts.headers ?? {}, agent: false, timeout: 10000, localAddress: opts.localAddress },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const body = Buffer.concat(chunks).toString();
          let json = null;
          try {
            json = JSON.parse(body);
          } catch {
            /* a local reply */
          }
          const headers = new Headers();
          for (const [k, v] of Object.entries(res.headers)) {
            if (typeof v === "string") headers.set(k, v);
            else if (Array.isArray(v)) for (const line of v) headers.append(k, line); // set-cookie
          }
          resolve({ status: res.statusCode ?? 0, headers, body, json });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error("request timed out")));
    req.on("error", reject);
    req.end(opts.body);
  });
}

/** Which upstream answered. */
export async function versionOf(url: string, init: RequestInit = {}): Promise<string> {
  const r = await request(url, init);
  if (!r.json) throw new Error(`expected an upstream reply, got ${r.status}: ${r.body}`);
  return r.json.version;
}

/** A node:test test that prints every live Envoy's log when it fails. */
export function e2e(name: string, fn: () => Promise<void>): void {
  test(name, async () => {
    try {
      await fn();
    } catch (err) {
      for (const e of liveEnvoys()) console.error(`--- Envoy (admin ${e.adminPort}) log ---\n${e.log().slice(-6000)}`);
      throw err;
    }
  });
}

/** A standard rig: stable + canary upstreams and Envoy from a shipped config. */
export interface Rig {
  envoy: Envoy;
  stable: Upstream;
  canary: Upstream;
}

export async function startRig(configPath: string, filterConfig?: Record<string, unknown>, opts: StartOptions = {}): Promise<Rig> {
  const [stable, canary, adminPort, listenerPort] = [await upstream("stable"), await upstream("canary"), await freePort(), await freePort()];
  const cfg = renderConfig(loadYaml(configPath), {
    adminPort,
    listenerPort,
    clusters: { stable: stable.port, canary: canary.port },
    filterConfig,
    ecds: Object.keys(opts.ecdsConfig ?? {}),
    listenerAddress: opts.listenerAddress,
  });
  const envoy = await startEnvoy(cfg, adminPort, listenerPort, opts);
  if (opts.listenerAddress === "::1") envoy.url = (p = "/") => `http://[::1]:${listenerPort}${p}`;
  return { envoy, stable, canary };
}

/** Runs fn against a fresh rig with one filter's config replaced, and always stops the rig. */
export async function withRig(filter: string, config: unknown, fn: (rig: Rig) => Promise<void>, opts: StartOptions = {}): Promise<void> {
  const rig = await startRig("envoy/envoy.yaml", { [filter]: config }, opts);
  try {
    await fn(rig);
  } finally {
    await stopRig(rig);
  }
}

/** graywall-control on a free port, and Envoy (envoy-ecds.yaml) reading the ECDS files it writes. */
export interface ControlRig extends Rig {
  app: ReturnType<typeof buildServer>;
  controlUrl: string;
  /** The control service's folder: data/ and ecds/. */
  controlDir: string;
}

/**
 * `opts.control` adds to the service's options; `opts.accessLogFile` sends Envoy's access log to
 * `<controlDir>/access.log` and gives it to the service (the Traffic view's refused paths).
 */
export async function startControlRig(
  token: string,
  opts: StartOptions & { control?: Partial<ControlOptions>; accessLogFile?: boolean } = {},
): Promise<ControlRig> {
  const dir = mkdtempSync(join(tmpdir(), "graywall-control-rig-"));
  const [stable, canary] = [await upstream("stable"), await upstream("canary")];
  const [adminPort, listenerPort, controlPort] = [await freePort(), await freePort(), await freePort()];
  // The control service writes the ECDS files first, as npm start does.
  const accessLog = join(dir, "access.log");
  const app = buildServer({
    dataDir: join(dir, "data"),
    ecdsDir: join(dir, "ecds"),
    token,
    envoyAdmin: `http://127.0.0.1:${adminPort}`,
    accessLogs: opts.accessLogFile ? [accessLog] : undefined,
    ...opts.control,
  });
  await app.listen({ host: "127.0.0.1", port: controlPort });
  const text = readFileSync(join(ROOT, "envoy", "envoy-ecds.yaml"), "utf8").replaceAll(ECDS_DIR, join(dir, "ecds"));
  const cfg = renderConfig(parse(text), {
    adminPort,
    listenerPort,
    clusters: { stable: stable.port, canary: canary.port, graywall_control_http: controlPort },
  });
  if (opts.accessLogFile) accessLogToFile(cfg, accessLog);
  const envoy = await startEnvoy(cfg, adminPort, listenerPort, opts);
  return { envoy, stable, canary, app, controlUrl: `http://127.0.0.1:${controlPort}`, controlDir: dir };
}

/** PUTs `doc` as the next version of `filter` through the rig's control service (If-Match: the current version). */
export async function putDoc(r: ControlRig, token: string, filter: string, doc: unknown) {
  const cur = (await r.app.inject({ url: `/api/filters/${filter}` })).json().version;
  return r.app.inject({
    method: "PUT",
    url: `/api/filters/${filter}`,
    headers: { authorization: `Bearer ${token}`, "if-match": `"${cur}"` },
    payload: { doc },
  });
}

export async function stopControlRig(r: ControlRig | undefined): Promise<void> {
  if (!r) return;
  await stopRig(r);
  await r.app.close();
  rmSync(r.controlDir, { recursive: true, force: true });
}

export async function stopRig(r: Rig | undefined): Promise<void> {
  if (!r) return;
  await r.envoy.stop();
  await stopUpstream(r.stable);
  await stopUpstream(r.canary);
}

// Whatever a test forgot, nothing outlives the run.
after(async () => {
  for (const e of liveEnvoys()) await e.stop();
  for (const u of [...liveUpstreams]) await stopUpstream(u);
});

/** A browser's page view, each on a new connection (so over every worker). */
export const BROWSER_PAGE_VIEW: Record<string, string> = {
  "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
  accept: "text/html",
  "accept-language": "en",
  "accept-encoding": "gzip",
  "sec-fetch-mode": "navigate",
  "sec-fetch-dest": "document",
  connection: "close",
};
