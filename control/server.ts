// graywall-control: the rules API, the web UI, and hot delivery of rule documents into Envoy.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import rateLimit from "@fastify/rate-limit";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { ROOT } from "../runtime/paths.ts";
import { Alerts, type AlertSettings } from "./alerts.ts";
import { StatsPoller } from "./gateway_stats.ts";
import { Traffic } from "./traffic.ts";
import { authorized } from "./auth.ts";
import { Delivery } from "./delivery.ts";
import { StaleVersion, Store, type Version, type VersionSummary } from "./store.ts";
import { describeRoute, OPENAPI } from "./openapi.ts";
import swagger from "@fastify/swagger";
import { listenersNotAppendingXff, routeClusters, unroutedTargets } from "./targets.ts";
import { EcdsServer } from "./xds.ts";
import { Releases } from "./releases.ts";
import { SECRET_PATHS, SecretError, Secrets, secretPathForm } from "./secrets.ts";
import { TokenKeys } from "./tokens.ts";
import { newDangers } from "./dangers.ts";
import { Validator, ValidatorBusy, ValidatorUnavailable, type ValidatorLimits } from "./validation/validator.ts";
import { etag, ifMatch, NAMES, WRITE_BODY_LIMIT } from "./routes/common.ts";
import { consumerRoutes } from "./routes/consumers.ts";
import { crawlerRoutes } from "./routes/crawler.ts";
import { filterRoutes } from "./routes/filters.ts";
import { observeRoutes } from "./routes/observe.ts";
import { releaseRoutes } from "./routes/releases.ts";
import { uiRoutes } from "./routes/ui.ts";

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
  /**
   * The gateway's Envoy config (GRAYWALL_ENVOY_CONFIG; default: the shipped envoy/envoy.yaml): its
   * graywall filter is the template of what is delivered, its routes say which targets exist and which
   * clusters serve them, and `client_address: "envoy_xff"` is checked against its listeners.
   */
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

/** What publishing a document gave: the new version and the stored document, or field errors. */
export type Published = { version?: Version; doc?: unknown; errors?: { field: string; message: string }[] };

/** What the route modules (control/routes/) use: the service's parts and the helpers they share. */
export interface Service {
  opts: ControlOptions;
  store: Store;
  secrets: Secrets;
  tokenKeys: TokenKeys;
  validator: Validator;
  delivery: Delivery;
  xds: EcdsServer | undefined;
  releases: Releases;
  traffic: Traffic;
  alerts: Alerts;
  publish: (filter: string, submitted: unknown, author: string, basedOn: number, restoredFrom?: number, trusted?: boolean) => Promise<Published>;
  publishGray: (submitted: unknown, author: string, removal: boolean) => Promise<number>;
  requireToken: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
  validate: (filter: string, doc: unknown, open?: boolean) => Promise<{ field: string; message: string }[]>;
  unavailable: (reply: FastifyReply, e: unknown) => FastifyReply;
  summary: (filter: string, v: VersionSummary, withChanges?: boolean) => object;
  shown: (filter: string, doc: unknown) => unknown;
  openLimit: { max: number; timeWindow: number };
  change: (
    reply: FastifyReply,
    filter: string,
    req: FastifyRequest,
    submitted: unknown,
    author: string,
    restoredFrom: number | undefined,
    confirmed: boolean,
  ) => Promise<unknown>;
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
  const delivery = new Delivery({ ecdsDir: opts.ecdsDir, wasmDir: opts.wasmDir, ratelimitDir: opts.ratelimitDir, xds, envoyYaml: opts.envoyYaml });
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
  const publish = async (filter: string, submitted: unknown, author: string, basedOn: number, restoredFrom?: number, trusted = false): Promise<Published> => {
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
    if (!r.version) throw new Error((r.errors ?? []).map((e) => `${e.field}: ${e.message}`).join("; "));
    return r.version.version;
  };
  const routed = routeClusters(undefined, undefined, opts.envoyYaml);
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
    if (errors.length === 0 && filter === "gray_router") errors.push(...unroutedTargets(doc, opts.targets, opts.envoyYaml));
    // Documents keep their lists as people wrote them (readable, diffed by entry, checked for lock-outs);
    // the packed form is only how long lists are delivered to Envoy.
    if (filter === "ip_list" && doc && typeof doc === "object") {
      for (const key of ["allow_packed", "deny_packed"]) {
        if (key in doc)
          errors.push({
            field: key,
            message: `is how graywall-control delivers a long list to Envoy; give the list as '${key.replace("_packed", "")}' (an array of addresses and CIDRs)`,
          });
      }
    }
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

  // The one helper every writing route shares: a new version of a document, published.
  const change: Service["change"] = async (reply, filter, req, submitted, author, restoredFrom, confirmed) => {
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

  const service: Service = {
    opts,
    store,
    secrets,
    tokenKeys,
    validator,
    delivery,
    xds,
    releases,
    traffic,
    alerts,
    publish,
    publishGray,
    requireToken,
    validate,
    unavailable,
    summary,
    shown,
    openLimit,
    change,
  };

  // The routes load after the rate limiter, so its per-route limits apply to them; one module per area.
  void app.register(async (app) => {
    filterRoutes(app, service);
    crawlerRoutes(app, service);
    consumerRoutes(app, service);
    releaseRoutes(app, service);
    observeRoutes(app, service);
    uiRoutes(app, service);
  });

  return app;
}
