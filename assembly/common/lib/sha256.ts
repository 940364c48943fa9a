// SHA-256 (FIPS 180-4) and HMAC-SHA-256 (RFC 2104) over bytes in linear memory. Pure. Used only on
// requests that carry a challenge clearance to verify or get a challenge issued.

const K: u32[] = [
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

const BLOCK = 64;

/** An incremental SHA-256: reset(), update() any number of times, then finish(). */
export class Sha256 {
  private h: StaticArray<u32> = new StaticArray<u32>(8);
  private w: StaticArray<u32> = new StaticArray<u32>(64);
  private buf: Uint8Array = new Uint8Array(BLOCK);
  private bufLen: i32 = 0;
  private total: u64 = 0;
  /** The last digest, 32 bytes. */
  digest: Uint8Array = new Uint8Array(32);

  constructor() { this.reset(); }

  reset(): Sha256 {
    const h = this.h;
    h[0] = 0x6a09e667; h[1] = 0xbb67ae85; h[2] = 0x3c6ef372; h[3] = 0xa54ff53a;
    h[4] = 0x510e527f; h[5] = 0x9b05688c; h[6] = 0x1f83d9ab; h[7] = 0x5be0cd19;
    this.bufLen = 0;
    this.total = 0;
    return this;
  }

  update(ptr: usize, len: i32): Sha256 {
    this.total += <u64>len;
    const buf = this.buf.dataStart;
    let i = 0;
    while (i < len) {
      const take = min(BLOCK - this.bufLen, len - i);
      memory.copy(buf + <usize>this.bufLen, ptr + <usize>i, <usize>take);
      this.bufLen += take;
      i += take;
      if (this.bufLen == BLOCK) {
        this.block(buf);
        this.bufLen = 0;
      }
    }
    return this;
  }

  updateString(s: string): Sha256 {
    const b = String.UTF8.encode(s);
    return this.update(changetype<usize>(b), b.byteLength);
  }

  /** Copies the chaining state after whole blocks (a midstate) into `out`. */
  saveState(out: StaticArray<u32>): void {
    for (let i = 0; i < 8; i++) unchecked(out[i] = this.h[i]);
  }

  /** Continues from a midstate saved after `blocks` whole blocks, as if they had just been hashed. */
  resume(state: StaticArray<u32>, blocks: i32): Sha256 {
    for (let i = 0; i < 8; i++) unchecked(this.h[i] = state[i]);
    this.bufLen = 0;
    this.total = <u64>blocks * BLOCK;
    return this;
  }

  /** Pads, writes the digest into `digest`, and resets. */
  finish(): Uint8Array {
    const bits = this.total * 8;
    const buf = this.buf.dataStart;
    store<u8>(buf + <usize>this.bufLen, 0x80);
    this.bufLen++;
    if (this.bufLen > 56) {
      memory.fill(buf + <usize>this.bufLen, 0, <usize>(BLOCK - this.bufLen));
      this.block(buf);
      this.bufLen = 0;
    }
    memory.fill(buf + <usize>this.bufLen, 0, <usize>(56 - this.bufLen));
    for (let k = 0; k < 8; k++) store<u8>(buf + <usize>(56 + k), <u8>(bits >> (56 - 8 * k)));
    this.block(buf);
    const out = this.digest.dataStart;
    for (let k = 0; k < 8; k++) store<u32>(out + <usize>(4 * k), bswap<u32>(unchecked(this.h[k])));
    this.reset();
    return this.digest;
  }

  private block(p: usize): void {
    const w = this.w;
    for (let t = 0; t < 16; t++) unchecked(w[t] = bswap<u32>(load<u32>(p + <usize>(4 * t))));
    for (let t = 16; t < 64; t++) {
      const a = unchecked(w[t - 15]);
      const b = unchecked(w[t - 2]);
      const s0 = rotr<u32>(a, 7) ^ rotr<u32>(a, 18) ^ (a >>> 3);
      const s1 = rotr<u32>(b, 17) ^ rotr<u32>(b, 19) ^ (b >>> 10);
      unchecked(w[t] = unchecked(w[t - 16]) + s0 + unchecked(w[t - 7]) + s1);
    }
    const h = this.h;
    let a = unchecked(h[0]), b = unchecked(h[1]), c = unchecked(h[2]), d = unchecked(h[3]);
    let e = unchecked(h[4]), f = unchecked(h[5]), g = unchecked(h[6]), hh = unchecked(h[7]);
    for (let t = 0; t < 64; t++) {
      const t1 = hh + (rotr<u32>(e, 6) ^ rotr<u32>(e, 11) ^ rotr<u32>(e, 25)) + ((e & f) ^ (~e & g)) + unchecked(K[t]) + unchecked(w[t]);
      const t2 = (rotr<u32>(a, 2) ^ rotr<u32>(a, 13) ^ rotr<u32>(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    unchecked(h[0] += a); unchecked(h[1] += b); unchecked(h[2] += c); unchecked(h[3] += d);
    unchecked(h[4] += e); unchecked(h[5] += f); unchecked(h[6] += g); unchecked(h[7] += hh);
  }
}

/** HMAC-SHA-256 with a fixed key: the padded key blocks are prepared once. */
export class HmacSha256 {
  /** The hash states after the key's inner and outer pad blocks: each MAC starts from them. */
  private inner: StaticArray<u32> = new StaticArray<u32>(8);
  private outer: StaticArray<u32> = new StaticArray<u32>(8);
  private sha: Sha256 = new Sha256();
  mac: Uint8Array = new Uint8Array(32);

  constructor(key: ArrayBuffer) {
    let k = Uint8Array.wrap(key);
    if (k.length > BLOCK) {
      this.sha.update(changetype<usize>(key), key.byteLength);
      k = this.sha.finish().slice(0);
    }
    const pad = new Uint8Array(BLOCK);
    for (let pass = 0; pass < 2; pass++) {
      const x: u8 = pass == 0 ? 0x36 : 0x5c;
      for (let i = 0; i < BLOCK; i++) {
        let b: u8 = 0;
        if (i < k.length) b = k[i];
        pad[i] = b ^ x;
      }
      this.sha.reset().update(pad.dataStart, BLOCK);
      this.sha.saveState(pass == 0 ? this.inner : this.outer);
      this.sha.reset();
    }
  }

  /** The MAC of the `len` bytes at `ptr`, into `mac`: two compressions for a short message, not four. */
  sign(ptr: usize, len: i32): Uint8Array {
    const sha = this.sha;
    sha.resume(this.inner, 1).update(ptr, len);
    const inner = sha.finish();
    const tmp = this.mac;
    memory.copy(tmp.dataStart, inner.dataStart, 32);
    sha.resume(this.outer, 1).update(tmp.dataStart, 32);
    memory.copy(tmp.dataStart, sha.finish().dataStart, 32);
    return tmp;
  }

  signString(s: string): Uint8Array {
    const b = String.UTF8.encode(s);
    return this.sign(changetype<usize>(b), b.byteLength);
  }
}

/**
 * Whether the `n` bytes at `a` and at `b` are equal, in constant time: every byte is compared whatever
 * differs, so the time says nothing of how much of a secret matched.
 */
export function sameBytes(a: usize, b: usize, n: i32): bool {
  let diff: u64 = 0;
  let i = 0;
  for (; i + 8 <= n; i += 8) diff |= load<u64>(a + <usize>i) ^ load<u64>(b + <usize>i);
  for (; i < n; i++) diff |= <u64>(load<u8>(a + <usize>i) ^ load<u8>(b + <usize>i));
  return diff == 0;
}

/** The ASCII code of a nibble's lower-case hex digit. */
@inline function hexDigit(v: u32): u32 { return v < 10 ? 0x30 + v : 0x57 + v; }

/** Lower-case hex of `n` bytes at `ptr`. */
export function toHex(ptr: usize, n: i32): string {
  if (n <= 0) return "";
  // One string of 2n UTF-16 units written in place: no string per byte.
  const out = changetype<string>(__new(<usize>n << 2, idof<string>()));
  const at = changetype<usize>(out);
  for (let i = 0; i < n; i++) {
    const b = <u32>load<u8>(ptr + <usize>i);
    store<u16>(at + (<usize>i << 2), <u16>hexDigit(b >> 4));
    store<u16>(at + (<usize>i << 2) + 2, <u16>hexDigit(b & 15));
  }
  return out;
}

/** Leading zero bits of the 32 bytes at `ptr`. */
export function leadingZeroBits(ptr: usize): i32 {
  let n = 0;
  for (let i = 0; i < 32; i++) {
    const b = <u32>load<u8>(ptr + <usize>i);
    if (b == 0) {
      n += 8;
      continue;
    }
    return n + <i32>clz<u32>(b) - 24;
  }
  return n;
}

/**
 * A secret and, during a rotation, the one before it: values are signed with the first and accepted
 * under either. The MAC is the first `bytes` bytes of HMAC-SHA-256, in hex.
 */
export class RotatingKeys {
  private keys: HmacSha256[] = [];

  constructor(secret: string, previous: string) {
    if (secret.length > 0) this.keys.push(new HmacSha256(String.UTF8.encode(secret)));
    if (previous.length > 0) this.keys.push(new HmacSha256(String.UTF8.encode(previous)));
  }

  get enabled(): bool { return this.keys.length > 0; }
  get count(): i32 { return this.keys.length; }

  /** Hex of the first `bytes` bytes of the MAC of `s` under key k (0: the current one). */
  macHex(k: i32, s: string, bytes: i32): string {
    const m = this.keys[k].signString(s);
    return toHex(m.dataStart, bytes);
  }

  /**
   * Whether the lower-case hex at `hex` (2 * `bytes` characters) is the first `bytes` bytes of the MAC of
   * the bytes at [ptr, ptr + len) under key k, compared in constant time.
   */
  macMatchesHex(k: i32, ptr: usize, len: i32, hex: usize, bytes: i32): bool {
    const m = this.keys[k].sign(ptr, len).dataStart;
    let diff: u32 = 0;
    for (let i = 0; i < bytes; i++) {
      const b = <u32>load<u8>(m + <usize>i);
      diff |= (hexDigit(b >> 4) ^ <u32>load<u8>(hex + <usize>(2 * i))) | (hexDigit(b & 15) ^ <u32>load<u8>(hex + <usize>(2 * i + 1)));
    }
    return diff == 0;
  }
}
