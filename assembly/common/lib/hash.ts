// Stable hashing for sticky percentages. Must stay identical across releases: changing it reshuffles users.

export const FNV_OFFSET: u32 = 0x811c9dc5;

/** FNV-1a over UTF-16 code units, continuing from h. */
export function fnv1a(h: u32, s: string): u32 {
  for (let i = 0; i < s.length; i++) {
    h ^= <u32>s.charCodeAt(i);
    h *= 0x01000193;
  }
  return h;
}

/** FNV-1a over bytes. */
export function fnv1aBytes(h: u32, ptr: usize, len: i32): u32 {
  for (let i = 0; i < len; i++) {
    h ^= <u32>load<u8>(ptr + <usize>i);
    h *= 0x01000193;
  }
  return h;
}

/** murmur3's finaliser: spreads FNV's weak low bits before the modulo. */
export function fmix32(h: u32): u32 {
  h ^= h >> 16;
  h *= 0x85ebca6b;
  h ^= h >> 13;
  h *= 0xc2b2ae35;
  h ^= h >> 16;
  return h;
}

/** A user's bucket in 0..9999 for one salt; a percentage p matches buckets below p*100. */
export function stickyBucket(salt: string, key: string): u32 {
  let h = fnv1a(FNV_OFFSET, salt);
  h = fnv1a(h, "\u0000");
  h = fnv1a(h, key);
  return fmix32(h) % 10000;
}

/** A table key's hash: FNV-1a over its bytes, finalised. */
export function keyHash(ptr: usize, len: i32): u32 {
  return fmix32(fnv1aBytes(FNV_OFFSET, ptr, len));
}
