// Byte-range equality for the request path: eight bytes a load (wasm loads need no alignment), where
// memory.compare goes a byte at a time unless both ranges share an alignment. Returns at the first
// difference: for secrets, sameBytes (sha256.ts) takes the same time whatever the bytes.

/** Whether the `n` bytes at `a` and at `b` are the same (`n` >= 0). */
export function bytesEqual(a: usize, b: usize, n: i32): bool {
  const m = <usize>n;
  let i: usize = 0;
  while (i + 8 <= m) {
    if (load<u64>(a + i) != load<u64>(b + i)) return false;
    i += 8;
  }
  const rest = m - i;
  if ((rest & 4) != 0) {
    if (load<u32>(a + i) != load<u32>(b + i)) return false;
    i += 4;
  }
  if ((rest & 2) != 0) {
    if (load<u16>(a + i) != load<u16>(b + i)) return false;
    i += 2;
  }
  return (rest & 1) == 0 || load<u8>(a + i) == load<u8>(b + i);
}

const ONES: u64 = 0x0101010101010101;
const HIGHS: u64 = 0x8080808080808080;

/** Index of the first byte `b` in [from, len) of the bytes at `ptr`, or `len`: eight bytes a step. */
export function indexOfByte(ptr: usize, from: i32, len: i32, b: u8): i32 {
  let i = from;
  const pattern = ONES * <u64>b;
  while (i + 8 <= len) {
    const x = load<u64>(ptr + <usize>i) ^ pattern;
    // A zero byte of x is a match; the lowest flagged byte is the first (flags above a match may be false).
    const found = (x - ONES) & ~x & HIGHS;
    if (found != 0) return i + <i32>(ctz<u64>(found) >> 3);
    i += 8;
  }
  while (i < len) {
    if (load<u8>(ptr + <usize>i) == b) return i;
    i++;
  }
  return len;
}
