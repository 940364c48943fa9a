// A table key assembled in a reused byte buffer from parts of a request (an address, header bytes,
// strings), so the hot path builds keys without allocating strings. Pure.
import { IpAddr } from "../lib/ip";

export class KeyBuilder {
  private buf: ArrayBuffer = new ArrayBuffer(256);
  length: i32 = 0;

  @inline get ptr(): usize { return changetype<usize>(this.buf); }

  reset(): void { this.length = 0; }

  private reserve(n: i32): usize {
    const need = this.length + n;
    if (need > this.buf.byteLength) {
      let size = this.buf.byteLength * 2;
      while (size < need) size *= 2;
      const grown = new ArrayBuffer(size);
      memory.copy(changetype<usize>(grown), changetype<usize>(this.buf), this.length);
      this.buf = grown;
    }
    const at = changetype<usize>(this.buf) + <usize>this.length;
    this.length = need;
    return at;
  }

  addByte(b: u8): void { store<u8>(this.reserve(1), b); }

  /** 17 bytes: family, then the 128-bit form. Two addresses share a key only if they are equal. */
  addIp(ip: IpAddr): void {
    const p = this.reserve(17);
    store<u8>(p, ip.v6 ? 6 : 4);
    store<u64>(p, ip.hi, 1);
    store<u64>(p, ip.lo, 9);
  }

  /** The network of an address: its first `bits4` (IPv4) or `bits6` (IPv6) bits, the rest zero. */
  addNetwork(ip: IpAddr, bits4: i32, bits6: i32): void {
    const p = this.reserve(18);
    store<u8>(p, ip.v6 ? 6 : 4);
    let hi = ip.hi;
    let lo = ip.lo;
    if (!ip.v6) {
      lo = bits4 >= 32 ? lo : (lo >> <u64>(32 - bits4)) << <u64>(32 - bits4);
    } else if (bits6 <= 64) {
      hi = bits6 == 64 ? hi : (hi >> <u64>(64 - bits6)) << <u64>(64 - bits6);
      lo = 0;
    } else if (bits6 < 128) {
      lo = (lo >> <u64>(128 - bits6)) << <u64>(128 - bits6);
    }
    store<u64>(p, hi, 1);
    store<u64>(p, lo, 9);
    store<u8>(p, <u8>(ip.v6 ? bits6 : bits4), 17);
  }

  /** The address as text (dotted IPv4; IPv6 as eight uncompressed hex groups), for keys sent in headers. */
  addIpText(ip: IpAddr): void {
    if (!ip.v6) {
      for (let i = 3; i >= 0; i--) {
        this.addDecimal(<u32>((ip.lo >> (<u64>i * 8)) & 0xff));
        if (i > 0) this.addByte(0x2e);
      }
      return;
    }
    for (let g = 7; g >= 0; g--) {
      const word = g >= 4 ? ip.hi : ip.lo;
      this.addHex(<u32>((word >> (<u64>(g & 3) * 16)) & 0xffff));
      if (g > 0) this.addByte(0x3a);
    }
  }

  private addDecimal(v: u32): void {
    if (v >= 100) this.addByte(<u8>(0x30 + v / 100));
    if (v >= 10) this.addByte(<u8>(0x30 + (v / 10) % 10));
    this.addByte(<u8>(0x30 + v % 10));
  }

  private addHex(v: u32): void {
    let started = false;
    for (let shift = 12; shift >= 0; shift -= 4) {
      const d = (v >> shift) & 0xf;
      if (d == 0 && !started && shift > 0) continue;
      started = true;
      this.addByte(<u8>(d < 10 ? 0x30 + d : 0x57 + d));
    }
  }

  /** The key so far as a string (keys sent in headers are text). */
  toText(): string {
    return String.UTF8.decodeUnsafe(changetype<usize>(this.buf), this.length);
  }

  addBytes(src: usize, n: i32): void {
    if (n > 0) memory.copy(this.reserve(n), src, n);
  }

  addString(s: string): void {
    const n = String.UTF8.byteLength(s);
    String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, this.reserve(n));
  }
}
