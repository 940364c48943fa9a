// The demo gateway: sets up Envoy if needed, builds, starts two upstreams, graywall-control and Envoy with
// envoy/envoy-ecds.yaml. GRAYWALL_DEMO_PORTS=listener,admin,stable,canary moves it off its usual ports
// (10000, 9901, 18081, 18082), e.g. to run it beside another.
//
// `--fleet`: two Envoys (envoy/envoy-xds.yaml, nodes gateway-1 and gateway-2) subscribed to graywall-control
// over gRPC ECDS, sharing cluster-wide limits through envoyproxy/ratelimit and Redis. Listeners 10000 and
// 10001, admins 9901 and 9902; GRAYWALL_FLEET_PORT_BASE=N moves every fleet port to N, N+1, ... instead.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { setupEnvoy } from "./setup-envoy.ts";
import { build } from "./build.ts";
import { ROOT } from "../runtime/paths.ts";
import { startUpstream } from "./upstream.ts";
import { startControl } from "../control/main.ts";
import { setupRatelimit, setupRedis } from "./setup-tools.ts";
import { startRatelimit, startRedis, type Service } from "./lib/services.ts";
import { accessLogToFile } from "./lib/envoy_process.ts";

const FLEET = process.argv.includes("--fleet");
/** Fleet: Redis keeps its counts in an append-only file, so a restart of Redis does not start them over. */
const PERSIST = process.argv.includes("--persist");

const DEMO_PORTS = (process.env.GRAYWALL_DEMO_PORTS ?? "10000,9901,18081,18082").split(",").map(Number);
if (DEMO_PORTS.length !== 4 || !DEMO_PORTS.every((p) => Number.isInteger(p) && p > 0 && p < 65536)) {
  console.error(`[start] GRAYWALL_DEMO_PORTS must be four ports: listener,admin,stable,canary (got '${process.env.GRAYWALL_DEMO_PORTS}')`);
  process.exit(2);
}
/** The fleet's ports in order; with GRAYWALL_FLEET_PORT_BASE, consecutive from there. */
const FLEET_PORT_NAMES = [
  "listener1",
  "listener2",
  "admin1",
  "admin2",
  "stable",
  "canary",
  "control",
  "xds",
  "redis",
  "ratelimit",
  "ratelimitHttp",
  "ratelimitDebug",
] as const;
const FLEET_DEFAULTS = [10000, 10001, 9901, 9902, 18081, 18082, 8080, 18000, 16379, 8081, 18083, 18084];
const fleetBase = process.env.GRAYWALL_FLEET_PORT_BASE ? Number(process.env.GRAYWALL_FLEET_PORT_BASE) : undefined;
const FP = Object.fromEntries(FLEET_PORT_NAMES.map((n, i) => [n, fleetBase === undefined ? FLEET_DEFAULTS[i] : fleetBase + i])) as Record<
  (typeof FLEET_PORT_NAMES)[number],
  number
>;

const [LISTENER_PORT, ADMIN_PORT, STABLE_PORT, CANARY_PORT] = FLEET ? [FP.listener1, FP.admin1, FP.stable, FP.canary] : DEMO_PORTS;
const CONTROL_PORT = FLEET ? FP.control : Number(process.env.GRAYWALL_CONTROL_PORT ?? 8080);
const STATE_DIR = FLEET ? join(ROOT, ".graywall", "fleet") : join(ROOT, ".graywall");
const ECDS_DIR = process.env.GRAYWALL_ECDS_DIR ?? join(STATE_DIR, "ecds");
/** Every port the demo binds, with what binds it (Envoy's two come from envoy/envoy-ecds.yaml). */
const PORTS: [number, string][] = FLEET
  ? [
      [FP.stable, "the stable demo upstream"],
      [FP.canary, "the canary demo upstream"],
      [FP.control, "graywall-control"],
      [FP.xds, "graywall-control's gRPC ECDS"],
      [FP.redis, "Redis"],
      [FP.ratelimit, "the ratelimit service's gRPC"],
      [FP.ratelimitHttp, "the ratelimit service's HTTP"],
      [FP.ratelimitDebug, "the ratelimit service's debug port"],
      [FP.listener1, "Envoy gateway-1's listener"],
      [FP.listener2, "Envoy gateway-2's listener"],
      [FP.admin1, "Envoy gateway-1's admin"],
      [FP.admin2, "Envoy gateway-2's admin"],
    ]
  : [
      [STABLE_PORT, "the stable demo upstream"],
      [CANARY_PORT, "the canary demo upstream"],
      [CONTROL_PORT, "graywall-control"],
      [LISTENER_PORT, "Envoy's listener"],
      [ADMIN_PORT, "Envoy's admin"],
    ];

/** Who listens on a TCP port, from ss(8): "envoy (pid 123)", or "" when unknown. */
export function portHolder(port: number): string {
  const r = spawnSync("ss", ["-ltnpH", `sport = :${port}`], { encoding: "utf8" });
  const m = /users:\(\("([^"]+)",pid=(\d+)/.exec(r.stdout ?? "");
  return m ? `${m[1]} (pid ${m[2]})` : "";
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

/** Refuses to start over a port already taken (e.g. an Envoy left from an earlier run), naming its holder. */
async function checkPorts(): Promise<void> {
  const taken: string[] = [];
  for (const [port, what] of PORTS) {
    if (await portFree(port)) continue;
    const holder = portHolder(port);
    taken.push(`port ${port} (${what}) is taken${holder ? ` by ${holder}` : ""}`);
  }
  if (taken.length > 0) throw new Error(`${taken.join("; ")}. Stop it, or set GRAYWALL_CONTROL_PORT for the control service.`);
}

async function waitReady(adminPort: number, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`Envoy exited with code ${child.exitCode}`);
    try {
      if ((await fetch(`http://127.0.0.1:${adminPort}/ready`)).status === 200) return;
    } catch {
      /* starting */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("Envoy did not become ready in 20 s");
}

/** A shipped config with the demo's ports (and ECDS directory), written into the demo's state folder. */
/** A gateway's access log in the demo: beside the ECDS files. */
const accessLogOf = (node?: string) => join(ECDS_DIR, "..", `access.${node ?? "run"}.log`);

function runConfig(shipped: string, listener: number, admin: number, node?: string): string {
  const cfg = parse(readFileSync(join(ROOT, "envoy", shipped), "utf8"));
  cfg.admin.address.socket_address.port_value = admin;
  if (node) cfg.node.id = node;
  for (const l of cfg.static_resources.listeners) l.address.socket_address.port_value = listener;
  const clusterPort: Record<string, number> = {
    stable: STABLE_PORT,
    canary: CANARY_PORT,
    graywall_control: FP.xds,
    graywall_control_http: CONTROL_PORT,
    graywall_ratelimit: FP.ratelimit,
    graywall_ratelimit_http: FP.ratelimitHttp,
  };
  for (const c of cfg.static_resources.clusters) {
    for (const e of c.load_assignment?.endpoints ?? []) {
      for (const lb of e.lb_endpoints ?? []) if (c.name in clusterPort) lb.endpoint.address.socket_address.port_value = clusterPort[c.name];
    }
  }
  // The access log goes to a file beside the ECDS files rather than over the demo's console (graywall-control's
  // Traffic view reads it there).
  accessLogToFile(cfg, accessLogOf(node));
  // Beside the ECDS files (their folder may be a temp one: nothing is written into the repository then).
  const file = join(ECDS_DIR, "..", `envoy.${node ?? "run"}.yaml`);
  mkdirSync(ECDS_DIR, { recursive: true });
  writeFileSync(file, stringify(cfg).replaceAll(".graywall/ecds", ECDS_DIR));
  return file;
}

/** The fleet demo's rate_limiter rules: the shipped per-gateway rule, plus one limit shared by both gateways. */
const FLEET_RULE = { name: "api-fleet", scope: "cluster", match: { path_prefix: "/api/" }, key: ["client_ip"], requests_per_unit: 8, unit: "minute" };

/** How long the fleet demo leaves Redis down before starting it again (GRAYWALL_REDIS_RESTART_MS). */
const REDIS_RESTART_MS = Number(process.env.GRAYWALL_REDIS_RESTART_MS ?? 3000);
const redisDir = () => (PERSIST ? join(STATE_DIR, "redis") : undefined);

/** Starts Redis, the ratelimit service and a control service serving gRPC ECDS; seeds the shared rule once. */
async function startFleetServices(services: Service[]) {
  setupRedis();
  setupRatelimit();
  services.push(await startRedis(FP.redis, redisDir()));
  const ratelimitDir = join(ECDS_DIR, "..", "ratelimit");
  const control = await startControl(CONTROL_PORT, {
    dataDir: process.env.GRAYWALL_DATA ?? join(STATE_DIR, "data"),
    ecdsDir: ECDS_DIR,
    ratelimitDir,
    xdsPort: FP.xds,
    envoyAdmin: `http://127.0.0.1:${FP.admin1}`,
    envoyAdmins: [`http://127.0.0.1:${FP.admin1}`, `http://127.0.0.1:${FP.admin2}`],
    accessLogs: [accessLogOf("gateway-1"), accessLogOf("gateway-2")],
    envoyYaml: join(ROOT, "envoy", "envoy.yaml"),
  });
  const auth = { authorization: `Bearer ${control.token}`, "content-type": "application/json" };
  const cur = await (await fetch(`${control.url}/api/filters/rate_limiter`)).json();
  let doc = cur.doc;
  if (!doc.rules?.some((r: { scope?: string }) => r.scope === "cluster")) {
    doc = { ...doc, rules: [...(doc.rules ?? []), FLEET_RULE] };
    const r = await fetch(`${control.url}/api/filters/rate_limiter`, {
      method: "PUT",
      headers: { ...auth, "if-match": `"${cur.version}"` },
      body: JSON.stringify({ doc, author: "npm start -- --fleet" }),
    });
    if (!r.ok) throw new Error(`seeding the shared rule failed: ${r.status} ${await r.text()}`);
  }
  services.push(
    await startRatelimit({
      grpcPort: FP.ratelimit,
      httpPort: FP.ratelimitHttp,
      debugPort: FP.ratelimitDebug,
      redisPort: FP.redis,
      dir: ratelimitDir,
      rateLimiterDoc: doc,
    }),
  );
  return control;
}

async function main(): Promise<void> {
  const envoyBin = setupEnvoy();
  build();
  await checkPorts();
  const upstreams = [await startUpstream({ name: "stable", port: STABLE_PORT }), await startUpstream({ name: "canary", port: CANARY_PORT })];
  console.log(`[start] upstreams: stable on :${STABLE_PORT}, canary on :${CANARY_PORT}`);
  const services: Service[] = [];
  // The control service writes every filter's current document to .graywall/ecds/ (or serves it over
  // gRPC to the fleet) before Envoy reads it.
  const control = FLEET
    ? await startFleetServices(services)
    : await startControl(CONTROL_PORT, {
        envoyAdmin: `http://127.0.0.1:${ADMIN_PORT}`,
        accessLogs: [accessLogOf()],
        // The demo's own gateway: its filter template, routes and targets.
        envoyYaml: join(ROOT, "envoy", "envoy.yaml"),
      });
  const configs = FLEET
    ? [runConfig("envoy-xds.yaml", FP.listener1, FP.admin1, "gateway-1"), runConfig("envoy-xds.yaml", FP.listener2, FP.admin2, "gateway-2")]
    : [runConfig("envoy-ecds.yaml", LISTENER_PORT, ADMIN_PORT)];
  const envoys = configs.map((c) => spawn(envoyBin, ["-c", c, "--log-level", "warn", "--disable-hot-restart"], { cwd: ROOT, stdio: "inherit" }));

  let stopping = false;
  const stop = (code: number) => {
    if (stopping) return;
    stopping = true;
    console.log("\n[start] stopping");
    for (const envoy of envoys) envoy.kill("SIGTERM");
    for (const u of upstreams) {
      u.closeAllConnections();
      u.close();
    }
    void control.close();
    const t = setTimeout(() => {
      for (const envoy of envoys) envoy.kill("SIGKILL");
    }, 5000);
    // Already gone (an exit code, or killed by a signal): nothing to wait for.
    const gone = (e: ChildProcess) => e.exitCode !== null || e.signalCode !== null;
    const allGone = Promise.all(envoys.map((e) => (gone(e) ? undefined : new Promise((r) => e.once("exit", r)))));
    void Promise.all([allGone, ...services.map((s) => s.stop())]).then(() => {
      clearTimeout(t);
      process.exit(code);
    });
  };
  process.on("SIGINT", () => stop(0));
  process.on("SIGTERM", () => stop(0));
  // The upstreams and the control service run in this process: if one fails, stop everything, Envoy
  // included, and say why, rather than leave an orphaned Envoy answering on the demo's ports.
  const fail = (e: unknown) => {
    console.error(`[start] stopping the demo: ${(e as Error)?.stack ?? String(e)}`);
    stop(1);
  };
  process.on("uncaughtException", fail);
  process.on("unhandledRejection", fail);
  for (const envoy of envoys) {
    envoy.once("exit", (code) => {
      if (!stopping) {
        console.error(`[start] Envoy exited (${code ?? envoy.signalCode}): stopping the demo`);
        stop(1);
      }
    });
  }
  // Redis going away is what the fleet demo exists to show: the gateways let shared-limit requests
  // through (fail-open) while it is gone, and the limit holds again once it is back, so the demo brings
  // it back rather than stopping. Any other part exiting stops the demo.
  const watch = (s: Service) => {
    s.proc.once("exit", (code) => {
      if (stopping) return;
      if (s.name !== "redis-server") {
        console.error(`[start] ${s.name} exited (${code ?? s.proc.signalCode}): stopping the demo`);
        stop(1);
        return;
      }
      console.error(
        `[start] Redis exited (${code ?? s.proc.signalCode}): both gateways now let requests past the shared limit (fail-open; Envoy counts them as ratelimit.failure_mode_allowed). Starting it again in ${REDIS_RESTART_MS / 1000} s.`,
      );
      setTimeout(async () => {
        if (stopping) return;
        try {
          const again = await startRedis(FP.redis, redisDir());
          services[services.indexOf(s)] = again;
          watch(again);
          console.error(
            `[start] Redis is back: the shared limit holds again${PERSIST ? " (its counts kept: --persist)" : " (its counts start over; npm start -- --fleet --persist keeps them)"}.`,
          );
        } catch (e) {
          console.error(`[start] Redis did not start again: ${(e as Error).message}; stopping the demo`);
          stop(1);
        }
      }, REDIS_RESTART_MS);
    });
  };
  for (const s of services) watch(s);

  if (FLEET) {
    await waitReady(FP.admin1, envoys[0]);
    await waitReady(FP.admin2, envoys[1]);
    const l = (p: number) => `http://127.0.0.1:${p}`;
    console.log(`
Graywall fleet is up: two gateways, gateway-1 on ${l(FP.listener1)} and gateway-2 on ${l(FP.listener2)} (admins :${FP.admin1}, :${FP.admin2}),
both subscribed to graywall-control over gRPC ECDS (:${FP.xds}), sharing limits through envoyproxy/ratelimit (:${FP.ratelimit}) and Redis (:${FP.redis}).
Rules UI and API (graywall-control): ${control.url}   token: ${control.token}   (Gateways tab: who runs which version)

  # "api-fleet" admits 8 per minute per client across both gateways (a per-gateway limit would admit 16):
  for i in 1 2 3 4 5 6 7 8 9 10; do p=$(( i % 2 ? ${FP.listener1} : ${FP.listener2} )); curl -s -o /dev/null -w '%{http_code} ' http://127.0.0.1:$p/api/x; done; echo
  curl -s ${control.url}/api/gateways

Ctrl-C stops everything.`);
    return;
  }
  await waitReady(ADMIN_PORT, envoys[0]);
  console.log(`
Graywall demo gateway is up: Envoy on http://127.0.0.1:${LISTENER_PORT}, admin on http://127.0.0.1:${ADMIN_PORT}
Rules UI and API (graywall-control): ${control.url}   token: ${control.token}
Rule changes there reach Envoy in about a second, without a restart.

  curl -s http://127.0.0.1:${LISTENER_PORT}/                              # -> stable
  curl -s http://127.0.0.1:${LISTENER_PORT}/ -H 'x-user-group: beta'      # -> canary
  for i in 1 2 3 4 5 6; do curl -s -o /dev/null -w '%{http_code} ' http://127.0.0.1:${LISTENER_PORT}/api/x; done; echo   # 5 x 200, then 429
  curl -s http://127.0.0.1:${ADMIN_PORT}/stats | grep graywall          # filter counters
  tail -f ${join(ECDS_DIR, "..", "access.run.log")}   # why each request was refused or tagged

Releases tab (sign in with the token): start a release of canary. It needs traffic from users to judge
canary against stable; in another terminal, simulated people (browser headers, their own uid cookies,
a page every 1-3 s):
  npm run demo:traffic -- --url http://127.0.0.1:${LISTENER_PORT}

Ctrl-C stops everything.`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e) => {
    console.error(`[start] ${(e as Error).message}`);
    process.exit(1);
  });
}
