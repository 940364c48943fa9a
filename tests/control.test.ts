// graywall-control's API: versions, optimistic concurrency, auth, validation by the filters' own code,
// atomic persistence, and ECDS delivery.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parse, stringify } from "yaml";
import { buildServer } from "../control/server.ts";
import { authorized } from "../control/auth.ts";
import { ROOT } from "../runtime/paths.ts";

const TOKEN = "s3cret-token";

/** A control service for a gateway that routes "canary" and "v2" (a configured target list). */
function fresh(dir = mkdtempSync(join(tmpdir(), "graywall-control-")), retention?: number) {
  const app = buildServer({ dataDir: join(dir, "data"), ecdsDir: join(dir, "ecds"), token: TOKEN, retention, targets: ["canary", "v2"] });
  return { app, dir };
}

const auth = { authorization: `Bearer ${TOKEN}` };
const grayDoc = (target: string) => ({ rules: [{ name: "beta", target, match: { headers: [{ name: "x-group", exact: "beta" }] } }] });

describe("graywall-control API", () => {
  test("reads need no token; every filter starts at version 1 with its shipped document", async () => {
    const { app } = fresh();
    const list = (await app.inject({ url: "/api/filters" })).json();
    assert.deepEqual(list.map((f: any) => f.filter).sort(), ["access", "crawler_score", "gray_router", "ip_list", "rate_limiter"]);
    const r = await app.inject({ url: "/api/filters/gray_router" });
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers.etag, '"1"');
    assert.equal(r.json().doc.rules[0].name, "beta-header");
    assert.equal((await app.inject({ url: "/api/filters/nope" })).statusCode, 400);
  });

  test("writes without the token, or with a wrong one, get 401", async () => {
    const { app } = fresh();
    const put = (headers: Record<string, string>) =>
      app.inject({ method: "PUT", url: "/api/filters/gray_router", headers: { ...headers, "if-match": '"1"' }, payload: { doc: grayDoc("canary") } });
    assert.equal((await put({})).statusCode, 401);
    assert.equal((await put({ authorization: "Bearer wrong" })).statusCode, 401);
    assert.equal((await put({ authorization: TOKEN })).statusCode, 401);
    assert.equal((await put(auth)).statusCode, 200);
    assert.equal(authorized(`Bearer ${TOKEN}x`, TOKEN), false);
  });

  test("an update is a new version with author, time and diff; any version can be read", async () => {
    const { app } = fresh();
    const r = await app.inject({
      method: "PUT",
      url: "/api/filters/gray_router",
      headers: { ...auth, "if-match": '"1"' },
      payload: { doc: grayDoc("v2"), author: "ana" },
    });
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers.etag, '"2"');
    const v = r.json();
    assert.equal(v.version, 2);
    assert.equal(v.author, "ana");
    assert.ok(Date.now() - Date.parse(v.time) < 60000);
    // By meaning: the rule of another name is a new rule, and the old one is gone.
    assert.ok(
      v.changes.some((c: any) => c.kind === "added" && c.path === "rules" && c.item === "beta" && c.after.target === "v2"),
      JSON.stringify(v.changes),
    );
    assert.ok(
      v.changes.some((c: any) => c.kind === "removed" && c.path === "rules" && c.item === "beta-header"),
      JSON.stringify(v.changes),
    );
    const history = (await app.inject({ url: "/api/filters/gray_router/versions" })).json();
    assert.deepEqual(
      history.map((h: any) => h.version),
      [2, 1],
    );
    assert.equal((await app.inject({ url: "/api/filters/gray_router/versions/1" })).json().doc.rules[0].name, "beta-header");
    assert.equal((await app.inject({ url: "/api/filters/gray_router/versions/9" })).statusCode, 404);
  });

  test("a stale If-Match gets 409 and loses nothing; a missing one gets 428", async () => {
    const { app } = fresh();
    const put = (ifMatch: string | undefined, target: string) =>
      app.inject({
        method: "PUT",
        url: "/api/filters/gray_router",
        headers: { ...auth, ...(ifMatch ? { "if-match": ifMatch } : {}) },
        payload: { doc: grayDoc(target) },
      });
    assert.equal((await put('"1"', "v2")).statusCode, 200);
    const stale = await put('"1"', "canary");
    assert.equal(stale.statusCode, 409);
    assert.equal(stale.json().current, 2);
    assert.equal((await app.inject({ url: "/api/filters/gray_router" })).json().doc.rules[0].target, "v2");
    assert.equal((await put(undefined, "canary")).statusCode, 428);
    assert.equal((await app.inject({ url: "/api/filters/gray_router/versions" })).json().length, 2);
  });

  test("validation is the filter's own, with field-level errors; a rejected document changes nothing", async () => {
    const { app, dir } = fresh();
    const bad = { rules: [{ name: "r", target: "canary", match: { client_ip: ["10.0.0.0/40"] } }], colour: "red" };
    const v = await app.inject({ method: "POST", url: "/api/filters/gray_router/validate", payload: { doc: bad } });
    assert.deepEqual(v.json(), {
      ok: false,
      errors: [
        { field: "rules[0].match.client_ip[0]", message: "invalid IP or CIDR '10.0.0.0/40'" },
        { field: "colour", message: "unknown field" },
      ],
      warnings: [],
    });
    const before = readFileSync(join(dir, "ecds", "graywall.ecds.yaml"), "utf8");
    const r = await app.inject({ method: "PUT", url: "/api/filters/gray_router", headers: { ...auth, "if-match": '"1"' }, payload: { doc: bad } });
    assert.equal(r.statusCode, 422);
    assert.equal(r.json().errors.length, 2);
    assert.equal(readFileSync(join(dir, "ecds", "graywall.ecds.yaml"), "utf8"), before);
    assert.equal((await app.inject({ url: "/api/filters/gray_router" })).json().version, 1);
    const rl = await app.inject({
      method: "POST",
      url: "/api/filters/rate_limiter/validate",
      payload: { doc: { rules: [{ name: "a", key: ["ip"], bucket_size: 1 }] } },
    });
    assert.equal(rl.json().errors[0].field, "rules[0].key[0]");
  });

  test("rollback restores an earlier version as a new version", async () => {
    const { app } = fresh();
    await app.inject({ method: "PUT", url: "/api/filters/gray_router", headers: { ...auth, "if-match": '"1"' }, payload: { doc: grayDoc("v2") } });
    const r = await app.inject({ method: "POST", url: "/api/filters/gray_router/rollback", headers: { ...auth, "if-match": '"2"' }, payload: { version: 1 } });
    assert.equal(r.statusCode, 200);
    assert.equal(r.json().version, 3);
    assert.equal(r.json().restoredFrom, 1);
    assert.equal((await app.inject({ url: "/api/filters/gray_router" })).json().doc.rules[0].name, "beta-header");
    const unauth = await app.inject({ method: "POST", url: "/api/filters/gray_router/rollback", headers: { "if-match": '"3"' }, payload: { version: 2 } });
    assert.equal(unauth.statusCode, 401);
  });

  test("a restart keeps every version; a crash mid-write leaves the last whole file", async () => {
    const { app, dir } = fresh();
    await app.inject({ method: "PUT", url: "/api/filters/gray_router", headers: { ...auth, "if-match": '"1"' }, payload: { doc: grayDoc("v2") } });
    await app.close();
    // What a crash between write and rename leaves behind: a half-written temp file.
    writeFileSync(join(dir, "data", "gray_router", ".3.json.99999.tmp"), '{"version": 3, "doc": {"rul');
    const again = fresh(dir).app;
    const history = (await again.inject({ url: "/api/filters/gray_router/versions" })).json();
    assert.deepEqual(
      history.map((h: any) => h.version),
      [2, 1],
    );
    assert.equal((await again.inject({ url: "/api/filters/gray_router" })).json().doc.rules[0].target, "v2");
  });

  test("every accepted change is written, with the other stages' current documents, as the one module's ECDS resource, atomically", async () => {
    const { app, dir } = fresh();
    await app.inject({ method: "PUT", url: "/api/filters/ip_list", headers: { ...auth, "if-match": '"1"' }, payload: { doc: { deny: ["203.0.113.0/24"] } } });
    const files = readdirSync(join(dir, "ecds"));
    assert.deepEqual(files, ["graywall.ecds.yaml"]);
    const res = parse(readFileSync(join(dir, "ecds", "graywall.ecds.yaml"), "utf8")).resources[0];
    assert.equal(res.name, "graywall");
    assert.equal(res.typed_config.config.root_id, "graywall");
    const sections = JSON.parse(res.typed_config.config.configuration.value);
    assert.deepEqual(Object.keys(sections), ["access", "ip_list", "crawler_score", "rate_limiter", "gray_router"]);
    assert.deepEqual(sections.ip_list, { deny: ["203.0.113.0/24"] });
    const shipped = JSON.parse(readFileSync(join(ROOT, "config", "filters", "gray_router.json"), "utf8"));
    assert.deepEqual(sections.gray_router, shipped);
    assert.ok(existsSync(res.typed_config.config.vm_config.code.local.filename));
  });

  test("a long ip list is delivered packed while the document keeps it as written; a packed field in a document is refused", async () => {
    const { app, dir } = fresh();
    const deny = Array.from({ length: 1500 }, (_, i) => `198.${(i >> 8) & 255}.${i & 255}.0/24`);
    const put = await app.inject({ method: "PUT", url: "/api/filters/ip_list", headers: { ...auth, "if-match": '"1"' }, payload: { doc: { deny } } });
    assert.equal(put.statusCode, 200, put.body);
    assert.deepEqual((await app.inject({ url: "/api/filters/ip_list" })).json().doc.deny, deny);
    const res = parse(readFileSync(join(dir, "ecds", "graywall.ecds.yaml"), "utf8")).resources[0];
    const delivered = JSON.parse(res.typed_config.config.configuration.value).ip_list;
    assert.deepEqual(Object.keys(delivered), ["deny_packed"]);
    // A packed 0.0.0.0/0 would skip the lock-out check (and no one could read the document): refused.
    const sneaky = await app.inject({
      method: "PUT",
      url: "/api/filters/ip_list",
      headers: { ...auth, "if-match": '"2"' },
      payload: { doc: { deny_packed: "AQAA" } },
    });
    assert.equal(sneaky.statusCode, 422, sneaky.body);
    assert.equal(sneaky.json().errors[0].field, "deny_packed");
    assert.match(sneaky.json().errors[0].message, /give the list as 'deny'/);
  });

  test("the gateway's Envoy config is the service's own setting: its filter template, routes and targets, not the shipped file's", async () => {
    const dir = mkdtempSync(join(tmpdir(), "graywall-control-"));
    // A gateway of its own: a third routed target, "blue", and its own VM id.
    const cfg = parse(readFileSync(join(ROOT, "envoy", "envoy.yaml"), "utf8"));
    const vhost = cfg.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0];
    vhost.routes.unshift({ match: { prefix: "/", headers: [{ name: "x-graywall-target", string_match: { exact: "blue" } }] }, route: { cluster: "stable" } });
    const filter = cfg.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters.find((f: { name: string }) => f.name === "graywall");
    filter.typed_config.config.vm_config.vm_id = "our-gateway";
    const envoyYaml = join(dir, "gateway.yaml");
    writeFileSync(envoyYaml, stringify(cfg));
    const app = buildServer({ dataDir: join(dir, "data"), ecdsDir: join(dir, "ecds"), token: TOKEN, envoyYaml });
    try {
      assert.deepEqual((await app.inject({ url: "/api/targets" })).json(), { targets: ["blue", "canary", "stable"], default: "stable" });
      const put = await app.inject({
        method: "PUT",
        url: "/api/filters/gray_router",
        headers: { ...auth, "if-match": '"1"' },
        payload: { doc: { rules: [{ name: "b", target: "blue", match: {} }] } },
      });
      assert.equal(put.statusCode, 200, put.body);
      assert.match(readFileSync(join(dir, "ecds", "graywall.ecds.yaml"), "utf8"), /vm_id: our-gateway/);
    } finally {
      await app.close();
    }
    // The shipped file knows no "blue".
    const other = mkdtempSync(join(tmpdir(), "graywall-control-"));
    const shipped = buildServer({ dataDir: join(other, "data"), ecdsDir: join(other, "ecds"), token: TOKEN });
    const r = await shipped.inject({
      method: "POST",
      url: "/api/filters/gray_router/validate",
      payload: { doc: { rules: [{ name: "b", target: "blue", match: {} }] } },
    });
    assert.match(r.body, /no route serves target 'blue'/);
    await shipped.close();
  });

  test("serves an OpenAPI document generated from the routes: every API route in it, with a summary, and bearer security where the token is checked", async () => {
    const { app } = fresh();
    const routes: { method: string; url: string }[] = [];
    app.addHook("onRoute", (r) => {
      for (const m of [r.method].flat()) if (m !== "HEAD") routes.push({ method: m, url: r.url });
    });
    const doc = (await app.inject({ url: "/openapi.json" })).json();
    assert.equal(doc.openapi, "3.0.3");
    const api = routes.filter((r) => r.url.startsWith("/api/") || r.url.startsWith("/.well-known/"));
    assert.ok(api.length >= 30, `${api.length} API routes`);
    for (const r of api) {
      const op = doc.paths[r.url.replace(/:(\w+)/g, "{$1}")]?.[r.method.toLowerCase()];
      assert.ok(op, `${r.method} ${r.url} is in the OpenAPI document`);
      assert.ok(op.summary, `${r.method} ${r.url} has a summary`);
    }
    assert.deepEqual(doc.paths["/api/filters/{filter}"].put.security, [{ bearer: [] }]);
    assert.equal(doc.paths["/api/filters/{filter}"].get.security, undefined);
    // Its parameters come from the route's own schema: the versions page's query.
    const q = doc.paths["/api/filters/{filter}/versions"].get.parameters.filter((p: { in: string }) => p.in === "query").map((p: { name: string }) => p.name);
    assert.deepEqual(q.sort(), ["before", "changes", "limit"]);
    assert.equal(doc.paths["/app.js"], undefined, "the UI's files are not API");
    const ui = await app.inject({ url: "/" });
    assert.match(ui.headers["content-type"] as string, /text\/html/);
    assert.match(ui.body, /Gray release rules/);
  });

  test("the preview answers with the filter's own matcher", async () => {
    const { app } = fresh();
    const doc = { default_target: "stable", rules: [{ name: "gold", target: "canary", match: { body: [{ path: "user.tier", exact: "gold" }] } }] };
    const ask = async (request: unknown) => (await app.inject({ method: "POST", url: "/api/preview", payload: { doc, request } })).json();
    assert.deepEqual(await ask({ body: '{"user": {"tier": "gold"}}' }), { target: "canary", rule: "gold" });
    assert.deepEqual(await ask({ body: "not json" }), { target: "stable", rule: null });
    assert.match((await ask({ ip: "999.1.1.1" })).error, /invalid address/);
    // A rule for chosen consumers (the access stage's): previewed as that consumer.
    const merchants = { rules: [{ name: "pilot", target: "canary", match: { consumers: ["merchant-7"] } }] };
    const asConsumer = async (consumer?: string) =>
      (await app.inject({ method: "POST", url: "/api/preview", payload: { doc: merchants, request: consumer ? { consumer } : {} } })).json();
    assert.deepEqual(await asConsumer("merchant-7"), { target: "canary", rule: "pilot" });
    assert.deepEqual(await asConsumer("merchant-8"), { target: "stable", rule: null });
    assert.deepEqual(await asConsumer(), { target: "stable", rule: null });
  });

  test("hostile input: unknown fields, deep nesting and oversized open bodies get 400/413; nothing is published", async () => {
    const { app } = fresh();
    const put = (payload: unknown) =>
      app.inject({ method: "PUT", url: "/api/filters/gray_router", headers: { ...auth, "if-match": '"1"' }, payload: payload as object });
    const dry = await put({ doc: grayDoc("canary"), dryRun: true });
    assert.equal(dry.statusCode, 400);
    assert.match(dry.json().message, /additional properties/);
    assert.equal((await app.inject({ url: "/api/filters/gray_router" })).json().version, 1);
    // As a client would send it: 10,000 levels of JSON text (JSON.stringify itself fails on such a value).
    const deep = `${'{"a":'.repeat(10_000)}{}${"}".repeat(10_000)}`;
    for (const [method, url, body] of [
      ["PUT", "/api/filters/gray_router", `{"doc":${deep}}`],
      ["POST", "/api/filters/gray_router/validate", `{"doc":${deep}}`],
      ["POST", "/api/preview", `{"request":${deep}}`],
    ] as const) {
      const r = await app.inject({ method, url, headers: { ...auth, "if-match": '"1"', "content-type": "application/json" }, payload: body });
      assert.equal(r.statusCode, 400, `${url}: ${r.body}`);
      assert.match(r.json().error, /nested deeper than 64 levels/);
    }
    const big = { doc: { deny: Array.from({ length: 300_000 }, (_, i) => `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`) } };
    assert.equal((await app.inject({ method: "POST", url: "/api/filters/ip_list/validate", payload: big })).statusCode, 413);
    assert.equal((await app.inject({ method: "POST", url: "/api/preview", payload: { request: { path: "x".repeat(300_000) } } })).statusCode, 413);
    assert.equal((await app.inject({ method: "POST", url: "/api/preview", payload: { request: {}, extra: 1 } })).statusCode, 400);
  });

  test("a change that changes nothing, or a rollback to the current document, adds no version", async () => {
    const { app } = fresh();
    const shipped = (await app.inject({ url: "/api/filters/gray_router" })).json().doc;
    const same = await app.inject({ method: "PUT", url: "/api/filters/gray_router", headers: { ...auth, "if-match": '"1"' }, payload: { doc: shipped } });
    assert.equal(same.statusCode, 200);
    assert.equal(same.json().version, 1);
    const back = await app.inject({
      method: "POST",
      url: "/api/filters/gray_router/rollback",
      headers: { ...auth, "if-match": '"1"' },
      payload: { version: 1 },
    });
    assert.equal(back.json().version, 1);
    assert.equal((await app.inject({ url: "/api/filters/gray_router/versions" })).json().length, 1);
  });

  test("history is one file per version with bounded retention: writes and restarts do not grow with it", async () => {
    const { app, dir } = fresh(undefined, 20);
    // 2 MB documents: one history file holding them all would pass 200 MB.
    const pad = "x".repeat(2 * 1024 * 1024);
    for (let v = 1; v <= 100; v++) {
      const doc = { rules: [{ name: `r${v}`, target: "canary", match: { headers: [{ name: "x-pad", exact: pad }] } }] };
      const r = await app.inject({ method: "PUT", url: "/api/filters/gray_router", headers: { ...auth, "if-match": `"${v}"` }, payload: { doc } });
      assert.equal(r.statusCode, 200, r.body);
    }
    const files = readdirSync(join(dir, "data", "gray_router"));
    assert.deepEqual(files.length, 20);
    const history = (await app.inject({ url: "/api/filters/gray_router/versions" })).json();
    assert.deepEqual(
      history.map((h: any) => h.version),
      Array.from({ length: 20 }, (_, i) => 101 - i),
    );
    await app.close();
    const again = fresh(dir, 20).app;
    assert.equal((await again.inject({ url: "/api/filters/gray_router" })).json().version, 101);
    assert.equal((await again.inject({ url: "/api/filters/gray_router/versions/50" })).statusCode, 404);
  });

  test("a history file of an earlier release is split into version files once", async () => {
    const dir = mkdtempSync(join(tmpdir(), "graywall-control-"));
    const old = [1, 2, 3].map((version) => ({ version, author: "old", time: "2026-11-01T00:00:00.000Z", doc: grayDoc(`t${version}`), diff: [] }));
    mkdirSync(join(dir, "data"), { recursive: true });
    writeFileSync(join(dir, "data", "gray_router.versions.json"), JSON.stringify(old));
    const { app } = fresh(dir);
    assert.equal((await app.inject({ url: "/api/filters/gray_router" })).json().doc.rules[0].target, "t3");
    assert.equal((await app.inject({ url: "/api/filters/gray_router/versions" })).json().length, 3);
  });

  test("a gray rule whose target no route serves is refused, naming the targets the gateway routes", async () => {
    // No target list given: the targets come from envoy/envoy.yaml's route table.
    const dir = mkdtempSync(join(tmpdir(), "graywall-control-"));
    const app = buildServer({ dataDir: join(dir, "data"), ecdsDir: join(dir, "ecds"), token: TOKEN });
    const put = (target: string) =>
      app.inject({ method: "PUT", url: "/api/filters/gray_router", headers: { ...auth, "if-match": '"1"' }, payload: { doc: grayDoc(target) } });
    const typo = await put("canry");
    assert.equal(typo.statusCode, 422);
    assert.deepEqual(typo.json().errors, [{ field: "rules[0].target", message: "no route serves target 'canry'; the gateway routes: canary, stable" }]);
    assert.equal((await put("Canary")).statusCode, 200, "targets are case-insensitive");
    const v2 = await fresh().app.inject({ method: "POST", url: "/api/filters/gray_router/validate", payload: { doc: grayDoc("v2") } });
    assert.deepEqual(v2.json(), { ok: true, errors: [], warnings: [] });
  });

  test("a percentage rule's salt is fixed when first saved, so renaming the rule keeps its users", async () => {
    const { app } = fresh();
    const rule = (name: string, salt?: string) => ({
      rules: [{ name, target: "canary", match: { percentage: { value: 20, hash_on: "header", name: "x-user-id", ...(salt ? { salt } : {}) } } }],
    });
    const canaryUsers = async () => {
      const doc = (await app.inject({ url: "/api/filters/gray_router" })).json().doc;
      const out: string[] = [];
      for (let i = 0; i < 400; i++) {
        // With the token: 400 previews are past an open caller's per-minute limit.
        const r = await app.inject({
          method: "POST",
          url: "/api/preview",
          headers: auth,
          payload: { doc, request: { headers: { "x-user-id": `user-${i}` } } },
        });
        if (r.json().target === "canary") out.push(`user-${i}`);
      }
      return out;
    };
    const put = async (doc: unknown, version: number) =>
      (await app.inject({ method: "PUT", url: "/api/filters/gray_router", headers: { ...auth, "if-match": `"${version}"` }, payload: { doc } })).json();
    assert.equal((await put(rule("20% of users"), 1)).version, 2);
    const stored = (await app.inject({ url: "/api/filters/gray_router" })).json().doc;
    const salt = stored.rules[0].match.percentage.salt;
    assert.equal(salt, "20% of users");
    const before = await canaryUsers();
    assert.ok(before.length > 50 && before.length < 110, `${before.length} of 400`);
    // A rename as the UI sends it (the document read back, salt included) moves nobody.
    await put({ rules: [{ ...stored.rules[0], name: "beta share" }] }, 2);
    assert.deepEqual(await canaryUsers(), before);
    // Sent again without its salt, a rule keeps the salt in force under its name.
    await put(rule("beta share"), 3);
    assert.equal((await app.inject({ url: "/api/filters/gray_router" })).json().doc.rules[0].match.percentage.salt, salt);
  });

  test("the bearer scheme is case-insensitive", async () => {
    assert.equal(authorized(`bearer ${TOKEN}`, TOKEN), true);
    assert.equal(authorized(`BEARER  ${TOKEN}`, TOKEN), true);
    assert.equal(authorized(`Basic ${TOKEN}`, TOKEN), false);
    assert.equal(authorized(`bearer x${TOKEN}`, TOKEN), false);
  });

  test("a release is refused with field errors: bad steps, an unrouted target, unknown fields, no token", async () => {
    const { app } = fresh();
    const post = (payload: object, headers: Record<string, string> = auth) => app.inject({ method: "POST", url: "/api/releases", headers, payload });
    assert.equal((await post({ target: "canary", hash_on: "cookie", name: "uid" }, {})).statusCode, 401);
    const steps = await post({ target: "canary", steps: [50, 20], hash_on: "cookie" });
    assert.equal(steps.statusCode, 422);
    assert.deepEqual(
      steps.json().errors.map((e: { field: string }) => e.field),
      ["steps", "name"],
    );
    const unrouted = await post({ target: "canry", hash_on: "cookie", name: "uid" });
    assert.equal(unrouted.statusCode, 422);
    assert.match(unrouted.json().error, /rules\[0\]\.target: no route serves target 'canry'/);
    assert.equal((await post({ target: "canary", hash_on: "cookie", name: "uid", speed: "fast" })).statusCode, 400);
    assert.equal((await post({ target: "canary", hash_on: "cookie", name: "uid", limits: { max_error_rate_increase: 2 } })).statusCode, 422);
    // Nothing was published by the refused ones.
    assert.equal((await app.inject({ method: "GET", url: "/api/filters/gray_router" })).json().version, 1);
    assert.deepEqual((await app.inject({ method: "GET", url: "/api/releases" })).json(), []);
  });
  test("a release whose Envoy admin cannot be reached waits, saying why, and neither advances nor rolls back", async () => {
    const dir = mkdtempSync(join(tmpdir(), "graywall-control-"));
    const app = buildServer({ dataDir: join(dir, "data"), ecdsDir: join(dir, "ecds"), token: TOKEN, envoyAdmin: "http://127.0.0.1:9", targets: ["canary"] });
    try {
      const r = await app.inject({
        method: "POST",
        url: "/api/releases",
        headers: auth,
        payload: { target: "canary", hash_on: "header", name: "x-user", interval_seconds: 0.2, hold_seconds: 0 },
      });
      assert.equal(r.statusCode, 201, r.body);
      const id = r.json().id;
      let got: { status: string; share: number; samples: { verdict: string; reason: string }[] } = r.json();
      for (let i = 0; i < 100 && got.samples.length < 3; i++) {
        await new Promise((res) => setTimeout(res, 50));
        got = (await app.inject({ method: "GET", url: `/api/releases/${id}` })).json();
      }
      assert.ok(got.samples.length >= 3);
      assert.ok(got.samples.every((s) => s.verdict === "waiting" && /^no numbers from Envoy: /.test(s.reason)));
      assert.equal(got.status, "running");
      assert.equal(got.share, 1);
    } finally {
      await app.close();
    }
  });
});
