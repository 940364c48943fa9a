// npm run profile -- --instructions [<bench setup name part>] [--requests N] [--cache] [--functions [N]]
// Envoy's instructions per request, counted rather than timed: Envoy (one worker) runs under valgrind's
// callgrind with counting off; after a warm-up (V8 compiles the module) counting is switched on for N
// requests of the bench's kind, then off. The count does not move with the machine's load, so a change of
// a few hundred instructions a request shows, where the bench's µs need many rounds to show a few µs.
//
// Envoy runs tens of times slower under valgrind, so its timers fire many times more often per request:
// the VM's rare entries (ticks: syncs, sweeps, collections; entries into generated code made fewer than
// once every four requests) are counted apart and left out of the per-request figure. Kernel time is not
// counted (valgrind sees user space only). With --cache, callgrind also simulates the caches and a branch
// predictor: misses and mispredicts a request, the ticks' left out the same way (what the machine has no
// hardware counters to say: code that runs once a request is fetched from past L1i, line by line). Its
// last level is this machine's L2 (read from sysfs; `--l2 <KiB>` models another size), not callgrind's
// default of the L3: a request's code and data (Envoy's, V8's and the module's) come to about half a MiB,
// so whether they fit a core's L2 decides much of what the module costs (bench/README, runs 68-69).
// Generated code's share is estimated in proportion to what the ticks leave, so it reads high when the
// ticks are many (under --cache, slower still, twice what the plain count gives): take it from a count
// without --cache. With --functions, the graywall module's own functions are told apart in Envoy (by the
// jump-table slot V8 enters each through; names from the named build) and the costliest N listed: which
// functions' code a request fetches from past L1i, and how much. The bench says what it all costs. Each
// setup is measured alongside the floors and no filter, as `npm run profile -- --envoy` is.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { envoyBinary } from "../runtime/paths.ts";
import { freePort } from "../scripts/lib/envoy_process.ts";
import { setupValgrind } from "../scripts/setup-tools.ts";
import { definedFunctionNames, namedBuild } from "./named_build.ts";
import { BENCH_HEADERS, envoyConfig, PRACTICAL_FLOOR, type Setup, setups } from "./setups.ts";

/**
 * A function of the profile: its own count of every event (in the order of the profile's `events:` line,
 * Ir first), and per callee the calls and their inclusive counts.
 */
interface Fn {
  events: number[];
  calls: Map<string, { count: number; events: number[] }>;
}

/**
 * Generated code (the module, compiled by V8, and V8's stubs) has no object file (callgrind's "???") and
 * lives above 4 GiB, in V8's code space; Envoy's binary is mapped low.
 */
export function isGenerated(key: string): boolean {
  const bar = key.indexOf("|");
  const object = key.slice(0, bar);
  if (object !== "???" && object !== "") return false;
  const m = /0x([0-9a-f]+)/.exec(key.slice(bar + 1));
  return m !== null && BigInt(`0x${m[1]}`) >= 1n << 32n;
}

/**
 * Parses callgrind's output (one part; event Ir first; names compressed as "(id) name" on first use).
 * Functions are keyed "object|name". `eventNames`, when given, receives the profile's events.
 */
export function parseCallgrind(text: string, eventNames: string[] = []): Map<string, Fn> {
  const names = new Map<string, string>();
  const objects = new Map<string, string>();
  const fns = new Map<string, Fn>();
  const named = (table: Map<string, string>, v: string) => {
    const m = /^\((\d+)\)(?: (.*))?$/.exec(v);
    if (!m) return v;
    if (m[2] !== undefined) table.set(m[1], m[2]);
    return table.get(m[1]) ?? m[1];
  };
  const fnOf = (key: string) => {
    let f = fns.get(key);
    if (!f) {
      f = { events: [], calls: new Map() };
      fns.set(key, f);
    }
    return f;
  };
  let ob = "";
  let cob = "";
  let fn: Fn | null = null;
  let callee: string | null = null;
  let pendingCalls = -1;
  const add = (to: number[], from: number[]) => {
    for (let i = 0; i < from.length; i++) to[i] = (to[i] ?? 0) + from[i];
  };
  for (const line of text.split("\n")) {
    if (line.startsWith("events:")) eventNames.splice(0, eventNames.length, ...line.slice(7).trim().split(/\s+/));
    else if (line.startsWith("ob=")) ob = named(objects, line.slice(3));
    else if (line.startsWith("cob=")) cob = named(objects, line.slice(4));
    else if (line.startsWith("fn=")) {
      fn = fnOf(`${ob}|${named(names, line.slice(3))}`);
      cob = ob;
    } else if (line.startsWith("cfn=")) callee = `${cob}|${named(names, line.slice(4))}`;
    else if (line.startsWith("cfi=") || line.startsWith("cfl=")) continue;
    else if (line.startsWith("calls=")) pendingCalls = Number(line.slice(6).split(" ")[0]);
    else if (/^[0-9+\-*]/.test(line) && fn) {
      // A cost line: its position, then each event's count (trailing zeros may be left off).
      const counts = line
        .split(" ")
        .slice(1)
        .map((v) => Number(v) || 0);
      if (pendingCalls >= 0 && callee) {
        const c = fn.calls.get(callee) ?? { count: 0, events: [] };
        c.count += pendingCalls;
        add(c.events, counts);
        fn.calls.set(callee, c);
        fnOf(callee);
        pendingCalls = -1;
        cob = ob;
      } else add(fn.events, counts);
    }
  }
  return fns;
}

export interface InstructionCount {
  setup: string;
  /** Instructions per request, the VM's rare entries left out. */
  perRequest: number;
  /** All instructions per request, and those of the rare entries. */
  total: number;
  rare: number;
  /** Of perRequest: generated code's own instructions (the module and V8's stubs), the rest the host's. */
  generated: number;
  /** With the cache and branch simulation: each event per request, rare entries left out. */
  events?: Record<string, number>;
  /** ... and of each, generated code's own share (as `generated` is of the instructions). */
  generatedEvents?: Record<string, number>;
  /** With --functions: the module's functions (moduleFunctions). */
  functions?: ModuleFunction[];
}

/** One event (its index in the profile's events) per request: all of it, the rare entries', generated code's own. */
function eventPerRequest(fns: Map<string, Fn>, e: number, requests: number) {
  let total = 0;
  let generatedSelf = 0;
  for (const [key, f] of fns) {
    const v = f.events[e] ?? 0;
    total += v;
    if (isGenerated(key)) generatedSelf += v;
  }
  // Rare entries: the host calling into generated code fewer than once every four requests (ticks), with
  // everything below them. Their generated share is estimated in proportion.
  let rare = 0;
  for (const [key, f] of fns) {
    if (isGenerated(key)) continue;
    for (const [callee, c] of f.calls) if (isGenerated(callee) && c.count < requests / 4) rare += c.events[e] ?? 0;
  }
  const net = total - rare;
  return { perRequest: net / requests, total: total / requests, rare: rare / requests, generated: (generatedSelf * (net / Math.max(1, total))) / requests };
}

/** Per-request figures for `requests` requests from a parsed profile (with `eventNames`: every event's too). */
export function perRequest(setup: string, fns: Map<string, Fn>, requests: number, eventNames: string[] = []): InstructionCount {
  const ir = eventPerRequest(fns, 0, requests);
  const out: InstructionCount = { setup, perRequest: ir.perRequest, total: ir.total, rare: ir.rare, generated: ir.generated };
  if (eventNames.length > 1) {
    const each = eventNames.map((name, e) => [name, eventPerRequest(fns, e, requests)] as const);
    out.events = Object.fromEntries(each.map(([name, v]) => [name, v.perRequest]));
    out.generatedEvents = Object.fromEntries(each.map(([name, v]) => [name, v.generated]));
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A cache callgrind simulates as its last level: its size and associativity, in bytes and ways, and its line. */
export interface CacheModel {
  bytes: number;
  ways: number;
  line: number;
}

/**
 * This machine's level-2 cache (the first CPU's, from sysfs), or null when sysfs does not say. `kib`
 * models an L2 of that size instead, with the machine's ways and line (8 and 64 when unknown).
 */
export function l2Model(kib?: number, dir = "/sys/devices/system/cpu/cpu0/cache"): CacheModel | null {
  let found: CacheModel | null = null;
  if (existsSync(dir)) {
    for (const index of readdirSync(dir).filter((d) => d.startsWith("index"))) {
      const read = (f: string) => (existsSync(join(dir, index, f)) ? readFileSync(join(dir, index, f), "utf8").trim() : "");
      if (read("level") !== "2" || read("type") === "Instruction") continue;
      const size = /^(\d+)([KM]?)$/.exec(read("size"));
      if (!size) continue;
      const bytes = Number(size[1]) * (size[2] === "M" ? 1 << 20 : size[2] === "K" ? 1024 : 1);
      found = { bytes, ways: Number(read("ways_of_associativity")) || 8, line: Number(read("coherency_line_size")) || 64 };
    }
  }
  if (kib === undefined) return found;
  if (!Number.isInteger(kib) || kib <= 0 || (kib & (kib - 1)) !== 0) throw new Error(`--l2: a size in KiB that is a power of two, not ${kib}`);
  return { bytes: kib * 1024, ways: found?.ways ?? 8, line: found?.line ?? 64 };
}

/** callgrind's option for a cache model as its last level. */
export const lastLevelArg = (m: CacheModel) => `--LL=${m.bytes},${m.ways},${m.line}`;

/** "512 KiB, 8-way". */
export const describeCache = (m: CacheModel) => `${m.bytes >= 1 << 20 ? `${m.bytes / (1 << 20)} MiB` : `${m.bytes / 1024} KiB`}, ${m.ways}-way`;

/** Envoy under callgrind for one setup: `requests` requests counted after a warm-up. */
async function countSetup(s: Setup, requests: number, valgrind: string, cache: CacheModel | boolean, defined?: string[]): Promise<InstructionCount> {
  const [admin, port] = [await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), "graywall-callgrind-"));
  const out = join(dir, "callgrind.out");
  writeFileSync(join(dir, "envoy.yaml"), stringify(envoyConfig(s, admin, port)));
  const args = [
    "--tool=callgrind",
    ...(cache ? ["--cache-sim=yes", "--branch-sim=yes"] : []),
    ...(typeof cache === "object" ? [lastLevelArg(cache)] : []),
    "--instr-atstart=no",
    "--smc-check=all-non-file",
    `--callgrind-out-file=${out}`,
    envoyBinary(),
  ];
  args.push("-c", join(dir, "envoy.yaml"), "--concurrency", "1", "--disable-hot-restart", "--log-level", "warn");
  const envoy = spawn(valgrind, args, { stdio: "ignore" });
  const control = (...a: string[]) => {
    const r = spawnSync("callgrind_control", [...a, String(envoy.pid)], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`callgrind_control ${a.join(" ")}: ${r.stderr}`);
  };
  try {
    const deadline = Date.now() + 300_000;
    for (;;) {
      if (envoy.exitCode !== null) throw new Error(`Envoy under valgrind exited (${envoy.exitCode})`);
      try {
        if ((await fetch(`http://127.0.0.1:${admin}/ready`)).status === 200) break;
      } catch {
        /* not listening yet */
      }
      if (Date.now() > deadline) throw new Error("Envoy under valgrind not ready in 5 minutes");
      await sleep(250);
    }
    const headers = Object.fromEntries(BENCH_HEADERS.map((h) => [h.slice(0, h.indexOf(": ")), h.slice(h.indexOf(": ") + 2)]));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    const one = () =>
      new Promise<void>((resolve, reject) => {
        const r = http.get({ host: "127.0.0.1", port, path: "/", headers, agent }, (res) => {
          res.resume();
          res.on("end", () => (res.statusCode === 200 ? resolve() : reject(new Error(`${s.name}: status ${res.statusCode}`))));
        });
        r.on("error", reject);
      });
    const run = async (n: number) => {
      let left = n;
      await Promise.all(
        [0, 1, 2, 3].map(async () => {
          while (left-- > 0) await one();
        }),
      );
    };
    await run(3000);
    control("-i", "on");
    await run(requests);
    control("-i", "off");
    control("-d");
    agent.destroy();
  } finally {
    const exited = new Promise((r) => envoy.once("exit", r));
    envoy.kill("SIGTERM");
    await exited;
  }
  const dumps = readFileSync(`${out}.1`, "utf8");
  rmSync(dir, { recursive: true, force: true });
  const events: string[] = [];
  const fns = parseCallgrind(dumps, events);
  const count = perRequest(s.name, fns, requests, events);
  if (defined) count.functions = moduleFunctions(fns, requests, events, defined) ?? undefined;
  return count;
}

/** One of the module's functions in Envoy: its own events per request (Ir, then the cache's), and its calls per request. */
export interface ModuleFunction {
  name: string;
  calls: number;
  events: Record<string, number>;
}

/** Where V8 puts a wasm module's jump table: one slot per function the module defines, in order (x64). */
const SLOT_BYTES = 8n;
/**
 * Generated code outside the jump table: V8's wrappers for host calls and for Envoy's calls in, its stubs,
 * and the exported callbacks' own code (a wrapper enters an export at its code, not through its slot).
 */
export const V8_STUBS = "(V8's wrappers and stubs, the exports' own code)";
/** A function of the dispatch every callback of a stream goes through, so entered through its slot on every request. */
const ENTERED_EVERY_REQUEST = "assembly/common/abi/filter/streamFor";

/**
 * The module's own functions as callgrind sees them in Envoy. V8 enters a wasm function through its slot
 * in the module's jump table (compiled lazily, the slot then jumps to its code), so callgrind names each
 * function by its slot's address: the generated "function" at base + 8i is the module's i-th defined
 * function (`defined`, from the named build). The base is the page holding the most slot-aligned entries,
 * checked by what it implies: the dispatch's streamFor, which every request's callbacks call, must come
 * out as called at least once a request. Null when it does not (another V8 layout, or another inlining). Events are per request and
 * include the VM's ticks (their collections show as functions of their own, run less than once a request).
 */
export function moduleFunctions(fns: Map<string, Fn>, requests: number, eventNames: string[], defined: string[]): ModuleFunction[] | null {
  const addressOf = (key: string) => BigInt(/0x[0-9a-f]+/.exec(key.slice(key.indexOf("|") + 1))?.[0] ?? "0");
  const generated = [...fns.keys()].filter(isGenerated);
  const inTable = (a: bigint, base: bigint) => a >= base && (a - base) % SLOT_BYTES === 0n && (a - base) / SLOT_BYTES < BigInt(defined.length);
  let base = -1n;
  let best = 0;
  for (const page of new Set(generated.map((k) => addressOf(k) & ~0xfffn))) {
    const n = generated.filter((k) => inTable(addressOf(k), page)).length;
    if (n > best) [base, best] = [page, n];
  }
  const calls = new Map<string, number>();
  for (const f of fns.values()) for (const [callee, c] of f.calls) calls.set(callee, (calls.get(callee) ?? 0) + c.count);
  const rows = new Map<string, ModuleFunction>();
  for (const key of generated) {
    const a = addressOf(key);
    const name = base >= 0n && inTable(a, base) ? defined[Number((a - base) / SLOT_BYTES)] : V8_STUBS;
    const row = rows.get(name) ?? { name, calls: 0, events: Object.fromEntries(eventNames.map((e) => [e, 0])) };
    row.calls += (calls.get(key) ?? 0) / requests;
    const f = fns.get(key) as Fn;
    eventNames.forEach((e, i) => {
      row.events[e] += (f.events[i] ?? 0) / requests;
    });
    rows.set(name, row);
  }
  const entry = rows.get(ENTERED_EVERY_REQUEST);
  if (!entry || entry.calls < 0.9) return null;
  return [...rows.values()];
}

/**
 * The module's functions by their L1i misses (with --cache) or instructions, the top `top`; `lastLevel`
 * names the simulation's last level (this machine's L2 when sysfs tells its size).
 */
export function functionTable(rows: ModuleFunction[], top: number, lastLevel = "L2"): string {
  const cache = rows.some((r) => (r.events.I1mr ?? 0) > 0);
  const sort = cache ? "I1mr" : "Ir";
  const sum = (r: ModuleFunction, names: string[]) => names.reduce((a, n) => a + (r.events[n] ?? 0), 0);
  const head = cache
    ? `| function | calls/request | instructions | L1i misses | L1d misses | ${lastLevel} misses | mispredicts |`
    : "| function | calls/request | instructions |";
  const line = (r: ModuleFunction, total = false) => {
    const cells = [r.name.replace(/^assembly\//, ""), total ? "" : r.calls.toFixed(2), r.events.Ir.toFixed(0)];
    if (cache) cells.push(...[["I1mr"], ["D1mr", "D1mw"], L2_EVENTS, ["Bcm", "Bim"]].map((e) => sum(r, e).toFixed(1)));
    return `| ${cells.join(" | ")} |`;
  };
  const sorted = [...rows].sort((a, b) => b.events[sort] - a.events[sort]);
  const all: ModuleFunction = { name: `all ${rows.length} (of which listed: ${Math.min(top, rows.length)})`, calls: 0, events: {} };
  for (const r of rows) for (const [e, v] of Object.entries(r.events)) all.events[e] = (all.events[e] ?? 0) + v;
  return [head, head.replace(/[^|]+/g, "---"), ...sorted.slice(0, top).map((r) => line(r)), line(all, true)].join("\n");
}

export function instructionTable(rows: InstructionCount[]): string {
  const none = rows.find((r) => r.setup === "no filter");
  const floor = rows.find((r) => r.setup === PRACTICAL_FLOOR);
  const k = (n: number) => (n / 1000).toFixed(1);
  const lines = [
    "| setup | instructions/request (thousands) | vs no filter | over the practical floor | generated code | the VM's ticks, left out |",
    "|---|---|---|---|---|---|",
    ...rows.map(
      (r) =>
        `| ${r.setup} | ${k(r.perRequest)} | ${none ? (r.perRequest / none.perRequest).toFixed(2) : ""} | ${floor && r !== floor && r !== none ? `${r.perRequest >= floor.perRequest ? "+" : ""}${k(r.perRequest - floor.perRequest)}` : ""} | ${k(r.generated)} | ${k(r.rare)} |`,
    ),
  ];
  return lines.join("\n");
}

/** The last level's misses: instruction fetches, data reads and writes. */
const L2_EVENTS = ["ILmr", "DLmr", "DLmw"];

/**
 * The cache and branch simulation's figures a request (callgrind's model of this machine's caches, with
 * `lastLevel` as the last one, and a simple predictor), beside each the difference from the practical
 * floor: instruction- and data-cache misses, last-level misses (all, and those of the host's own code:
 * Envoy's, V8's runtime and the libraries, whose lines the module's can push out) and mispredicted
 * branches. A real predictor learns the bench's identical requests better than callgrind's, so the
 * mispredicts are an upper bound; callgrind replaces lines least-recently-used, which a request's code
 * and data, run through in the same order each time, suit worst, so the L2 misses may read high.
 */
export function cacheTable(rows: InstructionCount[], lastLevel = "last-level"): string {
  const floor = rows.find((r) => r.setup === PRACTICAL_FLOOR);
  const sum = (r: InstructionCount, names: string[], hostOnly = false) =>
    names.reduce((a, n) => a + (r.events?.[n] ?? 0) - (hostOnly ? (r.generatedEvents?.[n] ?? 0) : 0), 0);
  const cell = (r: InstructionCount, names: string[], hostOnly = false) => {
    const v = sum(r, names, hostOnly);
    if (!floor || r === floor || r.setup === "no filter") return v.toFixed(0);
    const d = v - sum(floor, names, hostOnly);
    return `${v.toFixed(0)} (${d >= 0 ? "+" : ""}${d.toFixed(0)})`;
  };
  return [
    `| setup | L1i misses | L1d misses (read + write) | ${lastLevel} misses | of which in the host's code | branches mispredicted (conditional + indirect) |`,
    "|---|---|---|---|---|---|",
    ...rows.map(
      (r) =>
        `| ${r.setup} | ${cell(r, ["I1mr"])} | ${cell(r, ["D1mr", "D1mw"])} | ${cell(r, L2_EVENTS)} | ${cell(r, L2_EVENTS, true)} | ${cell(r, ["Bcm", "Bim"])} |`,
    ),
  ].join("\n");
}

/**
 * `npm run profile -- --instructions`: `names` counted beside no filter and the practical floor; with
 * `cache`, the caches simulated too, this machine's L2 (or one of `l2KiB`) as the last level. With
 * `baseline` (an earlier graywall.wasm), "baseline build" names the all-four setup run with that build.
 */
export async function profileInstructions(names: string[], requests: number, cache = false, functions = 0, l2KiB?: number, baseline?: string): Promise<void> {
  const all = setups(baseline);
  const pick = (n: string) => all.find((s) => s.name === n || s.name === `graywall: ${n}`) ?? all.find((s) => s.name.includes(n));
  const chosen = ["no filter", PRACTICAL_FLOOR, ...names].map((n) => {
    const s = pick(n);
    if (!s) throw new Error(`no bench setup matches '${n}'`);
    return s;
  });
  const valgrind = setupValgrind();
  const l2 = cache ? l2Model(l2KiB) : null;
  const rows: InstructionCount[] = [];
  // The graywall module's functions are named from the named build of the same source (bench/named_build.ts).
  const defined = functions > 0 ? definedFunctionNames(namedBuild()) : undefined;
  const isGraywall = (s: Setup) => s.httpFilters.length === 1 && s.httpFilters[0].typed_config?.config?.root_id === "graywall" && !s.name.includes("baseline");
  for (const s of chosen) rows.push(await countSetup(s, requests, valgrind, l2 ?? cache, isGraywall(s) ? defined : undefined));
  console.log(`# Envoy's instructions per request under callgrind, ${requests} requests per setup (docs: bench/profile_instructions.ts)`);
  console.log(instructionTable(rows));
  if (cache) {
    console.log("\n# Simulated cache misses and mispredicted branches per request (over the practical floor, in brackets)");
    console.log(cacheTable(rows, l2 ? `L2 (${describeCache(l2)})` : "last-level"));
  }
  for (const r of rows) {
    if (!r.functions && !defined) continue;
    if (!r.functions) {
      if (r.setup.startsWith("graywall")) console.log(`\n# ${r.setup}: the module's functions could not be told apart (no jump table where expected)`);
      continue;
    }
    console.log(`\n# ${r.setup}: the module's functions in Envoy, own events per request (the VM's ticks included)`);
    console.log(functionTable(r.functions, functions, l2 || !cache ? "L2" : "last-level"));
  }
}
