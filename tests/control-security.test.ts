// graywall-control against whoever can reach it: what an unauthenticated caller can and cannot do, where
// secrets go, and what a broken validator still lets an operator do (issue "Safe against whoever can
// reach it"). Each test fails on the service as it was before these defences.
import assert from "node:assert/strict";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { mkdtempSync } from "node:fs";
import { parse } from "yaml";
import { buildServer } from "../control/server.ts";
import { ROOT } from "../runtime/paths.ts";
import { MAX_OPEN_WAITING, Validator, ValidatorBusy, ValidatorUnavailable } from "../control/validation/validator.ts";

const TOKEN = "s3cret-token";
const auth = { authorization: `Bearer ${TOKEN}` };
const SECRET = "a-challenge-secret-of-some-length";

function fresh(extra: Partial<Parameters<typeof buildServer>[0]> = {}) {
  const dir = mkdtempSync(join(tmpdir(), "graywall-sec-"));
  const app = buildServer({ dataDir: join(dir, "data"), ecdsDir: join(dir, "ecds"), token: TOKEN, targets: ["canary"], ...extra });
  return { app, dir };
}

/** Every file under `dir`, as text. */
function allText(dir: string): string {
  let out = "";
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out += readFileSync(join(e.parentPath, e.name), "utf8");
  }
  return out;
}

/** A validator whose compilers can be made unreachable, as after a crash that has not recovered yet. */
class BreakableValidator extends Validator {
  broken = false;
  override validate(filter: string, json: string): Promise<string> {
    return this.broken ? Promise.reject(new ValidatorUnavailable("the validator is down (test)")) : super.validate(filter, json);
  }
}

describe("graywall-control against an unauthenticated caller", () => {
  test("a call that fails inside the compilers never poisons later ones: a fresh instance takes the next", async () => {
    const v = new Validator();
    try {
      assert.equal(await v.validate("gray_router", '{"rules": []}'), "");
      // 150 M characters: more than the bindings' capped memory can hold, so the call aborts inside them.
      await assert.rejects(v.validate("gray_router", `{"x": "${"a".repeat(150_000_000)}"}`), ValidatorUnavailable);
      assert.equal(await v.validate("gray_router", '{"rules": []}'), "");
      assert.match(await v.validate("gray_router", '{"rules": 1}'), /^rules: expected an array/);
    } finally {
      await v.close();
    }
  });

  test("a newline in a name or value cannot forge an error line: every error names its field, the character escaped", async () => {
    const { app } = fresh();
    const doc = { rules: [{ name: "a", key: ["cli\nrules[9].x: forged"], bucket_size: 4, refill_tokens: 4, refill_interval_ms: 1000, "r\nx": 1 }] };
    const r = await app.inject({ method: "POST", url: "/api/filters/rate_limiter/validate", payload: { doc } });
    assert.equal(r.statusCode, 200, r.body);
    assert.deepEqual(r.json().errors, [
      { field: "rules[0].key[0]", message: "'cli\\nrules[9].x: forged' is not one of client_ip, consumer, path, route, method, header:<name>" },
      { field: "rules[0].r\\nx", message: "unknown field" },
    ]);
    await app.close();
  });

  test("a call over its time ends the worker; the next call gets a fresh one", async () => {
    const v = new Validator({ timeoutMs: 1 });
    try {
      const big = JSON.stringify({ deny: Array.from({ length: 100_000 }, (_, i) => `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`) });
      await assert.rejects(v.validate("ip_list", big), /longer than 0.001 s/);
      assert.equal(v.restarts, 1);
    } finally {
      await v.close();
    }
    const ok = new Validator();
    try {
      assert.equal(await ok.validate("ip_list", '{"deny": ["10.0.0.0/8"]}'), "");
    } finally {
      await ok.close();
    }
  });

  test("an operator's call is never queued behind open callers' validations, and only a few open calls may wait", async () => {
    const v = new Validator();
    try {
      const big = JSON.stringify({ deny: Array.from({ length: 100_000 }, (_, i) => `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`) });
      const order: string[] = [];
      // One in flight, then MAX_OPEN_WAITING waiting: the next open one is refused at once.
      const open = Array.from({ length: MAX_OPEN_WAITING + 1 }, (_, i) => v.validate("ip_list", big, true).then(() => order.push(`open ${i}`)));
      await assert.rejects(v.validate("ip_list", big, true), ValidatorBusy);
      const operator = v.validate("gray_router", '{"rules": []}').then(() => order.push("operator"));
      await Promise.all([...open, operator]);
      // Only the call already running when it came finished before the operator's.
      assert.equal(order.indexOf("operator"), 1, order.join(", "));
    } finally {
      await v.close();
    }
  });

  test("the documents of the probe that took the service down get field errors, and the service keeps answering", async () => {
    const { app } = fresh();
    // 127k bot strings (4 MB) and 42,164 gray rules, each sent without a token.
    const bots = { doc: { user_agents: { bots: Array.from({ length: 127_000 }, (_, i) => `bot${i}`) } } };
    const r1 = await app.inject({ method: "POST", url: "/api/filters/crawler_score/validate", payload: bots });
    assert.equal(r1.statusCode, 200, r1.body);
    assert.deepEqual(r1.json().errors, [{ field: "user_agents.bots", message: "at most 1000 entries, got 127000" }]);
    const rules = Array.from({ length: 42_164 }, (_, i) => ({ name: `r${i}`, target: "canary", match: { headers: [{ name: "x-u", exact: `${i}` }] } }));
    const t0 = Date.now();
    const r2 = await app.inject({ method: "POST", url: "/api/filters/gray_router/validate", payload: { doc: { rules } } });
    assert.deepEqual(r2.json().errors, [{ field: "rules", message: "at most 1000 entries, got 42164" }]);
    assert.ok(Date.now() - t0 < 5000, `answered in ${Date.now() - t0} ms`);
    // An authenticated change still works.
    const put = await app.inject({
      method: "PUT",
      url: "/api/filters/gray_router",
      headers: { ...auth, "if-match": '"1"' },
      payload: { doc: { rules: [{ name: "beta", target: "canary", match: {} }] } },
    });
    assert.equal(put.statusCode, 200, put.body);
    await app.close();
  });

  test("validation runs off the event loop: reads are answered while a large document is checked", async () => {
    const { app } = fresh();
    await app.listen({ port: 0, host: "127.0.0.1" });
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    try {
      const big = { doc: { deny: Array.from({ length: 100_000 }, (_, i) => `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`) } };
      const order: string[] = [];
      const validating = fetch(`${base}/api/filters/ip_list/validate`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(big),
      })
        .then((r) => r.json())
        .then((b) => order.push(`validate ${b.ok}`));
      // Once the body is in, the compiler runs in the worker while the read below is served.
      await new Promise((ok) => setTimeout(ok, 50));
      await fetch(`${base}/api/filters`).then(() => order.push("read"));
      await validating;
      assert.deepEqual(order, ["read", "validate true"]);
    } finally {
      await app.close();
    }
  });

  test("the token is checked before the body is read: an unauthenticated write costs no parsing", async () => {
    const { app } = fresh();
    // Not JSON at all: parsed first, this would be a 400.
    const r = await app.inject({
      method: "PUT",
      url: "/api/filters/gray_router",
      headers: { "content-type": "application/json", "if-match": '"1"' },
      payload: "{not json",
    });
    assert.equal(r.statusCode, 401);
    const big = await app.inject({
      method: "PUT",
      url: "/api/filters/ip_list",
      headers: { "content-type": "application/json", "if-match": '"1"' },
      payload: `{"doc": {"deny": [${'"10.0.0.1",'.repeat(1_400_000)}"10.0.0.2"]}}`,
    });
    assert.equal(big.statusCode, 401);
    await app.close();
  });

  test("the open endpoints are limited per client; a caller with the token is not", async () => {
    const { app } = fresh({ openRateLimit: 5 });
    const validate = (headers: Record<string, string> = {}) =>
      app.inject({ method: "POST", url: "/api/filters/gray_router/validate", headers, payload: { doc: { rules: [] } } });
    for (let i = 0; i < 5; i++) assert.equal((await validate()).statusCode, 200);
    const limited = await validate();
    assert.equal(limited.statusCode, 429);
    assert.ok(Number(limited.headers["retry-after"]) > 0);
    assert.equal((await app.inject({ method: "POST", url: "/api/preview", payload: { request: {} } })).statusCode, 200, "its own budget");
    assert.equal((await validate(auth)).statusCode, 200);
    await app.close();
  });

  test("types are not coerced: a number for a string, a string for a number, are 400s naming the field", async () => {
    const { app } = fresh();
    const put = await app.inject({
      method: "PUT",
      url: "/api/filters/gray_router",
      headers: { ...auth, "if-match": '"1"' },
      payload: { doc: { rules: [] }, author: 12345 },
    });
    assert.equal(put.statusCode, 400);
    assert.match(put.json().message, /author must be string/);
    const rb = await app.inject({
      method: "POST",
      url: "/api/filters/gray_router/rollback",
      headers: { ...auth, "if-match": '"1"' },
      payload: { version: "1" },
    });
    assert.equal(rb.statusCode, 400);
    assert.match(rb.json().message, /version must be integer/);
    await app.close();
  });

  test("only loopback host names are answered (no DNS rebinding); every answer carries a CSP", async () => {
    const { app } = fresh();
    const evil = await app.inject({ url: "/api/filters/crawler_score", headers: { host: "attacker.example:8080" } });
    assert.equal(evil.statusCode, 421);
    for (const host of ["127.0.0.1:8080", "localhost", "[::1]:8080"])
      assert.equal((await app.inject({ url: "/api/filters", headers: { host } })).statusCode, 200, host);
    const page = await app.inject({ url: "/" });
    assert.match(String(page.headers["content-security-policy"]), /script-src 'self'/);
    assert.match(String(page.headers["content-security-policy"]), /frame-ancestors 'none'/);
    assert.doesNotMatch(page.body, /style="/, "no inline style: the CSP allows none");
    await app.close();
    const open = fresh({ allowedHosts: ["gw.internal"] }).app;
    assert.equal((await open.inject({ url: "/api/filters", headers: { host: "gw.internal:8080" } })).statusCode, 200);
    await open.close();
  });
});

describe("configurations that could lock people out", () => {
  test("denying every address, or an allow list, needs confirm: true; validate warns; an edit keeping it does not ask again", async () => {
    const { app } = fresh();
    const put = (doc: object, version: number, confirm?: boolean) =>
      app.inject({
        method: "PUT",
        url: "/api/filters/ip_list",
        headers: { ...auth, "if-match": `"${version}"` },
        payload: { doc, ...(confirm === undefined ? {} : { confirm }) },
      });
    for (const doc of [
      { deny: ["0.0.0.0/0"] },
      { deny: ["0.0.0.0/1", "128.0.0.0/1"] },
      { deny: ["::/0"] },
      { deny: ["::ffff:0.0.0.0/96"] },
      { allow: ["10.0.0.0/8"] },
    ]) {
      const r = await put(doc, 1);
      assert.equal(r.statusCode, 422, JSON.stringify(doc));
      assert.equal(r.json().needs_confirmation, true);
      assert.equal((await app.inject({ url: "/api/filters/ip_list" })).json().version, 1, "nothing published");
    }
    const v = await app.inject({ method: "POST", url: "/api/filters/ip_list/validate", payload: { doc: { deny: ["::/0"], paths: ["/admin"] } } });
    assert.deepEqual(v.json().warnings, [{ field: "deny", message: "denies every IPv6 client on the listed paths" }]);
    assert.equal((await put({ deny: ["10.0.0.0/8"] }, 1)).statusCode, 200, "a narrow deny needs nothing");
    // Checking a long list for danger stays cheap on the event loop: 200,000 addresses cannot add up to a family.
    const t0 = Date.now();
    await app.inject({
      method: "POST",
      url: "/api/filters/ip_list/validate",
      payload: { doc: { deny: Array.from({ length: 200_000 }, (_, i) => `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`) } },
    });
    assert.ok(Date.now() - t0 < 3000, `validated in ${Date.now() - t0} ms`);
    assert.equal((await put({ deny: ["0.0.0.0/0"] }, 2, true)).statusCode, 200);
    assert.equal((await put({ deny: ["0.0.0.0/0", "10.9.9.9"] }, 3)).statusCode, 200, "already in force: not asked again");
    const back = await app.inject({ method: "POST", url: "/api/filters/ip_list/rollback", headers: { ...auth, "if-match": '"4"' }, payload: { version: 1 } });
    assert.equal(back.statusCode, 200);
    const again = await app.inject({ method: "POST", url: "/api/filters/ip_list/rollback", headers: { ...auth, "if-match": '"5"' }, payload: { version: 3 } });
    assert.equal(again.statusCode, 422, "restoring a version that denies everyone asks too");
    await app.close();
  });
});

describe("secrets", () => {
  test("a secret is never readable: not in the document, its versions, diffs or history files; the gateway gets it", async () => {
    const { app, dir } = fresh();
    const doc = { honeypot_paths: ["/.env"], challenge: { secret: SECRET, difficulty: 10 }, client_id: { secret: `${SECRET}-id` } };
    const put = await app.inject({ method: "PUT", url: "/api/filters/crawler_score", headers: { ...auth, "if-match": '"1"' }, payload: { doc } });
    assert.equal(put.statusCode, 200, put.body);
    const shown = [
      put.body,
      (await app.inject({ url: "/api/filters/crawler_score" })).body,
      (await app.inject({ url: "/api/filters/crawler_score/versions?changes=true" })).body,
      (await app.inject({ url: "/api/filters/crawler_score/versions/2" })).body,
    ];
    for (const body of shown) assert.ok(!body.includes(SECRET), body);
    const current = (await app.inject({ url: "/api/filters/crawler_score" })).json().doc;
    assert.equal(current.challenge.secret.set, true);
    assert.match(current.challenge.secret.fingerprint, /^[0-9a-f]{16}$/);
    // Nowhere in the version history on disk; only in the secrets file (0600) and the gateway's config.
    const history = allText(join(dir, "data", "crawler_score"));
    assert.ok(history.includes(current.challenge.secret.fingerprint) && !history.includes(SECRET));
    assert.ok(readFileSync(join(dir, "data", "secrets.json"), "utf8").includes(SECRET));
    assert.ok(allText(join(dir, "ecds")).includes(SECRET), "delivered to the gateway");
    // Read, edit, send back: the secret stays without the client ever holding it.
    current.honeypot_paths.push("/wp-admin");
    const again = await app.inject({ method: "PUT", url: "/api/filters/crawler_score", headers: { ...auth, "if-match": '"2"' }, payload: { doc: current } });
    assert.equal(again.statusCode, 200, again.body);
    const ecds = allText(join(dir, "ecds"));
    assert.ok(ecds.includes(SECRET) && ecds.includes("/wp-admin"));
    await app.close();
  });

  test("signing keys' secrets (access) are kept apart like the crawler's: never shown, delivered to the gateway, kept through an edit and a reordering", async () => {
    const { app, dir } = fresh();
    const A = "gws_signing-secret-of-merchant-a-0123456789";
    const B = "gws_signing-secret-of-merchant-b-9876543210";
    const doc = {
      consumers: [
        { name: "merchant-a", signing_keys: [{ id: "a-k1", secret: A }] },
        { name: "merchant-b", signing_keys: [{ id: "b-k1", secret: B }] },
      ],
      require: [{ prefix: "/signed/", credentials: "signature" }],
    };
    const version = (await app.inject({ url: "/api/filters/access" })).json().version;
    const put = await app.inject({ method: "PUT", url: "/api/filters/access", headers: { ...auth, "if-match": `"${version}"` }, payload: { doc } });
    assert.equal(put.statusCode, 200, put.body);
    const shown = [
      put.body,
      (await app.inject({ url: "/api/filters/access" })).body,
      (await app.inject({ url: "/api/filters/access/versions?changes=true" })).body,
      (await app.inject({ url: `/api/filters/access/versions/${version + 1}` })).body,
      allText(join(dir, "data", "access")),
    ];
    for (const body of shown) assert.ok(!body.includes(A) && !body.includes(B), body.slice(0, 400));
    const ecds = allText(join(dir, "ecds"));
    assert.ok(ecds.includes(A) && ecds.includes(B), "delivered to the gateway");
    // Read back, reorder the consumers, add one: each key keeps its own secret without the client holding it.
    const current = (await app.inject({ url: "/api/filters/access" })).json().doc;
    assert.equal(current.consumers[0].signing_keys[0].secret.set, true);
    current.consumers.reverse();
    current.consumers.push({ name: "merchant-c" });
    const again = await app.inject({
      method: "PUT",
      url: "/api/filters/access",
      headers: { ...auth, "if-match": `"${version + 1}"` },
      payload: { doc: current },
    });
    assert.equal(again.statusCode, 200, again.body);
    const resource = readdirSync(join(dir, "ecds"))
      .map((f) => parse(readFileSync(join(dir, "ecds", f), "utf8")))
      .find((r) => JSON.stringify(r).includes("merchant-c"));
    const delivered = JSON.parse(resource.resources[0].typed_config.config.configuration.value);
    const byName = Object.fromEntries(
      (delivered.access?.consumers ?? []).map((c: { name: string; signing_keys?: { secret: string }[] }) => [c.name, c.signing_keys?.[0]?.secret]),
    );
    assert.deepEqual(byName, { "merchant-b": B, "merchant-a": A, "merchant-c": undefined });
    await app.close();
  });

  test("a marker naming no held secret is refused; removing a secret is null; an open validate keeps nothing", async () => {
    const { app, dir } = fresh();
    const bad = { challenge: { secret: { set: true, fingerprint: "0000000000000000" } } };
    const r = await app.inject({ method: "PUT", url: "/api/filters/crawler_score", headers: { ...auth, "if-match": '"1"' }, payload: { doc: bad } });
    assert.equal(r.statusCode, 422);
    assert.equal(r.json().errors[0].field, "challenge.secret");
    const before = readFileSync(join(dir, "data", "secrets.json"), "utf8");
    const v = await app.inject({ method: "POST", url: "/api/filters/crawler_score/validate", payload: { doc: { challenge: { secret: "short" } } } });
    assert.deepEqual(v.json().errors, [{ field: "challenge.secret", message: "must be at least 16 characters" }]);
    const v2 = await app.inject({ method: "POST", url: "/api/filters/crawler_score/validate", payload: { doc: { challenge: { secret: SECRET } } } });
    assert.equal(v2.json().ok, true);
    assert.equal(readFileSync(join(dir, "data", "secrets.json"), "utf8"), before, "nothing kept from an open call");
    await app.close();
  });
});

describe("secrets graywall-control makes", () => {
  const held = (dir: string) => Object.values(JSON.parse(readFileSync(join(dir, "data", "secrets.json"), "utf8")).values as Record<string, string>);
  const fingerprints = (doc: { challenge: { secret: { fingerprint: string } }; client_id: { secret: { fingerprint: string } } }) => [
    doc.challenge.secret.fingerprint,
    doc.client_id.secret.fingerprint,
  ];

  test("the shipped crawler document gets a challenge and a client-id secret, delivered to the gateway and shown nowhere", async () => {
    const { app, dir } = fresh();
    const shown = await app.inject({ url: "/api/filters/crawler_score" });
    const doc = shown.json().doc;
    const [challenge, clientId] = fingerprints(doc);
    assert.match(challenge, /^[0-9a-f]{16}$/);
    assert.notEqual(challenge, clientId);
    const values = held(dir);
    assert.equal(values.length, 2);
    for (const v of values) {
      assert.ok(v.length >= 40, "32 random bytes");
      assert.ok(!shown.body.includes(v) && !(await app.inject({ url: "/api/filters/crawler_score/versions?changes=true" })).body.includes(v));
      assert.ok(allText(join(dir, "ecds")).includes(v), "delivered");
      assert.ok(!allText(join(dir, "data", "crawler_score")).includes(v), "not in the history");
    }
    // A document sent without the sections keeps the secrets in force; enabled: false makes none.
    const put = await app.inject({
      method: "PUT",
      url: "/api/filters/crawler_score",
      headers: { ...auth, "if-match": '"1"' },
      payload: { doc: { honeypot_paths: ["/.env"] } },
    });
    assert.equal(put.statusCode, 200, put.body);
    assert.deepEqual(fingerprints((await app.inject({ url: "/api/filters/crawler_score" })).json().doc), [challenge, clientId]);
    const off = await app.inject({
      method: "PUT",
      url: "/api/filters/crawler_score",
      headers: { ...auth, "if-match": '"2"' },
      payload: { doc: { honeypot_paths: ["/.env"], challenge: { enabled: false }, client_id: { enabled: false } } },
    });
    assert.equal(off.statusCode, 200, off.body);
    const now = (await app.inject({ url: "/api/filters/crawler_score" })).json().doc;
    assert.equal(now.challenge.enabled, false);
    assert.equal(now.challenge.secret.fingerprint, challenge, "kept for when it is turned on again");
    assert.equal(held(dir).length, 2, "no new secret");
    await app.close();
  });

  test("rotating a secret makes a new one and keeps the old as previous_secret; the token is required", async () => {
    const { app, dir } = fresh();
    const [challenge, clientId] = fingerprints((await app.inject({ url: "/api/filters/crawler_score" })).json().doc);
    const open = await app.inject({ method: "POST", url: "/api/filters/crawler_score/secrets/challenge/rotate", headers: { "if-match": '"1"' } });
    assert.equal(open.statusCode, 401);
    const r = await app.inject({ method: "POST", url: "/api/filters/crawler_score/secrets/challenge/rotate", headers: { ...auth, "if-match": '"1"' } });
    assert.equal(r.statusCode, 200, r.body);
    const doc = (await app.inject({ url: "/api/filters/crawler_score" })).json().doc;
    assert.notEqual(doc.challenge.secret.fingerprint, challenge);
    assert.equal(doc.challenge.previous_secret.fingerprint, challenge);
    assert.equal(doc.client_id.secret.fingerprint, clientId, "the other section is untouched");
    const ecds = allText(join(dir, "ecds"));
    assert.equal(held(dir).filter((v) => ecds.includes(v)).length, 3, "the gateway gets the new, the previous and the client-id secret");
    const bad = await app.inject({ method: "POST", url: "/api/filters/crawler_score/secrets/thresholds/rotate", headers: { ...auth, "if-match": '"2"' } });
    assert.equal(bad.statusCode, 400);
    await app.close();
  });
});

describe("the client address from Envoy's X-Forwarded-For entry", () => {
  test("is accepted only where the gateway's Envoy appends the peer; elsewhere a field error says why", async () => {
    const { app } = fresh();
    const doc = { client_address: "envoy_xff", deny: ["10.0.0.0/8"] };
    const ok = await app.inject({ method: "POST", url: "/api/filters/ip_list/validate", payload: { doc } });
    assert.equal(ok.json().ok, true, ok.body);
    await app.close();
    // The same Envoy config without use_remote_address: the rightmost XFF entry is the client's to write.
    const dir = mkdtempSync(join(tmpdir(), "graywall-xff-"));
    const yaml = readFileSync(join(ROOT, "envoy", "envoy.yaml"), "utf8").replace("use_remote_address: true", "use_remote_address: false");
    writeFileSync(join(dir, "envoy.yaml"), yaml);
    const other = fresh({ envoyYaml: join(dir, "envoy.yaml") }).app;
    const refused = await other.inject({ method: "POST", url: "/api/filters/ip_list/validate", payload: { doc } });
    assert.equal(refused.json().ok, false);
    assert.equal(refused.json().errors[0].field, "client_address");
    assert.match(refused.json().errors[0].message, /use_remote_address: true, no skip_xff_append\); the gateway's listener\(s\) ingress do not/);
    await other.close();
  });
});

describe("gray targets and releases", () => {
  test("default_target must be what the catch-all route serves, or a routed target marked by header", async () => {
    const { app } = fresh();
    const check = async (doc: object) =>
      (await app.inject({ method: "POST", url: "/api/filters/gray_router/validate", payload: { doc } })).json() as {
        ok: boolean;
        errors: { field: string; message: string }[];
      };
    const nowhere = await check({ default_target: "nowhere", rules: [] });
    assert.equal(nowhere.errors[0].field, "default_target");
    assert.match(nowhere.errors[0].message, /no route serves target 'nowhere'; the gateway routes: canary, stable/);
    const unmarked = await check({ default_target: "canary", rules: [] });
    assert.match(unmarked.errors[0].message, /set mark_default: true/);
    assert.equal((await check({ default_target: "canary", mark_default: true, rules: [] })).ok, true);
    assert.equal((await check({ default_target: "stable", rules: [] })).ok, true);
    await app.close();
  });

  test("with the compilers down an abort still publishes; a promote is refused and the release shows the share in force", async () => {
    const validator = new BreakableValidator();
    const { app } = fresh({ validator, envoyAdmin: "http://127.0.0.1:9" });
    const start = await app.inject({
      method: "POST",
      url: "/api/releases",
      headers: auth,
      payload: { target: "canary", name: "uid", steps: [10, 50, 100], interval_seconds: 60 },
    });
    assert.equal(start.statusCode, 201, start.body);
    const id = start.json().id;
    validator.broken = true;
    const promote = await app.inject({ method: "POST", url: `/api/releases/${id}/promote`, headers: auth, payload: {} });
    assert.equal(promote.statusCode, 422, promote.body);
    const held = (await app.inject({ url: `/api/releases/${id}` })).json();
    assert.equal(held.share, 10, "the share in force, not the one that failed to publish");
    assert.equal(held.status, "running");
    const abort = await app.inject({ method: "POST", url: `/api/releases/${id}/abort`, headers: auth, payload: {} });
    assert.equal(abort.statusCode, 200, abort.body);
    assert.equal(abort.json().share, 0);
    const gray = (await app.inject({ url: "/api/filters/gray_router" })).json().doc;
    assert.ok(!gray.rules.some((r: { name: string }) => r.name === "release-canary"), "the release's rule is gone");
    await app.close();
  });
});

describe("a rollback's webhook", () => {
  test("is saved before it is called, retried until answered, with one idempotency key, and resumed after a restart", async () => {
    const calls: { key: string | undefined; event: string }[] = [];
    let fail = 2;
    const hook = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        calls.push({ key: req.headers["idempotency-key"] as string | undefined, event: JSON.parse(body).event });
        res.statusCode = fail-- > 0 ? 503 : 200;
        res.end();
      });
    });
    await new Promise<void>((ok) => hook.listen(0, "127.0.0.1", ok));
    const webhook = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`;
    // Envoy's admin as release analysis reads it: canary's 5xx rate far above stable's.
    let reads = 0;
    const admin = createServer((_req, res) => {
      reads++;
      const n = reads * 100;
      const stat = (c: string, s: string, v: number) => ({ name: `cluster.${c}.${s}`, value: v });
      res.setHeader("content-type", "application/json");
      res.end(
        JSON.stringify({
          stats: [
            stat("canary_or_stable", "upstream_rq_completed", n),
            stat("canary_or_stable", "upstream_rq_5xx", n / 2),
            stat("stable", "upstream_rq_completed", n),
            stat("stable", "upstream_rq_5xx", 0),
          ],
        }),
      );
    });
    await new Promise<void>((ok) => admin.listen(0, "127.0.0.1", ok));
    const { app, dir } = fresh({ envoyAdmin: `http://127.0.0.1:${(admin.address() as AddressInfo).port}` });
    try {
      const start = await app.inject({
        method: "POST",
        url: "/api/releases",
        headers: auth,
        payload: { target: "canary", name: "uid", steps: [10, 100], interval_seconds: 0.2, limits: { failed_checks: 1, min_requests: 1 }, webhook },
      });
      assert.equal(start.statusCode, 201, start.body);
      const id = start.json().id;
      const file = join(dir, "data", "releases", `${id}.json`);
      // Rolled back and saved with the webhook pending, before the webhook has answered.
      await until(() => calls.length >= 1);
      const saved = JSON.parse(readFileSync(file, "utf8"));
      assert.equal(saved.status, "rolled_back");
      assert.ok(saved.webhook_pending || calls.length >= 3);
      await until(() => calls.length >= 3, 15_000);
      await until(() => !JSON.parse(readFileSync(file, "utf8")).webhook_pending);
      assert.deepEqual(new Set(calls.map((c) => c.key)), new Set([`${id}-rolled_back`]));
      assert.equal(calls.length, 3, "two failures, then delivered");
      const events = (await app.inject({ url: `/api/releases/${id}` })).json().events.filter((e: { action: string }) => e.action === "rolled back");
      assert.equal(events.length, 1);
    } finally {
      await app.close();
    }
    // A crash between the save and the webhook's answer: the restarted service delivers it again (the
    // receiver drops a repeat by its key) and rolls nothing back twice.
    const file = readdirSync(join(dir, "data", "releases")).find((f) => f.endsWith(".json"))!;
    const path = join(dir, "data", "releases", file);
    const r = JSON.parse(readFileSync(path, "utf8"));
    r.webhook_pending = { key: `${r.id}-rolled_back`, body: { event: "release.rolled_back" }, attempts: 0 };
    writeFileSync(path, JSON.stringify(r));
    const grayBefore = readdirSync(join(dir, "data", "gray_router")).length;
    const again = buildServer({ dataDir: join(dir, "data"), ecdsDir: join(dir, "ecds"), token: TOKEN, targets: ["canary"], envoyAdmin: "http://127.0.0.1:9" });
    try {
      await until(() => calls.length >= 4);
      assert.equal(calls[3].key, `${r.id}-rolled_back`);
      assert.equal(readdirSync(join(dir, "data", "gray_router")).length, grayBefore, "no second rollback version");
    } finally {
      await again.close();
      hook.close();
      admin.close();
    }
  });
});

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((ok) => setTimeout(ok, 20));
  }
}
