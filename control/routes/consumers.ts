// Consumers' credentials: API keys (made here, shown once, rotated with a grace period), signing keys,
// 24-hour tokens and their signing keys.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import {
  type AccessDoc,
  addConsumer,
  listConsumers,
  addKey,
  addSigningKey,
  CONSUMER_NAME,
  consumerOfKey,
  FINGERPRINT,
  MAX_SIGNING_KEYS,
  removeConsumer,
  removeKey,
  removeSigningKey,
  rotateKey,
  DEFAULT_GRACE_S,
  MAX_GRACE_S,
  SIGNING_KEY_ID,
} from "../consumers.ts";
import type { Service } from "../server.ts";

/** A route's path parameters, each a string matching its pattern. */
const pathParams = (patterns: Record<string, string>) => ({
  type: "object",
  required: Object.keys(patterns),
  properties: Object.fromEntries(Object.entries(patterns).map(([k, pattern]) => [k, { type: "string", pattern }])),
});

export function consumerRoutes(app: FastifyInstance, s: Service): void {
  const { store, tokenKeys, requireToken, openLimit, change } = s;
  // The consumers, without a secret or a digest: what each can call with.
  app.get("/api/consumers", async () => ({ version: store.current("access")!.version, consumers: listConsumers(store.current("access")!.doc as AccessDoc) }));
  // A new consumer, with no credential yet (make it a key or a signing key next).
  app.post<{ Body: { name: string; author?: string } }>(
    "/api/consumers",
    {
      onRequest: requireToken,
      schema: {
        body: {
          type: "object",
          required: ["name"],
          additionalProperties: false,
          properties: { name: { type: "string", pattern: CONSUMER_NAME }, author: { type: "string", maxLength: 200 } },
        },
      },
    },
    async (req, reply) => {
      const next = addConsumer(store.current("access")!.doc as AccessDoc, req.body.name);
      if (!next) return reply.code(409).send({ error: `consumer '${req.body.name}' exists` });
      const r = await change(reply, "access", req, next, req.body.author ?? "api", undefined, true);
      if (reply.sent || reply.statusCode !== 200) return r;
      return reply.code(201).send({ ...(r as object), consumer: req.body.name });
    },
  );

  // API keys: made here, shown once in this answer, kept in the access document only as SHA-256 digests.
  app.post<{ Params: { name: string }; Body: { author?: string } | undefined }>(
    "/api/consumers/:name/keys",
    {
      onRequest: requireToken,
      schema: { params: pathParams({ name: CONSUMER_NAME }) },
    },
    async (req, reply) => {
      const v = store.current("access")!;
      const made = addKey(v.doc as AccessDoc, req.params.name);
      const author = (req.body as { author?: unknown } | undefined)?.author;
      const r = await change(reply, "access", req, made.doc, typeof author === "string" ? author.slice(0, 200) : "api", undefined, true);
      if (reply.sent || reply.statusCode !== 200) return r;
      reply.header("cache-control", "no-store");
      return { ...(r as object), consumer: req.params.name, key: made.key, fingerprint: made.fingerprint };
    },
  );
  // Rotation with a grace period: a new key now; the old one works until the period ends, then the
  // gateway refuses it by itself (no later publish needed).
  app.post<{ Params: { name: string; fingerprint: string }; Body: { grace_s?: number; author?: string } | undefined }>(
    "/api/consumers/:name/keys/:fingerprint/rotate",
    {
      onRequest: requireToken,
      schema: {
        params: pathParams({ name: CONSUMER_NAME, fingerprint: FINGERPRINT }),
        body: {
          type: ["object", "null"],
          additionalProperties: false,
          properties: { grace_s: { type: "integer", minimum: 0, maximum: MAX_GRACE_S }, author: { type: "string", maxLength: 200 } },
        },
      },
    },
    async (req, reply) => {
      const v = store.current("access")!;
      const made = rotateKey(v.doc as AccessDoc, req.params.name, req.params.fingerprint, req.body?.grace_s ?? DEFAULT_GRACE_S);
      if (!made) return reply.code(404).send({ error: `consumer '${req.params.name}' has no key ${req.params.fingerprint}` });
      const r = await change(reply, "access", req, made.doc, req.body?.author ?? "api", undefined, true);
      if (reply.sent || reply.statusCode !== 200) return r;
      reply.header("cache-control", "no-store");
      return { ...(r as object), consumer: req.params.name, key: made.key, fingerprint: made.fingerprint, retiring: made.retiring };
    },
  );
  app.delete<{ Params: { name: string; fingerprint: string } }>(
    "/api/consumers/:name/keys/:fingerprint",
    {
      onRequest: requireToken,
      schema: {
        params: pathParams({ name: CONSUMER_NAME, fingerprint: FINGERPRINT }),
      },
    },
    async (req, reply) =>
      editAccess(
        req,
        reply,
        removeKey(accessDoc(), req.params.name, req.params.fingerprint),
        `consumer '${req.params.name}' has no key ${req.params.fingerprint}`,
      ),
  );

  /** The access document in force. */
  const accessDoc = () => store.current("access")!.doc as AccessDoc;
  /** Publishes an edit of the access document; 404 with `missing` when there was nothing to edit. */
  const editAccess = (req: FastifyRequest, reply: FastifyReply, next: AccessDoc | null, missing: string) =>
    next ? change(reply, "access", req, next, "api", undefined, true) : reply.code(404).send({ error: missing });

  // Tokens: the public keys Envoy verifies with, and a token for a consumer that shows one of its API keys.
  app.get("/.well-known/jwks.json", async (_req, reply) => {
    reply.header("cache-control", "max-age=30");
    return tokenKeys.jwks();
  });
  app.post("/api/tokens", { config: { rateLimit: openLimit } }, async (req, reply) => {
    const key = req.headers["x-api-key"];
    const consumer = typeof key === "string" ? consumerOfKey(store.current("access")!.doc as AccessDoc, key) : undefined;
    // The same answer for a missing and an unknown key: it never says which consumers exist.
    if (!consumer) return reply.code(401).header("www-authenticate", 'Key realm="graywall"').send({ error: "a valid API key is required in x-api-key" });
    const t = await tokenKeys.issue(consumer);
    reply.header("cache-control", "no-store");
    return { token: t.token, token_type: "Bearer", expires_at: t.expiresAt, consumer };
  });
  app.post("/api/tokens/keys/rotate", { onRequest: requireToken }, async () => {
    const r = await tokenKeys.rotate();
    return { kid: r.kid, signs_from: new Date(r.signsFromMs).toISOString() };
  });
  app.delete<{ Params: { name: string } }>(
    "/api/consumers/:name",
    { onRequest: requireToken, schema: { params: pathParams({ name: CONSUMER_NAME }) } },
    async (req, reply) => editAccess(req, reply, removeConsumer(accessDoc(), req.params.name), `no consumer '${req.params.name}'`),
  );

  // Signing keys (RFC 9421 hmac-sha256): the secret is shown once in this answer, then kept apart.
  app.post<{ Params: { name: string }; Body: { author?: string } | undefined }>(
    "/api/consumers/:name/signing-keys",
    {
      onRequest: requireToken,
      schema: { params: pathParams({ name: CONSUMER_NAME }) },
    },
    async (req, reply) => {
      const v = store.current("access")!;
      const made = addSigningKey(v.doc as AccessDoc, req.params.name);
      if (!made) return reply.code(409).send({ error: `consumer '${req.params.name}' has ${MAX_SIGNING_KEYS} signing keys: revoke one first` });
      const author = (req.body as { author?: unknown } | undefined)?.author;
      const r = await change(reply, "access", req, made.doc, typeof author === "string" ? author.slice(0, 200) : "api", undefined, true);
      if (reply.sent || reply.statusCode !== 200) return r;
      reply.header("cache-control", "no-store");
      return { ...(r as object), consumer: req.params.name, key_id: made.id, secret: made.secret };
    },
  );
  app.delete<{ Params: { name: string; id: string } }>(
    "/api/consumers/:name/signing-keys/:id",
    {
      onRequest: requireToken,
      schema: {
        params: pathParams({ name: CONSUMER_NAME, id: SIGNING_KEY_ID }),
      },
    },
    async (req, reply) =>
      editAccess(
        req,
        reply,
        removeSigningKey(accessDoc(), req.params.name, req.params.id),
        `consumer '${req.params.name}' has no signing key '${req.params.id}'`,
      ),
  );
}
