// access in real Envoy behind graywall-control: a key made through the API (shown once, kept as a
// digest) identifies its consumer, whose name reaches the upstream in a header no client can set; a path
// that requires a key answers 401 without one; a limit per consumer holds across two workers; a revoked
// key stops working. A signing key made through the API signs requests the gateway accepts, and its
// secret is shown once.
import assert from "node:assert/strict";
import { after, before, describe } from "node:test";
import { signRequest } from "../../clients/sign.ts";
import { e2e, eventually, request, startControlRig, stopControlRig, type ControlRig } from "./harness.ts";

const TOKEN = "access-token";

describe("access through graywall-control", () => {
  let rig: ControlRig;
  before(async () => {
    rig = await startControlRig(TOKEN, { concurrency: 2 });
  });
  after(() => stopControlRig(rig));

  const call = async (method: string, url: string, payload?: unknown, withIfMatch = true) => {
    const cur = (await rig.app.inject({ url: "/api/filters/access" })).json().version;
    return rig.app.inject({
      method: method as "POST",
      url,
      headers: { authorization: `Bearer ${TOKEN}`, ...(withIfMatch ? { "if-match": `"${cur}"` } : {}) },
      payload: payload as object,
    });
  };
  const put = async (filter: string, doc: unknown) => {
    const cur = (await rig.app.inject({ url: `/api/filters/${filter}` })).json().version;
    const r = await rig.app.inject({
      method: "PUT",
      url: `/api/filters/${filter}`,
      headers: { authorization: `Bearer ${TOKEN}`, "if-match": `"${cur}"` },
      payload: { doc },
    });
    assert.equal(r.statusCode, 200, r.body);
  };

  e2e("a key made through the API names its consumer upstream, is required where configured, limits per consumer, and stops when revoked", async () => {
    // Without the token, or without If-Match: refused, and nothing is made.
    assert.equal((await rig.app.inject({ method: "POST", url: "/api/consumers/merchant-7/keys" })).statusCode, 401);
    assert.equal((await call("POST", "/api/consumers/merchant-7/keys", {}, false)).statusCode, 428);
    assert.equal((await call("POST", "/api/consumers/bad%20name/keys", {})).statusCode, 400);

    // The shipped per-address limit on /api/ is not what this test is about.
    await put("rate_limiter", { rules: [] });
    await put("access", { consumers: [], require: [{ prefix: "/merchant/", credentials: "key" }] });
    const made = await call("POST", "/api/consumers/merchant-7/keys", {});
    assert.equal(made.statusCode, 200, made.body);
    assert.equal(made.headers["cache-control"], "no-store");
    const { key, fingerprint } = made.json();
    assert.match(key, /^gwk_[A-Za-z0-9_-]{43}$/);
    // The key is shown once: the document, its versions and their diffs hold only its digest.
    for (const url of ["/api/filters/access", "/api/filters/access/versions?changes=true"]) {
      const body = (await rig.app.inject({ url })).body;
      assert.ok(!body.includes(key), `${url} never shows the key`);
      assert.ok(body.includes(fingerprint), `${url} shows the digest`);
    }
    const api = (headers: Record<string, string> = {}) => request(rig.envoy.url("/merchant/orders"), { headers: { connection: "close", ...headers } });
    // In force on both workers: ten new connections in a row accept it.
    await eventually(
      async () => {
        for (let i = 0; i < 10; i++) {
          if ((await api({ "x-api-key": key })).status !== 200) return false;
        }
        return true;
      },
      10000,
      "the key is accepted on every worker",
    );
    const denied = await api();
    assert.equal(denied.status, 401);
    assert.equal(denied.headers.get("www-authenticate"), 'Key realm="graywall"');
    assert.equal((await api({ "x-api-key": `${key}x` })).status, 401);

    // A limit per consumer; a probe consumer shows when it is in force.
    const probe = (await call("POST", "/api/consumers/probe/keys", {})).json().key;
    await put("rate_limiter", { rules: [{ name: "per-merchant", key: ["consumer"], bucket_size: 3, refill_tokens: 3, refill_interval_ms: 60000 }] });
    await eventually(async () => (await api({ "x-api-key": probe })).status === 429, 10000, "the limit is in force");
    // The limit is the merchant's, across both workers (new connections) and whatever it claims to be.
    const statuses: number[] = [];
    const seen: (string | undefined)[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await api({ "x-api-key": key, "x-graywall-consumer": "someone-else" });
      statuses.push(r.status);
      if (r.status === 200) seen.push(r.json?.headers["x-graywall-consumer"], r.json?.headers["x-api-key"]);
    }
    assert.deepEqual(statuses, [200, 200, 200, 429]);
    assert.deepEqual(seen, ["merchant-7", undefined, "merchant-7", undefined, "merchant-7", undefined], "the consumer upstream, never the key");
    // Anonymous elsewhere: a client-sent consumer header never reaches the upstream.
    const open = await request(rig.envoy.url("/shop"), { headers: { "x-graywall-consumer": "merchant-7", connection: "close" } });
    assert.equal(open.status, 200);
    assert.equal(open.json?.headers["x-graywall-consumer"], undefined);

    const revoked = await call("DELETE", `/api/consumers/merchant-7/keys/${fingerprint}`);
    assert.equal(revoked.statusCode, 200, revoked.body);
    assert.equal((await call("DELETE", `/api/consumers/merchant-7/keys/${fingerprint}`)).statusCode, 404);
    await eventually(async () => (await api({ "x-api-key": key })).status === 401, 10000, "the revoked key is refused");
  });

  e2e("a gray rule matching a consumer sends that merchant's requests to the canary, and only those", async () => {
    await put("rate_limiter", { rules: [] });
    await put("access", { consumers: [], require: [{ prefix: "/merchant/", credentials: "key" }] });
    const chosen = (await call("POST", "/api/consumers/merchant-g/keys", {})).json().key;
    const other = (await call("POST", "/api/consumers/merchant-h/keys", {})).json().key;
    const current = (await rig.app.inject({ url: "/api/filters/gray_router" })).json().doc;
    await put("gray_router", { ...current, rules: [{ name: "merchant-canary", target: "canary", match: { consumers: ["merchant-g"] } }] });
    const version = async (key: string, claimed?: string) =>
      (
        await request(rig.envoy.url("/merchant/orders"), {
          headers: { connection: "close", "x-api-key": key, ...(claimed ? { "x-graywall-consumer": claimed } : {}) },
        })
      ).json?.version;
    await eventually(async () => (await version(chosen)) === "canary", 10000, "the chosen merchant on the canary");
    for (let i = 0; i < 4; i++) {
      assert.equal(await version(chosen), "canary", "on either worker");
      assert.equal(await version(other, "merchant-g"), "stable", "another merchant, whatever it claims to be");
    }
  });

  e2e("a rotated key works through its grace period, then the gateway refuses it by itself; the new key works", async () => {
    await put("rate_limiter", { rules: [] });
    await put("access", { consumers: [], require: [{ prefix: "/merchant/", credentials: "key" }] });
    const first = (await call("POST", "/api/consumers/merchant-r/keys", {})).json();
    const api = (key: string) => request(rig.envoy.url("/merchant/orders"), { headers: { connection: "close", "x-api-key": key } });
    await eventually(async () => (await api(first.key)).status === 200, 10000, "the first key in force");
    const rotated = await call("POST", `/api/consumers/merchant-r/keys/${first.fingerprint}/rotate`, { grace_s: 3 });
    assert.equal(rotated.statusCode, 200, rotated.body);
    const { key: next, retiring } = rotated.json();
    assert.equal(retiring.fingerprint, first.fingerprint);
    await eventually(async () => (await api(next)).status === 200, 10000, "the new key in force");
    assert.equal((await api(first.key)).status, 200, "the old key within its grace period");
    const versions = (await rig.app.inject({ url: "/api/filters/access" })).json().version;
    await eventually(async () => (await api(first.key)).status === 401, 10000, "the old key refused once its grace period is over");
    assert.equal((await rig.app.inject({ url: "/api/filters/access" })).json().version, versions, "with no publish: the gateway ended it itself");
    assert.equal((await api(next)).status, 200);
  });

  e2e("consumers through the API: created with no credential, listed without a secret or a digest, a replaced key listed with its deadline", async () => {
    await put("access", { consumers: [], require: [{ prefix: "/merchant/", credentials: "key" }] });
    const created = await call("POST", "/api/consumers", { name: "merchant-list" });
    assert.equal(created.statusCode, 201, created.body);
    assert.equal((await call("POST", "/api/consumers", { name: "merchant-list" })).statusCode, 409, "a name is taken once");
    assert.equal((await rig.app.inject({ method: "POST", url: "/api/consumers", payload: { name: "x" } })).statusCode, 401, "creating needs the token");
    // With no credential it names no one at the gateway.
    const made = (await call("POST", "/api/consumers/merchant-list/keys", {})).json();
    const rotated = (await call("POST", `/api/consumers/merchant-list/keys/${made.fingerprint}/rotate`, { grace_s: 600 })).json();
    const listed = await rig.app.inject({ url: "/api/consumers" });
    assert.equal(listed.statusCode, 200);
    const me = listed.json().consumers.find((c: { name: string }) => c.name === "merchant-list");
    assert.deepEqual(me.keys, [rotated.fingerprint]);
    assert.equal(me.replaced_keys[0].fingerprint, made.fingerprint);
    assert.ok(me.replaced_keys[0].works_until_s > Date.now() / 1000 + 500);
    for (const secret of [made.key, rotated.key]) assert.ok(!listed.body.includes(secret), "no key in the list");
    const doc = (await rig.app.inject({ url: "/api/filters/access" })).json().doc;
    const digest = doc.consumers.find((c: { name: string }) => c.name === "merchant-list").key_sha256[0];
    assert.ok(!listed.body.includes(digest), "not even a digest: fingerprints only");
  });

  e2e("a signing key made through the API signs requests the gateway accepts; its secret is shown once and never again; revoked, it is refused", async () => {
    await put("rate_limiter", { rules: [] });
    await put("access", { consumers: [], require: [{ prefix: "/signed/", credentials: "signature" }] });
    const made = await call("POST", "/api/consumers/merchant-9/signing-keys", {});
    assert.equal(made.statusCode, 200, made.body);
    assert.equal(made.headers["cache-control"], "no-store");
    const { key_id: keyId, secret } = made.json();
    assert.match(secret, /^gws_[A-Za-z0-9_-]{43}$/);
    for (const url of ["/api/filters/access", "/api/filters/access/versions?changes=true", `/api/filters/access/versions/${made.json().version}`]) {
      assert.ok(!(await rig.app.inject({ url })).body.includes(secret), `${url} never shows the secret`);
    }
    const signedGet = () => {
      const url = rig.envoy.url("/signed/orders");
      return request(url, { headers: { ...signRequest({ method: "GET", url, keyId, secret }), connection: "close" } });
    };
    await eventually(async () => (await signedGet()).json?.headers["x-graywall-consumer"] === "merchant-9", 10000, "the signing key in force");
    assert.equal(
      (await request(rig.envoy.url("/signed/orders"), { headers: { connection: "close" } })).headers.get("www-authenticate"),
      'Signature realm="graywall"',
    );
    // Four keys at most (rotation: make the next, move clients over, revoke the old).
    for (let i = 0; i < 3; i++) assert.equal((await call("POST", "/api/consumers/merchant-9/signing-keys", {})).statusCode, 200);
    assert.equal((await call("POST", "/api/consumers/merchant-9/signing-keys", {})).statusCode, 409);
    const revoked = await call("DELETE", `/api/consumers/merchant-9/signing-keys/${keyId}`);
    assert.equal(revoked.statusCode, 200, revoked.body);
    assert.equal((await call("DELETE", `/api/consumers/merchant-9/signing-keys/${keyId}`)).statusCode, 404);
    await eventually(async () => (await signedGet()).status === 401, 10000, "the revoked signing key is refused");
  });
});
