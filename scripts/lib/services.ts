// The real services behind cluster-wide limits, started on loopback ports for the fleet demo and the
// tests: Redis (Debian's redis-server) and envoyproxy/ratelimit (built by the setup into .tools/).
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { writeRatelimitConfig } from "../../runtime/cluster_limits.ts";
import { ROOT } from "../../runtime/paths.ts";

export const REDIS_SERVER = process.env.GRAYWALL_REDIS_SERVER ?? "/usr/bin/redis-server";
/** The CNCF distribution registry from Debian's docker-registry package, and Debian's skopeo. */
export const REGISTRY_SERVER = process.env.GRAYWALL_REGISTRY ?? "/usr/bin/docker-registry";
export const SKOPEO = process.env.GRAYWALL_SKOPEO ?? "/usr/bin/skopeo";
export const PROMETHEUS = process.env.GRAYWALL_PROMETHEUS ?? "/usr/bin/prometheus";
export const PROMTOOL = process.env.GRAYWALL_PROMTOOL ?? "/usr/bin/promtool";
/** envoyproxy/ratelimit has no tags: a pinned pseudo-version of its main branch. */
export const RATELIMIT_MODULE = "github.com/envoyproxy/ratelimit/src/service_cmd";
export const RATELIMIT_VERSION = "v1.4.1-0.20260122083618-3fb702589d36";
export const RATELIMIT_DIR = join(ROOT, ".tools", `ratelimit-${RATELIMIT_VERSION}`);
export const RATELIMIT_BINARY = process.env.GRAYWALL_RATELIMIT ?? join(RATELIMIT_DIR, "service_cmd");

export interface Service {
  name: string;
  port: number;
  proc: ChildProcess;
  log(): string;
  stop(): Promise<void>;
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

function launch(name: string, bin: string, args: string[], env: NodeJS.ProcessEnv, port: number): Service {
  if (!existsSync(bin)) throw new Error(`${bin} not found: run 'npx tsx scripts/setup-tools.ts' (it installs ${name})`);
  const proc = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout!.on("data", (d) => (out = (out + d).slice(-20000)));
  proc.stderr!.on("data", (d) => (out = (out + d).slice(-20000)));
  return {
    name,
    port,
    proc,
    log: () => out,
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once("exit", r));
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

async function until(s: Service, ready: () => Promise<boolean>, timeoutMs: number): Promise<Service> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (s.proc.exitCode !== null) throw new Error(`${s.name} exited with code ${s.proc.exitCode}:\n${s.log().slice(-3000)}`);
    if (await ready()) return s;
    await wait(50);
  }
  await s.stop();
  throw new Error(`${s.name} not ready within ${timeoutMs / 1000} s:\n${s.log().slice(-3000)}`);
}

/** Whether a Redis server answers PING on `port`. */
export function redisPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(port, "127.0.0.1");
    let got = "";
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.on("error", () => done(false));
    sock.on("connect", () => sock.write("PING\r\n"));
    sock.on("data", (d) => {
      got += d;
      if (got.includes("\r\n")) done(got.startsWith("+PONG"));
    });
  });
}

/**
 * Redis on 127.0.0.1:`port`: in memory only, or with `persistDir` an append-only file there (fsync every
 * second), so counts survive a restart of Redis (at most a second of them lost).
 */
export async function startRedis(port: number, persistDir?: string): Promise<Service> {
  const persistence = persistDir ? ["--appendonly", "yes", "--appendfsync", "everysec", "--dir", persistDir] : ["--appendonly", "no"];
  if (persistDir) mkdirSync(persistDir, { recursive: true });
  const s = launch("redis-server", REDIS_SERVER, ["--bind", "127.0.0.1", "--port", String(port), "--save", "", ...persistence, "--daemonize", "no"], {}, port);
  return until(s, () => redisPing(port), 10000);
}

/**
 * Prometheus on 127.0.0.1:`port` with `configFile` (its rule files relative to it), keeping its data in
 * `dataDir`; ready once its readiness endpoint answers.
 */
export async function startPrometheus(port: number, configFile: string, dataDir: string): Promise<Service> {
  const args = [
    `--config.file=${configFile}`,
    `--storage.tsdb.path=${dataDir}`,
    `--web.listen-address=127.0.0.1:${port}`,
    "--web.enable-lifecycle",
    "--log.level=warn",
  ];
  const s = launch("prometheus", PROMETHEUS, args, {}, port);
  const ready = async () => (await fetch(`http://127.0.0.1:${port}/-/ready`).catch(() => undefined))?.ok === true;
  return until(s, ready, 30000);
}

export interface RatelimitOptions {
  grpcPort: number;
  httpPort: number;
  debugPort: number;
  redisPort: number;
  /** The service's runtime root; its config goes to <dir>/ratelimit/config/graywall.yaml. */
  dir: string;
  /** The rate_limiter document whose cluster rules the service enforces. */
  rateLimiterDoc: unknown;
}

/** envoyproxy/ratelimit on loopback, against Redis, serving gRPC on `grpcPort`; ready once healthy. */
export async function startRatelimit(o: RatelimitOptions): Promise<Service> {
  writeRatelimitConfig(o.dir, o.rateLimiterDoc);
  const env = {
    HOST: "127.0.0.1",
    PORT: String(o.httpPort),
    GRPC_HOST: "127.0.0.1",
    GRPC_PORT: String(o.grpcPort),
    DEBUG_HOST: "127.0.0.1",
    DEBUG_PORT: String(o.debugPort),
    USE_STATSD: "false",
    LOG_LEVEL: "warn",
    REDIS_SOCKET_TYPE: "tcp",
    REDIS_URL: `127.0.0.1:${o.redisPort}`,
    RUNTIME_ROOT: o.dir,
    RUNTIME_SUBDIRECTORY: "ratelimit",
    // Watch the config folder itself: control rewrites its file in place (write, rename).
    RUNTIME_WATCH_ROOT: "false",
    RUNTIME_IGNOREDOTFILES: "true",
  };
  const s = launch("ratelimit", RATELIMIT_BINARY, [], env, o.grpcPort);
  return until(
    s,
    async () => {
      try {
        return (await fetch(`http://127.0.0.1:${o.httpPort}/healthcheck`, { signal: AbortSignal.timeout(1000) })).status === 200;
      } catch {
        return false;
      }
    },
    20000,
  );
}

/** An OCI registry (CNCF distribution) on 127.0.0.1:`port`, storing under `dir`, plain HTTP. */
export async function startRegistry(port: number, dir: string): Promise<Service> {
  mkdirSync(dir, { recursive: true });
  const config = join(dir, "config.yml");
  writeFileSync(
    config,
    `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, "data")}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n`,
  );
  const s = launch("docker-registry", REGISTRY_SERVER, ["serve", config], {}, port);
  return until(
    s,
    async () => {
      try {
        return (await fetch(`http://127.0.0.1:${port}/v2/`, { signal: AbortSignal.timeout(1000) })).status === 200;
      } catch {
        return false;
      }
    },
    15000,
  );
}
