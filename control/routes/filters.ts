// The rule documents: read, page through versions, validate, replace, roll back, rotate a section's
// secret, preview a request.
import type { FastifyInstance } from "fastify";
import { authorized } from "../auth.ts";
import { GENERATED, SecretError } from "../secrets.ts";
import { dangers } from "../dangers.ts";
import { etag, filterParam, NAMES, PREVIEW_BODY_LIMIT, VALIDATE_BODY_LIMIT } from "./common.ts";
import type { Service } from "../server.ts";

export function filterRoutes(app: FastifyInstance, s: Service): void {
  const { opts, store, secrets, validator, requireToken, validate, unavailable, summary, shown, openLimit, change } = s;
  app.get("/api/filters", async () =>
    NAMES.map((f) => {
      const v = store.current(f)!;
      return { filter: f, version: v.version, author: v.author, time: v.time };
    }),
  );

  app.get<{ Params: { filter: string } }>("/api/filters/:filter", { schema: { params: filterParam } }, async (req, reply) => {
    const v = store.current(req.params.filter)!;
    reply.header("etag", etag(v.version));
    return { filter: req.params.filter, version: v.version, doc: shown(req.params.filter, v.doc) };
  });

  // Newest first, a page at a time: `limit` (default 50, at most 500), `before` a version number for the
  // next page, `changes=true` for each version's changes by meaning (left out unless asked).
  app.get<{ Params: { filter: string }; Querystring: { limit?: string; before?: string; changes?: string } }>(
    "/api/filters/:filter/versions",
    {
      schema: {
        params: filterParam,
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            limit: { type: "string", pattern: "^[1-9][0-9]{0,2}$" },
            before: { type: "string", pattern: "^[1-9][0-9]{0,9}$" },
            changes: { type: "string", enum: ["true", "false"] },
          },
        },
      },
    },
    async (req, reply) => {
      const limit = Math.min(Number(req.query.limit ?? 50), 500);
      const page = store.versions(req.params.filter, { limit: limit + 1, before: req.query.before ? Number(req.query.before) : undefined });
      const shownPage = page.slice(0, limit);
      // The next page, as a link (RFC 8288) and a header a script reads without parsing links.
      if (page.length > limit) {
        const next = shownPage[shownPage.length - 1].version;
        reply.header("x-next-before", String(next));
        reply.header(
          "link",
          `</api/filters/${req.params.filter}/versions?limit=${limit}&before=${next}${req.query.changes === "true" ? "&changes=true" : ""}>; rel="next"`,
        );
      }
      return shownPage.map((v) => summary(req.params.filter, v, req.query.changes === "true"));
    },
  );

  app.get<{ Params: { filter: string; version: string } }>(
    "/api/filters/:filter/versions/:version",
    {
      schema: {
        // A path segment is text (types are not coerced): a version is its digits.
        params: {
          ...filterParam,
          required: ["filter", "version"],
          properties: { ...filterParam.properties, version: { type: "string", pattern: "^[1-9][0-9]{0,9}$" } },
        },
      },
    },
    async (req, reply) => {
      const v = store.version(req.params.filter, Number(req.params.version));
      if (!v) return reply.code(404).send({ error: `no version ${req.params.version}` });
      return { ...summary(req.params.filter, v), doc: shown(req.params.filter, v.doc) };
    },
  );

  app.post<{ Params: { filter: string }; Body: { doc: unknown } }>(
    "/api/filters/:filter/validate",
    {
      bodyLimit: VALIDATE_BODY_LIMIT,
      config: { rateLimit: openLimit },
      schema: { params: filterParam, body: { type: "object", required: ["doc"], additionalProperties: false, properties: { doc: {} } } },
    },
    async (req, reply) => {
      try {
        // Secrets as they would be delivered; nothing is kept from an open call.
        const doc = secrets.reveal(req.params.filter, secrets.preview(req.params.filter, req.body.doc, store.current(req.params.filter)?.doc));
        const errors = await validate(req.params.filter, doc, !authorized(req.headers.authorization, opts.token));

        // What publishing it would need confirmed, in words, for the UI to show before it asks.

        return { ok: errors.length === 0, errors, warnings: dangers(req.params.filter, req.body.doc) };
      } catch (e) {
        if (e instanceof SecretError) return { ok: false, errors: [{ field: e.field, message: e.message }] };
        return unavailable(reply, e);
      }
    },
  );

  app.put<{ Params: { filter: string }; Body: { doc: unknown; author?: string; confirm?: boolean } }>(
    "/api/filters/:filter",
    {
      onRequest: requireToken,
      schema: {
        params: filterParam,
        body: {
          type: "object",
          required: ["doc"],
          additionalProperties: false,
          properties: { doc: { type: "object" }, author: { type: "string", maxLength: 200 }, confirm: { type: "boolean" } },
        },
      },
    },
    async (req, reply) => change(reply, req.params.filter, req, req.body.doc, req.body.author ?? "api", undefined, req.body.confirm === true),
  );

  app.post<{ Params: { filter: string }; Body: { version: number; author?: string; confirm?: boolean } }>(
    "/api/filters/:filter/rollback",
    {
      onRequest: requireToken,
      schema: {
        params: filterParam,
        body: {
          type: "object",
          required: ["version"],
          additionalProperties: false,
          properties: { version: { type: "integer", minimum: 1 }, author: { type: "string", maxLength: 200 }, confirm: { type: "boolean" } },
        },
      },
    },
    async (req, reply) => {
      const old = store.version(req.params.filter, req.body.version);
      if (!old) return reply.code(404).send({ error: `no version ${req.body.version}` });
      return change(reply, req.params.filter, req, old.doc, req.body.author ?? "api", old.version, req.body.confirm === true);
    },
  );

  // A new secret for a section, the one it replaces kept as previous_secret (what it signed stays valid).
  app.post<{ Params: { filter: string; section: string }; Body: { author?: string } | undefined }>(
    "/api/filters/:filter/secrets/:section/rotate",
    {
      onRequest: requireToken,
      schema: {
        params: {
          type: "object",
          required: ["filter", "section"],
          properties: { filter: { type: "string", enum: ["crawler_score"] }, section: { type: "string", enum: GENERATED.crawler_score } },
        },
      },
    },
    async (req, reply) => {
      const v = store.current(req.params.filter)!;
      let rotated: unknown;
      try {
        rotated = secrets.rotate(req.params.filter, v.doc, req.params.section);
      } catch (e) {
        if (e instanceof SecretError) return reply.code(422).send({ error: e.message, errors: [{ field: e.field, message: e.message }] });
        throw e;
      }
      const author = (req.body as { author?: unknown } | undefined)?.author;
      return change(reply, req.params.filter, req, rotated, typeof author === "string" ? author.slice(0, 200) : "api", undefined, true);
    },
  );

  app.post<{ Body: { doc?: unknown; request: unknown } }>(
    "/api/preview",
    {
      bodyLimit: PREVIEW_BODY_LIMIT,
      config: { rateLimit: openLimit },
      schema: {
        body: { type: "object", required: ["request"], additionalProperties: false, properties: { doc: { type: "object" }, request: { type: "object" } } },
      },
    },
    async (req, reply) =>
      validator
        .preview(req.body.doc ?? store.current("gray_router")!.doc, req.body.request, !authorized(req.headers.authorization, opts.token))
        .catch((e) => unavailable(reply, e)),
  );
}
