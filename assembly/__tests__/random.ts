// A xorshift PRNG for the specs' randomized comparisons: the same sequence on every run.
let seed: u64 = 0x9e3779b97f4a7c15;

export function rnd(): u64 {
  seed ^= seed << 13;
  seed ^= seed >> 7;
  seed ^= seed << 17;
  return seed;
}
