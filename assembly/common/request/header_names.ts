// Which header names a filter may write. Pure.

/** Header names a filter may read: RFC 7230 token characters, lower case. */
export function isHeaderName(s: string): bool {
  if (s.length == 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x2d || c == 0x5f || c == 0x2e;
    if (!ok) return false;
  }
  return true;
}

// Framing, hop-by-hop, routing and identity headers: a filter overwriting one breaks every request
// (content-length, host), the connection (connection, transfer-encoding) or what Envoy trusts.
const RESERVED = [
  "host", "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection", "upgrade",
  "te", "trailer", "expect", "set-cookie", "cookie", "authorization", "proxy-authorization", "x-forwarded-for",
  "x-forwarded-proto", "x-request-id", "content-type", "content-encoding", "date", "location",
];

/** "" when `name` may be written by a filter, else why not (for a field-level error). */
export function writableHeaderProblem(name: string): string {
  if (!isHeaderName(name)) return "not a valid header name (lower-case letters, digits, '-', '_', '.')";
  if (RESERVED.includes(name)) return "'" + name + "' is a reserved header: writing it would break requests";
  if (name.startsWith("x-envoy-")) return "'" + name + "' is in Envoy's own x-envoy- namespace";
  return "";
}
