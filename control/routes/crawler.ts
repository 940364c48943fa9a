// The crawler's under-attack switch, by hand.
import type { FastifyInstance, FastifyReply } from "fastify";
import { etag } from "./common.ts";
import type { Service } from "../server.ts";

export function crawlerRoutes(app: FastifyInstance, s: Service): void {
  const { store, publish, requireToken, unavailable, summary } = s;
  // Under-attack mode, switched by hand: every page view without a clearance is challenged until it ends
  // by itself. Only `under_attack.until_ms` of the document in force changes, so no If-Match is needed.
  const underAttack = async (reply: FastifyReply, untilMs: number | undefined, author: string) => {
    const v = store.current("crawler_score")!;
    const doc = structuredClone(v.doc) as Record<string, unknown>;
    const ua = { ...((doc.under_attack as Record<string, unknown> | undefined) ?? {}) };
    if (untilMs === undefined) delete ua.until_ms;
    else ua.until_ms = untilMs;
    doc.under_attack = ua;
    try {
      const r = await publish("crawler_score", doc, author, v.version);
      if (!r.version) return reply.code(422).send({ error: "the filter would reject this document", errors: r.errors });
      reply.header("etag", etag(r.version.version));
      return { ...summary("crawler_score", r.version), until_ms: untilMs ?? null };
    } catch (e) {
      return unavailable(reply, e);
    }
  };
  app.post<{ Body: { minutes: number; author?: string } }>(
    "/api/crawler/under-attack",
    {
      onRequest: requireToken,
      schema: {
        body: {
          type: "object",
          required: ["minutes"],
          additionalProperties: false,
          properties: { minutes: { type: "integer", minimum: 1, maximum: 1440 }, author: { type: "string", maxLength: 200 } },
        },
      },
    },
    async (req, reply) => underAttack(reply, Date.now() + req.body.minutes * 60_000, req.body.author ?? "api"),
  );
  app.delete("/api/crawler/under-attack", { onRequest: requireToken }, async (_req, reply) => underAttack(reply, undefined, "api"));
}
