// Tools the tests need: from Debian's packages chromium (the UI tests drive it with playwright-core,
// never a browser download), wrk (the benchmark's load generator), redis-server (cluster-wide limits),
// docker-registry and skopeo (the release's OCI images, pushed and pulled for real), prometheus (its
// promtool tests the shipped alert rules; the server scrapes a real gateway);
// podman, podman-compose, runc and debootstrap (envoy/docker-compose.yaml run for real, its images built
// locally); and envoyproxy/ratelimit, built with the machine's Go at a pinned version into .tools/.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ensureDebianTool } from "./debian.ts";
import { buildComposeImages } from "./lib/compose.ts";
import {
  PROMETHEUS,
  PROMTOOL,
  RATELIMIT_BINARY,
  RATELIMIT_DIR,
  RATELIMIT_MODULE,
  RATELIMIT_VERSION,
  REDIS_SERVER,
  REGISTRY_SERVER,
  SKOPEO,
} from "./lib/services.ts";

export const CHROMIUM = process.env.GRAYWALL_CHROMIUM ?? "/usr/bin/chromium";
export const WRK = process.env.GRAYWALL_WRK ?? "/usr/bin/wrk";
export const PERF = process.env.GRAYWALL_PERF ?? "/usr/bin/perf";
const PODMAN = "/usr/bin/podman";
const PODMAN_COMPOSE = "/usr/bin/podman-compose";
const RUNC = "/usr/sbin/runc";
const DEBOOTSTRAP = "/usr/sbin/debootstrap";

export function setupBrowser(): string {
  return ensureDebianTool(CHROMIUM, "chromium", "for the UI tests; or set GRAYWALL_CHROMIUM");
}

export function setupWrk(): string {
  return ensureDebianTool(WRK, "wrk", "the benchmark's load generator; or set GRAYWALL_WRK");
}

/** Linux's perf: `npm run profile -- --envoy` samples real Envoy with it. */
export function setupPerf(): string {
  return ensureDebianTool(PERF, "linux-perf", "profiles real Envoy (npm run profile -- --envoy); or set GRAYWALL_PERF");
}

/** valgrind: counts real Envoy's instructions per request (npm run profile -- --instructions). */
export function setupValgrind(): string {
  return ensureDebianTool("/usr/bin/valgrind", "valgrind", "counts Envoy's instructions per request (npm run profile -- --instructions)");
}

/** g++: builds the small compat library Jazzer.js's prebuilt fuzzer needs on this glibc (scripts/lib/jazzer.ts). */
export function setupCompiler(): string {
  return ensureDebianTool("/usr/bin/g++", "g++", "builds Jazzer.js's compat library for coverage-guided fuzzing");
}

export function setupRedis(): string {
  return ensureDebianTool(REDIS_SERVER, "redis-server", "the store of cluster-wide limits; or set GRAYWALL_REDIS_SERVER");
}

/** A real OCI registry and client for the release tests. */
export function setupRegistry(): { registry: string; skopeo: string } {
  return {
    registry: ensureDebianTool(REGISTRY_SERVER, "docker-registry", "the OCI registry the release tests push to; or set GRAYWALL_REGISTRY"),
    skopeo: ensureDebianTool(SKOPEO, "skopeo", "the OCI client the release tests push and pull with; or set GRAYWALL_SKOPEO"),
  };
}

/** Prometheus and promtool (one Debian package): the shipped alert rules' tests and a real scrape of Envoy. */
export function setupPrometheus(): { prometheus: string; promtool: string } {
  return {
    prometheus: ensureDebianTool(PROMETHEUS, "prometheus", "scrapes a real gateway in the monitoring tests; or set GRAYWALL_PROMETHEUS"),
    promtool: ensureDebianTool(PROMTOOL, "prometheus", "tests the shipped alert rules; or set GRAYWALL_PROMTOOL"),
  };
}

/**
 * What envoy/docker-compose.yaml needs to run here: Debian's podman, podman-compose, runc and debootstrap,
 * and the images it names, built locally (scripts/lib/compose.ts). Needs the ratelimit service built first.
 */
export function setupCompose(): void {
  ensureDebianTool(PODMAN, "podman", "runs envoy/docker-compose.yaml in the tests (no Docker engine here)");
  ensureDebianTool(PODMAN_COMPOSE, "podman-compose", "runs envoy/docker-compose.yaml in the tests");
  ensureDebianTool(RUNC, "runc", "podman's runtime here (crun fails on hybrid cgroups)");
  ensureDebianTool(DEBOOTSTRAP, "debootstrap", "the Debian rootfs the compose images are built from");
  buildComposeImages();
}

/** Builds envoyproxy/ratelimit's service once per pinned version (about a minute with a cold module cache). */
export function setupRatelimit(): string {
  if (existsSync(RATELIMIT_BINARY)) {
    console.log(`[setup] ratelimit service present: ${RATELIMIT_BINARY}`);
    return RATELIMIT_BINARY;
  }
  const go = spawnSync("go", ["version"], { encoding: "utf8" });
  if (go.error || go.status !== 0) {
    throw new Error(
      `Go is needed to build envoyproxy/ratelimit (${RATELIMIT_MODULE}@${RATELIMIT_VERSION}): install Go, or set GRAYWALL_RATELIMIT to a built service_cmd`,
    );
  }
  console.log(`[setup] building envoyproxy/ratelimit ${RATELIMIT_VERSION} with ${go.stdout.trim()} into .tools/ (about a minute)`);
  // Built into a scratch folder and moved in place, so an interrupted build is never taken for a done one.
  const scratch = `${RATELIMIT_DIR}.partial`;
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(scratch, { recursive: true });
  const started = Date.now();
  const r = spawnSync("go", ["install", `${RATELIMIT_MODULE}@${RATELIMIT_VERSION}`], {
    stdio: ["ignore", "inherit", "pipe"],
    encoding: "utf8",
    env: { ...process.env, GOBIN: scratch, GOFLAGS: "-mod=mod", CGO_ENABLED: "0" },
  });
  if (r.status !== 0) throw new Error(`go install ${RATELIMIT_MODULE}@${RATELIMIT_VERSION} failed:\n${r.stderr.trim().split("\n").slice(-8).join("\n")}`);
  rmSync(RATELIMIT_DIR, { recursive: true, force: true });
  renameSync(scratch, RATELIMIT_DIR);
  console.log(`[setup] ratelimit service built in ${Math.round((Date.now() - started) / 1000)} s: ${join(RATELIMIT_DIR, "service_cmd")}`);
  return RATELIMIT_BINARY;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    setupBrowser();
    setupWrk();
    setupPerf();
    setupCompiler();
    setupRedis();
    setupRegistry();
    setupPrometheus();
    setupRatelimit();
    setupCompose();
  } catch (e) {
    console.error(`[setup] ${(e as Error).message}`);
    process.exit(1);
  }
}
