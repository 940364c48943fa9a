// A linear-time matcher for a program compiled by scripts/lib/regex_program.ts: Thompson's NFA simulation.
// Each input byte advances the set of live states once, and each state is in the set at most once, so
// the work is bounded by input length x program size whatever the input: nothing backtracks. Answers
// only "does some pattern match", case-insensitively over ASCII. Pure.
import { bytesEqual } from "./bytes";

const OP_CHAR = 0;
const OP_CLASS = 1;
const OP_SPLIT = 2;
const OP_JMP = 3;
const OP_MATCH = 4;
const OP_ASSERT = 5;
const OP_NOT_AHEAD = 6;
const OP_NOT_BEHIND = 7;
const OP_AHEAD = 8;
const OP_BEHIND = 9;

const AT_START = 0;
const AT_END = 1;
const WORD_BOUNDARY = 2;

/** Inputs are read up to this many bytes: enough for any real user agent, and a bound on the work. */
export const MAX_INPUT: i32 = 2048;

@inline function isWord(c: u32): bool {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x5f;
}

export class RegexVm {
  private code: usize;
  private classes: usize;
  private starts: usize;
  private freeOffsets: usize;
  private freeIds: usize;
  private anchoredOffsets: usize;
  private anchoredIds: usize;
  // Keep the arrays alive: the pointers above are into them.
  private arrays: Array<i32[]> = [];
  private classArray: u8[];
  /** Lookaround literals as bytes: per lookaround, offsets into `literalBytes` of each alternative. */
  private literalBytes: ArrayBuffer;
  private literalSpans: Int32Array;
  private literalStarts: Int32Array;
  private size: i32;
  // Scratch, per VM: state lists, the stamp that dedupes a state per step, a stack, the lower-cased input.
  private clist: Int32Array;
  private nlist: Int32Array;
  private stamp: Int32Array;
  private stack: Int32Array;
  private input: Uint8Array = new Uint8Array(MAX_INPUT);
  private gen: i32 = 0;

  /** Per pattern, the literal its matches start with: checked before a pattern is started. */
  private prefixBytes: ArrayBuffer;
  private prefixSpans: Int32Array;

  constructor(code: i32[], classes: u8[], literals: string[][], starts: i32[], prefixes: string[], freeOffsets: i32[], freeIds: i32[], anchoredOffsets: i32[], anchoredIds: i32[]) {
    this.arrays = [code, starts, freeOffsets, freeIds, anchoredOffsets, anchoredIds];
    this.classArray = classes;
    this.code = code.dataStart;
    this.classes = classes.dataStart;
    this.starts = starts.dataStart;
    this.freeOffsets = freeOffsets.dataStart;
    this.freeIds = freeIds.dataStart;
    this.anchoredOffsets = anchoredOffsets.dataStart;
    this.anchoredIds = anchoredIds.dataStart;
    const size = code.length / 3;
    this.size = size;
    this.clist = new Int32Array(size + 1);
    this.nlist = new Int32Array(size + 1);
    this.stamp = new Int32Array(size);
    this.stack = new Int32Array(2 * size + 2);
    // Literals: one buffer; literalStarts[k]..literalStarts[k+1] index the (offset, length) pairs of lookaround k.
    let total = 0;
    let count = 0;
    for (let k = 0; k < literals.length; k++) {
      for (let j = 0; j < literals[k].length; j++) total += String.UTF8.byteLength(literals[k][j]);
      count += literals[k].length;
    }
    const literalBytes = new ArrayBuffer(total);
    const literalSpans = new Int32Array(2 * count);
    const literalStarts = new Int32Array(literals.length + 1);
    let at = 0;
    let n = 0;
    for (let k = 0; k < literals.length; k++) {
      literalStarts[k] = n;
      for (let j = 0; j < literals[k].length; j++) {
        const b = String.UTF8.encode(literals[k][j]);
        memory.copy(changetype<usize>(literalBytes) + <usize>at, changetype<usize>(b), b.byteLength);
        literalSpans[2 * n] = at;
        literalSpans[2 * n + 1] = b.byteLength;
        at += b.byteLength;
        n++;
      }
    }
    literalStarts[literals.length] = n;
    this.literalBytes = literalBytes;
    this.literalSpans = literalSpans;
    this.literalStarts = literalStarts;
    let prefixSize = 0;
    for (let k = 0; k < prefixes.length; k++) prefixSize += String.UTF8.byteLength(prefixes[k]);
    const prefixBytes = new ArrayBuffer(prefixSize);
    const prefixSpans = new Int32Array(2 * prefixes.length);
    at = 0;
    for (let k = 0; k < prefixes.length; k++) {
      const b = String.UTF8.encode(prefixes[k]);
      memory.copy(changetype<usize>(prefixBytes) + <usize>at, changetype<usize>(b), b.byteLength);
      prefixSpans[2 * k] = at;
      prefixSpans[2 * k + 1] = b.byteLength;
      at += b.byteLength;
    }
    this.prefixBytes = prefixBytes;
    this.prefixSpans = prefixSpans;
  }

  /** Whether some pattern matches the `len` bytes at `ptr` (read up to MAX_INPUT bytes). */
  matches(ptr: usize, len: i32): bool {
    if (len > MAX_INPUT) len = MAX_INPUT;
    const input = this.input.dataStart;
    for (let i = 0; i < len; i++) {
      let c = load<u8>(ptr + <usize>i);
      if (c >= 0x41 && c <= 0x5a) c += 32;
      store<u8>(input + <usize>i, c);
    }
    let clist = this.clist.dataStart;
    let nlist = this.nlist.dataStart;
    let ccount = 0;
    // Each position's list gets a fresh stamp; stamps only grow, reset before they could wrap.
    if (this.gen > 0x3fff0000) {
      this.stamp.fill(0);
      this.gen = 0;
    }
    this.gen++;
    for (let i = 0; i <= len; i++) {
      if (i < len) {
        const c = <i32>load<u8>(input + <usize>i);
        // New matches may start here: the patterns whose first byte can be c (anchored ones only at 0).
        if (this.startAt(this.freeOffsets, this.freeIds, c, input, len, i, clist, ccount)) return true;
        ccount = this.lastCount;
        if (i == 0) {
          if (this.startAt(this.anchoredOffsets, this.anchoredIds, c, input, len, i, clist, ccount)) return true;
          ccount = this.lastCount;
        }
      }
      if (ccount == 0 || i == len) break;
      // Step: every live state that accepts this byte moves on to position i + 1.
      const c = <u32>load<u8>(input + <usize>i);
      this.gen++;
      let ncount = 0;
      for (let k = 0; k < ccount; k++) {
        const pc = load<i32>(clist + (<usize>k << 2));
        const at = this.code + <usize>(pc * 12);
        const op = load<i32>(at);
        let ok = false;
        if (op == OP_CHAR) ok = <u32>load<i32>(at, 4) == c;
        else ok = (load<u8>(this.classes + <usize>(load<i32>(at, 4) * 32) + <usize>(c >> 3)) & (1 << (c & 7))) != 0;
        if (ok) {
          if (this.follow(pc + 1, input, len, i + 1, nlist, ncount)) return true;
          ncount = this.lastCount;
        }
      }
      const t = clist;
      clist = nlist;
      nlist = t;
      ccount = ncount;
    }
    return false;
  }

  private lastCount: i32 = 0;

  private startAt(offsets: usize, ids: usize, c: i32, input: usize, len: i32, pos: i32, list: usize, count: i32): bool {
    const from = load<i32>(offsets + (<usize>c << 2));
    const to = load<i32>(offsets + (<usize>(c + 1) << 2));
    this.lastCount = count;
    const spans = this.prefixSpans.dataStart;
    const prefixes = changetype<usize>(this.prefixBytes);
    for (let k = from; k < to; k++) {
      const id = load<i32>(ids + (<usize>k << 2));
      const n = load<i32>(spans + (<usize>(2 * id + 1) << 2));
      if (n > 1) {
        if (pos + n > len || !bytesEqual(input + <usize>pos, prefixes + <usize>load<i32>(spans + (<usize>(2 * id) << 2)), n)) continue;
      }
      if (this.follow(load<i32>(this.starts + (<usize>id << 2)), input, len, pos, list, this.lastCount)) return true;
    }
    return false;
  }

  /**
   * Adds state `pc` at position `pos` to `list` (count states), following jumps, splits and assertions
   * at once. Returns true when a match is reached; the new count is left in lastCount.
   */
  private follow(pc: i32, input: usize, len: i32, pos: i32, list: usize, count: i32): bool {
    const stack = this.stack.dataStart;
    const stamp = this.stamp.dataStart;
    const gen = this.gen;
    let sp = 0;
    store<i32>(stack, pc);
    sp = 1;
    while (sp > 0) {
      sp--;
      const p = load<i32>(stack + (<usize>sp << 2));
      const sa = stamp + (<usize>p << 2);
      if (load<i32>(sa) == gen) continue;
      store<i32>(sa, gen);
      const at = this.code + <usize>(p * 12);
      const op = load<i32>(at);
      const a = load<i32>(at, 4);
      if (op == OP_CHAR || op == OP_CLASS) {
        store<i32>(list + (<usize>count << 2), p);
        count++;
      } else if (op == OP_MATCH) {
        this.lastCount = count;
        return true;
      } else if (op == OP_SPLIT) {
        store<i32>(stack + (<usize>sp << 2), load<i32>(at, 8));
        store<i32>(stack + (<usize>(sp + 1) << 2), a);
        sp += 2;
      } else if (op == OP_JMP) {
        store<i32>(stack + (<usize>sp << 2), a);
        sp++;
      } else if (this.holds(op, a, input, len, pos)) {
        store<i32>(stack + (<usize>sp << 2), p + 1);
        sp++;
      }
    }
    this.lastCount = count;
    return false;
  }

  private holds(op: i32, a: i32, input: usize, len: i32, pos: i32): bool {
    if (op == OP_ASSERT) {
      if (a == AT_START) return pos == 0;
      if (a == AT_END) return pos == len;
      const before = pos > 0 && isWord(<u32>load<u8>(input + <usize>(pos - 1)));
      const after = pos < len && isWord(<u32>load<u8>(input + <usize>pos));
      return (before != after) == (a == WORD_BOUNDARY);
    }
    const ahead = op == OP_NOT_AHEAD || op == OP_AHEAD;
    let any = false;
    const from = this.literalStarts[a];
    const to = this.literalStarts[a + 1];
    const bytes = changetype<usize>(this.literalBytes);
    for (let k = from; k < to && !any; k++) {
      const off = unchecked(this.literalSpans[2 * k]);
      const n = unchecked(this.literalSpans[2 * k + 1]);
      const start = ahead ? pos : pos - n;
      any = start >= 0 && start + n <= len && bytesEqual(input + <usize>start, bytes + <usize>off, n);
    }
    return (op == OP_AHEAD || op == OP_BEHIND) ? any : !any;
  }
}
