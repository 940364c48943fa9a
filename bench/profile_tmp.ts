import { spawn, spawnSync } from "node:child_process";
import { stringify } from "yaml";
import { freePort, startEnvoy } from "../tests/e2e/harness.ts";
import { envoyConfig, setups } from "./setups.ts";
const name = process.argv[2];
const s = setups().find((x) => x.name === name)!;
const [a, l] = [await freePort(), await freePort()];
const envoy = await startEnvoy(stringify(envoyConfig(s, a, l)), a, l, { concurrency: 1, cpu: "0" });
const H = [
  "user-agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
  "accept: text/html",
  "accept-language: en-US",
  "accept-encoding: gzip",
  'sec-ch-ua: "Chromium";v="131"',
  "sec-fetch-mode: navigate",
  "x-user-id: user-42",
];
const wrk = (d: number) =>
  spawnSync("taskset", ["-c", "1", "wrk", "-t1", "-c16", `-d${d}s`, ...H.flatMap((h) => ["-H", h]), envoy.url("/")], { encoding: "utf8" }).stdout;
wrk(1);
const perf = spawn("perf", ["record", "-F", "2999", "-g", "-o", `/tmp/prof/${process.argv[3]}.data`, "-p", String(envoy.proc.pid)], { stdio: "inherit" });
const out = wrk(5);
perf.kill("SIGINT");
await new Promise((r) => perf.on("exit", r));
console.log(
  out
    .split("\n")
    .filter((x) => /Requests\/sec/.test(x))
    .join("\n"),
);
await envoy.stop();
