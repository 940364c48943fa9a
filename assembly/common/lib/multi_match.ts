// Aho-Corasick over ASCII, case-insensitive: finds which of several substring sets occur in a string
// in one pass, whatever the number of patterns. Compiled once at configure time into a full DFA.
// Pure.

const ALPHA = 128;

export class MultiMatcher {
  // delta[state * ALPHA + c] = next state; out[state] = OR of the set bits of patterns ending here.
  private delta: Int32Array;
  private out: Uint8Array;

  /** sets[i] are the patterns of set i (at most 8 sets); a match of set i sets bit i. */
  constructor(sets: string[][]) {
    // Trie of lower-cased patterns; characters outside ASCII never match (they map to 0, unused).
    const next = new Array<Int32Array>();
    const outs = new Array<u8>();
    next.push(new Int32Array(ALPHA).fill(-1));
    outs.push(0);
    for (let s = 0; s < sets.length; s++) {
      const list = sets[s];
      for (let p = 0; p < list.length; p++) {
        const pat = list[p];
        if (pat.length == 0) continue;
        let node = 0;
        for (let i = 0; i < pat.length; i++) {
          const c = fold(pat.charCodeAt(i));
          let n = unchecked(next[node])[c];
          if (n < 0) {
            n = next.length;
            next.push(new Int32Array(ALPHA).fill(-1));
            outs.push(0);
            unchecked(next[node])[c] = n;
          }
          node = n;
        }
        const bit: i32 = 1 << s;
        outs[node] = outs[node] | <u8>bit;
      }
    }
    // Breadth-first: fill missing transitions from the failure state, inherit its outputs.
    const n = next.length;
    const fail = new Int32Array(n);
    const queue = new Int32Array(n);
    let head = 0;
    let tail = 0;
    const root = unchecked(next[0]);
    for (let c = 0; c < ALPHA; c++) {
      const child = root[c];
      if (child < 0) root[c] = 0;
      else {
        fail[child] = 0;
        queue[tail++] = child;
      }
    }
    while (head < tail) {
      const s = queue[head++];
      const row = unchecked(next[s]);
      outs[s] = outs[s] | outs[fail[s]];
      const failRow = unchecked(next[fail[s]]);
      for (let c = 0; c < ALPHA; c++) {
        const child = row[c];
        if (child < 0) row[c] = failRow[c];
        else {
          fail[child] = failRow[c];
          queue[tail++] = child;
        }
      }
    }
    this.delta = new Int32Array(n * ALPHA);
    this.out = new Uint8Array(n);
    for (let s = 0; s < n; s++) {
      const row = unchecked(next[s]);
      for (let c = 0; c < ALPHA; c++) this.delta[s * ALPHA + c] = row[c];
      this.out[s] = outs[s];
    }
  }

  /** The same over UTF-8 bytes: a multi-byte character never matches, as in scan(). */
  scanBytes(ptr: usize, len: i32): u32 {
    let state = 0;
    let found: u32 = 0;
    const delta = this.delta;
    const out = this.out;
    for (let i = 0; i < len; i++) {
      state = unchecked(delta[state * ALPHA + fold(<i32>load<u8>(ptr + <usize>i))]);
      found |= unchecked(out[state]);
    }
    return found;
  }

  /** OR of the bits of every set with a pattern occurring in s (case-insensitive). */
  scan(s: string): u32 {
    let state = 0;
    let found: u32 = 0;
    const delta = this.delta;
    const out = this.out;
    for (let i = 0; i < s.length; i++) {
      state = unchecked(delta[state * ALPHA + fold(s.charCodeAt(i))]);
      found |= unchecked(out[state]);
    }
    return found;
  }
}

@inline function fold(c: i32): i32 {
  if (c >= 0x41 && c <= 0x5a) return c + 32;
  return c < ALPHA ? c : 0;
}
