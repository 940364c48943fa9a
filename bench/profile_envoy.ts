// npm run profile -- --envoy [<bench setup name part>] [--seconds S]
// Where real Envoy's CPU goes per request: for the setup, the no-op AssemblyScript filter (the floor) and
// no filter, each under the bench's load (Envoy pinned to CPU 0, one worker; wrk on CPU 1), `perf record`
// samples the Envoy process with call stacks, and each sample is put in one place:
//
// - module code: the leaf is code V8 generated at run time (the module's wasm, compiled; perf names
//   that region perf-<pid>.map);
// - host calls: the leaf is in Envoy's binary or libc with generated code further up the stack: the
//   proxy-wasm host functions the module calls, V8's glue on the way in and out, and what they call;
// - kernel: the leaf is in the kernel (sockets, epoll);
// - Envoy: everything else (the HTTP codec, routing, the router to the upstream, V8's entry into the
//   module before generated code runs).
//
// Envoy's CPU time per request over the sampled window (utime + stime over the requests Envoy counted)
// is split in those proportions. The PyPI build of Envoy is stripped, so host functions have no names:
// the table says how much the host side costs, not which call; `npm run profile` (the emulator) names
// the calls a request makes.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { freePort, startEnvoy } from "../scripts/lib/envoy_process.ts";
import { setupPerf, setupWrk } from "../scripts/setup-tools.ts";
import { BENCH_HEADERS, envoyConfig, PRACTICAL_FLOOR, type Setup, setups } from "./setups.ts";

export const PLACES = ["module code", "host calls", "kernel", "Envoy"] as const;
export type Place = (typeof PLACES)[number];

/** Which place a sample's stack (leaf first, as `perf script -F ip,dso` prints it) belongs to. */
export function placeOf(dsos: string[]): Place {
  const generated = (d: string) => /perf-\d+\.map$/.test(d) || d === "[unknown]" || d.startsWith("//anon");
  const leaf = dsos[0] ?? "";
  if (generated(leaf)) return "module code";
  if (leaf === "[kernel.kallsyms]") return "kernel";
  if (dsos.slice(1).some(generated)) return "host calls";
  return "Envoy";
}

/** Samples per place from `perf script -F ip,dso` output. */
export function countPlaces(script: string): Record<Place, number> {
  const out = Object.fromEntries(PLACES.map((p) => [p, 0])) as Record<Place, number>;
  for (const block of script.split(/\n\s*\n/)) {
    const dsos = [...block.matchAll(/\(([^()]*)\)\s*$/gm)].map((m) => m[1]);
    if (dsos.length > 0) out[placeOf(dsos)]++;
  }
  return out;
}

function cpuTimeUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const tck = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;
  return ((Number(f[11]) + Number(f[12])) * 1e6) / tck;
}

export interface EnvoyProfile {
  setup: string;
  usPerRequest: number;
  places: Record<Place, number>;
  samples: number;
}

/** One setup under load, sampled for `seconds`. */
async function profileSetup(s: Setup, seconds: number, tools: { wrk: string; perf: string }): Promise<EnvoyProfile> {
  const pinned = spawnSync("taskset", ["-c", "0", "true"]).status === 0 && cpus().length >= 2;
  const [admin, listener] = [await freePort(), await freePort()];
  const envoy = await startEnvoy(stringify(envoyConfig(s, admin, listener)), admin, listener, { concurrency: 1, cpu: pinned ? "0" : undefined });
  const dir = mkdtempSync(join(tmpdir(), "graywall-perf-"));
  try {
    const wrk = (sec: number) =>
      new Promise<void>((resolve, reject) => {
        const cmd = [tools.wrk, "-t1", "-c16", `-d${sec}s`, ...BENCH_HEADERS.flatMap((h) => ["-H", h]), envoy.url("/")];
        const [bin, ...rest] = pinned ? ["taskset", "-c", "1", ...cmd] : cmd;
        spawn(bin, rest, { stdio: "ignore" }).on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`wrk exited ${code}`))));
      });
    await wrk(1); // V8 tiers the module up
    const load = wrk(seconds + 2);
    const requests = async () => (await envoy.stats())["http.bench.downstream_rq_total"] ?? 0;
    await new Promise((r) => setTimeout(r, 500));
    const pid = envoy.proc.pid!;
    const [cpu0, rq0] = [cpuTimeUs(pid), await requests()];
    const data = join(dir, "perf.data");
    const rec = spawnSync(tools.perf, ["record", "-q", "-F", "1999", "-g", "-p", String(pid), "-o", data, "--", "sleep", String(seconds)], {
      encoding: "utf8",
    });
    const [cpu1, rq1] = [cpuTimeUs(pid), await requests()];
    await load;
    if (rec.status !== 0) throw new Error(`perf record failed: ${rec.stderr}`);
    const script = spawnSync(tools.perf, ["script", "-i", data, "-F", "ip,dso"], { encoding: "utf8", maxBuffer: 1 << 30 });
    if (script.status !== 0) throw new Error(`perf script failed: ${script.stderr}`);
    const counts = countPlaces(script.stdout);
    const samples = PLACES.reduce((a, p) => a + counts[p], 0);
    const usPerRequest = (cpu1 - cpu0) / Math.max(1, rq1 - rq0);
    const places = Object.fromEntries(PLACES.map((p) => [p, (usPerRequest * counts[p]) / Math.max(1, samples)])) as Record<Place, number>;
    return { setup: s.name, usPerRequest, places, samples };
  } finally {
    await envoy.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The table: each setup's µs per request by place, and the setup over the floor. */
export function profileTable(rows: EnvoyProfile[]): string {
  const f = (n: number) => n.toFixed(2);
  const lines = [
    `| setup | Envoy CPU µs/req | ${PLACES.join(" | ")} | samples |`,
    `|---|---|${PLACES.map(() => "---").join("|")}|---|`,
    ...rows.map((r) => `| ${r.setup} | ${f(r.usPerRequest)} | ${PLACES.map((p) => f(r.places[p])).join(" | ")} | ${r.samples} |`),
  ];
  const target = rows[0];
  // Over each floor: the no-op module, and the practical one (the no-op module reading the header map).
  for (const floor of [rows.find((r) => r.setup === "no-op wasm filter"), rows.find((r) => r.setup === PRACTICAL_FLOOR)])
    if (target && floor && target !== floor)
      lines.push(
        `| ${target.setup}, over the ${floor.setup === PRACTICAL_FLOOR ? "practical" : "no-op"} floor | ${f(target.usPerRequest - floor.usPerRequest)} | ${PLACES.map((p) => f(target.places[p] - floor.places[p])).join(" | ")} | |`,
      );
  return lines.join("\n");
}

export async function profileEnvoy(setupName: string, seconds: number): Promise<void> {
  const all = setups();
  const target = all.find((s) => s.name === setupName || s.name === `graywall: ${setupName}`) ?? all.find((s) => s.name.includes(setupName));
  if (!target) throw new Error(`no bench setup matches '${setupName}'`);
  const others = [PRACTICAL_FLOOR, "no-op wasm filter", "no filter"]
    .map((n) => all.find((s) => s.name === n))
    .filter((s): s is Setup => s !== undefined && s !== target);
  const tools = { wrk: setupWrk(), perf: setupPerf() };
  const rows: EnvoyProfile[] = [];
  for (const s of [target, ...others]) rows.push(await profileSetup(s, seconds, tools));
  console.log(`# real Envoy under the bench's load, ${seconds} s of perf samples per setup (docs: bench/profile_envoy.ts)`);
  console.log(profileTable(rows));
}
