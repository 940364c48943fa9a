// Request facts read from the host, shared by the filters. ABI code: not for as-pect.
import { getHeaderEncoded, getPropertyString, MapType } from "./host";
import { IpAddr } from "./ip";
import { resolveClientIp } from "./client_ip";

export const PATH_KEY = String.UTF8.encode(":path");
export const METHOD_KEY = String.UTF8.encode(":method");
export const COOKIE_KEY = String.UTF8.encode("cookie");
export const XFF_KEY = String.UTF8.encode("x-forwarded-for");
export const USER_AGENT_KEY = String.UTF8.encode("user-agent");

/** Resolves the client address of the current request into `out` (see resolveClientIp). */
export function hostClientIp(trustedHops: i32, out: IpAddr): bool {
  let xff: string | null = null;
  if (trustedHops > 0) xff = getHeaderEncoded(MapType.RequestHeaders, XFF_KEY);
  return resolveClientIp(getPropertyString("source.address"), xff, trustedHops, out);
}

/** Stat name segment: keeps [A-Za-z0-9_-], maps the rest to '_', so a name cannot add stat levels. */
export function statName(s: string): string {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ok = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x2d || c == 0x5f;
    if (ok) out += String.fromCharCode(c);
    else out += "_";
  }
  return out;
}
