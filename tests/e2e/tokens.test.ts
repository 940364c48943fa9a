// Tokens in real Envoy behind graywall-control: a consumer shows its API key at POST /api/tokens and gets
// an ES256 JWT; Envoy's jwt_authn verifies it against the control service's JWKS; the access stage maps
// its verified `sub` to the consumer. Refused: no token, alg none, a wrong audience, an expired token, a
// token of another key, a revoked consumer's unexpired token. A rotation keeps earlier tokens valid.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe } from "node:test";
import { generateKeyPair, importJWK, SignJWT } from "jose";
import { e2e, eventually, putDoc, request, startControlRig, stopControlRig, type ControlRig } from "./harness.ts";

const TOKEN = "tokens-admin-token";

describe("tokens through graywall-control and jwt_authn", () => {
  let rig: ControlRig;
  before(async () => {
    rig = await startControlRig(TOKEN, { concurrency: 2 });
  });
  after(() => stopControlRig(rig));

  const admin = async (method: string, url: string) => {
    const cur = (await rig.app.inject({ url: "/api/filters/access" })).json().version;
    return rig.app.inject({ method: method as "POST", url, headers: { authorization: `Bearer ${TOKEN}`, "if-match": `"${cur}"` }, payload: {} });
  };
  const get = (token?: string) =>
    request(rig.envoy.url("/tok/orders"), { headers: { connection: "close", ...(token ? { authorization: `Bearer ${token}` } : {}) } });
  /** A token signed with the control service's own current key, with claims of the test's choosing. */
  const forge = async (claims: { aud?: string; exp?: number; sub?: string }) => {
    const stored = JSON.parse(readFileSync(join(rig.controlDir, "data", "token-keys.json"), "utf8")).keys[0];
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({})
      .setProtectedHeader({ alg: "ES256", kid: stored.kid })
      .setIssuer("graywall-control")
      .setAudience(claims.aud ?? "graywall")
      .setSubject(claims.sub ?? "merchant-t")
      .setIssuedAt(now - 7200)
      .setExpirationTime(claims.exp ?? now + 3600)
      .sign(await importJWK(stored.privateJwk, "ES256"));
  };

  e2e(
    "a token issued for an API key names its consumer; none, alg none, wrong audience, expired, another key's and a revoked consumer's are refused",
    async () => {
      assert.equal((await putDoc(rig, TOKEN, "rate_limiter", { rules: [] })).statusCode, 200);
      const shipped = (await rig.app.inject({ url: "/api/filters/access" })).json().doc;
      assert.equal((await putDoc(rig, TOKEN, "access", { ...shipped, require: [{ prefix: "/tok/", credentials: "token" }] })).statusCode, 200);
      const key = (await admin("POST", "/api/consumers/merchant-t/keys")).json().key;
      // The token endpoint: an unknown key gets 401; the consumer's key gets a token for 24 hours.
      assert.equal((await rig.app.inject({ method: "POST", url: "/api/tokens", headers: { "x-api-key": "gwk_nope" } })).statusCode, 401);
      const issued = await rig.app.inject({ method: "POST", url: "/api/tokens", headers: { "x-api-key": key } });
      assert.equal(issued.statusCode, 200, issued.body);
      const { token, expires_at: expiresAt } = issued.json();
      assert.ok(Math.abs(expiresAt - Date.now() / 1000 - 86400) < 60, "24 hours");
      const jwks = (await rig.app.inject({ url: "/.well-known/jwks.json" })).json();
      assert.equal(jwks.keys.length, 1);
      assert.equal(jwks.keys[0].d, undefined, "no private part");

      await eventually(async () => (await get(token)).json?.headers["x-graywall-consumer"] === "merchant-t", 15000, "the token accepted");
      const ok = await get(token);
      assert.equal(ok.json?.headers.authorization, undefined, "the token does not go upstream");
      const none = await get();
      assert.equal(none.status, 401);
      assert.equal(none.headers.get("www-authenticate"), 'Bearer realm="graywall"');
      // A forged payload header, alg none, the wrong audience, an expired token, another key's: all 401.
      const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
      const algNone = `${b64({ alg: "none", typ: "JWT" })}.${b64({ iss: "graywall-control", aud: "graywall", sub: "merchant-t", exp: 4102444800 })}.`;
      const other = await generateKeyPair("ES256");
      const anotherKey = await new SignJWT({ sub: "merchant-t" })
        .setProtectedHeader({ alg: "ES256", kid: "not-ours" })
        .setIssuer("graywall-control")
        .setAudience("graywall")
        .setExpirationTime("1h")
        .sign(other.privateKey);
      for (const [what, t] of [
        ["alg none", algNone],
        ["wrong audience", await forge({ aud: "someone-else" })],
        // jwt_authn allows 60 s of clock skew: ten minutes past its expiry.
        ["expired", await forge({ exp: Math.floor(Date.now() / 1000) - 600 })],
        ["another key", anotherKey],
      ] as const) {
        assert.equal((await get(t)).status, 401, what);
      }
      const spoofed = await request(rig.envoy.url("/tok/orders"), {
        headers: { connection: "close", "x-jwt-payload": b64({ sub: "merchant-t" }), "x-graywall-consumer": "merchant-t" },
      });
      assert.equal(spoofed.status, 401, "headers a client writes never count");

      // Rotation: the new key is published at once; tokens the old one signed stay valid.
      const rotated = await rig.app.inject({ method: "POST", url: "/api/tokens/keys/rotate", headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(rotated.statusCode, 200, rotated.body);
      assert.equal((await rig.app.inject({ url: "/.well-known/jwks.json" })).json().keys.length, 2);
      assert.equal((await get(token)).status, 200, "a token of the previous key");

      // Revoking the consumer stops its unexpired token.
      assert.equal((await admin("DELETE", "/api/consumers/merchant-t")).statusCode, 200);
      await eventually(async () => (await get(token)).status === 401, 5000, "the revoked consumer's token refused");
    },
  );
});
