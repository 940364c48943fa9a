// Which address is the client: the downstream peer, or an X-Forwarded-For entry behind trusted hops.
import { IpAddr, parseHostPort, parseIpRange } from "./ip";

/**
 * With trustedHops = N > 0 the client is the Nth address from the right of XFF, as with
 * Envoy's xff_num_trusted_hops: entries left of it were written by the client and are never read.
 * Falls back to the peer address when XFF is absent, shorter than N, or that entry is malformed.
 * Returns false only when no usable address exists at all.
 */
export function resolveClientIp(peer: string | null, xff: string | null, trustedHops: i32, out: IpAddr): bool {
  if (trustedHops > 0 && xff !== null && xff.length > 0) {
    let end = xff.length;
    let seen = 0;
    while (end >= 0) {
      const comma = end > 0 ? xff.lastIndexOf(",", end - 1) : -1;
      seen++;
      if (seen == trustedHops) {
        if (parseIpRange(xff, comma + 1, end, out)) return true;
        break;
      }
      if (comma < 0) break;
      end = comma;
    }
  }
  if (peer === null) return false;
  return parseHostPort(peer, out);
}
