// graywall-control: the rules API, the web UI, and hot delivery of rule documents into Envoy.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import rateLimit from "@fastify/rate-limit";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { FILTERS } from "../runtime/filters.ts";
import { ROOT } from "../runtime/paths.ts";
import { Alerts, type AlertSettings } from "./alerts.ts";
import { StatsPoller } from "./gateway_stats.ts";
import { Traffic } from "./traffic.ts";
import { authorized } from "./auth.ts";
import { Delivery } from "./delivery.ts";
import { StaleVersion, Store, type VersionSummary } from "./store.ts";
import { describeRoute, OPENAPI } from "./openapi.ts";
import swagger from "@fastify/swagger";
import { listenersNotAppendingXff, routeClusters, routedTargets, unroutedTargets } from "../runtime/targets.ts";
import { EcdsServer } from "./xds.ts";
import { type Release, ReleaseConflict, Releases, readSpec } from "./releases.ts";
import { GENERATED, SECRET_PATHS, SecretError, Secrets, secretPathForm } from "./secrets.ts";
import { TokenKeys } from "./tokens.ts";
import { dangers, newDangers } from "./dangers.ts";
import {
  type AccessDoc,
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
} from "./consumers.ts";
import { Validator, ValidatorBusy, ValidatorUnavailable, type ValidatorLimits } from "./validation/validator.ts";

declare module "fastify" {
  interface FastifyInstance {
    /** The gRPC ECDS port once listening (with ControlOptions.xdsPort). */
    xdsPort?: number;
  }
}

export interface ControlOptions {
  dataDir: string;
  ecdsDir: string;
  token: string;
  /** Envoy's admin address for live counters, e.g. http://127.0.0.1:9901 */
  envoyAdmin?: string;
  wasmDir?: string;
  /** The gray targets the gateway routes; default: those envoy/envoy.yaml's routes match on. */
  targets?: string[];
  /** Versions kept per filter (default DEFAULT_RETENTION); older ones are removed. */
  retention?: number;
  /** envoyproxy/ratelimit's runtime root: cluster rate-limit rules are written there too. */
  ratelimitDir?: string;
  /** Serve the configuration to a fleet over gRPC ECDS on this port (0: any free port; see xdsPort()). */
  xdsPort?: number;
  /** Every gateway's admin address, for release analysis (default: envoyAdmin). */
  envoyAdmins?: string[];
  /** Upstream cluster per gray target, for release analysis (default: the target's name). */
  clusters?: Record<string, string>;
  /** Host names (no port) this service answers to; default loopback only (a DNS-rebinding page is refused). */
  allowedHosts?: string[];
  /** Time and memory limits of the validation worker. */
  validation?: ValidatorLimits;
  /** The validator to use (default: a worker with `validation`'s limits); closed with the service. */
  validator?: Validator;
  /** The gateway's Envoy config (default envoy/envoy.yaml): what `client_address: "envoy_xff"` is checked against. */
  envoyYaml?: string;
  /** Calls per minute per client to the endpoints open without a token (validate, preview); default 60. */
  openRateLimit?: number;
  /** Lifetime of the tokens POST /api/tokens issues, in seconds; default 86400 (24 hours). */
  tokenLifetimeS?: number;
  /** Alerts evaluated from every gateway's admin stats and sent to webhooks (off without webhooks). */
  alerts?: AlertSettings;
  /** How often every gateway's counters are read for the Traffic view and alerts (default 2000 ms). */
  statsIntervalMs?: number;
  /** The gateways' JSON access logs (files, as the shipped configs write them): the Traffic view's top refused paths. */
  accessLogs?: string[];
}

/** Loopback names: what a browser on this machine sends. A rebinding attacker's page sends its own name. */
export const LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "[::1]", "::1"];

/** Every response: the UI loads only its own files, is never framed, and sends no referrer. */
const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
};

const NAMES = FILTERS.map((f) => f.name);
const filterParam = {
  type: "object",
  required: ["filter"],
  properties: { filter: { type: "string", enum: NAMES } },
} as const;
const etag = (v: number) => `"${v}"`;

/** Writes carry whole documents (a 100k-entry ip_list is about 2.5 MB); the open endpoints carry less. */
const WRITE_BODY_LIMIT = 16 * 1024 * 1024;
export const VALIDATE_BODY_LIMIT = 4 * 1024 * 1024;
export const PREVIEW_BODY_LIMIT = 256 * 1024;
export const MAX_JSON_DEPTH = 64;

/** Whether a parsed JSON value nests deeper than `max` (iterative: a hostile body cannot blow the stack). */
function depthOver(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== "object") continue;
    if (d > max) return true;
    for (const child of Object.values(v as Record<string, unknown>)) stack.push([child, d + 1]);
  }
  return false;
}

/** If-Match as a version number; undefined when absent or not one of ours. */
function ifMatch(req: FastifyRequest): number | undefined {
  const h = req.headers["if-match"];
  const m = typeof h === "string" ? /^"?(\d+)"?$/.exec(h.trim()) : null;
  return m ? Number(m[1]) : undefined;
}

/** Whether a diff path is a secret's, or a section holding one. */
function touchesSecret(filter: string, path: string): boolean {
  const form = secretPathForm(path);
  return (SECRET_PATHS[filter] ?? []).some((p) => p === form || p.startsWith(`${form}.`) || p.startsWith(`${form}[]`) || path === "(document)");
}

/**
 * Gives each sticky-percentage rule without a salt a fixed one, so renaming the rule later does not
 * reshuffle its users: the salt of the same-named rule in force, else the name (what the filter would
 * use anyway, so the split in force does not move when the salt is first written down).
 */
export function fixSalts(doc: unknown, current: unknown): unknown {
  type Rule = { name?: unknown; match?: { percentage?: { salt?: unknown } } };
  const rules = (doc as { rules?: Rule[] } | null)?.rules;
  if (!Array.isArray(rules)) return doc;
  const inForce = new Map<unknown, unknown>();
  for (const r of ((current as { rules?: Rule[] } | undefined)?.rules ?? []) as Rule[]) inForce.set(r?.name, r?.match?.percentage?.salt);
  const out = structuredClone(doc) as { rules: Rule[] };
  for (const r of out.rules) {
    const p = r?.match?.percentage;
    if (!p || typeof p !== "object" || p.salt !== undefined || typeof r.name !== "string") continue;
    const kept = inForce.get(r.name);
    p.salt = typeof kept === "string" ? kept : r.name;
  }
  return out;
}

/** Field-level errors from the filter's own compiler: "rules[0].target: must be ..." -> {field, message}. */
function fieldErrors(text: string) {
  return text
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const i = line.indexOf(": ");
      return i < 0 ? { field: "", message: line } : { field: line.slice(0, i), message: line.slice(i + 2) };
    });
}

export function buildServer(opts: ControlOptions): FastifyInstance {
  // Unknown fields are refused, not silently dropped (Fastify's default strips them): {"doc", "dryRun"}
  // must not publish as if dryRun meant something.
  // Nor are types coerced: `"version": "1"` or `author: 12345` is a 400 naming the field, not a guess.
  const app = Fastify({ logger: false, bodyLimit: WRITE_BODY_LIMIT, ajv: { customOptions: { removeAdditional: false, coerceTypes: false } } });
  const hosts = new Set((opts.allowedHosts ?? LOOPBACK_HOSTS).map((h) => h.toLowerCase()));
  app.addHook("onRequest", async (req, reply) => {
    reply.headers(SECURITY_HEADERS);
    const host = (req.headers.host ?? "").toLowerCase().replace(/:\d+$/, "");
    if (!hosts.has(host)) return reply.code(421).send({ error: `this service does not answer to host '${host}'` });
  });
  app.addHook("preValidation", async (req, reply) => {
    if (req.body !== undefined && depthOver(req.body, MAX_JSON_DEPTH)) {
      return reply.code(400).send({ error: `the JSON body is nested deeper than ${MAX_JSON_DEPTH} levels` });
    }
  });
  const store = new Store(opts.dataDir, NAMES, opts.retention);
  const xds = opts.xdsPort === undefined ? undefined : new EcdsServer();
  const delivery = new Delivery({ ecdsDir: opts.ecdsDir, wasmDir: opts.wasmDir, ratelimitDir: opts.ratelimitDir, xds });
  if (xds) {
    // The gRPC server lives and dies with the HTTP one.
    app.addHook("onReady", async () => {
      app.xdsPort = await xds.listen(opts.xdsPort!);
    });
    app.addHook("onClose", async () => xds.close());
  }
  const validator = opts.validator ?? new Validator(opts.validation);
  app.addHook("onClose", async () => validator.close());
  const secrets = new Secrets(opts.dataDir);
  const tokenKeys = new TokenKeys(opts.dataDir, opts.tokenLifetimeS);
  const shown = (filter: string, doc: unknown) => secrets.redact(filter, doc);
  // A version as answers show it: its changes by meaning (only with `withChanges`), secrets as markers.
  const summary = (filter: string, v: VersionSummary, withChanges = true) => ({
    version: v.version,
    author: v.author,
    time: v.time,
    restoredFrom: v.restoredFrom,
    changes_total: v.changesTotal,
    ...(withChanges
      ? {
          changes: v.changes.map((c) => (touchesSecret(filter, c.path) ? { ...c, before: shown(filter, c.before), after: shown(filter, c.after) } : c)),
        }
      : {}),
  });

  // Every filter starts from its shipped document, and Envoy gets whatever is current.
  for (const f of NAMES) {
    if (!store.current(f)) {
      const shipped = JSON.parse(readFileSync(join(ROOT, "config", "filters", `${f}.json`), "utf8"));
      const doc = f === "gray_router" ? fixSalts(shipped, undefined) : shipped;
      store.commit(f, secrets.seal(f, doc, undefined), "graywall (shipped default)", 0);
    } else {
      // A document stored before this service made secrets gets them now, as a version of its own.
      const current = store.current(f)!;
      const sealed = secrets.seal(f, current.doc, current.doc);
      if (JSON.stringify(sealed) !== JSON.stringify(current.doc)) store.commit(f, sealed, "graywall-control (generated secrets)", current.version);
    }
    delivery.deliver(f, secrets.reveal(f, store.current(f)!.doc), store.current(f)!.version);
  }

  /**
   * The one way a document becomes a version: secrets kept apart, salts fixed, checked by the filter's own
   * compiler (errors returned, nothing written), committed if `basedOn` is current (else StaleVersion), and
   * delivered. `trusted`: the document in force less a rule (a release's rollback or abort), published
   * even when the compilers cannot answer.
   */
  const publish = async (filter: string, submitted: unknown, author: string, basedOn: number, restoredFrom?: number, trusted = false) => {
    const current = store.current(filter)?.doc;
    let doc: unknown;
    try {
      doc = secrets.seal(filter, filter === "gray_router" ? fixSalts(submitted, current) : submitted, current);
    } catch (e) {
      if (e instanceof SecretError) return { errors: [{ field: e.field, message: e.message }] };
      throw e;
    }
    const revealed = secrets.reveal(filter, doc);
    if (!trusted) {
      const errors = await validate(filter, revealed);
      if (errors.length > 0) return { errors };
    }
    const version = store.commit(filter, doc, author, basedOn, restoredFrom);
    delivery.deliver(filter, revealed, version.version);
    return { version, doc };
  };
  const publishGray = async (submitted: unknown, author: string, removal: boolean): Promise<number> => {
    const publishOnce = async (trusted: boolean) => publish("gray_router", submitted, author, store.current("gray_router")!.version, undefined, trusted);
    let r: Awaited<ReturnType<typeof publish>>;
    try {
      r = await publishOnce(false);
    } catch (e) {
      // The compilers could not answer: a rule taken out of the document in force still publishes.
      if (!(e instanceof ValidatorUnavailable) || !removal) throw e;
      r = await publishOnce(true);
    }
    if (!r.version) throw new Error(r.errors.map((e) => `${e.field}: ${e.message}`).join("; "));
    return r.version.version;
  };
  const routed = routeClusters();
  const releases = new Releases(join(opts.dataDir, "releases"), {
    currentGray: () => store.current("gray_router")!,
    publishGray,
    envoyAdmins: opts.envoyAdmins ?? (opts.envoyAdmin ? [opts.envoyAdmin] : []),
    clusterOf: (t) => (opts.clusters ?? routed)[t] ?? t,
  });
  app.addHook("onClose", async () => releases.close());
  // Every gateway's counters, read once a tick for the Traffic view and the alerts.
  const admins = opts.envoyAdmins ?? (opts.envoyAdmin ? [opts.envoyAdmin] : []);
  const poller = new StatsPoller(admins, opts.statsIntervalMs);
  const traffic = new Traffic(opts.accessLogs);
  poller.watch((admin, stats, t) => traffic.observe(admin, stats, t));
  const alerts = new Alerts(opts.alerts ?? { webhooks: [] });
  if (alerts.webhookCount > 0) poller.watch((admin, stats, t) => alerts.observe(admin, stats, t));
  poller.start();
  app.addHook("onClose", async () => {
    poller.close();
    alerts.close();
  });

  // Runs before the body is read: an unauthenticated write costs no parsing.
  const requireToken = async (req: FastifyRequest, reply: FastifyReply) => {
    if (!authorized(req.headers.authorization, opts.token)) {
      return reply.code(401).header("www-authenticate", "Bearer").send({ error: "a valid bearer token is required for changes" });
    }
  };
  // The filter's own compiler (in the validation worker) first; then, for gray rules, whether the gateway routes each target.
  const validate = async (filter: string, doc: unknown, open = false) => {
    const errors = fieldErrors(await validator.validate(filter, JSON.stringify(doc), open));
    if (errors.length === 0 && filter === "gray_router") errors.push(...unroutedTargets(doc, opts.targets));
    // The peer from Envoy's own X-Forwarded-For entry only where the gateway's Envoy writes that entry.
    if (errors.length === 0 && (doc as { client_address?: unknown } | null)?.client_address === "envoy_xff") {
      const unsafe = listenersNotAppendingXff(opts.envoyYaml);
      if (unsafe.length > 0) {
        errors.push({
          field: "client_address",
          message: `'envoy_xff' needs an Envoy that appends the peer to X-Forwarded-For (use_remote_address: true, no skip_xff_append); the gateway's listener(s) ${unsafe.join(", ")} do not, so a client could choose its address`,
        });
      }
    }
    return errors;
  };
  const unavailable = (reply: FastifyReply, e: unknown) => {
    if (e instanceof ValidatorBusy) return reply.code(503).header("retry-after", "1").send({ error: e.message });
    if (e instanceof ValidatorUnavailable) {
      return reply.code(422).send({ error: "the filter's compiler could not check this document", errors: [{ field: "doc", message: e.message }] });
    }
    throw e;
  };

  // The endpoints open without a token (validate, preview) are limited per client; a caller with the token is not.
  const openLimit = { max: opts.openRateLimit ?? 60, timeWindow: 60_000 };
  void app.register(rateLimit, {
    global: false,
    allowList: (req) => authorized(req.headers.authorization, opts.token),
  });

  // The OpenAPI document is generated from the routes as they register (control/openapi.ts adds each
  // one's summary, group and bearer security).
  app.addHook("onRoute", (r) => describeRoute(r, (x) => [x.onRequest].flat().includes(requireToken)));
  void app.register(swagger, OPENAPI);

  // The routes load after the rate limiter, so its per-route limits apply to them.
  void app.register(async (app) => {
    app.get("/openapi.json", async () => app.swagger());

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

    const change = async (
      reply: FastifyReply,
      filter: string,
      req: FastifyRequest,
      submitted: unknown,
      author: string,
      restoredFrom: number | undefined,
      confirmed: boolean,
    ) => {
      const basedOn = ifMatch(req);
      if (basedOn === undefined) return reply.code(428).send({ error: "If-Match with the version this change is based on is required" });
      // A change that could lock people out is published only when its author says so.
      const risks = confirmed ? [] : newDangers(filter, submitted, store.current(filter)?.doc);
      if (risks.length > 0) {
        return reply
          .code(422)
          .send({ error: 'this change could lock people out; send it again with "confirm": true to publish it', needs_confirmation: true, errors: risks });
      }
      try {
        const r = await publish(filter, submitted, author, basedOn, restoredFrom);
        if (!r.version) return reply.code(422).send({ error: "the filter would reject this document", errors: r.errors });
        if (filter === "gray_router") releases.grayEdited(r.doc, author, r.version.version);
        reply.header("etag", etag(r.version.version));
        return summary(filter, r.version);
      } catch (e) {
        if (e instanceof StaleVersion) {
          return reply.code(409).send({ error: `stale: this change is based on version ${basedOn}, but version ${e.current} is current`, current: e.current });
        }
        return unavailable(reply, e);
      }
    };

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

    // API keys: made here, shown once in this answer, kept in the access document only as SHA-256 digests.
    app.post<{ Params: { name: string }; Body: { author?: string } | undefined }>(
      "/api/consumers/:name/keys",
      {
        onRequest: requireToken,
        schema: { params: { type: "object", required: ["name"], properties: { name: { type: "string", pattern: CONSUMER_NAME } } } },
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
          params: {
            type: "object",
            required: ["name", "fingerprint"],
            properties: { name: { type: "string", pattern: CONSUMER_NAME }, fingerprint: { type: "string", pattern: FINGERPRINT } },
          },
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
          params: {
            type: "object",
            required: ["name", "fingerprint"],
            properties: { name: { type: "string", pattern: CONSUMER_NAME }, fingerprint: { type: "string", pattern: FINGERPRINT } },
          },
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
      { onRequest: requireToken, schema: { params: { type: "object", required: ["name"], properties: { name: { type: "string", pattern: CONSUMER_NAME } } } } },
      async (req, reply) => editAccess(req, reply, removeConsumer(accessDoc(), req.params.name), `no consumer '${req.params.name}'`),
    );

    // Signing keys (RFC 9421 hmac-sha256): the secret is shown once in this answer, then kept apart.
    app.post<{ Params: { name: string }; Body: { author?: string } | undefined }>(
      "/api/consumers/:name/signing-keys",
      {
        onRequest: requireToken,
        schema: { params: { type: "object", required: ["name"], properties: { name: { type: "string", pattern: CONSUMER_NAME } } } },
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
          params: {
            type: "object",
            required: ["name", "id"],
            properties: { name: { type: "string", pattern: CONSUMER_NAME }, id: { type: "string", pattern: SIGNING_KEY_ID } },
          },
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

    // The gray targets this gateway routes (what a rule may send requests to), and the catch-all's.
    app.get("/api/targets", async () => {
      const catchAll = routeClusters("\0")["\0"] ?? "stable";
      const targets = [...new Set([...(opts.targets ?? routedTargets()), catchAll])].sort();
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

    const ui = (file: string, type: string) => async (_req: FastifyRequest, reply: FastifyReply) =>
      reply.type(type).send(readFileSync(join(ROOT, "control", "ui", file), "utf8"));
    app.get("/", ui("index.html", "text/html; charset=utf-8"));
    for (const file of ["app.js", "chart.js", "traffic.js"]) app.get(`/${file}`, ui(file, "text/javascript; charset=utf-8"));
    app.get("/style.css", ui("style.css", "text/css; charset=utf-8"));
    app.get("/favicon.svg", ui("favicon.svg", "image/svg+xml"));
    app.get("/favicon.ico", ui("favicon.svg", "image/svg+xml"));

    // Lets the UI check a token at sign-in instead of on the first write.
    app.get("/api/session", { onRequest: requireToken }, async () => ({ ok: true }));
  });

  return app;
}
