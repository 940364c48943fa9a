// A signing client for Graywall's access stage: HTTP Message Signatures (RFC 9421) with hmac-sha256 over
// @method, @target-uri and, with a body, content-digest (RFC 9530), with created, keyid, nonce and alg.
// Use it as a library (signRequest) or from a shell:
//   GRAYWALL_SIGNING_SECRET=... npx tsx clients/sign.ts --key-id merchant-1-k1 --method POST \
//     --url http://127.0.0.1:10000/merchant/orders --data '{"qty":1}'
// which prints the headers to send, one per line (`name: value`), ready for curl's -H.
import { createHash, createHmac, randomBytes } from "node:crypto";

export interface SignOptions {
  method: string;
  /** The URL as the gateway sees it: scheme, authority (host and port, lower case) and path with query. */
  url: string;
  body?: string | Uint8Array;
  keyId: string;
  /** The signing key's secret as graywall-control showed it (its UTF-8 bytes are the HMAC key). */
  secret: string;
  /** Seconds since the epoch; now by default. */
  created?: number;
  /** Unique per request; 16 random bytes by default. */
  nonce?: string;
  /** The signature's label in the fields. */
  label?: string;
}

/** The Content-Digest field for a body (RFC 9530, sha-256). */
export function contentDigest(body: string | Uint8Array): string {
  return `sha-256=:${createHash("sha256").update(body).digest("base64")}:`;
}

/** The headers that sign the request: Signature-Input, Signature and, with a body, Content-Digest. */
export function signRequest(o: SignOptions): Record<string, string> {
  const label = o.label ?? "sig1";
  const created = o.created ?? Math.floor(Date.now() / 1000);
  const nonce = o.nonce ?? randomBytes(16).toString("base64url");
  const u = new URL(o.url);
  const headers: Record<string, string> = {};
  const components: [string, string][] = [
    ["@method", o.method.toUpperCase()],
    ["@target-uri", `${u.protocol}//${u.host.toLowerCase()}${u.pathname}${u.search}`],
  ];
  if (o.body !== undefined && o.body.length > 0) {
    headers["content-digest"] = contentDigest(o.body);
    components.push(["content-digest", headers["content-digest"]]);
  }
  const params = `(${components.map(([n]) => `"${n}"`).join(" ")});created=${created};keyid="${o.keyId}";nonce="${nonce}";alg="hmac-sha256"`;
  const base = [...components.map(([n, v]) => `"${n}": ${v}`), `"@signature-params": ${params}`].join("\n");
  headers["signature-input"] = `${label}=${params}`;
  headers.signature = `${label}=:${createHmac("sha256", Buffer.from(o.secret, "utf8")).update(base).digest("base64")}:`;
  return headers;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const opt = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
  const secret = process.env.GRAYWALL_SIGNING_SECRET;
  const keyId = opt("--key-id");
  const url = opt("--url");
  if (!secret || !keyId || !url) {
    console.error("usage: GRAYWALL_SIGNING_SECRET=... tsx clients/sign.ts --key-id <id> --url <url> [--method GET] [--data <body>]");
    process.exit(2);
  }
  const headers = signRequest({ method: opt("--method") ?? "GET", url, body: opt("--data"), keyId, secret });
  for (const [k, v] of Object.entries(headers)) console.log(`${k}: ${v}`);
}
