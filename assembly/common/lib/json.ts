// A small strict JSON parser (RFC 8259) and a non-allocating path lookup for request bodies.
// Pure: no host calls, so as-pect tests it directly.

export const enum JsonKind { Null, Bool, Number, String, Array, Object }

export class JsonValue {
  kind: JsonKind = JsonKind.Null;
  bool: bool = false;
  num: f64 = 0;
  private text: string = "";
  items: JsonValue[] = [];
  keys: string[] = [];
  // A long array of strings stays unbuilt: its span in `src` is kept and read on demand
  // (forEachString), so a 100,000-entry list never becomes 100,000 objects.
  lazy: bool = false;
  src: string = "";
  rawStart: i32 = 0;
  count: i32 = 0;
  // Objects keep insertion order in keys/items; lookups are linear, which suits small config objects.

  /**
   * A string's value. A long string without escapes stays a span of `src` (rawStart, count), so a packed
   * list of hundreds of kilobytes is read in place (spanStart/spanEnd) rather than copied; this copies it out.
   */
  get str(): string {
    if (this.lazy && this.kind == JsonKind.String) return this.src.substring(this.rawStart, this.rawStart + this.count);
    return this.text;
  }

  set str(s: string) { this.text = s; }

  /** Where a string's value lies in `spanSource` (its own copy unless it was kept as a span). */
  get spanSource(): string { return this.lazy ? this.src : this.text; }
  get spanStart(): i32 { return this.lazy ? this.rawStart : 0; }
  get spanEnd(): i32 { return this.lazy ? this.rawStart + this.count : this.text.length; }

  /** Of a key given twice, the last value: the rule JSON.parse follows. */
  get(key: string): JsonValue | null {
    for (let i = this.keys.length - 1; i >= 0; i--) if (this.keys[i] == key) return this.items[i];
    return null;
  }

  kindName(): string {
    switch (this.kind) {
      case JsonKind.Null: return "null";
      case JsonKind.Bool: return "boolean";
      case JsonKind.Number: return "number";
      case JsonKind.String: return "string";
      case JsonKind.Array: return "array";
      default: return "object";
    }
  }

  /** Calls sink.add(index, value) for each element of an array of strings, built or lazy. */
  forEachString(sink: StringSink): void {
    if (!this.lazy) {
      for (let i = 0; i < this.items.length; i++) {
        if (this.items[i].kind == JsonKind.String) sink.add(i, this.items[i].str);
      }
      return;
    }
    const p = new JsonParser(this.src);
    p.pos = this.rawStart + 1;
    sink.expect(this.count);
    const src = this.src;
    for (let i = 0; i < this.count; i++) {
      p.ws();
      // A string without escapes goes to the sink as its span of the source: nothing is copied.
      const open = p.pos;
      let close = open + 1;
      while (close < src.length && src.charCodeAt(close) != 0x22 && src.charCodeAt(close) != 0x5c) close++;
      if (close < src.length && src.charCodeAt(close) == 0x22) {
        sink.addSpan(i, src, open + 1, close);
        p.pos = close + 1;
      } else {
        const s = p.parseString();
        if (s === null) return; // cannot happen: the span was validated when it was parsed
        sink.add(i, s);
      }
      p.ws();
      p.pos++; // ',' or ']'
    }
  }

  /** Scalar as the string a body rule compares against: strings raw, numbers/bools/null as JSON text. */
  scalarText(): string | null {
    switch (this.kind) {
      case JsonKind.String: return this.str;
      case JsonKind.Bool: if (this.bool) return "true"; return "false";
      case JsonKind.Null: return "null";
      case JsonKind.Number: return formatNumber(this.num);
      default: return null;
    }
  }
}

/** Receives the strings of an array one at a time (AssemblyScript has no closures). */
export abstract class StringSink {
  abstract add(index: i32, value: string): void;
  /** The element `index` is src[start, end) (it had no escapes); a sink that can read it in place overrides this. */
  addSpan(index: i32, src: string, start: i32, end: i32): void { this.add(index, src.substring(start, end)); }
  /** How many elements are coming, before the first (lazy arrays know). */
  expect(count: i32): void {}
}

/** Arrays of at least this many strings are kept as spans. */
const LAZY_MIN = 256;
/** Strings of at least this many characters without escapes are kept as spans. */
const LAZY_STRING_MIN = 4096;

export function formatNumber(n: f64): string {
  if (n == Math.floor(n) && Math.abs(n) < 9007199254740992) return (<i64>n).toString();
  return n.toString();
}

const MAX_DEPTH = 64;

export class JsonParser {
  pos: i32 = 0;
  error: string = "";
  constructor(public src: string) {}

  fail(msg: string): void {
    if (this.error.length == 0) this.error = msg + " at offset " + this.pos.toString();
  }

  ws(): void {
    const s = this.src;
    while (this.pos < s.length) {
      const c = s.charCodeAt(this.pos);
      if (c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09) this.pos++;
      else break;
    }
  }

  peek(): i32 {
    return this.pos < this.src.length ? this.src.charCodeAt(this.pos) : -1;
  }

  parseDocument(): JsonValue | null {
    this.ws();
    const v = this.parseValue(0);
    if (v === null) return null;
    this.ws();
    if (this.pos != this.src.length) { this.fail("unexpected trailing characters"); return null; }
    return v;
  }

  parseValue(depth: i32): JsonValue | null {
    if (depth > MAX_DEPTH) { this.fail("nesting too deep"); return null; }
    this.ws();
    const c = this.peek();
    const v = new JsonValue();
    if (c == 0x7b) { // {
      this.pos++;
      v.kind = JsonKind.Object;
      this.ws();
      if (this.peek() == 0x7d) { this.pos++; return v; }
      while (true) {
        this.ws();
        if (this.peek() != 0x22) { this.fail("expected a string key"); return null; }
        const k = this.parseString();
        if (k === null) return null;
        this.ws();
        if (this.peek() != 0x3a) { this.fail("expected ':'"); return null; }
        this.pos++;
        const item = this.parseValue(depth + 1);
        if (item === null) return null;
        v.keys.push(k);
        v.items.push(item);
        this.ws();
        const d = this.peek();
        if (d == 0x2c) { this.pos++; continue; }
        if (d == 0x7d) { this.pos++; return v; }
        this.fail("expected ',' or '}'");
        return null;
      }
    }
    if (c == 0x5b) { // [
      v.kind = JsonKind.Array;
      const n = this.countStrings();
      if (n >= LAZY_MIN) {
        v.lazy = true;
        v.src = this.src;
        v.rawStart = this.pos;
        v.count = n;
        this.skipValue(depth);
        return v;
      }
      this.pos++;
      this.ws();
      if (this.peek() == 0x5d) { this.pos++; return v; }
      while (true) {
        const item = this.parseValue(depth + 1);
        if (item === null) return null;
        v.items.push(item);
        this.ws();
        const d = this.peek();
        if (d == 0x2c) { this.pos++; continue; }
        if (d == 0x5d) { this.pos++; return v; }
        this.fail("expected ',' or ']'");
        return null;
      }
    }
    if (c == 0x22) {
      const start = this.pos + 1;
      const end = this.plainStringEnd();
      if (end >= 0) {
        v.kind = JsonKind.String;
        this.pos = end + 1;
        if (end - start < LAZY_STRING_MIN) {
          v.str = this.src.substring(start, end);
          return v;
        }
        v.lazy = true;
        v.src = this.src;
        v.rawStart = start;
        v.count = end - start;
        return v;
      }
      const s = this.parseString();
      if (s === null) return null;
      v.kind = JsonKind.String;
      v.str = s;
      return v;
    }
    if (this.matchWord("true")) { v.kind = JsonKind.Bool; v.bool = true; return v; }
    if (this.matchWord("false")) { v.kind = JsonKind.Bool; return v; }
    if (this.matchWord("null")) return v;
    if (c == 0x2d || (c >= 0x30 && c <= 0x39)) {
      const start = this.pos;
      if (!this.scanNumber()) return null;
      v.kind = JsonKind.Number;
      v.num = parseFloat(this.src.substring(start, this.pos));
      return v;
    }
    if (c < 0) this.fail("unexpected end of input");
    else this.fail("unexpected character");
    return null;
  }

  /** Where the string at pos closes if it has no escapes or control characters (nothing to decode); else -1. */
  plainStringEnd(): i32 {
    const s = this.src;
    for (let i = this.pos + 1; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c == 0x22) return i;
      if (c == 0x5c || c < 0x20) return -1;
    }
    return -1;
  }

  /** If the array at pos holds only strings, their count (validated, nothing built); else -1. pos is unchanged. */
  countStrings(): i32 {
    const start = this.pos;
    let n = 0;
    this.pos++;
    this.ws();
    if (this.peek() == 0x5d) { this.pos = start; return 0; }
    while (true) {
      this.ws();
      if (this.peek() != 0x22 || !this.parseStringNoAlloc()) { n = -1; break; }
      n++;
      this.ws();
      const d = this.peek();
      this.pos++;
      if (d == 0x2c) continue;
      if (d != 0x5d) n = -1;
      break;
    }
    this.pos = start;
    this.error = "";
    return n;
  }

  matchWord(w: string): bool {
    if (this.src.length - this.pos >= w.length && this.src.substr(this.pos, w.length) == w) {
      this.pos += w.length;
      return true;
    }
    return false;
  }

  scanNumber(): bool {
    const s = this.src;
    if (this.peek() == 0x2d) this.pos++;
    if (this.peek() == 0x30) this.pos++;
    else if (!this.digits()) { this.fail("bad number"); return false; }
    if (this.peek() == 0x2e) { this.pos++; if (!this.digits()) { this.fail("bad number"); return false; } }
    const e = this.peek();
    if (e == 0x65 || e == 0x45) {
      this.pos++;
      const sign = this.peek();
      if (sign == 0x2b || sign == 0x2d) this.pos++;
      if (!this.digits()) { this.fail("bad number"); return false; }
    }
    return s.length >= this.pos;
  }

  digits(): bool {
    const start = this.pos;
    while (this.pos < this.src.length) {
      const c = this.src.charCodeAt(this.pos);
      if (c < 0x30 || c > 0x39) break;
      this.pos++;
    }
    return this.pos > start;
  }

  /** Parses a string starting at the opening quote. */
  parseString(): string | null {
    const s = this.src;
    this.pos++;
    const start = this.pos;
    // Fast path: no escapes.
    while (this.pos < s.length) {
      const c = s.charCodeAt(this.pos);
      if (c == 0x22) { const r = s.substring(start, this.pos); this.pos++; return r; }
      if (c == 0x5c) break;
      if (c < 0x20) { this.fail("control character in string"); return null; }
      this.pos++;
    }
    let out = s.substring(start, this.pos);
    while (this.pos < s.length) {
      const c = s.charCodeAt(this.pos);
      if (c == 0x22) { this.pos++; return out; }
      if (c < 0x20) { this.fail("control character in string"); return null; }
      if (c != 0x5c) { out += String.fromCharCode(c); this.pos++; continue; }
      this.pos++;
      const e = this.peek();
      this.pos++;
      if (e == 0x22) out += "\"";
      else if (e == 0x5c) out += "\\";
      else if (e == 0x2f) out += "/";
      else if (e == 0x62) out += "\b";
      else if (e == 0x66) out += "\f";
      else if (e == 0x6e) out += "\n";
      else if (e == 0x72) out += "\r";
      else if (e == 0x74) out += "\t";
      else if (e == 0x75) {
        if (this.pos + 4 > s.length) { this.fail("bad \\u escape"); return null; }
        const code = parseHex4(s, this.pos);
        if (code < 0) { this.fail("bad \\u escape"); return null; }
        out += String.fromCharCode(code);
        this.pos += 4;
      } else { this.fail("bad escape"); return null; }
    }
    this.fail("unterminated string");
    return null;
  }

  /** Skips one value without building it. */
  skipValue(depth: i32): bool {
    if (depth > MAX_DEPTH) { this.fail("nesting too deep"); return false; }
    this.ws();
    const c = this.peek();
    if (c == 0x22) return this.parseStringNoAlloc();
    if (c == 0x7b || c == 0x5b) {
      const close = c == 0x7b ? 0x7d : 0x5d;
      this.pos++;
      this.ws();
      if (this.peek() == close) { this.pos++; return true; }
      while (true) {
        if (c == 0x7b) {
          this.ws();
          if (this.peek() != 0x22 || !this.parseStringNoAlloc()) { this.fail("expected a string key"); return false; }
          this.ws();
          if (this.peek() != 0x3a) { this.fail("expected ':'"); return false; }
          this.pos++;
        }
        if (!this.skipValue(depth + 1)) return false;
        this.ws();
        const d = this.peek();
        this.pos++;
        if (d == 0x2c) continue;
        if (d == close) return true;
        this.fail("expected separator");
        return false;
      }
    }
    if (this.matchWord("true") || this.matchWord("false") || this.matchWord("null")) return true;
    if (c == 0x2d || (c >= 0x30 && c <= 0x39)) return this.scanNumber();
    this.fail("unexpected character");
    return false;
  }

  parseStringNoAlloc(): bool {
    const s = this.src;
    this.pos++;
    while (this.pos < s.length) {
      const c = s.charCodeAt(this.pos);
      if (c == 0x22) { this.pos++; return true; }
      if (c == 0x5c) this.pos++;
      else if (c < 0x20) { this.fail("control character in string"); return false; }
      this.pos++;
    }
    this.fail("unterminated string");
    return false;
  }

  /** True when the string at pos (opening quote) equals `key`; consumes it either way. */
  keyEquals(key: string): bool {
    const s = this.src;
    const start = this.pos + 1;
    if (!this.parseStringNoAlloc()) return false;
    const len = this.pos - 1 - start;
    if (len != key.length) return false;
    // Keys with escapes compare by their raw text; such keys never match a plain path segment.
    for (let i = 0; i < len; i++) if (s.charCodeAt(start + i) != key.charCodeAt(i)) return false;
    return true;
  }
}

function parseHex4(s: string, at: i32): i32 {
  let v = 0;
  for (let i = 0; i < 4; i++) {
    const c = s.charCodeAt(at + i);
    let d: i32;
    if (c >= 0x30 && c <= 0x39) d = c - 0x30;
    else if (c >= 0x61 && c <= 0x66) d = c - 0x61 + 10;
    else if (c >= 0x41 && c <= 0x46) d = c - 0x41 + 10;
    else return -1;
    v = (v << 4) | d;
  }
  return v;
}

/**
 * Finds the scalar at a dotted path (segments pre-split) in a JSON document without building it.
 * Array elements are addressed by index segments ("items.0.id"). Returns null when the document
 * is not JSON, the path is missing, or the value there is an object or array.
 */
export function lookupJsonPath(src: string, path: string[]): string | null {
  const p = new JsonParser(src);
  for (let seg = 0; seg < path.length; seg++) {
    p.ws();
    const c = p.peek();
    const key = path[seg];
    if (c == 0x7b) {
      p.pos++;
      p.ws();
      if (p.peek() == 0x7d) return null;
      // The whole object is read: of a key given twice the last counts, as JSON.parse (and so most
      // upstreams) reads it, so a client cannot show this rule one value and the upstream another.
      let found = -1;
      while (true) {
        p.ws();
        if (p.peek() != 0x22) return null;
        const hit = p.keyEquals(key);
        if (p.error.length > 0) return null;
        p.ws();
        if (p.peek() != 0x3a) return null;
        p.pos++;
        p.ws();
        if (hit) found = p.pos;
        if (!p.skipValue(1)) return null;
        p.ws();
        const d = p.peek();
        p.pos++;
        if (d == 0x2c) continue;
        if (d == 0x7d) break;
        return null;
      }
      if (found < 0) return null;
      p.pos = found;
    } else if (c == 0x5b) {
      const index = parseIndex(key);
      if (index < 0) return null;
      p.pos++;
      for (let i = 0; i < index; i++) {
        if (!p.skipValue(1)) return null;
        p.ws();
        if (p.peek() != 0x2c) return null;
        p.pos++;
      }
      p.ws();
      if (p.peek() == 0x5d) return null;
    } else {
      return null;
    }
  }
  p.ws();
  const c = p.peek();
  if (c == 0x7b || c == 0x5b) return null;
  const v = p.parseValue(0);
  if (v === null) return null;
  return v.scalarText();
}

function parseIndex(s: string): i32 {
  if (s.length == 0 || s.length > 9) return -1;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    n = n * 10 + (c - 0x30);
  }
  return n;
}

/** True when src is exactly one well-formed JSON value; allocates nothing. */
export function isValidJson(src: string): bool {
  const p = new JsonParser(src);
  if (!p.skipValue(0)) return false;
  p.ws();
  return p.pos == src.length;
}
