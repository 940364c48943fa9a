// The header tests of many rules, compiled into flat arrays so that one loop tests them all on the
// host's bytes: 50 rules cost one pass over a few arrays of numbers, not a walk over 50 rule objects.
import { HeaderName, RequestSnapshot } from "./snapshot";
import { MatchOp, StringMatch } from "./string_match";
import { bytesEqual } from "../lib/bytes";

// Per test, 4 ints: slot, op (Present: 8 | present), first span, span count.
const TEST_INTS = 4;
const NOT_LOOKED_UP: i32 = -2;

export class HeaderTestTable {
  /** Distinct header names; a test's slot indexes it. */
  names: HeaderName[] = [];
  /** Per rule: the index of its first test; the last entry ends the last rule. */
  private ruleStarts: i32[] = [0];
  private tests: i32[] = [];
  /** Offset and length pairs into `bytes`. */
  private spans: i32[] = [];
  private chunks: ArrayBuffer[] = [];
  private size: i32 = 0;
  private bytes: ArrayBuffer = new ArrayBuffer(0);
  private testArray: Int32Array = new Int32Array(0);
  private spanArray: Int32Array = new Int32Array(0);
  private startArray: Int32Array = new Int32Array(0);
  /** Per slot, for the request under test: its index in the snapshot, -1 when absent. */
  private found: Int32Array = new Int32Array(0);
  /**
   * Per slot, the name's nameHash, its length and the address of its bytes (kept alive by `names`): a
   * lookup reads these few numbers, not the scattered HeaderName objects.
   */
  private nameHashes: Uint32Array = new Uint32Array(0);
  private nameLengths: Int32Array = new Int32Array(0);
  private namePtrs: StaticArray<usize> = new StaticArray<usize>(0);
  /**
   * Per rule, the slots (the first 64) its tests need present; and per request, the slots looked up and
   * found absent: a rule needing one of them is passed over without a look at its tests. With many rules
   * on headers a request rarely has, each header is looked up once and most rules cost one AND.
   */
  private needs: Uint64Array = new Uint64Array(0);
  private absent: u64 = 0;

  /** Appends a rule made of these tests (all must hold); its slots index names[]. */
  addRule(tests: StringMatch[]): void {
    for (let i = 0; i < tests.length; i++) {
      const m = tests[i];
      let op = <i32>m.op;
      if (m.op == MatchOp.Present) op = 8 | (m.present ? 1 : 0);
      this.tests.push(m.slot);
      this.tests.push(op);
      this.tests.push(this.spans.length >> 1);
      let operands: string[] = [m.value];
      if (m.op == MatchOp.OneOf) operands = m.values;
      this.tests.push(operands.length);
      for (let k = 0; k < operands.length; k++) {
        const b = String.UTF8.encode(operands[k]);
        this.spans.push(this.size);
        this.spans.push(b.byteLength);
        this.chunks.push(b);
        this.size += b.byteLength;
      }
    }
    this.ruleStarts.push(this.tests.length / TEST_INTS);
  }

  /** Freezes the table once every rule is added. */
  seal(names: string[]): void {
    this.nameHashes = new Uint32Array(names.length);
    this.nameLengths = new Int32Array(names.length);
    this.namePtrs = new StaticArray<usize>(names.length);
    for (let i = 0; i < names.length; i++) {
      const h = new HeaderName(names[i]);
      this.names.push(h);
      this.nameHashes[i] = h.hash;
      this.nameLengths[i] = h.len;
      this.namePtrs[i] = h.ptr;
    }
    const bytes = new ArrayBuffer(this.size);
    let at: usize = 0;
    for (let i = 0; i < this.chunks.length; i++) {
      const c = this.chunks[i];
      memory.copy(changetype<usize>(bytes) + at, changetype<usize>(c), c.byteLength);
      at += c.byteLength;
    }
    this.bytes = bytes;
    this.chunks = [];
    this.testArray = toInt32Array(this.tests);
    this.spanArray = toInt32Array(this.spans);
    this.startArray = toInt32Array(this.ruleStarts);
    this.found = new Int32Array(names.length);
    const rules = this.ruleStarts.length - 1;
    this.needs = new Uint64Array(rules);
    for (let r = 0; r < rules; r++) {
      let need: u64 = 0;
      for (let t = this.ruleStarts[r]; t < this.ruleStarts[r + 1]; t++) {
        const slot = this.tests[t * TEST_INTS];
        const op = this.tests[t * TEST_INTS + 1];
        // A value test fails on an absent header, as does a presence test that wants it present.
        if (slot < 64 && (op < 8 || (op & 1) != 0)) need |= (<u64>1) << <u64>slot;
      }
      this.needs[r] = need;
    }
  }

  /** Starts a request: each header is looked up at most once, on first use. */
  begin(): void {
    this.found.fill(NOT_LOOKED_UP);
    this.absent = 0;
  }

  /** The snapshot index of the header in `slot` (-1 when absent); begin() must have been called. */
  indexOf(req: RequestSnapshot, slot: i32): i32 {
    const i = unchecked(this.found[slot]);
    if (i != NOT_LOOKED_UP) return i;
    req.fetchNow();
    return this.lookUp(req, slot);
  }

  /** Looks the name in `slot` up in the request (fetched) and remembers the answer for this request. */
  private lookUp(req: RequestSnapshot, slot: i32): i32 {
    const i = req.indexOfName(unchecked(this.nameHashes[slot]), unchecked(this.namePtrs[slot]), unchecked(this.nameLengths[slot]));
    unchecked(this.found[slot] = i);
    if (i < 0 && slot < 64) this.absent |= (<u64>1) << <u64>slot;
    return i;
  }

  /** The first rule at or after `from` whose header tests all hold, or -1. */
  firstHolding(req: RequestSnapshot, from: i32): i32 {
    if (this.names.length > 0) req.fetchNow();
    return this.scan(req, from, this.startArray.length - 1);
  }

  /** Whether every header test of rule `r` holds. */
  holds(req: RequestSnapshot, r: i32): bool {
    if (this.names.length > 0) req.fetchNow();
    return this.scan(req, r, r + 1) == r;
  }

  /**
   * The first rule in [from, to) whose tests all hold, or -1; the request's headers fetched. One call
   * for many rules, with only numbers in the loop.
   */
  private scan(req: RequestSnapshot, from: i32, to: i32): i32 {
    const starts = this.startArray.dataStart;
    const tests = this.testArray.dataStart;
    const spans = this.spanArray.dataStart;
    const found = this.found.dataStart;
    const bytes = changetype<usize>(this.bytes);
    const needs = this.needs.dataStart;
    for (let r = from; r < to; r++) {
      if ((load<u64>(needs + (<usize>r << 3)) & this.absent) != 0) continue;
      const end = load<i32>(starts + (<usize>(r + 1) << 2));
      let t = load<i32>(starts + (<usize>r << 2));
      for (; t < end; t++) {
        const at = tests + (<usize>(t * TEST_INTS) << 2);
        const slot = load<i32>(at);
        let i = load<i32>(found + (<usize>slot << 2));
        if (i == NOT_LOOKED_UP) i = this.lookUp(req, slot);
        const op = load<i32>(at, 4);
        let ok: bool;
        if (op >= 8) ok = (i >= 0) == ((op & 1) != 0);
        else if (i < 0) ok = false;
        else ok = testValue(req.valuePtr(i), req.valueLength(i), op, spans + (<usize>load<i32>(at, 8) << 3), load<i32>(at, 12), bytes);
        if (!ok) break;
      }
      if (t == end) return r;
    }
    return -1;
  }
}

/** One test of a present value (`n` bytes at `p`) against `count` spans at `span` into `bytes`. */
function testValue(p: usize, n: i32, op: i32, span: usize, count: i32, bytes: usize): bool {
  if (op == <i32>MatchOp.OneOf) {
    for (let k = 0; k < count; k++) {
      const at = span + (<usize>k << 3);
      if (load<i32>(at, 4) == n && bytesEqual(p, bytes + <usize>load<i32>(at), n)) return true;
    }
    return false;
  }
  const b = bytes + <usize>load<i32>(span);
  const m = load<i32>(span, 4);
  if (m > n) return false;
  if (op == <i32>MatchOp.Exact) return m == n && bytesEqual(p, b, n);
  if (op == <i32>MatchOp.Prefix) return bytesEqual(p, b, m);
  if (op == <i32>MatchOp.Suffix) return bytesEqual(p + <usize>(n - m), b, m);
  return containsBytes(p, n, b, m);
}

/** Whether the `n` bytes at `p` contain the `m` bytes at `b`. */
export function containsBytes(p: usize, n: i32, b: usize, m: i32): bool {
  if (m == 0) return true;
  const first = load<u8>(b);
  for (let i = 0; i <= n - m; i++) {
    if (load<u8>(p + <usize>i) == first && bytesEqual(p + <usize>i, b, m)) return true;
  }
  return false;
}

/** Index of `s` in `list`, appending it if new: gives each distinct header name its slot. */
export function slotOf(list: string[], s: string): i32 {
  const i = list.indexOf(s);
  if (i >= 0) return i;
  list.push(s);
  return list.length - 1;
}

function toInt32Array(a: i32[]): Int32Array {
  const out = new Int32Array(a.length);
  for (let i = 0; i < a.length; i++) unchecked(out[i] = a[i]);
  return out;
}
