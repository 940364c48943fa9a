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
 * A table key's hash, eight bytes a step: each word is xored in, multiplied and rotated, the tail (1-7
 * bytes, read as two overlapping words or three bytes) likewise, the length first; murmur3's 64-bit
 * finaliser folds it to 32 bits. Only this module's own tables use it (worker copies, verdict caches,
 * shared-data slots), so it may change between releases. (tests/support/key_hash.ts is its reference.)
 */
export function keyHash(ptr: usize, len: i32): u32 {
  let h: u64 = <u64>len * 0x9e3779b97f4a7c15;
  let p = ptr;
  const end = ptr + <usize>len;
  while (p + 8 <= end) {
    h = rotl<u64>((h ^ load<u64>(p)) * 0x87c37b91114253d5, 31);
    p += 8;
  }
  const rest = <i32>(end - p);
  if (rest > 0) {
    const w: u64 = rest >= 4
      ? <u64>load<u32>(p) | (<u64>load<u32>(end - 4) << 32)
      : <u64>load<u8>(p) | (<u64>load<u8>(p + <usize>(rest >> 1)) << 8) | (<u64>load<u8>(end - 1) << 16);
    h = rotl<u64>((h ^ w) * 0x87c37b91114253d5, 31);
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccd;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53;
  h ^= h >> 33;
  return <u32>h;
}
