// Binary prefix trie over IPv4 and IPv6 CIDRs. Lookup walks at most 32 or 128 nodes, whatever the list
// size. Nodes live in flat typed arrays: no per-node objects for the GC to track. Entries are staged as
// they are read, then sorted and the trie built once, in arrays sized from the sorted list: a
// 100,000-entry list leaves no growth garbage behind (with the minimal runtime nothing is collected
// until the configuration is in force, so garbage would be a VM's peak memory).
import { Cidr, IpAddr, parseCidrRange } from "./ip";

const NONE: i32 = 0;
/** Staged IPv6 entries: [hi, lo, prefix] with the address top-aligned in 128 bits and its host bits zeroed. */
const STAGED_WORDS = 3;

/** The staged entries being sorted (AssemblyScript's sort takes no closure). */
let sorting: Uint64Array = new Uint64Array(0);

function stagedOrder(a: i32, b: i32): i32 {
  const s = sorting;
  const ah = unchecked(s[a * STAGED_WORDS]);
  const bh = unchecked(s[b * STAGED_WORDS]);
  if (ah != bh) return ah < bh ? -1 : 1;
  const al = unchecked(s[a * STAGED_WORDS + 1]);
  const bl = unchecked(s[b * STAGED_WORDS + 1]);
  if (al != bl) return al < bl ? -1 : 1;
  return <i32>unchecked(s[a * STAGED_WORDS + 2]) - <i32>unchecked(s[b * STAGED_WORDS + 2]);
}

/** Leading bits two top-aligned 128-bit addresses share. */
@inline function commonBits(ah: u64, al: u64, bh: u64, bl: u64): i32 {
  if (ah != bh) return <i32>clz<u64>(ah ^ bh);
  if (al != bl) return 64 + <i32>clz<u64>(al ^ bl);
  return 128;
}

@inline function bitAt(hi: u64, lo: u64, i: i32): i32 {
  return i < 64 ? <i32>((hi >> <u64>(63 - i)) & 1) : <i32>((lo >> <u64>(127 - i)) & 1);
}

/** An IPv4 entry staged in one word: the address top-aligned (its low 32 bits are zero) | the prefix. */
const PACKED_PREFIX: u64 = 0xff;

class BitTrie {
  // kids[2n] / kids[2n+1]: child index for bit 0 / 1 (0 = none; node 0 is the root).
  kids: Int32Array = new Int32Array(2);
  terminal: Uint8Array = new Uint8Array(1);
  nodeCount: i32 = 1;
  private staged: Uint64Array = new Uint64Array(0);
  private count: i32 = 0;
  /** Words a staged entry takes: 1 for IPv4 (packed; sorted as numbers, in place), 3 for IPv6. */
  private words: i32;

  /** `packed`: entries are IPv4 (`lo` always 0, prefix at most 32), staged in one word each. */
  constructor(packed: bool) {
    this.words = packed ? 1 : STAGED_WORDS;
  }

  /** Room for `n` more entries, so staging a list of known length allocates once. */
  reserve(n: i32): void {
    const need = (this.count + n) * this.words;
    if (need <= this.staged.length) return;
    const grown = new Uint64Array(need);
    memory.copy(grown.dataStart, this.staged.dataStart, <usize>(this.count * this.words) * 8);
    this.staged = grown;
  }

  stage(hi: u64, lo: u64, prefix: i32): void {
    if ((this.count + 1) * this.words > this.staged.length) this.reserve(this.count > 8 ? this.count : 8);
    // Host bits beyond the prefix are ignored: zero them, so sorting puts a prefix before what it covers.
    if (prefix == 0) { hi = 0; lo = 0; }
    else if (prefix <= 64) { hi = prefix == 64 ? hi : hi & ~(<u64>-1 >> <u64>prefix); lo = 0; }
    else if (prefix < 128) lo &= ~(<u64>-1 >> <u64>(prefix - 64));
    if (this.words == 1) {
      unchecked(this.staged[this.count++] = hi | <u64>prefix);
      return;
    }
    const at = this.count * STAGED_WORDS;
    unchecked(this.staged[at] = hi);
    unchecked(this.staged[at + 1] = lo);
    unchecked(this.staged[at + 2] = <u64>prefix);
    this.count++;
  }

  get pending(): bool { return this.count > 0; }

  /** Bytes the staging buffer holds now. */
  get stagedBytes(): i32 { return this.staged.byteLength; }

  /**
   * Builds the trie from what is staged (and what it already holds). Packed IPv4 entries sort in place as
   * numbers (address, then prefix); IPv6 entries through an index array.
   */
  build(): void {
    const n = this.count;
    const s = this.staged;
    const packed = this.words == 1;
    let order = new Int32Array(0);
    if (packed) s.subarray(0, n).sort();
    else {
      order = new Int32Array(n);
      for (let i = 0; i < n; i++) unchecked(order[i] = i);
      sorting = s;
      order.sort(stagedOrder);
      sorting = new Uint64Array(0);
    }
    // In sorted order each entry's new nodes are those past what it shares with the one before: an upper
    // bound on the nodes (exact unless a shorter prefix covers a later entry).
    let bound = this.nodeCount;
    let ph: u64 = 0;
    let pl: u64 = 0;
    let pp = 0;
    for (let k = 0; k < n; k++) {
      const at = packed ? k : unchecked(order[k]) * STAGED_WORDS;
      const v = unchecked(s[at]);
      const h = packed ? v & ~PACKED_PREFIX : v;
      const l = packed ? 0 : unchecked(s[at + 1]);
      const p = <i32>(packed ? v & PACKED_PREFIX : unchecked(s[at + 2]));
      let shared = k == 0 ? 0 : commonBits(ph, pl, h, l);
      if (shared > p) shared = p;
      if (shared > pp) shared = pp;
      bound += p - shared;
      ph = h;
      pl = l;
      pp = p;
    }
    this.grow(bound);
    for (let k = 0; k < n; k++) {
      const at = packed ? k : unchecked(order[k]) * STAGED_WORDS;
      const v = unchecked(s[at]);
      if (packed) this.insert(v & ~PACKED_PREFIX, 0, <i32>(v & PACKED_PREFIX));
      else this.insert(v, unchecked(s[at + 1]), <i32>unchecked(s[at + 2]));
    }
    this.count = 0;
    this.staged = new Uint64Array(0);
  }

  /** Room for `bound` nodes, keeping those there are. */
  private grow(bound: i32): void {
    if (bound <= this.terminal.length) return;
    const kids = new Int32Array(2 * bound);
    const terminal = new Uint8Array(bound);
    memory.copy(kids.dataStart, this.kids.dataStart, <usize>this.nodeCount * 8);
    memory.copy(terminal.dataStart, this.terminal.dataStart, <usize>this.nodeCount);
    this.kids = kids;
    this.terminal = terminal;
  }

  private insert(hi: u64, lo: u64, prefix: i32): void {
    let node = 0;
    for (let i = 0; i < prefix; i++) {
      if (unchecked(this.terminal[node]) != 0) return; // a shorter prefix already covers this one
      const slot = 2 * node + bitAt(hi, lo, i);
      let next = unchecked(this.kids[slot]);
      if (next == NONE) {
        next = this.nodeCount++;
        unchecked(this.kids[slot] = next);
      }
      node = next;
    }
    unchecked(this.terminal[node] = 1);
  }

  contains(hi: u64, lo: u64, bits: i32): bool {
    let node = 0;
    for (let i = 0; i < bits; i++) {
      if (unchecked(this.terminal[node]) != 0) return true;
      node = unchecked(this.kids[2 * node + bitAt(hi, lo, i)]);
      if (node == NONE) return false;
    }
    return unchecked(this.terminal[node]) != 0;
  }
}

export class CidrTrie {
  private v4: BitTrie = new BitTrie(true);
  private v6: BitTrie = new BitTrie(false);
  size: i32 = 0;

  /** Room for `n` entries of either family, when a list's length is known before it is read. */
  reserve(n: i32): void {
    this.v4.reserve(n);
  }

  /** Adds a CIDR; returns false (and adds nothing) when it does not parse. */
  add(cidr: string): bool {
    return this.addRange(cidr, 0, cidr.length);
  }

  /** Adds the CIDR in s[start, end) (spaces around it ignored) without copying it out. */
  addRange(s: string, start: i32, end: i32): bool {
    const c = scratchCidr;
    if (!parseCidrRange(s, start, end, c)) return false;
    this.insert(c);
    return true;
  }

  insert(c: Cidr): void {
    if (c.addr.v6) this.v6.stage(c.addr.hi, c.addr.lo, c.prefix);
    else this.v4.stage(c.addr.lo << 32, 0, c.prefix);
    this.size++;
  }

  /** Builds what was added since the last build; contains() does it when needed, a configuration at once. */
  seal(): void {
    if (this.v4.pending) this.v4.build();
    if (this.v6.pending) this.v6.build();
  }

  contains(addr: IpAddr): bool {
    if (addr.v6) {
      if (this.v6.pending) this.v6.build();
      return this.v6.contains(addr.hi, addr.lo, 128);
    }
    if (this.v4.pending) this.v4.build();
    return this.v4.contains(addr.lo << 32, 0, 32);
  }

  /** Bytes held by entries staged and not built yet (IPv4 entries take 8, IPv6 ones 24). */
  get stagedBytes(): i32 { return this.v4.stagedBytes + this.v6.stagedBytes; }

  get nodeCount(): i32 {
    this.seal();
    return this.v4.nodeCount + this.v6.nodeCount;
  }
}

const scratchCidr = new Cidr();
