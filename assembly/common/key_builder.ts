// A table key assembled in a reused byte buffer from parts of a request (an address, header bytes,
// strings), so the hot path builds keys without allocating strings. Pure.
import { IpAddr } from "./ip";

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

  addBytes(src: usize, n: i32): void {
    if (n > 0) memory.copy(this.reserve(n), src, n);
  }

  addString(s: string): void {
    const n = String.UTF8.byteLength(s);
    String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, this.reserve(n));
  }
}
