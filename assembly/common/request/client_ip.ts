// Which address is the client: the downstream peer, or an X-Forwarded-For entry behind trusted hops.
import { IpAddr, parseHostPort, parseIpAt } from "../lib/ip";
import { ObjReader } from "../lib/config";
import { bytesEqual } from "../lib/bytes";
import { keyHash } from "../lib/hash";

/**
 * A stage's client-address source, as one number: the trusted XFF hops in the low byte, and FROM_XFF
 * when the peer itself is read from Envoy's own X-Forwarded-For entry rather than asked of the host.
 */
export const FROM_XFF: i32 = 0x100;

/**
 * Reads `xff_trusted_hops` and `client_address` of a stage's document. `client_address`:
 * - "peer" (default): the peer is the host's `source.address` (one host call that returns data).
 * - "envoy_xff": the peer is the rightmost X-Forwarded-For entry, which Envoy appends before any filter
 *   runs when the HTTP connection manager has `use_remote_address: true` and no `skip_xff_append`. No
 *   host call. Only for such an Envoy: anywhere else the rightmost entry is the client's to write.
 *   graywall-control refuses it when the Envoy config it delivers to does not guarantee it.
 */
export function readClientSource(r: ObjReader): i32 {
  const hops = <i32>r.int("xff_trusted_hops", 0, 0, 16);
  const mode = r.oneOf("client_address", "peer", ["peer", "envoy_xff"]);
  return mode == "envoy_xff" ? hops | FROM_XFF : hops;
}

/**
 * The entry `index` places from the right of the X-Forwarded-For bytes at [ptr, ptr + len) (0 = the
 * rightmost) into `out`; false when XFF has fewer entries or that one is not an address.
 */
export function xffFromRight(ptr: usize, len: i32, index: i32, out: IpAddr): bool {
  let end = len;
  let i = 0;
  while (end >= 0) {
    let comma = end - 1;
    while (comma >= 0 && load<u8>(ptr + <usize>comma) != 0x2c) comma--;
    if (i == index) return parseIpAt(ptr, comma + 1, end, out);
    i++;
    if (comma < 0) break;
    end = comma;
  }
  return false;
}

/**
 * X-Forwarded-For values already read, per VM (direct-mapped by hash of the value and the entry asked
 * for): a client's page and its subresources carry the same value, so most requests cost a hash and a
 * compare instead of finding and parsing the entry. Only values that held an address are kept.
 */
const XFF_SLOTS = 256;
/**
 * Each slot is one entry of three cache lines: the value's length (-1: none) at 0, the entry asked for at
 * 4, whether the address is IPv6 at 8, its two halves at 16 and 24, then the value itself, so a hit on a
 * short value reads one line. One fixed block (nothing is allocated per request), aligned to a line.
 */
const XFF_STRIDE: usize = 192;
const XFF_VALUE: usize = 32;
const MAX_XFF_BYTES: i32 = <i32>(XFF_STRIDE - XFF_VALUE);
const xffBlock = new StaticArray<u8>(XFF_SLOTS * <i32>XFF_STRIDE + 64);
const xffBase: usize = (changetype<usize>(xffBlock) + 63) & ~(<usize>63);
for (let i = 0; i < XFF_SLOTS; i++) store<i32>(xffBase + <usize>i * XFF_STRIDE, -1);
/** For tests: the values parsed (not found among those kept). */
export let xffParsed: u32 = 0;

/** xffFromRight, remembering what it found for values of up to MAX_XFF_BYTES. */
export function xffFromRightCached(ptr: usize, len: i32, index: i32, out: IpAddr): bool {
  if (len > MAX_XFF_BYTES) return xffFromRight(ptr, len, index, out);
  const slot = (keyHash(ptr, len) ^ (<u32>index * 0x9e3779b1)) & (XFF_SLOTS - 1);
  const e = xffBase + <usize>slot * XFF_STRIDE;
  if (load<i32>(e) == len && load<i32>(e, 4) == index && bytesEqual(e + XFF_VALUE, ptr, len)) {
    out.v6 = load<u32>(e, 8) != 0;
    out.hi = load<u64>(e, 16);
    out.lo = load<u64>(e, 24);
    return true;
  }
  xffParsed++;
  if (!xffFromRight(ptr, len, index, out)) return false;
  memory.copy(e + XFF_VALUE, ptr, len);
  store<i32>(e, len);
  store<i32>(e, index, 4);
  store<u32>(e, out.v6 ? 1 : 0, 8);
  store<u64>(e, out.hi, 16);
  store<u64>(e, out.lo, 24);
  return true;
}

/**
 * Graywall expects the HTTP connection manager to have `use_remote_address: true`: then the peer
 * (source.address) is the real TCP peer, and Envoy appends one entry to XFF before filters run.
 * With trustedHops = N > 0 the client is the Nth entry from the right of XFF as it arrived, as with
 * Envoy's xff_num_trusted_hops: the rightmost entry (Envoy's own append) is skipped, then N counted.
 * Entries left of that were written by the client and are never read.
 * Falls back to the peer when XFF (the bytes at [xff, xff + xffLen); xffLen 0 when absent) is absent,
 * too short, or that entry is malformed. Returns false only when no usable address exists at all.
 */
export function resolveClientIp(peer: string | null, xff: usize, xffLen: i32, trustedHops: i32, out: IpAddr): bool {
  // Index 0 is Envoy's append.
  if (trustedHops > 0 && xffLen > 0 && xffFromRightCached(xff, xffLen, trustedHops, out)) return true;
  if (peer === null) return false;
  return parseHostPort(peer, out);
}
