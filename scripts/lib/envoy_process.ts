// Real Envoy as a child process on loopback ports, for the e2e harness and the benchmark: start it on a
// config, wait for admin /ready, read its stats, stop it. Nothing started here outlives the process.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { envoyBinary, ROOT } from "../../runtime/paths.ts";

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Ports this process has handed out: the kernel may offer a just-closed port again before its user binds it. */
const handedOut = new Set<number>();

/**
 * Ports handed out by any process on this machine (test files run side by side): a file per port, made
 * with O_EXCL, so two processes never hand out the same one before its user binds it. A claim older than
 * PORT_CLAIM_MS is stale (its user is long bound or gone) and may be taken again.
 */
export const PORT_CLAIMS = join(tmpdir(), "graywall-port-claims");
const PORT_CLAIM_MS = 10 * 60_000;

export function claimPort(port: number): boolean {
  const file = join(PORT_CLAIMS, String(port));
  try {
    mkdirSync(PORT_CLAIMS, { recursive: true });
    try {
      if (Date.now() - statSync(file).mtimeMs > PORT_CLAIM_MS) unlinkSync(file);
    } catch {
      // no claim yet
    }
    closeSync(openSync(file, "wx"));
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    return true; // claims unavailable (read-only tmp): fall back to this process's own record
  }
}

/** A loopback port nobody listens on right now, and that no other process has just been given. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.once("error", reject);
      s.listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    if (!handedOut.has(port) && claimPort(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

export interface Envoy {
  port: number;
  adminPort: number;
  url(path?: string): string;
  log(): string;
  stats(): Promise<Record<string, number>>;
  stop(): Promise<void>;
  proc: ChildProcess;
  /** Envoy's scratch directory: its config, and files the config names as `${DIR}/...`. */
  dir: string;
}

export interface StartOptions {
  concurrency?: number;
  /** Pin Envoy to these CPUs (taskset list), e.g. for benchmarks. */
  cpu?: string;
  /** Envoy's working directory (default: the repository), against which relative module paths resolve. */
  cwd?: string;
  /** Files to write into the scratch directory before Envoy starts, by name. */
  files?: Record<string, string>;
}

export class EnvoyExited extends Error {
  constructor(
    public code: number,
    public output: string,
  ) {
    super(`Envoy exited with code ${code}. Log:\n${output.slice(-4000)}`);
  }
}

const live = new Set<Envoy>();

/** Envoys started and not yet stopped. */
export function liveEnvoys(): Envoy[] {
  return [...live];
}

/** Starts Envoy on `config` (object or YAML text; `${DIR}` is its scratch directory) and waits for admin /ready. */
export async function startEnvoy(config: unknown, adminPort: number, listenerPort: number, opts: StartOptions = {}): Promise<Envoy> {
  const dir = mkdtempSync(join(tmpdir(), "graywall-envoy-"));
  for (const [name, text] of Object.entries(opts.files ?? {})) writeFileSync(join(dir, name), text);
  const text = typeof config === "string" ? config : stringify(config);
  const cfgPath = join(dir, "envoy.yaml");
  writeFileSync(cfgPath, text.replaceAll("${DIR}", dir));
  // Access logs written out every 500 ms (Envoy's default is 10 s), so a test waits a moment for its line.
  const args = [
    "-c",
    cfgPath,
    "--concurrency",
    String(opts.concurrency ?? 1),
    "--disable-hot-restart",
    "--log-level",
    "info",
    "--file-flush-interval-msec",
    "500",
  ];
  const [bin, binArgs] = opts.cpu ? ["taskset", ["-c", opts.cpu, envoyBinary(), ...args]] : [envoyBinary(), args];
  const proc = spawn(bin, binArgs, { cwd: opts.cwd ?? ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout!.on("data", (d) => (out += d));
  proc.stderr!.on("data", (d) => (out += d));
  const envoy: Envoy = {
    port: listenerPort,
    adminPort,
    proc,
    dir,
    url: (p = "/") => `http://127.0.0.1:${listenerPort}${p}`,
    log: () => out,
    stats: () => adminStats(adminPort),
    stop: () => stopEnvoy(envoy),
  };
  live.add(envoy);
  const deadline = Date.now() + 20000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) {
      live.delete(envoy);
      rmSync(dir, { recursive: true, force: true });
      throw new EnvoyExited(proc.exitCode, out);
    }
    try {
      const r = await fetch(`http://127.0.0.1:${adminPort}/ready`);
      if (r.status === 200) return envoy;
    } catch {
      /* not listening yet */
    }
    await sleep(50);
  }
  await envoy.stop();
  throw new Error(`Envoy not ready within 20 s. Log:\n${out}`);
}

async function stopEnvoy(e: Envoy): Promise<void> {
  live.delete(e);
  if (e.proc.exitCode === null) {
    const exited = new Promise((r) => e.proc.once("exit", r));
    e.proc.kill("SIGTERM");
    const t = setTimeout(() => e.proc.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(t);
  }
  rmSync(e.dir, { recursive: true, force: true });
}

/** Envoy's counters and gauges by name, from its admin interface. */
export async function adminStats(adminPort: number): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/stats?format=json`)).text();
  const out: Record<string, number> = {};
  for (const s of JSON.parse(text).stats ?? []) if (typeof s.value === "number") out[s.name] = s.value;
  return out;
}

process.on("exit", () => {
  for (const e of live) e.proc.kill("SIGKILL");
});

/**
 * Sends a rendered Envoy config's stdout access logs (the shipped configs' JSON lines) to the file `path`
 * instead, keeping their format: what graywall-control's Traffic view reads.
 */
export function accessLogToFile(cfg: any, path: string): void {
  for (const l of cfg.static_resources.listeners) {
    const hcm = l.filter_chains[0].filters[0].typed_config;
    for (const log of hcm.access_log ?? []) {
      if (log.name !== "envoy.access_loggers.stdout") continue;
      log.name = "envoy.access_loggers.file";
      log.typed_config = {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
        path,
        log_format: log.typed_config.log_format,
      };
    }
  }
}
