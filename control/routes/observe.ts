// What the gateways do: the targets they route, the Traffic view, alerts, the fleet's versions, raw counters.
import type { FastifyInstance } from "fastify";
import { routeClusters, routedTargets } from "../targets.ts";
import type { Service } from "../server.ts";

export function observeRoutes(app: FastifyInstance, s: Service): void {
  const { opts, delivery, xds, traffic, alerts } = s;
  // The gray targets this gateway routes (what a rule may send requests to), and the catch-all's.
  app.get("/api/targets", async () => {
    const catchAll = routeClusters("\0", undefined, opts.envoyYaml)["\0"] ?? "stable";
    const targets = [...new Set([...(opts.targets ?? routedTargets(undefined, opts.envoyYaml)), catchAll])].sort();
    return { targets, default: catchAll };
  });

  // The last hour of every gateway's counters, per stage, and the top refusals (control/traffic.ts).
  app.get("/api/traffic", async () => traffic.view());

  // Alerts firing now and the last events; how many webhooks get them, never their URLs (a chat webhook's URL is its secret).
  app.get("/api/alerts", async () => ({ webhooks: alerts.webhookCount, active: alerts.active(), recent: alerts.recent.slice(-50) }));

  // Which gateway runs which version, from their ACKs and NACKs over gRPC ECDS.
  app.get("/api/gateways", async () => ({ version: delivery.version, fleet: xds !== undefined, gateways: xds?.status() ?? [] }));

  app.get("/api/stats", async (_req, reply) => {
    if (!opts.envoyAdmin) return reply.code(503).send({ error: "no Envoy admin address configured" });
    try {
      const r = await fetch(`${opts.envoyAdmin}/stats?format=json&filter=graywall`, { signal: AbortSignal.timeout(2000) });
      const stats: { name: string; value: number }[] = (await r.json()).stats ?? [];
      return Object.fromEntries(stats.filter((s) => typeof s.value === "number").map((s) => [s.name.replace(/^wasmcustom\.graywall\./, ""), s.value]));
    } catch (e) {
      return reply.code(502).send({ error: `Envoy admin unreachable: ${(e as Error).message}` });
    }
  });
}
