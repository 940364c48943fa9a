// npm run profile [-- --setup <bench setup name part>] [--requests N] [--top N (functions listed, 15)]
// npm run profile -- --envoy [<bench setup name part>] [--seconds S]: real Envoy under perf instead
//   (bench/profile_envoy.ts)
// npm run profile -- --instructions [<bench setup name part> ...] [--requests N] [--cache]: Envoy's instructions
//   per request under valgrind's callgrind, counted, not timed (bench/profile_instructions.ts); --cache adds
//   callgrind's cache and branch simulation (misses and mispredicts per request); --functions [N] lists the
//   graywall module's N costliest functions in Envoy (30), by L1i misses with --cache, else by instructions;
//   the simulation's last level is this machine's L2, or with --l2 <KiB> an L2 of that size; with
//   --baseline <graywall.wasm>, the setup "baseline build" is all four with that build (an A/B counted)
// Where the module's own time goes, by function: runs the bench's request through a build of
// graywall.wasm that keeps function names, on the host emulator (tests/support/proxy_host.ts), under V8's
// profiler, and prints the module's self time per request with the top functions and the host calls a
// request makes. The host side here is the emulator's JavaScript, not Envoy: only the wasm lines say
// what the module costs; the bench says what Envoy pays.
import { Session } from "node:inspector/promises";
import { ProxyHost } from "../tests/support/proxy_host.ts";
import { namedBuild } from "./named_build.ts";
import { profileEnvoy } from "./profile_envoy.ts";
import { profileInstructions } from "./profile_instructions.ts";
import { BENCH_HEADERS, setups } from "./setups.ts";

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const REQUESTS = Number(opt("--requests", "200000"));
const SETUP = opt("--setup", "graywall: all four");
interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
}

async function main(): Promise<void> {
  const ours = setups().filter((s) => s.httpFilters.length === 1 && s.httpFilters[0].typed_config?.config?.root_id === "graywall");
  // An exact name first ("crawler_score" is "graywall: crawler_score", not a setup that mentions it).
  const setup = ours.find((s) => s.name === SETUP || s.name === `graywall: ${SETUP}`) ?? ours.find((s) => s.name.includes(SETUP));
  if (!setup) throw new Error(`no bench setup of the graywall module matches '${SETUP}'`);
  const config: string = setup.httpFilters[0].typed_config.config.configuration.value;
  const host = new ProxyHost(namedBuild(), "graywall");
  host.nowMs = Date.now(); // the bench client's id cookie was issued now
  if (!host.configure(config)) throw new Error(host.logs.join("\n"));
  const headers = BENCH_HEADERS.map((h) => h.split(/:\s(.*)/s).slice(0, 2) as [string, string]);
  // The bench's connection manager has use_remote_address: true, so Envoy appends the peer to X-Forwarded-For.
  const spec = { headers: [[":method", "GET"], [":path", "/"], [":authority", "bench"], ...headers, ["x-forwarded-for", "127.0.0.1"]] as [string, string][] };
  const run = (n: number) => {
    for (let i = 0; i < n; i++) {
      host.request(spec);
      // The clock moves as in the bench (tens of requests per millisecond), so ticks and windows come round.
      if (i % 25 === 0) host.nowMs += 1;
      if (i % 12_500 === 0) host.tick();
    }
  };
  run(Math.min(20_000, REQUESTS));
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 100 });
  await session.post("Profiler.start");
  const t0 = process.hrtime.bigint();
  run(REQUESTS);
  const wallUs = Number(process.hrtime.bigint() - t0) / 1000;
  const { profile } = await session.post("Profiler.stop");
  session.disconnect();

  const byId = new Map<number, ProfileNode>((profile.nodes as ProfileNode[]).map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let wasmUs = 0;
  const deltas = profile.timeDeltas ?? [];
  (profile.samples ?? []).forEach((id: number, i: number) => {
    const frame = byId.get(id)!.callFrame;
    // The module's functions carry their AssemblyScript paths (assembly/..., ~lib/...).
    if (!/^(assembly\/|~lib\/)/.test(frame.functionName)) return;
    const us = deltas[i];
    wasmUs += us;
    self.set(frame.functionName, (self.get(frame.functionName) ?? 0) + us);
  });
  const perReq = (us: number) => (us / REQUESTS).toFixed(3);
  console.log(`# ${setup.name}: ${REQUESTS} requests on the host emulator`);
  console.log(`module self time: ${perReq(wasmUs)} µs/request (all, emulator included: ${perReq(wallUs)})`);
  const refCounting = [...self].filter(([f]) => f.startsWith("~lib/rt/")).reduce((a, [, us]) => a + us, 0);
  console.log(`of which the runtime's allocation and reference counting (~lib/rt): ${perReq(refCounting)} µs/request`);
  for (const [f, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(opt("--top", "15")))) console.log(`  ${perReq(us)}  ${f}`);
  console.log(`host calls per request: ${JSON.stringify(host.request(spec).calls)}`);
}

if (args.includes("--instructions")) {
  const names: string[] = [];
  for (let i = args.indexOf("--instructions") + 1; i < args.length && !args[i].startsWith("--"); i++) names.push(args[i]);
  const functions = args.includes("--functions") ? Number(opt("--functions", "30")) || 30 : 0;
  const l2 = args.includes("--l2") ? Number(opt("--l2", "")) : undefined;
  await profileInstructions(
    names.length > 0 ? names : ["graywall: all four"],
    Number(opt("--requests", "2000")),
    args.includes("--cache") || l2 !== undefined,
    functions,
    l2,
    args.includes("--baseline") ? opt("--baseline", "") : undefined,
  );
} else if (args.includes("--envoy")) {
  const next = args[args.indexOf("--envoy") + 1];
  await profileEnvoy(next && !next.startsWith("--") ? next : "graywall: all four", Number(opt("--seconds", "5")));
} else await main();
