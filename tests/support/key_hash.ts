// The module's keyHash (assembly/common/lib/hash.ts) in TypeScript, for tests that need a key's slot.
const M = (1n << 64n) - 1n;
const K = 0x87c37b91114253d5n;
const rotl31 = (x: bigint) => ((x << 31n) | (x >> 33n)) & M;

export function keyHash(bytes: Uint8Array | string): number {
  const b = typeof bytes === "string" ? Buffer.from(bytes, "utf8") : Buffer.from(bytes);
  const len = b.length;
  let h = (BigInt(len) * 0x9e3779b97f4a7c15n) & M;
  let p = 0;
  for (; p + 8 <= len; p += 8) h = rotl31(((h ^ b.readBigUInt64LE(p)) * K) & M);
  const rest = len - p;
  if (rest > 0) {
    const w =
      rest >= 4
        ? BigInt(b.readUInt32LE(p)) | (BigInt(b.readUInt32LE(len - 4)) << 32n)
        : BigInt(b[p]) | (BigInt(b[p + (rest >> 1)]) << 8n) | (BigInt(b[len - 1]) << 16n);
    h = rotl31(((h ^ w) * K) & M);
  }
  h ^= h >> 33n;
  h = (h * 0xff51afd7ed558ccdn) & M;
  h ^= h >> 33n;
  h = (h * 0xc4ceb9fe1a85ec53n) & M;
  h ^= h >> 33n;
  return Number(h & 0xffffffffn);
}
