// Compiles the regular expressions of a pattern list (isbot's) into one program for a linear-time
// matcher (assembly/common/regex_vm.ts): a Thompson NFA, run in the VM as a set of states that each
// input byte advances once, so no input can make it backtrack. Case-insensitive over ASCII: the VM
// lower-cases the input, and the program is built for lower-case input.
//
// Supported: literals and escapes, `.`, classes ([...], \d \w \s and their negations), groups, `|`,
// `? * + {n} {n,} {n,m}` (lazy or greedy: the same for a yes/no answer), `^ $ \b \B`, and lookarounds
// whose body is a set of literal alternatives (`(?!a|b)`, `(?<!a|b)`, `(?=..)`, `(?<=..)`). Anything else
// (back-references, lookarounds over classes, Unicode escapes) is refused with the reason.

export const Op = { Char: 0, Class: 1, Split: 2, Jmp: 3, Match: 4, Assert: 5, NotAhead: 6, NotBehind: 7, Ahead: 8, Behind: 9 } as const;
export const Assertion = { Start: 0, End: 1, WordBoundary: 2, NotWordBoundary: 3 } as const;

/** The compiled program: instructions of 3 ints (op, a, b); per pattern its first instruction. */
export interface RegexProgram {
  code: number[];
  /** 32 bytes (a 256-bit set) per class. */
  classes: number[][];
  /** Per lookaround, its literal alternatives. */
  literals: string[][];
  starts: number[];
  /** Per pattern: it can only match from the input's start (it begins with ^). */
  anchored: boolean[];
  /** Per pattern, the bytes its match can start with (over-approximated through assertions). */
  firstBytes: number[][];
  /** Per pattern, the literal text every match starts with ("" when it starts otherwise). */
  prefixes: string[];
  patterns: string[];
}

type Node =
  | { t: "set"; bytes: Set<number> }
  | { t: "cat"; items: Node[] }
  | { t: "alt"; items: Node[] }
  | { t: "rep"; item: Node; min: number; max: number }
  | { t: "assert"; kind: number }
  | { t: "look"; ahead: boolean; negate: boolean; literals: string[] };

const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);
const DIGIT = new Set(range(0x30, 0x39));
const WORD = new Set([...range(0x30, 0x39), ...range(0x61, 0x7a), 0x5f]);
const SPACE = new Set([0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d]);
const ALL = new Set(range(0, 255));
const complement = (s: Set<number>) => new Set([...ALL].filter((b) => !s.has(b)));
const lower = (c: number) => (c >= 0x41 && c <= 0x5a ? c + 32 : c);

class Parser {
  private i = 0;
  constructor(private readonly src: string) {}

  parse(): Node {
    const n = this.alternation();
    if (this.i < this.src.length) this.fail(`unexpected '${this.src[this.i]}'`);
    return n;
  }

  private fail(why: string): never {
    throw new Error(`${why} at ${this.i} in /${this.src}/`);
  }
  private peek(): string {
    return this.src[this.i];
  }
  private eat(s: string): boolean {
    if (this.src.startsWith(s, this.i)) {
      this.i += s.length;
      return true;
    }
    return false;
  }

  private alternation(): Node {
    const items = [this.concatenation()];
    while (this.eat("|")) items.push(this.concatenation());
    return items.length === 1 ? items[0] : { t: "alt", items };
  }

  private concatenation(): Node {
    const items: Node[] = [];
    while (this.i < this.src.length && this.peek() !== "|" && this.peek() !== ")") items.push(this.quantified());
    return { t: "cat", items };
  }

  private quantified(): Node {
    const atom = this.atom();
    for (;;) {
      let min: number;
      let max: number;
      if (this.eat("*")) [min, max] = [0, Infinity];
      else if (this.eat("+")) [min, max] = [1, Infinity];
      else if (this.eat("?")) [min, max] = [0, 1];
      else {
        const m = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.i));
        if (!m) return atom;
        this.i += m[0].length;
        min = Number(m[1]);
        max = m[2] === undefined ? min : m[3] === "" ? Infinity : Number(m[3]);
      }
      this.eat("?"); // lazy: same answer for "is there a match"
      if (atom.t === "assert" || atom.t === "look") this.fail("a quantified assertion");
      return { t: "rep", item: atom, min, max };
    }
  }

  private atom(): Node {
    const c = this.peek();
    if (c === "(") {
      this.i++;
      if (this.eat("?:")) return this.group();
      for (const [open, ahead, negate] of [
        ["?!", true, true],
        ["?=", true, false],
        ["?<!", false, true],
        ["?<=", false, false],
      ] as const) {
        if (this.eat(open)) return { t: "look", ahead, negate, literals: this.literalAlternatives(this.group()) };
      }
      if (this.peek() === "?") this.fail("an unsupported group");
      return this.group();
    }
    if (c === "[") return { t: "set", bytes: this.bracket() };
    if (c === ".") {
      this.i++;
      return { t: "set", bytes: complement(new Set([0x0a])) };
    }
    if (c === "^") {
      this.i++;
      return { t: "assert", kind: Assertion.Start };
    }
    if (c === "$") {
      this.i++;
      return { t: "assert", kind: Assertion.End };
    }
    if (c === "\\") {
      this.i++;
      const e = this.src[this.i++];
      if (e === "b") return { t: "assert", kind: Assertion.WordBoundary };
      if (e === "B") return { t: "assert", kind: Assertion.NotWordBoundary };
      return { t: "set", bytes: this.escapeSet(e) };
    }
    if ("*+?{".includes(c)) this.fail("a quantifier with nothing to repeat");
    this.i++;
    return { t: "set", bytes: this.charSet(c) };
  }

  private group(): Node {
    const n = this.alternation();
    if (!this.eat(")")) this.fail("an unclosed group");
    return n;
  }

  /** A lookaround body must be literal alternatives: it is checked in place, in linear time. */
  private literalAlternatives(n: Node): string[] {
    const one = (x: Node): string[] => {
      if (x.t === "alt") return x.items.flatMap(one);
      if (x.t === "set" && x.bytes.size === 1) return [String.fromCharCode([...x.bytes][0])];
      if (x.t === "cat") {
        let out = [""];
        for (const item of x.items) {
          const parts = one(item);
          out = out.flatMap((a) => parts.map((b) => a + b));
        }
        return out;
      }
      return this.fail("a lookaround over more than literal text");
    };
    return one(n);
  }

  private charSet(c: string): Set<number> {
    const code = c.charCodeAt(0);
    if (code > 0x7f) this.fail("a non-ASCII character");
    return new Set([lower(code)]);
  }

  private escapeSet(e: string): Set<number> {
    if (e === undefined) this.fail("a trailing backslash");
    if (e === "d") return DIGIT;
    if (e === "D") return complement(DIGIT);
    if (e === "w") return WORD;
    if (e === "W") return complement(WORD);
    if (e === "s") return SPACE;
    if (e === "S") return complement(SPACE);
    if (e === "t") return new Set([0x09]);
    if (e === "n") return new Set([0x0a]);
    if (e === "r") return new Set([0x0d]);
    if (/[0-9]/.test(e)) this.fail("a back-reference");
    if (/[a-zA-Z]/.test(e)) this.fail(`the escape \\${e}`);
    return this.charSet(e);
  }

  private bracket(): Set<number> {
    this.i++; // [
    const negate = this.eat("^");
    const out = new Set<number>();
    let first = true;
    while (this.i < this.src.length && (this.peek() !== "]" || first)) {
      first = false;
      let from: Set<number>;
      if (this.peek() === "\\") {
        this.i++;
        from = this.escapeSet(this.src[this.i++]);
      } else from = this.charSet(this.src[this.i++]);
      if (this.peek() === "-" && this.src[this.i + 1] !== "]" && from.size === 1) {
        this.i++;
        let to: Set<number>;
        if (this.peek() === "\\") {
          this.i++;
          to = this.escapeSet(this.src[this.i++]);
        } else to = this.charSet(this.src[this.i++]);
        const [a, b] = [[...from][0], [...to][0]];
        // Ranges are built over the original case, then folded (e.g. A-Z adds a-z).
        for (const x of range(Math.min(a, b), Math.max(a, b))) out.add(lower(x));
        for (const x of range(Math.min(a, b) - 32, Math.max(a, b) - 32)) if (x >= 0x41 && x <= 0x5a) out.add(lower(x));
      } else for (const x of from) out.add(x);
    }
    if (!this.eat("]")) this.fail("an unclosed class");
    return negate ? complement(out) : out;
  }
}

/** Compiles `patterns` (one alternative each, as isbot's list) into one program; throws naming a pattern it cannot take. */
export function compilePatterns(patterns: string[]): RegexProgram {
  const prog: RegexProgram = { code: [], classes: [], literals: [], starts: [], anchored: [], firstBytes: [], prefixes: [], patterns };
  const classIndex = new Map<string, number>();
  const emit = (op: number, a = 0, b = 0) => {
    prog.code.push(op, a, b);
    return prog.code.length / 3 - 1;
  };
  const patch = (pc: number, slot: 1 | 2, value: number) => {
    prog.code[pc * 3 + slot] = value;
  };
  const classOf = (bytes: Set<number>) => {
    const bits = new Array(32).fill(0);
    for (const b of bytes) bits[b >> 3] |= 1 << (b & 7);
    const key = bits.join(",");
    let i = classIndex.get(key);
    if (i === undefined) {
      i = prog.classes.length;
      prog.classes.push(bits);
      classIndex.set(key, i);
    }
    return i;
  };
  const gen = (n: Node): void => {
    switch (n.t) {
      case "set":
        if (n.bytes.size === 1) emit(Op.Char, [...n.bytes][0]);
        else emit(Op.Class, classOf(n.bytes));
        return;
      case "cat":
        for (const item of n.items) gen(item);
        return;
      case "alt": {
        const jumps: number[] = [];
        for (let k = 0; k < n.items.length; k++) {
          if (k < n.items.length - 1) {
            const split = emit(Op.Split);
            patch(split, 1, split + 1);
            gen(n.items[k]);
            jumps.push(emit(Op.Jmp));
            patch(split, 2, prog.code.length / 3);
          } else gen(n.items[k]);
        }
        for (const j of jumps) patch(j, 1, prog.code.length / 3);
        return;
      }
      case "rep": {
        for (let k = 0; k < n.min; k++) gen(n.item);
        if (n.max === Infinity) {
          const split = emit(Op.Split);
          patch(split, 1, split + 1);
          gen(n.item);
          emit(Op.Jmp, split);
          patch(split, 2, prog.code.length / 3);
        } else {
          const splits: number[] = [];
          for (let k = n.min; k < n.max; k++) {
            const split = emit(Op.Split);
            patch(split, 1, split + 1);
            splits.push(split);
            gen(n.item);
          }
          for (const s of splits) patch(s, 2, prog.code.length / 3);
        }
        return;
      }
      case "assert":
        emit(Op.Assert, n.kind);
        return;
      case "look": {
        const op = n.ahead ? (n.negate ? Op.NotAhead : Op.Ahead) : n.negate ? Op.NotBehind : Op.Behind;
        prog.literals.push(n.literals.map((s) => s.toLowerCase()));
        emit(op, prog.literals.length - 1);
        return;
      }
    }
  };
  for (const p of patterns) {
    const tree = new Parser(p).parse();
    const start = prog.code.length / 3;
    gen(tree);
    emit(Op.Match);
    prog.starts.push(start);
    prog.anchored.push(tree.t === "cat" && tree.items[0]?.t === "assert" && tree.items[0].kind === Assertion.Start);
    prog.firstBytes.push(firstBytes(prog, start));
    // A leading run of Char instructions (after ^, which the anchored table handles) is a literal prefix.
    let pc = start;
    if (prog.code[pc * 3] === Op.Assert && prog.code[pc * 3 + 1] === Assertion.Start) pc++;
    let prefix = "";
    while (prog.code[pc * 3] === Op.Char) prefix += String.fromCharCode(prog.code[pc++ * 3 + 1]);
    prog.prefixes.push(prefix);
  }
  return prog;
}

/** The bytes a match from `pc` can begin with; assertions and lookarounds are passed as if they held. */
function firstBytes(prog: RegexProgram, pc: number): number[] {
  const out = new Set<number>();
  const seen = new Set<number>();
  const stack = [pc];
  while (stack.length > 0) {
    const at = stack.pop() as number;
    if (seen.has(at)) continue;
    seen.add(at);
    const [op, a, b] = prog.code.slice(at * 3, at * 3 + 3);
    if (op === Op.Char) out.add(a);
    else if (op === Op.Class) {
      for (let x = 0; x < 256; x++) if (prog.classes[a][x >> 3] & (1 << (x & 7))) out.add(x);
    } else if (op === Op.Split) stack.push(a, b);
    else if (op === Op.Jmp) stack.push(a);
    else if (op === Op.Match) {
      for (let x = 0; x < 256; x++) out.add(x);
    } else stack.push(at + 1);
  }
  return [...out].sort((x, y) => x - y);
}
