// The packed form of a long CIDR list (docs/ip_list.md, "Packed lists"): what graywall-control delivers
// in place of a JSON array of many strings, so Envoy and each VM carry 3-5 bytes an IPv4 entry instead
// of about 18. Encoder and decoder are both here, over the one CIDR parser, so a packed list means
// exactly what the list of strings meant.
//
// base64 (RFC 4648, standard alphabet, padding optional) of the format version (1), then the entries:
//   IPv4: a byte p (0-32, the prefix), then a LEB128 varint d: the entry's network number,
//         address >> (32 - p), is (previous IPv4 address >> (32 - p)) + d. IPv4 entries come in ascending
//         address order; the first is measured from 0.0.0.0.
//   IPv6: a byte 64 + p (p 0-128), then the 16 address bytes, most significant first.
// Host bits beyond a prefix are zero in what the encoder writes and ignored by the decoder.
import { CidrSet } from "./cidr_set";
import { Base64Reader, base64Encode } from "./base64";
import { Cidr, parseCidrRange } from "./ip";

export const PACK_VERSION: u8 = 1;
const V6_TAG: i32 = 64;

/**
 * Adds the entries of the packed list src[start, end) to `into`. Returns "" or what is wrong (without the
 * field's name). At most `max` entries. The list is read twice: once to check it and count its IPv4 entries, so they are
 * staged in one array of exactly their size, then to add them.
 */
export function unpackCidrs(src: string, start: i32, end: i32, into: CidrSet, max: i32): string {
  const err = walk(src, start, end, null, max);
  if (err.length > 0) return err;
  into.reserve(v4Walked);
  return walk(src, start, end, into, max);
}

/** IPv4 entries the last walk met. */
let v4Walked: i32 = 0;

const reader = new Base64Reader();

function walk(src: string, start: i32, end: i32, into: CidrSet | null, max: i32): string {
  v4Walked = 0;
  const r = reader.reset(src, start, end);
  const version = r.next();
  if (version < 0) return r.bad >= 0 ? notBase64(r) : "is empty (a packed list starts with its format version)";
  if (version != PACK_VERSION) return "format version " + version.toString() + " is not read here (version 1 is)";
  let prev: u64 = 0;
  let n = 0;
  while (true) {
    const tag = r.next();
    if (tag < 0) {
      if (r.bad >= 0) return notBase64(r);
      // One character more than whole bytes need is not base64.
      if (r.bits >= 6) return "is cut short (a stray base64 character at the end)";
      return "";
    }
    if (n >= max) return "has more than " + max.toString() + " entries";
    if (tag <= 32) {
      let d: u64 = 0;
      let shift: u64 = 0;
      while (true) {
        const b = r.next();
        if (b < 0) return r.bad >= 0 ? notBase64(r) : entry(n) + " is cut short";
        if (shift >= 35) return entry(n) + ": its varint is longer than 5 bytes";
        d |= <u64>(b & 0x7f) << shift;
        shift += 7;
        if ((b & 0x80) == 0) break;
      }
      const h = <u64>(32 - tag);
      const net = (prev >> h) + d;
      if ((net >> <u64>tag) != 0) return entry(n) + ": the address runs past 255.255.255.255";
      prev = net << h;
      v4Walked++;
      if (into !== null) into.insertV4(<u32>prev, tag);
    } else if (tag >= V6_TAG && tag <= V6_TAG + 128) {
      let hi: u64 = 0;
      let lo: u64 = 0;
      for (let i = 0; i < 16; i++) {
        const b = r.next();
        if (b < 0) return r.bad >= 0 ? notBase64(r) : entry(n) + " is cut short";
        if (i < 8) hi = (hi << 8) | <u64>b;
        else lo = (lo << 8) | <u64>b;
      }
      if (into !== null) into.insertV6(hi, lo, tag - V6_TAG);
    } else {
      return entry(n) + ": tag byte " + tag.toString() + " is neither an IPv4 prefix (0-32) nor 64 + an IPv6 prefix (64-192)";
    }
    n++;
  }
}

function entry(n: i32): string {
  return "entry " + n.toString();
}

function notBase64(r: Base64Reader): string {
  return "is not base64 (character " + (r.bad - r.start).toString() + ")";
}

/** Bytes written so far, growing by doubling. */
class ByteOut {
  buf: Uint8Array = new Uint8Array(256);
  len: i32 = 0;

  push(b: i32): void {
    if (this.len == this.buf.length) {
      const grown = new Uint8Array(this.len * 2);
      memory.copy(grown.dataStart, this.buf.dataStart, <usize>this.len);
      this.buf = grown;
    }
    unchecked(this.buf[this.len++] = <u8>b);
  }
}

/**
 * The packed form of `list` (each entry as the filter's lists read it: "addr" or "addr/len"), or null
 * when an entry does not parse (the list is then left as it is, for the filter to report).
 */
export function packCidrs(list: string[]): string | null {
  const v4 = new Array<u64>();
  const v6 = new Array<Cidr>();
  for (let i = 0; i < list.length; i++) {
    const c = new Cidr();
    if (!parseCidrRange(list[i], 0, list[i].length, c)) return null;
    if (c.addr.v6) v6.push(c);
    else {
      const p = c.prefix;
      const net = <u32>c.addr.lo & <u32>(<u64>0xffffffff << <u64>(32 - p));
      v4.push((<u64>net << 32) | <u64>p);
    }
  }
  v4.sort((a: u64, b: u64): i32 => (a < b ? -1 : a > b ? 1 : 0));
  const out = new ByteOut();
  out.push(PACK_VERSION);
  let prev: u64 = 0;
  for (let i = 0; i < v4.length; i++) {
    const addr = v4[i] >> 32;
    const p = <i32>(v4[i] & 0xff);
    const h = <u64>(32 - p);
    let d = (addr >> h) - (prev >> h);
    out.push(p);
    while (d >= 0x80) { out.push(<i32>(d & 0x7f) | 0x80); d >>= 7; }
    out.push(<i32>d);
    prev = addr;
  }
  for (let i = 0; i < v6.length; i++) {
    const c = v6[i];
    out.push(V6_TAG + c.prefix);
    for (let k = 7; k >= 0; k--) out.push(<i32>((c.addr.hi >> <u64>(k * 8)) & 0xff));
    for (let k = 7; k >= 0; k--) out.push(<i32>((c.addr.lo >> <u64>(k * 8)) & 0xff));
  }
  return base64Encode(out.buf, out.len);
}
