// Envoy's memory over many publishes through graywall-control (npm run bench:publishes -- [N]): RSS and
// Envoy's own heap (server.memory_allocated) every N/20 publishes, each publish a gray rule change
// followed by a request. With `--noop-metrics M`, the same Envoy loads the no-op module instead, given a
// new configuration each time (written straight to the ECDS file) that makes it define M counters: what
// Envoy itself keeps per publish and per metric a VM defines. Lab tool: the figures go to docs/scaling.md
// ("Memory").
import { mkdtempSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { buildServer } from "../control/server.ts";
import { freePort, startEnvoy } from "../scripts/lib/envoy_process.ts";
import { ROOT } from "../runtime/paths.ts";
import { ecdsFileName } from "../runtime/ecds.ts";
import { writeAtomic } from "../runtime/files.ts";
import { ECDS_DIR } from "../scripts/render.ts";

const N = Number(process.argv[2] ?? 5000);
const noopAt = process.argv.indexOf("--noop-metrics");
const noopMetrics = noopAt > 0 ? Number(process.argv[noopAt + 1]) : undefined;
const TOKEN = "bench";
const dir = mkdtempSync(join(tmpdir(), "graywall-publishes-"));
const up = createServer((_q, s) => s.end("ok"));
await new Promise<void>((ok) => up.listen(0, "127.0.0.1", ok));
const upPort = (up.address() as AddressInfo).port;
const [adminPort, listenerPort] = [await freePort(), await freePort()];
const app = buildServer({ dataDir: join(dir, "data"), ecdsDir: join(dir, "ecds"), token: TOKEN, retention: 50 });
await app.ready();
const cfg = parse(readFileSync(join(ROOT, "envoy", "envoy-ecds.yaml"), "utf8").replaceAll(ECDS_DIR, join(dir, "ecds")));
cfg.admin.address.socket_address.port_value = adminPort;
cfg.static_resources.listeners[0].address.socket_address.port_value = listenerPort;
for (const c of cfg.static_resources.clusters) {
  for (const e of c.load_assignment?.endpoints ?? []) for (const lb of e.lb_endpoints) lb.endpoint.address.socket_address.port_value = upPort;
}
const envoy = await startEnvoy(cfg, adminPort, listenerPort);
const rss = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${envoy.proc.pid}/status`, "utf8"))![1]) / 1024;
const heap = async () =>
  Number(/server.memory_allocated: (\d+)/.exec(await (await fetch(`http://127.0.0.1:${adminPort}/stats?filter=^server.memory_allocated$`)).text())![1]) /
  2 ** 20;
/** One gray rule change through graywall-control. */
async function publishGray(i: number): Promise<void> {
  const cur = (await app.inject({ url: "/api/filters/gray_router" })).json().version;
  const doc = { rules: [{ name: "beta-header", target: "canary", match: { headers: [{ name: "x-user-group", exact: `g${i}` }] } }] };
  const r = await app.inject({
    method: "PUT",
    url: "/api/filters/gray_router",
    headers: { authorization: `Bearer ${TOKEN}`, "if-match": `"${cur}"` },
    payload: { doc },
  });
  if (r.statusCode !== 200) throw new Error(r.body);
}

const ecdsFile = join(dir, "ecds", ecdsFileName("graywall"));
const ecdsTemplate = readFileSync(ecdsFile, "utf8");
/** The no-op module with a configuration new each time (a number in it), defining `metrics` counters; a new VM each time, as for graywall's. */
function publishNoop(i: number, metrics: number): void {
  const text = ecdsTemplate
    .replace(/graywall\.wasm/, "noop.wasm")
    .replace(/root_id: graywall/, "root_id: noop")
    .replace(/value: '[\s\S]*$/, `value: '{"define_metrics":${metrics},"n":${i}}'\n`);
  writeAtomic(ecdsFile, text, 0o600);
}

console.log(`publishes  RSS MiB  Envoy heap MiB  (start: ${rss().toFixed(1)}, ${(await heap()).toFixed(1)})`);
const t0 = Date.now();
for (let i = 1; i <= N; i++) {
  if (noopMetrics === undefined) await publishGray(i);
  else {
    publishNoop(i, noopMetrics);
    // Envoy reads the ECDS file on a watch: give it the moment a publish through the service takes.
    await new Promise((ok) => setTimeout(ok, 10));
  }
  await fetch(`http://127.0.0.1:${listenerPort}/`).then((x) => x.text());
  if (i % Math.max(1, Math.floor(N / 20)) === 0)
    console.log(`${String(i).padStart(9)}  ${rss().toFixed(1).padStart(7)}  ${(await heap()).toFixed(1).padStart(14)}`);
}
const created = /v8\.created: (\d+)/.exec(await (await fetch(`http://127.0.0.1:${adminPort}/stats?filter=v8.created`)).text())?.[1];
console.log(`${N} publishes in ${((Date.now() - t0) / 1000).toFixed(0)} s; VMs created: ${created}`);
await envoy.stop();
await app.close();
up.close();
