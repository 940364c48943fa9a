// Standard base64 (RFC 4648, padding optional): a reader that yields one byte at a time (a packed list of
// hundreds of kilobytes is never decoded whole), whole-value decoding into a caller's buffer, and encoding.
// Pure: no host calls.

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Each ASCII code's base64 value, -1 where it is not one. */
const VALUES: StaticArray<i8> = valueTable();

function valueTable(): StaticArray<i8> {
  const t = new StaticArray<i8>(128);
  for (let i = 0; i < 128; i++) t[i] = -1;
  for (let i = 0; i < ALPHABET.length; i++) t[ALPHABET.charCodeAt(i)] = <i8>i;
  return t;
}

/** Reads the bytes of s[start, end) one at a time; up to two trailing '=' are padding. */
export class Base64Reader {
  s: string = "";
  start: i32 = 0;
  pos: i32 = 0;
  end: i32 = 0;
  acc: u32 = 0;
  /** Bits read and not yet returned (6 or more at the end: a character more than whole bytes need). */
  bits: i32 = 0;
  /** Where a character outside the alphabet was met (-1: none). */
  bad: i32 = -1;

  reset(s: string, start: i32, end: i32): Base64Reader {
    let pad = 0;
    while (end > start && pad < 2 && s.charCodeAt(end - 1) == 0x3d) { end--; pad++; }
    this.s = s;
    this.start = start;
    this.pos = start;
    this.end = end;
    this.acc = 0;
    this.bits = 0;
    this.bad = -1;
    return this;
  }

  /** The next byte, or -1 at the end of the data (or at a bad character: see `bad`). */
  next(): i32 {
    while (this.bits < 8) {
      if (this.pos >= this.end) return -1;
      const c = this.s.charCodeAt(this.pos);
      const v: i32 = c < 128 ? <i32>unchecked(VALUES[c]) : -1;
      if (v < 0) { this.bad = this.pos; return -1; }
      this.acc = (this.acc << 6) | <u32>v;
      this.bits += 6;
      this.pos++;
    }
    this.bits -= 8;
    return <i32>((this.acc >> <u32>this.bits) & 0xff);
  }
}

const reader = new Base64Reader();

/** Decodes `s` into `out`; the byte count, or -1 when malformed or longer than `out`. Allocates nothing. */
export function base64Decode(s: string, out: Uint8Array): i32 {
  const r = reader.reset(s, 0, s.length);
  let n = 0;
  for (let b = r.next(); b >= 0; b = r.next()) {
    if (n >= out.length) return -1;
    unchecked((out[n++] = <u8>b));
  }
  return r.bad >= 0 ? -1 : n;
}

/** The first `len` bytes of `b` in base64, padded. */
export function base64Encode(b: Uint8Array, len: i32): string {
  const units = new Uint16Array(((len + 2) / 3) * 4);
  let o = 0;
  for (let i = 0; i < len; i += 3) {
    const b0 = <u32>unchecked(b[i]);
    const b1 = i + 1 < len ? <u32>unchecked(b[i + 1]) : 0;
    const b2 = i + 2 < len ? <u32>unchecked(b[i + 2]) : 0;
    const w = (b0 << 16) | (b1 << 8) | b2;
    unchecked((units[o++] = <u16>ALPHABET.charCodeAt(<i32>(w >> 18) & 63)));
    unchecked((units[o++] = <u16>ALPHABET.charCodeAt(<i32>(w >> 12) & 63)));
    unchecked((units[o++] = i + 1 < len ? <u16>ALPHABET.charCodeAt(<i32>(w >> 6) & 63) : 0x3d));
    unchecked((units[o++] = i + 2 < len ? <u16>ALPHABET.charCodeAt(<i32>w & 63) : 0x3d));
  }
  return String.UTF16.decodeUnsafe(units.dataStart, <usize>o << 1);
}
