// Progressive delivery (control/releases.ts): start, read and act on releases.
import type { FastifyInstance } from "fastify";
import { type Release, ReleaseConflict, readSpec } from "../releases.ts";
import type { Service } from "../server.ts";

export function releaseRoutes(app: FastifyInstance, s: Service): void {
  const { releases, requireToken, unavailable } = s;
  // Progressive delivery (control/releases.ts).
  const releaseParam = { type: "object", required: ["id"], properties: { id: { type: "string", pattern: "^r[0-9]+$" } } } as const;
  // A release as answers show it: its webhook only as set (a chat webhook's URL is its secret).
  const releaseShown = ({ webhook_pending, ...r }: Release) => ({ ...r, spec: { ...r.spec, webhook: r.spec.webhook ? "(set)" : undefined } });
  app.get("/api/releases", async () => releases.list().map((r) => ({ ...releaseShown(r), samples: r.samples.length })));
  app.get<{ Params: { id: string } }>("/api/releases/:id", { schema: { params: releaseParam } }, async (req, reply) => {
    const r = releases.get(req.params.id);
    return r ? releaseShown(r) : reply.code(404).send({ error: `no release ${req.params.id}` });
  });
  app.post<{ Body: Record<string, unknown> }>(
    "/api/releases",
    {
      onRequest: requireToken,
      schema: {
        body: {
          type: "object",
          additionalProperties: false,
          required: ["target"],
          properties: {
            target: { type: "string", maxLength: 100 },
            steps: { type: "array", maxItems: 20 },
            hold_seconds: { type: "number" },
            interval_seconds: { type: "number" },
            hash_on: { type: "string" },
            name: { type: "string", maxLength: 200 },
            limits: {
              type: "object",
              additionalProperties: false,
              properties: {
                max_error_rate_increase: { type: "number" },
                max_p99_ratio: { type: "number" },
                p99_min_difference_ms: { type: "number" },
                min_requests: { type: "number" },
                failed_checks: { type: "number" },
              },
            },
            webhook: { type: "string", maxLength: 2000 },
            author: { type: "string", maxLength: 200 },
          },
        },
      },
    },
    async (req, reply) => {
      const { author, ...body } = req.body;
      const { spec, errors } = readSpec(body);
      if (!spec) return reply.code(422).send({ error: "this release cannot start", errors });
      try {
        return reply.code(201).send(releaseShown(await releases.start(spec, typeof author === "string" ? author : "api")));
      } catch (e) {
        if (e instanceof ReleaseConflict) return reply.code(409).send({ error: e.message });
        return reply.code(422).send({ error: `the gray rules would not accept this release: ${(e as Error).message}` });
      }
    },
  );
  app.post<{ Params: { id: string; action: "pause" | "resume" | "promote" | "abort" }; Body: { author?: string } | undefined }>(
    "/api/releases/:id/:action",
    {
      onRequest: requireToken,
      schema: {
        params: {
          type: "object",
          required: ["id", "action"],
          properties: { ...releaseParam.properties, action: { type: "string", enum: ["pause", "resume", "promote", "abort"] } },
        },
        body: { type: ["object", "null"], additionalProperties: false, properties: { author: { type: "string", maxLength: 200 } } },
      },
    },
    async (req, reply) => {
      if (!releases.get(req.params.id)) return reply.code(404).send({ error: `no release ${req.params.id}` });
      try {
        return releaseShown(await releases.act(req.params.id, req.params.action, req.body?.author ?? "api"));
      } catch (e) {
        if (e instanceof ReleaseConflict) return reply.code(409).send({ error: e.message });
        return unavailable(reply, e);
      }
    },
  );
}
