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

/**
 * stickyBucket for a key given as bytes: the same bucket as for the string they spell when they are all
 * ASCII (FNV-1a then sees the same units); -1 when they are not (the caller hashes the decoded string).
 */
export function stickyBucketAscii(salt: string, ptr: usize, len: i32): i32 {
  let h = fnv1a(FNV_OFFSET, salt);
  h = fnv1a(h, "\u0000");
  for (let i = 0; i < len; i++) {
    const c = <u32>load<u8>(ptr + <usize>i);
    if (c >= 0x80) return -1;
    h ^= c;
    h *= 0x01000193;
  }
  return <i32>(fmix32(h) % 10000);
}

/**
 * A table key's hash: MurmurHash3 (x86, 32-bit) over its bytes, four at a time. Only this module's own
 * tables use it (worker copies, verdict caches, shared-data slots), so it may change between releases.
 */
export function keyHash(ptr: usize, len: i32): u32 {
  let h: u32 = 0; // seed 0
  const words = len >> 2;
  for (let i = 0; i < words; i++) {
    let k = load<u32>(ptr + (<usize>i << 2));
    k *= 0xcc9e2d51;
    k = rotl<u32>(k, 15);
    k *= 0x1b873593;
    h ^= k;
    h = rotl<u32>(h, 13);
    h = h * 5 + 0xe6546b64;
  }
  const tail = ptr + (<usize>words << 2);
  let k: u32 = 0;
  const rest = len & 3;
  if (rest == 3) k ^= <u32>load<u8>(tail, 2) << 16;
  if (rest >= 2) k ^= <u32>load<u8>(tail, 1) << 8;
  if (rest >= 1) {
    k ^= <u32>load<u8>(tail);
    k *= 0xcc9e2d51;
    k = rotl<u32>(k, 15);
    k *= 0x1b873593;
    h ^= k;
  }
  return fmix32(h ^ <u32>len);
}
