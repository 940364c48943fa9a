// Envoy's memory over many publishes through graywall-control (npm run bench:publishes -- [N]): RSS and
// Envoy's own heap (server.memory_allocated) every N/20 publishes, each publish a gray rule change
// followed by a request. Lab tool: the figures go to docs/scaling.md ("Memory").
import { mkdtempSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { buildServer } from "../control/server.ts";
import { freePort, startEnvoy } from "../scripts/lib/envoy_process.ts";
import { ROOT } from "../runtime/paths.ts";
import { ECDS_DIR } from "../scripts/render.ts";

const N = Number(process.argv[2] ?? 5000);
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
console.log(`publishes  RSS MiB  Envoy heap MiB  (start: ${rss().toFixed(1)}, ${(await heap()).toFixed(1)})`);
const t0 = Date.now();
for (let i = 1; i <= N; i++) {
  const cur = (await app.inject({ url: "/api/filters/gray_router" })).json().version;
  const doc = { rules: [{ name: "beta-header", target: "canary", match: { headers: [{ name: "x-user-group", exact: `g${i}` }] } }] };
  const r = await app.inject({
    method: "PUT",
    url: "/api/filters/gray_router",
    headers: { authorization: `Bearer ${TOKEN}`, "if-match": `"${cur}"` },
    payload: { doc },
  });
  if (r.statusCode !== 200) throw new Error(r.body);
  await fetch(`http://127.0.0.1:${listenerPort}/`).then((x) => x.text());
  if (i % Math.max(1, Math.floor(N / 20)) === 0)
    console.log(`${String(i).padStart(9)}  ${rss().toFixed(1).padStart(7)}  ${(await heap()).toFixed(1).padStart(14)}`);
}
console.log(`${N} publishes in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
await envoy.stop();
await app.close();
up.close();
