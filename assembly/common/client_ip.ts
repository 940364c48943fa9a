// Which address is the client: the downstream peer, or an X-Forwarded-For entry behind trusted hops.
import { IpAddr, parseHostPort, parseIpRange } from "./ip";

/**
 * Graywall expects the HTTP connection manager to have `use_remote_address: true`: then the peer
 * (source.address) is the real TCP peer, and Envoy appends one entry to XFF before filters run.
 * With trustedHops = N > 0 the client is the Nth entry from the right of XFF as it arrived, as with
 * Envoy's xff_num_trusted_hops: the rightmost entry (Envoy's own append) is skipped, then N counted.
 * Entries left of that were written by the client and are never read.
 * Falls back to the peer when XFF is absent, too short, or that entry is malformed.
 * Returns false only when no usable address exists at all.
 */
export function resolveClientIp(peer: string | null, xff: string | null, trustedHops: i32, out: IpAddr): bool {
  if (trustedHops > 0 && xff !== null && xff.length > 0) {
    let end = xff.length;
    let index = 0; // 0 = Envoy's append
    while (end >= 0) {
      const comma = end > 0 ? xff.lastIndexOf(",", end - 1) : -1;
      if (index == trustedHops) {
        if (parseIpRange(xff, comma + 1, end, out)) return true;
        break;
      }
      index++;
      if (comma < 0) break;
      end = comma;
    }
  }
  if (peer === null) return false;
  return parseHostPort(peer, out);
}
