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
  /** Offset and length pairs into the operands' bytes. */
  private spans: i32[] = [];
  private chunks: ArrayBuffer[] = [];
  private size: i32 = 0;
  /**
   * What a request reads, sealed into one block, so that a scan reads a few neighbouring lines rather
   * than a dozen arrays each behind an object of its own. At these addresses in it: per slot, the
   * request's index of the name (`found`; -1 absent, NOT_LOOKED_UP) and the name's nameHash, length and
   * the address of its bytes (`slots`, 12 bytes; the bytes kept alive by `names`); per rule, the slots
   * (the first 64) its tests need present (`needs`; and per request, `absent`: the slots looked up and
   * found absent, so a rule needing one is passed over without a look at its tests) and its first test
   * (`starts`); the tests (`testsAt`, TEST_INTS each); the operands' spans (`spansAt`) and bytes.
   */
  private block: ArrayBuffer = new ArrayBuffer(0);
  private found: usize = 0;
  private slots: usize = 0;
  private needs: usize = 0;
  private starts: usize = 0;
  private testsAt: usize = 0;
  private spansAt: usize = 0;
  private bytes: usize = 0;
  private slotCount: i32 = 0;
  private ruleCount: i32 = 0;
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
    const slots = names.length;
    const rules = this.ruleStarts.length - 1;
    // In the order a request reads them; the u64s first, 8-aligned as the block is.
    const needs: usize = 0;
    const found = needs + (<usize>rules << 3);
    const named = found + (<usize>slots << 2);
    const starts = named + <usize>slots * 12;
    const tests = starts + (<usize>(rules + 1) << 2);
    const spans = tests + (<usize>this.tests.length << 2);
    const bytes = spans + (<usize>this.spans.length << 2);
    this.block = new ArrayBuffer(<i32>(bytes + <usize>this.size));
    const base = changetype<usize>(this.block);
    this.needs = base + needs;
    this.found = base + found;
    this.slots = base + named;
    this.starts = base + starts;
    this.testsAt = base + tests;
    this.spansAt = base + spans;
    this.bytes = base + bytes;
    this.slotCount = slots;
    this.ruleCount = rules;
    for (let i = 0; i < slots; i++) {
      const h = new HeaderName(names[i]);
      this.names.push(h);
      const at = this.slots + <usize>i * 12;
      store<u32>(at, h.hash);
      store<i32>(at, h.len, 4);
      store<usize>(at, h.ptr, 8);
    }
    let at: usize = this.bytes;
    for (let i = 0; i < this.chunks.length; i++) {
      const c = this.chunks[i];
      memory.copy(at, changetype<usize>(c), c.byteLength);
      at += c.byteLength;
    }
    this.chunks = [];
    for (let i = 0; i <= rules; i++) store<i32>(this.starts + (<usize>i << 2), this.ruleStarts[i]);
    for (let i = 0; i < this.tests.length; i++) store<i32>(this.testsAt + (<usize>i << 2), this.tests[i]);
    for (let i = 0; i < this.spans.length; i++) store<i32>(this.spansAt + (<usize>i << 2), this.spans[i]);
    for (let r = 0; r < rules; r++) {
      let need: u64 = 0;
      for (let t = this.ruleStarts[r]; t < this.ruleStarts[r + 1]; t++) {
        const slot = this.tests[t * TEST_INTS];
        const op = this.tests[t * TEST_INTS + 1];
        // A value test fails on an absent header, as does a presence test that wants it present.
        if (slot < 64 && (op < 8 || (op & 1) != 0)) need |= (<u64>1) << <u64>slot;
      }
      store<u64>(this.needs + (<usize>r << 3), need);
    }
    this.ruleStarts = [];
    this.tests = [];
    this.spans = [];
  }

  /** Starts a request: each header is looked up at most once, on first use. */
  begin(): void {
    const found = this.found;
    for (let i = 0; i < this.slotCount; i++) store<i32>(found + (<usize>i << 2), NOT_LOOKED_UP);
    this.absent = 0;
  }

  /** The snapshot index of the header in `slot` (-1 when absent); begin() must have been called. */
  indexOf(req: RequestSnapshot, slot: i32): i32 {
    const i = load<i32>(this.found + (<usize>slot << 2));
    if (i != NOT_LOOKED_UP) return i;
    req.fetchNow();
    return this.lookUp(req, slot);
  }

  /** Looks the name in `slot` up in the request (fetched) and remembers the answer for this request. */
  private lookUp(req: RequestSnapshot, slot: i32): i32 {
    const at = this.slots + <usize>slot * 12;
    const i = req.indexOfName(load<u32>(at), load<usize>(at, 8), load<i32>(at, 4));
    store<i32>(this.found + (<usize>slot << 2), i);
    if (i < 0 && slot < 64) this.absent |= (<u64>1) << <u64>slot;
    return i;
  }

  /** The first rule at or after `from` whose header tests all hold, or -1. */
  firstHolding(req: RequestSnapshot, from: i32): i32 {
    if (this.slotCount > 0) req.fetchNow();
    return this.scan(req, from, this.ruleCount);
  }

  /** Whether every header test of rule `r` holds. */
  holds(req: RequestSnapshot, r: i32): bool {
    if (this.slotCount > 0) req.fetchNow();
    return this.scan(req, r, r + 1) == r;
  }

  /**
   * The first rule in [from, to) whose tests all hold, or -1; the request's headers fetched. One call
   * for many rules, with only numbers in the loop.
   */
  private scan(req: RequestSnapshot, from: i32, to: i32): i32 {
    const starts = this.starts;
    const tests = this.testsAt;
    const spans = this.spansAt;
    const found = this.found;
    const bytes = this.bytes;
    const needs = this.needs;
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
