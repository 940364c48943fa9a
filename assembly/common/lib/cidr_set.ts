// A set of IPv4 and IPv6 CIDRs held as sorted, merged address ranges: a lookup is a binary search (17
// steps for 100,000 disjoint ranges), and the set takes 8 bytes per IPv4 range and 32 per IPv6 range
// whatever the prefixes (a trie of 100,000 scattered /24s took 30 times that). IPv4 entries are staged
// in the words that later hold their ranges, so a long list is converted, sorted and merged in place:
// nothing is allocated for it besides one array (with the minimal runtime nothing is collected until a
// configuration is in force, so garbage would be a VM's peak memory).
import { Cidr, IpAddr, parseCidrRange } from "./ip";

/** IPv4: a staged entry is `address << 32 | prefix`; a built range is `start << 32 | end`. */
class V4Ranges {
  words: Uint64Array = new Uint64Array(0);
  /** Built ranges at [0, built), sorted by start, disjoint and not adjacent. */
  built: i32 = 0;
  /** Staged entries at [built, built + staged). */
  staged: i32 = 0;

  reserve(n: i32): void {
    const need = this.built + this.staged + n;
    if (need <= this.words.length) return;
    const grown = new Uint64Array(need);
    memory.copy(grown.dataStart, this.words.dataStart, <usize>(this.built + this.staged) * 8);
    this.words = grown;
  }

  /** `addr`: the address in the low 32 bits; host bits beyond the prefix are ignored. */
  stage(addr: u32, prefix: i32): void {
    const used = this.built + this.staged;
    if (used == this.words.length) this.reserve(used > 8 ? used : 8);
    const net = addr & <u32>(<u64>0xffffffff << <u64>(32 - prefix));
    unchecked(this.words[used] = (<u64>net << 32) | <u64>prefix);
    this.staged++;
  }

  build(): void {
    const w = this.words;
    const n = this.built + this.staged;
    for (let i = this.built; i < n; i++) {
      const v = unchecked(w[i]);
      const start = v >> 32;
      const host = (<u64>1 << (32 - (v & 0xff))) - 1;
      unchecked(w[i] = (start << 32) | (start | host));
    }
    // Starts are the high words, so ranges sort as numbers. A packed list comes sorted already, and then
    // nothing is sorted (a sort takes a buffer as large as the list).
    let sorted = true;
    for (let i = 1; i < n && sorted; i++) sorted = unchecked(w[i - 1]) <= unchecked(w[i]);
    if (!sorted) w.subarray(0, n).sort();
    let out = 0;
    for (let i = 0; i < n; i++) {
      const v = unchecked(w[i]);
      if (out > 0) {
        const last = unchecked(w[out - 1]);
        const end = last & 0xffffffff;
        if ((v >> 32) <= end + 1) {
          // Overlapping or adjacent: extend the last range.
          const e = v & 0xffffffff;
          if (e > end) unchecked(w[out - 1] = (last & 0xffffffff00000000) | e);
          continue;
        }
      }
      unchecked(w[out++] = v);
    }
    this.built = out;
    this.staged = 0;
    // A list that merged down keeps only what its ranges need.
    if (out < (w.length >> 1)) {
      const fit = new Uint64Array(out);
      memory.copy(fit.dataStart, w.dataStart, <usize>out * 8);
      this.words = fit;
    }
  }

  contains(a: u32): bool {
    const w = this.words;
    let lo = 0;
    let hi = this.built;
    const key = <u64>a;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (unchecked(w[mid]) >> 32 <= key) lo = mid + 1;
      else hi = mid;
    }
    return lo > 0 && key <= (unchecked(w[lo - 1]) & 0xffffffff);
  }
}

/** IPv6: staged entries are [hi, lo, prefix]; built ranges [startHi, startLo, endHi, endLo]. */
const STAGED6: i32 = 3;
const RANGE6: i32 = 4;

/** The staged IPv6 entries being sorted (AssemblyScript's sort takes no closure). */
let sorting: Uint64Array = new Uint64Array(0);

function startOrder(a: i32, b: i32): i32 {
  const s = sorting;
  const ah = unchecked(s[a * RANGE6]);
  const bh = unchecked(s[b * RANGE6]);
  if (ah != bh) return ah < bh ? -1 : 1;
  const al = unchecked(s[a * RANGE6 + 1]);
  const bl = unchecked(s[b * RANGE6 + 1]);
  if (al != bl) return al < bl ? -1 : 1;
  return 0;
}

@inline function le128(ah: u64, al: u64, bh: u64, bl: u64): bool {
  return ah < bh || (ah == bh && al <= bl);
}

class V6Ranges {
  ranges: Uint64Array = new Uint64Array(0);
  built: i32 = 0;
  staged: Uint64Array = new Uint64Array(0);
  count: i32 = 0;

  stage(hi: u64, lo: u64, prefix: i32): void {
    if ((this.count + 1) * STAGED6 > this.staged.length) {
      const grown = new Uint64Array((this.count > 8 ? this.count * 2 : 16) * STAGED6);
      memory.copy(grown.dataStart, this.staged.dataStart, <usize>(this.count * STAGED6) * 8);
      this.staged = grown;
    }
    const at = this.count * STAGED6;
    unchecked(this.staged[at] = hi);
    unchecked(this.staged[at + 1] = lo);
    unchecked(this.staged[at + 2] = <u64>prefix);
    this.count++;
  }

  build(): void {
    const n = this.built + this.count;
    // Every range, built and staged, as [start, end], then sorted by start through an index.
    const all = new Uint64Array(n * RANGE6);
    memory.copy(all.dataStart, this.ranges.dataStart, <usize>(this.built * RANGE6) * 8);
    for (let k = 0; k < this.count; k++) {
      const hi = unchecked(this.staged[k * STAGED6]);
      const lo = unchecked(this.staged[k * STAGED6 + 1]);
      const p = <i32>unchecked(this.staged[k * STAGED6 + 2]);
      // Host masks of the two halves (all ones where the prefix does not reach).
      const hostHi: u64 = p >= 64 ? 0 : <u64>-1 >> <u64>p;
      const hostLo: u64 = p >= 128 ? 0 : p <= 64 ? <u64>-1 : <u64>-1 >> <u64>(p - 64);
      const at = (this.built + k) * RANGE6;
      unchecked(all[at] = hi & ~hostHi);
      unchecked(all[at + 1] = lo & ~hostLo);
      unchecked(all[at + 2] = hi | hostHi);
      unchecked(all[at + 3] = lo | hostLo);
    }
    const order = new Int32Array(n);
    for (let i = 0; i < n; i++) unchecked(order[i] = i);
    sorting = all;
    order.sort(startOrder);
    sorting = new Uint64Array(0);
    const out = new Uint64Array(n * RANGE6);
    let m = 0;
    for (let k = 0; k < n; k++) {
      const at = unchecked(order[k]) * RANGE6;
      const sh = unchecked(all[at]);
      const sl = unchecked(all[at + 1]);
      const eh = unchecked(all[at + 2]);
      const el = unchecked(all[at + 3]);
      if (m > 0) {
        const last = (m - 1) * RANGE6;
        const lh = unchecked(out[last + 2]);
        const ll = unchecked(out[last + 3]);
        // The end after the last range (lh:ll + 1), unless it ends at the top of the space.
        const top = lh == <u64>-1 && ll == <u64>-1;
        const nl = ll + 1;
        const nh = nl == 0 ? lh + 1 : lh;
        if (top || le128(sh, sl, nh, nl)) {
          if (!le128(eh, el, lh, ll)) {
            unchecked(out[last + 2] = eh);
            unchecked(out[last + 3] = el);
          }
          continue;
        }
      }
      const to = m * RANGE6;
      unchecked(out[to] = sh);
      unchecked(out[to + 1] = sl);
      unchecked(out[to + 2] = eh);
      unchecked(out[to + 3] = el);
      m++;
    }
    this.ranges = out.slice(0, m * RANGE6);
    this.built = m;
    this.staged = new Uint64Array(0);
    this.count = 0;
  }

  contains(hi: u64, lo: u64): bool {
    const r = this.ranges;
    let a = 0;
    let b = this.built;
    while (a < b) {
      const mid = (a + b) >>> 1;
      if (le128(unchecked(r[mid * RANGE6]), unchecked(r[mid * RANGE6 + 1]), hi, lo)) a = mid + 1;
      else b = mid;
    }
    if (a == 0) return false;
    const at = (a - 1) * RANGE6;
    return le128(hi, lo, unchecked(r[at + 2]), unchecked(r[at + 3]));
  }
}

export class CidrSet {
  private v4: V4Ranges = new V4Ranges();
  private v6: V6Ranges = new V6Ranges();
  /** Entries added (before merging). */
  size: i32 = 0;

  /** Room for `n` more IPv4 entries, when a list's length is known before it is read. */
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
    else this.v4.stage(<u32>c.addr.lo, c.prefix);
    this.size++;
  }

  /** Adds an IPv4 CIDR given as a number (the address in host order). */
  insertV4(addr: u32, prefix: i32): void {
    this.v4.stage(addr, prefix);
    this.size++;
  }

  /** Adds an IPv6 CIDR given as two 64-bit halves. */
  insertV6(hi: u64, lo: u64, prefix: i32): void {
    this.v6.stage(hi, lo, prefix);
    this.size++;
  }

  /** Builds what was added since the last build; contains() does it when needed, a configuration at once. */
  seal(): void {
    if (this.v4.staged > 0) this.v4.build();
    if (this.v6.count > 0) this.v6.build();
  }

  contains(addr: IpAddr): bool {
    if (addr.v6) {
      if (this.v6.count > 0) this.v6.build();
      return this.v6.contains(addr.hi, addr.lo);
    }
    if (this.v4.staged > 0) this.v4.build();
    return this.v4.contains(<u32>addr.lo);
  }

  /** Bytes held by entries staged and not built yet, and by built ranges (8 per IPv4 word, 24/32 per IPv6 entry). */
  get heldBytes(): i32 { return this.v4.words.byteLength + this.v6.ranges.byteLength + this.v6.staged.byteLength; }

  /** Disjoint ranges the set holds once built (adjacent and overlapping entries merge). */
  get rangeCount(): i32 {
    this.seal();
    return this.v4.built + this.v6.built;
  }
}

const scratchCidr = new Cidr();
