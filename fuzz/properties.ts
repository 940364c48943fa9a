// Fuzzing and property tests of Graywall's invariants, driven by fast-check from the committed corpus
// (fuzz/corpus/): mutated and random rule documents through every filter compiler, mutated and random
// requests through the real module (build/graywall.wasm on the host emulator), buckets across two
// workers, and the control service's "a rejected document never changes the one in force".
// tests/fuzz.test.ts runs each for a bounded number of runs; `npm run fuzz -- --runs N` runs them longer
// (fuzz/README.md has the last long run's result).
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { buildServer } from "../control/server.ts";
import { type Bindings, loadBindings } from "../runtime/bindings.ts";
import { ROOT, wasmPath } from "../runtime/paths.ts";
import { type Exchange, ProxyHost, type RequestSpec, SharedData } from "../tests/support/proxy_host.ts";

const CORPUS = join(ROOT, "fuzz", "corpus");
const corpus = (kind: string) => readdirSync(join(CORPUS, kind)).map((f) => JSON.parse(readFileSync(join(CORPUS, kind, f), "utf8")));
export const FILTERS = ["ip_list", "crawler_score", "rate_limiter", "gray_router", "graywall"] as const;

// ---- documents ----

/** Values that have broken parsers and compilers elsewhere: bounds, types, sizes, addresses, paths. */
const NASTY = fc.constantFrom<unknown>(
  0,
  -1,
  1e308,
  -1e308,
  2 ** 31,
  2 ** 53 + 1,
  0.5,
  "",
  "/",
  "0.0.0.0/0",
  "::/0",
  "10.0.0.0/40",
  "::ffff:1.2.3.4",
  "x".repeat(5000),
  "\u0000",
  "é😀",
  true,
  null,
  [],
  {},
  [[[[[]]]]],
  { a: { b: { c: {} } } },
  ["client_ip", "header:x", "path", "route", "method", "cookie:x"],
);
const value = fc.oneof(NASTY, fc.jsonValue({ maxDepth: 3 }));

/** A document with one change at a random place: a value replaced, a key added or removed. */
function mutate(doc: unknown, picks: number[], replacement: unknown, newKey: string): unknown {
  const out = structuredClone(doc);
  let node: unknown = out;
  for (let i = 0; i < picks.length; i++) {
    if (node === null || typeof node !== "object") break;
    const keys = Object.keys(node as object);
    if (keys.length === 0) break;
    const k = keys[picks[i] % keys.length];
    const child = (node as Record<string, unknown>)[k];
    const last = i === picks.length - 1 || child === null || typeof child !== "object";
    if (last) {
      const p = picks[i] % 3;
      if (p === 0) (node as Record<string, unknown>)[k] = replacement;
      else if (p === 1 && !Array.isArray(node)) delete (node as Record<string, unknown>)[k];
      else if (Array.isArray(node)) node.push(replacement);
      else (node as Record<string, unknown>)[newKey] = replacement;
      break;
    }
    node = child;
  }
  return out;
}

const FIELD_NAMES = fc.constantFrom(
  "rules",
  "name",
  "target",
  "match",
  "headers",
  "cookies",
  "query",
  "body",
  "path",
  "percentage",
  "value",
  "hash_on",
  "salt",
  "client_ip",
  "allow",
  "deny",
  "allow_packed",
  "deny_packed",
  "paths",
  "key",
  "bucket_size",
  "refill_tokens",
  "refill_interval_ms",
  "max_keys",
  "scope",
  "unit",
  "requests_per_unit",
  "honeypot_paths",
  "thresholds",
  "challenge",
  "secret",
  "client_id",
  "max_clients",
  "exact",
  "prefix",
  "one_of",
  "present",
);

/** Documents: a corpus document mutated (up to three times), or random JSON, or random text. */
export const documents = (() => {
  const seeds = corpus("config");
  const mutated = fc
    .tuple(
      fc.constantFrom(...seeds),
      fc.array(fc.tuple(fc.array(fc.nat(), { minLength: 1, maxLength: 6 }), value, FIELD_NAMES), { minLength: 1, maxLength: 3 }),
    )
    .map(([seed, changes]) => changes.reduce((d, [picks, v, k]) => mutate(d, picks, v, k), seed as unknown))
    .map((d) => JSON.stringify(d));
  return fc.oneof(
    { weight: 6, arbitrary: mutated },
    { weight: 1, arbitrary: fc.json({ maxDepth: 4 }) },
    { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
  );
})();

let bindings: Bindings | undefined;
const FIELD_ERROR = /^[^\n]*: ./;

/**
 * Every compiler answers every document with "" or field errors (never an abort or trap), and a document
 * the compiler accepts is one the real module configures with.
 */
export function compilersProperty(numRuns: number, seed?: number): { accepted: number; refused: number } {
  const seen = { accepted: 0, refused: 0 };
  bindings ??= loadBindings();
  const b = bindings;
  const hostFor = hostsByFilter();
  fc.assert(
    fc.property(fc.constantFrom(...FILTERS), documents, (filter, text) => {
      if (checkDocument(b, hostFor, filter, text)) seen.accepted++;
      else seen.refused++;
    }),
    { numRuns, seed },
  );
  return seen;
}

/** A host per filter, configured again with each accepted document (as Envoy does on each ECDS update). */
export function hostsByFilter(code: (filter: string) => string | Uint8Array<ArrayBuffer> = wasmPath, env: Record<string, CallableFunction> = {}) {
  const hosts = new Map<string, ProxyHost>();
  return (filter: string): ProxyHost => {
    const known = hosts.get(filter);
    if (known) return known;
    const host = new ProxyHost(code(filter), filter, undefined, env);
    hosts.set(filter, host);
    return host;
  };
}

/**
 * The compilers' invariant for one document: "" or field errors, never an abort or trap (those throw),
 * and an accepted document is one the real module configures with. Returns whether it was accepted.
 */
export function checkDocument(b: Bindings, hostFor: (filter: string) => ProxyHost, filter: string, text: string): boolean {
  const errors = b.validateFilterConfig(filter, text);
  if (errors !== "" && !errors.split("\n").every((l) => FIELD_ERROR.test(l))) throw new Error(`not field errors: ${errors.slice(0, 300)}`);
  if (errors !== "") return false;
  const host = hostFor(filter);
  if (!host.configure(text)) throw new Error(`the compiler accepted a document the module refuses: ${host.logs.slice(-2).join(" ")}`);
  return true;
}

// ---- requests ----

/** Header names the request fuzzers add (the coverage-guided targets pick from the same list). */
export const FUZZ_HEADER_NAMES = [
  "user-agent",
  "accept",
  "accept-language",
  "accept-encoding",
  "cookie",
  "x-forwarded-for",
  "x-real-ip",
  "content-type",
  "content-length",
  "x-group",
  "x-api-key",
  "sec-fetch-mode",
  "sec-fetch-dest",
  "sec-ch-ua",
  "x-graywall-rl-rule-0",
  "x-graywall-rl-key-0",
  "x-graywall-target",
  "x-bot-signals",
  "x-routed-to",
];
const HEADER_NAMES = fc.constantFrom(...FUZZ_HEADER_NAMES);
const headerValue = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.constantFrom("", " ", "a=b; c=d", "ab=beta; uid=x", "=;=;;", "10.1.2.3, 203.0.113.9", "1.2.3.4,,, ::1", "unknown", "x".repeat(3000), "application/json"),
);
const PATHS = fc.constantFrom("/", "/api/orders", "/item/1002", "/.env", "/wp-admin/x", "/admin", "/a?v=2&v=3", "/%00%ff", "/product/shoes?v=2#f", "?", "//");
const PEERS = fc.oneof(
  fc.ipV4().map((ip) => `${ip}:4000`),
  fc.ipV6().map((ip) => `[${ip}]:4000`),
  fc.constantFrom("198.51.100.7:5000", "203.0.113.9:1", "10.0.0.1:80", "[2001:db8::1]:443", "[fd00::5]:1", "[::1]:2", "not-an-address", ""),
);
const BODIES = fc.oneof(
  fc.constant(undefined),
  fc.json({ maxDepth: 4 }),
  fc.string({ maxLength: 300 }),
  fc.constant('{"user": {"tier": "free", "tier": "gold"}}'),
);

/** Requests: a corpus request with headers added, or one built from scratch. */
export const requests: fc.Arbitrary<RequestSpec> = (() => {
  const seeds = corpus("request") as RequestSpec[];
  const extra = fc.array(fc.tuple(HEADER_NAMES, headerValue), { maxLength: 12 });
  const fromSeed = fc.tuple(fc.constantFrom(...seeds), extra, fc.option(PATHS)).map(([s, more, path]) => ({
    ...s,
    headers: [...s.headers.map(([k, v]) => [k, k === ":path" && path ? path : v] as [string, string]), ...more],
  }));
  const scratch = fc
    .tuple(fc.constantFrom("GET", "POST", "HEAD", "PUT", "OPTIONS", "X"), PATHS, extra, PEERS, BODIES)
    .map(([method, path, more, peer, body]) => ({
      peer,
      body,
      headers: [[":method", method], [":path", path], [":authority", "shop.example"], ...more] as [string, string][],
    }));
  return fc.oneof(fromSeed, scratch);
})();

/** Every request through all four stages ends in a pass or a local reply: no trap, no exit, no forged hand-off upstream. */
export function requestPathProperty(numRuns: number, seed?: number): Record<string, number> {
  const outcomes: Record<string, number> = {};
  const config = requestPathConfig();
  const host = new ProxyHost(wasmPath("graywall"), "graywall");
  if (!host.configure(config)) throw new Error(`the corpus config is refused: ${host.logs.join(" ")}`);
  let n = 0;
  fc.assert(
    fc.property(requests, (req) => {
      // Time moves, and the tick runs, as in Envoy.
      host.nowMs += 7;
      if (++n % 50 === 0) host.tick();
      const outcome = checkExchange(req, host.request(req));
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    }),
    { numRuns, seed },
  );
  return outcomes;
}

/** The corpus document the request fuzzers configure all four stages with. */
export const requestPathConfig = () => JSON.stringify(corpus("config").find((d) => d.gray_router && d.ip_list));

/**
 * The request path's invariant for one exchange: a pass or a local reply with a real status; nothing a
 * client sent as a hand-off header reaches the upstream; routing only to known targets. Returns the
 * outcome ("passed" or the reply's status).
 */
export function checkExchange(req: RequestSpec, ex: Exchange): string {
  if (ex.reply && !(ex.reply.status >= 200 && ex.reply.status < 600)) throw new Error(`reply status ${ex.reply.status}`);
  if (!ex.reply) {
    const forged = ex.upstreamHeaders.filter(([k, v]) => k.startsWith("x-graywall-rl-") && (v === "forged" || v === "api"));
    const sentByClient = req.headers.filter(([k]) => k.startsWith("x-graywall-rl-"));
    if (forged.length > 0 && sentByClient.some(([k, v]) => forged.some(([fk, fv]) => fk === k && fv === v))) {
      throw new Error(`a client's hand-off header reached the upstream: ${JSON.stringify(forged)}`);
    }
    const target = ex.upstreamHeaders.filter(([k]) => k === "x-graywall-target").map(([, v]) => v);
    if (target.some((t) => t !== "canary" && t !== "stable")) throw new Error(`routed to ${target}`);
  }
  return ex.reply ? String(ex.reply.status) : "passed";
}

// ---- buckets across workers ----

/** A bucket never admits more than its size across two workers, whatever the order, and (up to 1,071 tokens) exactly its size. */
export function bucketProperty(numRuns: number, seed?: number): void {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 300 }),
      fc.integer({ min: 1, max: 64 }),
      fc.array(fc.boolean(), { minLength: 1, maxLength: 700 }),
      (size, lease, order) => {
        const shared = new SharedData();
        const config = JSON.stringify({
          rate_limiter: { worker_lease: lease, rules: [{ name: "b", key: ["client_ip"], bucket_size: size, refill_tokens: 1, refill_interval_ms: 3_600_000 }] },
        });
        const workers = [new ProxyHost(wasmPath("graywall"), "graywall", shared), new ProxyHost(wasmPath("graywall"), "graywall", shared)];
        for (const w of workers) if (!w.configure(config)) throw new Error(w.logs.join(" "));
        let admitted = 0;
        for (const second of order) {
          const ex = workers[second ? 1 : 0].request({
            headers: [
              [":method", "GET"],
              [":path", "/"],
              [":authority", "x"],
            ],
          });
          if (!ex.reply) admitted++;
        }
        if (admitted !== Math.min(size, order.length)) throw new Error(`bucket of ${size} (lease ${lease}) admitted ${admitted} of ${order.length}`);
      },
    ),
    { numRuns, seed },
  );
}

// ---- the control service ----

/** A document the control service rejects never changes the version in force, nor what Envoy is given. */
export async function rejectedNeverAppliesProperty(numRuns: number, seed?: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "graywall-fuzz-"));
  const app = buildServer({ dataDir: join(dir, "data"), ecdsDir: join(dir, "ecds"), token: "t", openRateLimit: 1e9 });
  const ecds = () => readFileSync(join(dir, "ecds", "graywall.ecds.yaml"), "utf8");
  try {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom("ip_list", "crawler_score", "rate_limiter", "gray_router"), documents, async (filter, text) => {
        let doc: unknown;
        try {
          doc = JSON.parse(text);
        } catch {
          return;
        }
        const before = (await app.inject({ url: `/api/filters/${filter}` })).json();
        const delivered = ecds();
        const r = await app.inject({
          method: "PUT",
          url: `/api/filters/${filter}`,
          headers: { authorization: "Bearer t", "if-match": `"${before.version}"` },
          payload: { doc, author: "fuzz" },
        });
        if (r.statusCode >= 500) throw new Error(`${r.statusCode}: ${r.body.slice(0, 300)}`);
        if (r.statusCode !== 200) {
          const after = (await app.inject({ url: `/api/filters/${filter}` })).json();
          if (after.version !== before.version || JSON.stringify(after.doc) !== JSON.stringify(before.doc))
            throw new Error("a rejected document changed the one in force");
          if (ecds() !== delivered) throw new Error("a rejected document reached Envoy");
        }
      }),
      { numRuns, seed },
    );
  } finally {
    await app.close();
  }
}
