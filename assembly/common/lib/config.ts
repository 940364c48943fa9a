// Reading a JSON config into typed values with errors that name the field ("rules[2].header.name: ...").
// Unknown fields are errors: a typo must not silently become a default.
import { formatNumber, JsonKind, JsonParser, JsonValue, StringSink } from "./json";

class ListSink extends StringSink {
  list: string[] = [];
  add(index: i32, value: string): void { this.list.push(value); }
}

/**
 * `s` with control characters written as escapes (\n, \r, \t, \u00XX): an error quotes names and values
 * from the document, and each error is one line (of the validator's answer, of Envoy's log), so a
 * newline in a value must not start a line of its own.
 */
export function oneLine(s: string): string {
  let i = 0;
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c == 0x7f) break;
  }
  if (i == s.length) return s;
  let out = s.substring(0, i);
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x0a) out += "\\n";
    else if (c == 0x0d) out += "\\r";
    else if (c == 0x09) out += "\\t";
    else if (c < 0x20 || c == 0x7f) out += "\\u00" + (c < 0x10 ? "0" : "") + c.toString(16);
    else out += String.fromCharCode(c);
  }
  return out;
}

export class ConfigErrors {
  list: string[] = [];
  add(path: string, msg: string): void { this.list.push(oneLine(path + ": " + msg)); }
  get ok(): bool { return this.list.length == 0; }
  /** The first few errors, joined for one log line. */
  summary(): string {
    const n = this.list.length;
    const shown = this.list.slice(0, 5).join("; ");
    if (n > 5) return shown + "; and " + (n - 5).toString() + " more";
    return shown;
  }
}

/** A view over one JSON object that tracks which keys were read. */
export class ObjReader {
  private seen: bool[];
  constructor(public v: JsonValue, public path: string, public errors: ConfigErrors) {
    this.seen = new Array<bool>(v.keys.length);
  }

  /** The value of `key`; of a key given twice, the last (as JSON.parse, and the body lookup, read it). */
  private find(key: string): JsonValue | null {
    const keys = this.v.keys;
    let found: JsonValue | null = null;
    for (let i = 0; i < keys.length; i++) {
      if (keys[i] == key) { this.seen[i] = true; found = this.v.items[i]; }
    }
    return found;
  }

  at(key: string): string {
    if (this.path.length == 0) return key;
    return this.path + "." + key;
  }

  has(key: string): bool { return this.v.get(key) !== null; }

  raw(key: string): JsonValue | null { return this.find(key); }

  str(key: string, def: string): string {
    const v = this.find(key);
    if (v === null) return def;
    if (v.kind != JsonKind.String) { this.errors.add(this.at(key), "expected a string, got " + v.kindName()); return def; }
    return v.str;
  }

  requiredStr(key: string): string {
    const v = this.find(key);
    if (v === null) { this.errors.add(this.at(key), "is required"); return ""; }
    if (v.kind != JsonKind.String) { this.errors.add(this.at(key), "expected a string, got " + v.kindName()); return ""; }
    if (v.str.length == 0) { this.errors.add(this.at(key), "must not be empty"); return ""; }
    return v.str;
  }

  bool(key: string, def: bool): bool {
    const v = this.find(key);
    if (v === null) return def;
    if (v.kind != JsonKind.Bool) { this.errors.add(this.at(key), "expected a boolean, got " + v.kindName()); return def; }
    return v.bool;
  }

  /** A number within [min, max]. */
  num(key: string, def: f64, min: f64, max: f64): f64 {
    const v = this.find(key);
    if (v === null) return def;
    if (v.kind != JsonKind.Number) { this.errors.add(this.at(key), "expected a number, got " + v.kindName()); return def; }
    if (!(v.num >= min && v.num <= max)) {
      this.errors.add(this.at(key), "must be between " + fmt(min) + " and " + fmt(max) + ", got " + fmt(v.num));
      return def;
    }
    return v.num;
  }

  int(key: string, def: i64, min: i64, max: i64): i64 {
    const v = this.find(key);
    if (v === null) return def;
    if (v.kind != JsonKind.Number || v.num != Math.floor(v.num) || !isFinite(v.num)) { this.errors.add(this.at(key), "expected an integer"); return def; }
    if (v.num < <f64>min || v.num > <f64>max) {
      this.errors.add(this.at(key), "must be between " + min.toString() + " and " + max.toString() + ", got " + fmt(v.num));
      return def;
    }
    return <i64>v.num;
  }

  /** One of a fixed set of strings. */
  oneOf(key: string, def: string, allowed: string[]): string {
    const s = this.str(key, def);
    if (!allowed.includes(s)) { this.errors.add(this.at(key), "must be one of " + allowed.join(", ") + ", got '" + s + "'"); return def; }
    return s;
  }

  /** An array of strings of at most `max` entries (a longer one is an error naming the field). */
  strList(key: string, max: i32 = i32.MAX_VALUE): string[] {
    const sink = new ListSink();
    this.eachStr(key, sink, max);
    return sink.list;
  }

  /**
   * Feeds an array-of-strings field to sink one element at a time; large lists are never built whole.
   * More than `max` entries is an error, and none is fed.
   */
  eachStr(key: string, sink: StringSink, max: i32 = i32.MAX_VALUE): void {
    const v = this.find(key);
    if (v === null) return;
    if (v.kind != JsonKind.Array) { this.errors.add(this.at(key), "expected an array of strings, got " + v.kindName()); return; }
    const n = v.lazy ? v.count : v.items.length;
    if (n > max) { this.errors.add(this.at(key), "at most " + max.toString() + " entries, got " + n.toString()); return; }
    if (!v.lazy) {
      for (let i = 0; i < v.items.length; i++) {
        const item = v.items[i];
        if (item.kind != JsonKind.String) this.errors.add(this.at(key) + "[" + i.toString() + "]", "expected a string, got " + item.kindName());
      }
    }
    v.forEachString(sink);
  }

  obj(key: string): ObjReader | null {
    const v = this.find(key);
    if (v === null) return null;
    if (v.kind != JsonKind.Object) { this.errors.add(this.at(key), "expected an object, got " + v.kindName()); return null; }
    return new ObjReader(v, this.at(key), this.errors);
  }

  /** The objects of an array field, each as a reader; at most `max` of them (more is an error, and none is read). */
  objList(key: string, max: i32 = i32.MAX_VALUE): ObjReader[] {
    const v = this.find(key);
    const out = new Array<ObjReader>();
    if (v === null) return out;
    if (v.kind != JsonKind.Array) { this.errors.add(this.at(key), "expected an array, got " + v.kindName()); return out; }
    if (v.items.length > max) { this.errors.add(this.at(key), "at most " + max.toString() + " entries, got " + v.items.length.toString()); return out; }
    for (let i = 0; i < v.items.length; i++) {
      const p = this.at(key) + "[" + i.toString() + "]";
      const item = v.items[i];
      if (item.kind != JsonKind.Object) { this.errors.add(p, "expected an object, got " + item.kindName()); continue; }
      out.push(new ObjReader(item, p, this.errors));
    }
    return out;
  }

  /** Call after reading every known field: reports the rest as unknown. */
  done(): void {
    for (let i = 0; i < this.v.keys.length; i++) {
      if (!this.seen[i]) this.errors.add(this.at(this.v.keys[i]), "unknown field");
    }
  }
}

// Float-to-int conversions trap in wasm when out of range; formatNumber guards that.
const fmt = formatNumber;

/** Parses a config document; an empty document counts as "{}". Null (with errors set) when it is not a JSON object. */
export function readConfigRoot(src: string, errors: ConfigErrors): ObjReader | null {
  let text = src;
  if (src.trim().length == 0) text = "{}";
  const p = new JsonParser(text);
  const v = p.parseDocument();
  if (v === null) { errors.add("config", "invalid JSON: " + p.error); return null; }
  if (v.kind != JsonKind.Object) { errors.add("config", "expected a JSON object, got " + v.kindName()); return null; }
  return new ObjReader(v, "", errors);
}
