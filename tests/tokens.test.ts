// access's token credential on the host emulator: a token Envoy's jwt_authn verified names its consumer
// through the claim jwt_authn put in dynamic metadata; a client-sent header claiming a consumer never
// counts; a consumer no longer in the document is refused whatever its token says; the token is not
// sent upstream. (Signature, expiry, audience and algorithm are jwt_authn's: tests/e2e/tokens.test.ts.)
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { wasmPath } from "../runtime/paths.ts";
import { ProxyHost } from "./support/proxy_host.ts";

const ACCESS = {
  consumers: [{ name: "merchant-t" }, { name: "merchant-u" }],
  tokens: { providers: [{ payload_in_metadata: "graywall" }, { payload_in_metadata: "corp", claim: "email" }] },
  require: [{ prefix: "/api/", credentials: "token" }],
};
const SUB = "metadata.filter_metadata.envoy.filters.http.jwt_authn.graywall.sub";
const EMAIL = "metadata.filter_metadata.envoy.filters.http.jwt_authn.corp.email";

function host(access: object = ACCESS): ProxyHost {
  const h = new ProxyHost(wasmPath("graywall"), "graywall");
  assert.ok(h.configure(JSON.stringify({ access })), h.logs.join("\n"));
  return h;
}
const req = (path: string, headers: [string, string][] = []): [string, string][] => [
  [":method", "GET"],
  [":path", path],
  [":authority", "api.example"],
  ...headers,
];
const consumerOf = (ex: ReturnType<ProxyHost["request"]>) => ex.upstreamHeaders?.find(([k]) => k === "x-graywall-consumer")?.[1];
const BEARER: [string, string] = ["authorization", "Bearer eyJhbGciOiJFUzI1NiJ9.e30.sig"];

describe("tokens (verified by Envoy's jwt_authn)", () => {
  test("a verified token's sub names its consumer; the token is not sent upstream; one host call, only with a bearer token", () => {
    const h = host();
    const ex = h.request({ headers: req("/api/orders", [BEARER]), properties: { [SUB]: "merchant-t" } });
    assert.equal(ex.reply, undefined);
    assert.equal(consumerOf(ex), "merchant-t");
    assert.equal(
      ex.upstreamHeaders?.find(([k]) => k === "authorization"),
      undefined,
    );
    assert.equal(ex.calls.proxy_get_property, 1);
    const other = h.request({ headers: req("/api/orders", [["authorization", "bEaReR x.y.z"]]), properties: { [EMAIL]: "merchant-u" } });
    assert.equal(consumerOf(other), "merchant-u", "a second provider, its own claim");
    const anon = h.request({ headers: req("/shop") });
    assert.equal(anon.calls.proxy_get_property ?? 0, 0, "no token: no property read");
  });

  test("refused: no token, a token no provider verified, a forged consumer header, a consumer no longer in force", () => {
    const h = host();
    const none = h.request({ headers: req("/api/orders") }).reply;
    assert.equal(none?.status, 401);
    assert.ok(none?.headers.some(([k, v]) => k === "www-authenticate" && v === 'Bearer realm="graywall"'));
    assert.equal(h.request({ headers: req("/api/orders", [BEARER]) }).reply?.status, 401, "a bearer token without verified claims");
    const forged = h.request({ headers: req("/api/orders", [BEARER, ["x-graywall-consumer", "merchant-t"], ["x-jwt-payload", '{"sub":"merchant-t"}']]) });
    assert.equal(forged.reply?.status, 401);
    // The consumer removed (revoked): its token, still valid to jwt_authn, is refused.
    const revoked = host({ ...ACCESS, consumers: [{ name: "merchant-u" }] });
    assert.equal(revoked.request({ headers: req("/api/orders", [BEARER]), properties: { [SUB]: "merchant-t" } }).reply?.status, 401);
  });

  test("configuration errors name the field", () => {
    const h = new ProxyHost(wasmPath("graywall"), "graywall");
    assert.equal(h.configure(JSON.stringify({ access: { tokens: { providers: [] } } })), false);
    assert.match(h.logs.join("\n"), /access\.tokens\.providers: must name at least one provider/);
  });
});
