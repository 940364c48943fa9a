// The demo gateway: sets up Envoy if needed, builds, starts two upstreams, graywall-control and Envoy with
// envoy/envoy-ecds.yaml. GRAYWALL_DEMO_PORTS=listener,admin,stable,canary moves it off its usual ports
// (10000, 9901, 18081, 18082), e.g. to run it beside another.
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

const DEMO_PORTS = (process.env.GRAYWALL_DEMO_PORTS ?? "10000,9901,18081,18082").split(",").map(Number);
if (DEMO_PORTS.length !== 4 || !DEMO_PORTS.every((p) => Number.isInteger(p) && p > 0 && p < 65536)) {
  console.error(`[start] GRAYWALL_DEMO_PORTS must be four ports: listener,admin,stable,canary (got '${process.env.GRAYWALL_DEMO_PORTS}')`);
  process.exit(2);
}
const [LISTENER_PORT, ADMIN_PORT, STABLE_PORT, CANARY_PORT] = DEMO_PORTS;
const CONTROL_PORT = Number(process.env.GRAYWALL_CONTROL_PORT ?? 8080);
const ECDS_DIR = process.env.GRAYWALL_ECDS_DIR ?? join(ROOT, ".graywall", "ecds");
/** Every port the demo binds, with what binds it (Envoy's two come from envoy/envoy-ecds.yaml). */
const PORTS: [number, string][] = [
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

/** envoy/envoy-ecds.yaml with the demo's ports and ECDS directory, written beside the ECDS files. */
function runConfig(): string {
  const cfg = parse(readFileSync(join(ROOT, "envoy", "envoy-ecds.yaml"), "utf8"));
  cfg.admin.address.socket_address.port_value = ADMIN_PORT;
  for (const l of cfg.static_resources.listeners) l.address.socket_address.port_value = LISTENER_PORT;
  const upstreamPort: Record<string, number> = { stable: STABLE_PORT, canary: CANARY_PORT };
  for (const c of cfg.static_resources.clusters) {
    for (const e of c.load_assignment?.endpoints ?? []) {
      for (const lb of e.lb_endpoints ?? []) if (c.name in upstreamPort) lb.endpoint.address.socket_address.port_value = upstreamPort[c.name];
    }
  }
  const file = join(ECDS_DIR, "..", "envoy.run.yaml");
  mkdirSync(ECDS_DIR, { recursive: true });
  writeFileSync(file, stringify(cfg).replaceAll(".graywall/ecds", ECDS_DIR));
  return file;
}

async function main(): Promise<void> {
  const envoyBin = setupEnvoy();
  build();
  await checkPorts();
  const upstreams = [await startUpstream({ name: "stable", port: STABLE_PORT }), await startUpstream({ name: "canary", port: CANARY_PORT })];
  console.log(`[start] upstreams: stable on :${STABLE_PORT}, canary on :${CANARY_PORT}`);
  // The control service writes every filter's current document to .graywall/ecds/ before Envoy reads it.
  const control = await startControl(CONTROL_PORT);
  const envoy = spawn(envoyBin, ["-c", runConfig(), "--log-level", "warn", "--disable-hot-restart"], { cwd: ROOT, stdio: "inherit" });

  let stopping = false;
  const stop = (code: number) => {
    if (stopping) return;
    stopping = true;
    console.log("\n[start] stopping");
    envoy.kill("SIGTERM");
    for (const u of upstreams) {
      u.closeAllConnections();
      u.close();
    }
    void control.close();
    const t = setTimeout(() => envoy.kill("SIGKILL"), 5000);
    envoy.once("exit", () => {
      clearTimeout(t);
      process.exit(code);
    });
    // Already gone (an exit code, or killed by a signal): nothing to wait for.
    if (envoy.exitCode !== null || envoy.signalCode !== null) process.exit(code);
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
  envoy.once("exit", (code) => {
    if (!stopping) {
      console.error(`[start] Envoy exited (${code ?? envoy.signalCode}): stopping the demo`);
      stop(1);
    }
  });

  await waitReady(ADMIN_PORT, envoy);
  console.log(`
Graywall demo gateway is up: Envoy on http://127.0.0.1:${LISTENER_PORT}, admin on http://127.0.0.1:${ADMIN_PORT}
Rules UI and API (graywall-control): ${control.url}   token: ${control.token}
Rule changes there reach Envoy in about a second, without a restart.

  curl -s http://127.0.0.1:${LISTENER_PORT}/                              # -> stable
  curl -s http://127.0.0.1:${LISTENER_PORT}/ -H 'x-user-group: beta'      # -> canary
  for i in 1 2 3 4 5 6; do curl -s -o /dev/null -w '%{http_code} ' http://127.0.0.1:${LISTENER_PORT}/api/x; done; echo   # 5 x 200, then 429
  curl -s http://127.0.0.1:${ADMIN_PORT}/stats | grep graywall          # filter counters

Ctrl-C stops everything.`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e) => {
    console.error(`[start] ${(e as Error).message}`);
    process.exit(1);
  });
}
