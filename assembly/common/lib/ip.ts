// IPv4/IPv6 address and CIDR parsing into 128-bit form. Pure; no allocation on the address path.

/** A parsed address: IPv4 lives in the low 32 bits of `lo` with v6 = false. */
export class IpAddr {
  v6: bool = false;
  hi: u64 = 0;
  lo: u64 = 0;

  /** Bit i (0 = most significant) of the address. */
  @inline bit(i: i32): i32 {
    if (!this.v6) return <i32>((this.lo >> (31 - i)) & 1);
    return i < 64 ? <i32>((this.hi >> (63 - i)) & 1) : <i32>((this.lo >> (127 - i)) & 1);
  }

  @inline get bits(): i32 { return this.v6 ? 128 : 32; }
}

/** A compact, canonical string for an address, for use as a hash or table key. */
export function ipKey(ip: IpAddr): string {
  if (ip.v6) return ip.hi.toString(16) + ":" + ip.lo.toString(16);
  return ip.lo.toString();
}

/** The longest address text worth parsing (a full IPv6 with an IPv4 tail is 45 characters). */
const MAX_ADDRESS_CHARS = 64;
const scratch = memory.data(MAX_ADDRESS_CHARS);

/** Parses the bytes at [p + start, p + end) as an IPv4 or IPv6 address into out. IPv4-mapped IPv6 becomes IPv4. */
export function parseIpAt(p: usize, start: i32, end: i32, out: IpAddr): bool {
  // Trim spaces, which XFF lists carry after commas.
  while (start < end && load<u8>(p + <usize>start) == 0x20) start++;
  while (end > start && load<u8>(p + <usize>end - 1) == 0x20) end--;
  if (start >= end || end - start > MAX_ADDRESS_CHARS) return false;
  for (let i = start; i < end; i++) {
    if (load<u8>(p + <usize>i) == 0x3a) return parseV6(p, start, end, out);
  }
  const v4 = parseV4(p, start, end);
  if (v4 < 0) return false;
  out.v6 = false;
  out.hi = 0;
  out.lo = <u64>v4;
  return true;
}

/** parseIpAt for s[start, end): its characters are copied to a scratch buffer (anything not ASCII fails). */
export function parseIpRange(s: string, start: i32, end: i32, out: IpAddr): bool {
  while (start < end && s.charCodeAt(start) == 0x20) start++;
  while (end > start && s.charCodeAt(end - 1) == 0x20) end--;
  if (start >= end || end - start > MAX_ADDRESS_CHARS) return false;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    store<u8>(scratch + <usize>(i - start), c < 0x80 ? <u8>c : 0xff);
  }
  return parseIpAt(scratch, 0, end - start, out);
}

export function parseIp(s: string, out: IpAddr): bool {
  return parseIpRange(s, 0, s.length, out);
}

/** Returns the address as u32 in an i64, or -1. Strict dotted quad: no leading zeros, no short forms. */
function parseV4(p: usize, start: i32, end: i32): i64 {
  let value: i64 = 0;
  let parts = 0;
  let i = start;
  while (parts < 4) {
    if (i >= end) return -1;
    let n = 0;
    let digits = 0;
    const first = <i32>load<u8>(p + <usize>(i));
    while (i < end) {
      const c = <i32>load<u8>(p + <usize>(i));
      if (c < 0x30 || c > 0x39) break;
      n = n * 10 + (c - 0x30);
      digits++;
      i++;
      if (digits > 3) return -1;
    }
    if (digits == 0 || n > 255 || (digits > 1 && first == 0x30)) return -1;
    value = (value << 8) | n;
    parts++;
    if (parts < 4) {
      if (i >= end || <i32>load<u8>(p + <usize>(i)) != 0x2e) return -1;
      i++;
    }
  }
  return i == end ? value : -1;
}

function hexVal(c: i32): i32 {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

const groups = new StaticArray<u32>(8);

function parseV6(p: usize, start: i32, end: i32, out: IpAddr): bool {
  let n = 0;          // groups written
  let gap = -1;       // index where "::" stands
  let i = start;
  if (end - start >= 2 && <i32>load<u8>(p + <usize>(i)) == 0x3a) {
    if (<i32>load<u8>(p + <usize>(i + 1)) != 0x3a) return false;
    gap = 0;
    i += 2;
    if (i == end) { return finishV6(n, gap, out); }
  }
  while (i < end) {
    if (n >= 8) return false;
    // An embedded IPv4 tail: the rest contains a dot.
    let hasDot = false;
    for (let j = i; j < end; j++) { const c = <i32>load<u8>(p + <usize>(j)); if (c == 0x2e) { hasDot = true; break; } if (c == 0x3a) break; }
    if (hasDot) {
      if (n > 6) return false;
      const v4 = parseV4(p, i, end);
      if (v4 < 0) return false;
      groups[n++] = <u32>(v4 >> 16);
      groups[n++] = <u32>(v4 & 0xffff);
      i = end;
      break;
    }
    let v = 0;
    let digits = 0;
    while (i < end) {
      const h = hexVal(<i32>load<u8>(p + <usize>(i)));
      if (h < 0) break;
      v = (v << 4) | h;
      digits++;
      i++;
      if (digits > 4) return false;
    }
    if (digits == 0) return false;
    groups[n++] = v;
    if (i == end) break;
    if (<i32>load<u8>(p + <usize>(i)) != 0x3a) return false;
    i++;
    if (i < end && <i32>load<u8>(p + <usize>(i)) == 0x3a) {
      if (gap >= 0) return false;
      gap = n;
      i++;
      if (i == end) break;
    } else if (i == end) {
      return false; // trailing single colon
    }
  }
  return finishV6(n, gap, out);
}

function finishV6(n: i32, gap: i32, out: IpAddr): bool {
  if (gap < 0 && n != 8) return false;
  if (gap >= 0 && n >= 8) return false;
  let hi: u64 = 0;
  let lo: u64 = 0;
  const fill = 8 - n;
  let g = 0;
  for (let k = 0; k < 8; k++) {
    let v: u64 = 0;
    if (gap >= 0 && k >= gap && k < gap + fill) v = 0;
    else v = <u64>groups[g++];
    if (k < 4) hi = (hi << 16) | v;
    else lo = (lo << 16) | v;
  }
  // ::ffff:a.b.c.d is an IPv4 client on a dual-stack socket: treat it as IPv4.
  if (hi == 0 && (lo >> 32) == 0xffff) {
    out.v6 = false;
    out.hi = 0;
    out.lo = lo & 0xffffffff;
    return true;
  }
  out.v6 = true;
  out.hi = hi;
  out.lo = lo;
  return true;
}

/**
 * Parses Envoy's "source.address" form: "1.2.3.4:5678" or "[::1]:5678" (or a bare address).
 */
export function parseHostPort(s: string, out: IpAddr): bool {
  const len = s.length;
  if (len == 0) return false;
  if (s.charCodeAt(0) == 0x5b) {
    const close = s.indexOf("]");
    if (close < 0) return false;
    return parseIpRange(s, 1, close, out);
  }
  const colon = s.indexOf(":");
  if (colon >= 0 && s.indexOf(":", colon + 1) < 0) return parseIpRange(s, 0, colon, out);
  return parseIpRange(s, 0, len, out);
}

/** A CIDR: an address and a prefix length. */
export class Cidr {
  addr: IpAddr = new IpAddr();
  prefix: i32 = 0;
}

/** Parses "addr" or "addr/len". Host bits beyond the prefix are allowed and ignored. */
export function parseCidr(s: string, out: Cidr): bool {
  return parseCidrRange(s, 0, s.length, out);
}

/** parseCidr for s[start, end), whitespace around it ignored, without copying it out. */
export function parseCidrRange(s: string, start: i32, end: i32, out: Cidr): bool {
  while (start < end && s.charCodeAt(start) <= 0x20) start++;
  while (end > start && s.charCodeAt(end - 1) <= 0x20) end--;
  let slash = start;
  while (slash < end && s.charCodeAt(slash) != 0x2f) slash++;
  if (slash == end) {
    if (!parseIpRange(s, start, end, out.addr)) return false;
    out.prefix = out.addr.bits;
    return true;
  }
  if (!parseIpRange(s, start, slash, out.addr)) return false;
  const digits = end - slash - 1;
  if (digits == 0 || digits > 3) return false;
  let n = 0;
  for (let i = slash + 1; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
    n = n * 10 + (c - 0x30);
  }
  // "::ffff:10.0.0.0/104" is an IPv4 /8 once mapped down.
  if (!out.addr.v6) {
    let colon = false;
    for (let i = start; i < slash && !colon; i++) colon = s.charCodeAt(i) == 0x3a;
    if (colon) {
      if (n < 96 || n > 128) return false;
      n -= 96;
    }
  }
  if (n > out.addr.bits) return false;
  out.prefix = n;
  return true;
}
