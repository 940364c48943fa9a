// npm run bench [-- --smoke | --soak] [--duration S] [--connections N] [--only <setup name part>]
// Runs real Envoy in each setup one after another, drives it from a second core, and reports
// throughput and latency as ratios to "no filter" measured in the same run, plus Envoy's RSS.
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { build } from "../scripts/build.ts";
import { envoyBinary, ROOT, wasmPath } from "../scripts/lib/paths.ts";
import { FILTERS } from "../scripts/lib/filters.ts";
import { freePort, startEnvoy, type Envoy } from "../tests/e2e/harness.ts";
import { envoyConfig, setups, type Setup } from "./setups.ts";

const args = process.argv.slice(2);
const smoke = args.includes("--smoke");
const soak = args.includes("--soak");
const opt = (name: string, def: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const DURATION_S = opt("--duration", 10);
const CONNECTIONS = opt("--connections", 16);
const SMOKE_REQUESTS = 300;
const SOAK_REQUESTS = 1_000_000;
const pinned = spawnSync("taskset", ["-c", "0", "true"]).status === 0 && cpus().length >= 2;

// A browser-like request, so the crawler scorer passes it (and still does all its work).
const HEADERS = [
  "user-agent=Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
  "accept=text/html",
  "accept-language=en-US",
  "accept-encoding=gzip",
  'sec-ch-ua="Chromium";v="131"',
  "sec-fetch-mode=navigate",
  "x-user-id=user-42",
];

export interface Result {
  setup: string;
  peer?: string;
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  non2xx: number;
  rssStartMiB: number;
  rssEndMiB: number;
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : 0;
}

/** autocannon as a separate process (on the other core), so the generator never shares Envoy's. */
function load(url: string, how: string[]): Promise<{ rps: number; p50: number; p99: number; requests: number; non2xx: number }> {
  const cli = join(ROOT, "node_modules", "autocannon", "autocannon.js");
  const cmd = [process.execPath, cli, "-j", "-c", String(CONNECTIONS), ...how, ...HEADERS.flatMap((h) => ["-H", h]), url];
  const [bin, ...rest] = pinned ? ["taskset", "-c", "1", ...cmd] : cmd;
  return new Promise((resolve, reject) => {
    const p = spawn(bin, rest, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    p.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`autocannon failed (${code}): ${err}`));
      const j = JSON.parse(out);
      resolve({ rps: j.requests.average, p50: j.latency.p50, p99: j.latency.p99, requests: j.requests.total, non2xx: j.non2xx + j.errors });
    });
  });
}

async function runSetup(s: Setup, how: string[], warm: boolean): Promise<Result> {
  const [adminPort, listenerPort] = [await freePort(), await freePort()];
  const cfg = stringify(envoyConfig(s, adminPort, listenerPort));
  let envoy: Envoy | undefined;
  try {
    envoy = await startEnvoy(cfg, adminPort, listenerPort, { concurrency: 1, cpu: pinned ? "0" : undefined });
    if (warm) await load(envoy.url("/"), ["-d", "1"]);
    const rssStartMiB = rssMiB(envoy.proc.pid!);
    const r = await load(envoy.url("/"), how);
    const rssEndMiB = rssMiB(envoy.proc.pid!);
    return { setup: s.name, peer: s.peer, ...r, rssStartMiB, rssEndMiB };
  } finally {
    await envoy?.stop();
  }
}

const fmt = (n: number, d = 2) => n.toFixed(d);

/** The baseline: "no filter" runs first and last; ratios use the mean, so slow drift cancels out. */
function baseline(results: Result[]): Result {
  const runs = results.filter((r) => r.setup === "no filter");
  const mean = (f: (r: Result) => number) => runs.reduce((a, r) => a + f(r), 0) / runs.length;
  return { ...runs[0], rps: mean((r) => r.rps), p50: mean((r) => r.p50), p99: mean((r) => r.p99) };
}

function table(results: Result[]): string {
  const base = baseline(results);
  const byName = new Map(results.map((r) => [r.setup, r]));
  const lines = [
    "| setup | req/s | vs no filter | vs native peer | p50 ms | p99 ms | p99 vs no filter | RSS MiB (start -> end) |",
    "|---|---|---|---|---|---|---|---|",
  ];
  for (const r of results) {
    const peer = r.peer ? byName.get(r.peer) : undefined;
    lines.push(
      `| ${r.setup} | ${Math.round(r.rps)} | ${fmt(r.rps / base.rps)} | ${peer ? fmt(r.rps / peer.rps) : ""} | ${r.p50} | ${r.p99} | ${base.p99 >= 1 ? fmt(r.p99 / base.p99) : "(<1 ms base)"} | ${fmt(r.rssStartMiB, 1)} -> ${fmt(r.rssEndMiB, 1)} |`,
    );
  }
  return lines.join("\n");
}

function chart(results: Result[]): string {
  const base = baseline(results);
  const rowH = 26;
  const w = 760;
  const left = 300;
  const h = 40 + rowH * results.length;
  const bars = results.map((r, i) => {
    const ratio = r.rps / base.rps;
    const y = 30 + i * rowH;
    const bw = Math.max(1, (w - left - 80) * Math.min(ratio, 1.2) / 1.2);
    const colour = r.setup.startsWith("native") ? "#7a8ca3" : r.setup === "no filter" ? "#444" : "#d9822b";
    return `<text x="${left - 8}" y="${y + 16}" text-anchor="end" font-size="13">${r.setup}</text>` +
      `<rect x="${left}" y="${y + 3}" width="${bw.toFixed(1)}" height="${rowH - 8}" fill="${colour}"/>` +
      `<text x="${left + bw + 6}" y="${y + 16}" font-size="12">${ratio.toFixed(2)}</text>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif">` +
    `<text x="10" y="18" font-size="14" font-weight="bold">Throughput relative to Envoy with no filter (same run)</text>${bars.join("")}</svg>\n`;
}

function machine(): string {
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  const version = spawnSync(envoyBinary(), ["--version"], { encoding: "utf8" }).stdout.trim().split(/\s+/).pop();
  return `${cpus().length} x ${cpu}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Envoy ${version}, Node ${process.version}`;
}

async function main(): Promise<void> {
  build();
  const sizes = FILTERS.map((f) => `| ${f.name} | ${statSync(wasmPath(f.name)).size} |`).join("\n");
  const when = new Date().toISOString().slice(0, 10);
  const setupNote = `Envoy --concurrency 1${pinned ? " on CPU 0, autocannon on CPU 1" : " (not pinned: fewer than 2 cores or no taskset)"}; ${CONNECTIONS} connections; routes answer with direct_response, so only Envoy and the filters are measured`;

  if (soak) {
    const all = setups().find((s) => s.name === "all four")!;
    console.log(`[bench] soak: ${SOAK_REQUESTS} requests through all four filters`);
    const r = await runSetup(all, ["-a", String(SOAK_REQUESTS)], true);
    const report = `# Graywall soak, ${when}\n\n${machine()}\n\n${setupNote}\n\n` +
      `| requests | req/s | p99 ms | non-2xx | Envoy RSS MiB at start | at end | growth |\n|---|---|---|---|---|---|---|\n` +
      `| ${r.requests} | ${Math.round(r.rps)} | ${r.p99} | ${r.non2xx} | ${fmt(r.rssStartMiB, 1)} | ${fmt(r.rssEndMiB, 1)} | ${fmt(r.rssEndMiB - r.rssStartMiB, 1)} MiB |\n`;
    console.log(report);
    mkdirSync(join(ROOT, "bench", "results"), { recursive: true });
    writeFileSync(join(ROOT, "bench", "results", "soak.md"), report);
    return;
  }

  const how = smoke ? ["-a", String(SMOKE_REQUESTS)] : ["-d", String(DURATION_S)];
  const results: Result[] = [];
  // --only <text>: just the setups whose name contains it (plus the baseline).
  const only = args.includes("--only") ? args[args.indexOf("--only") + 1] : "";
  const all = setups().filter((s) => s.name === "no filter" || s.name.includes(only));
  for (const s of [...all, all[0]]) {
    process.stdout.write(`[bench] ${s.name} ... `);
    const r = await runSetup(s, how, !smoke);
    if (r.non2xx > 0) throw new Error(`${s.name}: ${r.non2xx} requests failed`);
    results.push(r);
    console.log(`${Math.round(r.rps)} req/s, p99 ${r.p99} ms`);
  }
  const runs = results.filter((r) => r.setup === "no filter");
  const drift = `"no filter" ran first (${Math.round(runs[0].rps)} req/s) and last (${Math.round(runs[1].rps)} req/s); ratios use the mean`;
  const report = `# Graywall benchmark, ${when}${smoke ? " (smoke: not a measurement)" : ""}\n\n${machine()}\n\n${setupNote}; ${smoke ? `${SMOKE_REQUESTS} requests` : `${DURATION_S} s`} per setup. ${drift}.\n\n` +
    `${table(results)}\n\n| module | .wasm bytes |\n|---|---|\n${sizes}\n`;
  console.log(`\n${report}`);
  if (!smoke && !only) {
    mkdirSync(join(ROOT, "bench", "results"), { recursive: true });
    writeFileSync(join(ROOT, "bench", "results", "latest.md"), report + "\n![throughput ratios](latest.svg)\n");
    writeFileSync(join(ROOT, "bench", "results", "latest.svg"), chart(results));
    writeFileSync(join(ROOT, "bench", "results", "latest.json"), JSON.stringify({ date: when, machine: machine(), results }, null, 2) + "\n");
    console.log("[bench] wrote bench/results/latest.{md,svg,json}");
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`[bench] ${(e as Error).message}`);
    process.exit(1);
  },
);
