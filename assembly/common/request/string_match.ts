// One named value test: exact, prefix, suffix, contains, one_of, present. Compiled once from config.
import { ObjReader } from "../lib/config";

export const enum MatchOp { Exact, Prefix, Suffix, Contains, OneOf, Present }

const OPS = ["exact", "prefix", "suffix", "contains", "one_of", "present"];

export class StringMatch {
  name: string = "";
  op: MatchOp = MatchOp.Exact;
  value: string = "";
  values: string[] = [];
  /** For Present: true = must be present, false = must be absent. */
  present: bool = true;
  /** Index of `name` in its filter's list of distinct inputs, for per-request caching. */
  slot: i32 = -1;

  /** `v` is null when the header, cookie or parameter is absent. */
  test(v: string | null): bool {
    if (this.op == MatchOp.Present) return (v !== null) == this.present;
    if (v === null) return false;
    const s = <string>v;
    switch (this.op) {
      case MatchOp.Exact: return s == this.value;
      case MatchOp.Prefix: return s.startsWith(this.value);
      case MatchOp.Suffix: return s.endsWith(this.value);
      case MatchOp.Contains: return s.includes(this.value);
      default: return this.values.includes(s);
    }
  }
}

/**
 * Reads {"name": ..., <one operator>: ...}. `nameKey` is the field naming the input ("name" or "path");
 * header names are lower-cased because Envoy stores them so.
 */
export function readStringMatch(r: ObjReader, nameKey: string, lowerName: bool): StringMatch {
  const m = new StringMatch();
  m.name = r.requiredStr(nameKey);
  if (lowerName) m.name = m.name.toLowerCase();
  let ops = 0;
  for (let i = 0; i < OPS.length; i++) if (r.has(OPS[i])) ops++;
  if (ops != 1) r.errors.add(r.path, "needs exactly one of " + OPS.join(", "));
  if (r.has("exact")) { m.op = MatchOp.Exact; m.value = r.str("exact", ""); }
  else if (r.has("prefix")) { m.op = MatchOp.Prefix; m.value = r.str("prefix", ""); }
  else if (r.has("suffix")) { m.op = MatchOp.Suffix; m.value = r.str("suffix", ""); }
  else if (r.has("contains")) { m.op = MatchOp.Contains; m.value = r.str("contains", ""); }
  else if (r.has("one_of")) {
    m.op = MatchOp.OneOf;
    m.values = r.strList("one_of");
    if (m.values.length == 0) r.errors.add(r.at("one_of"), "must list at least one value");
  } else if (r.has("present")) { m.op = MatchOp.Present; m.present = r.bool("present", true); }
  // Read the rest so that done() flags only truly unknown fields.
  for (let i = 0; i < OPS.length; i++) r.raw(OPS[i]);
  r.done();
  return m;
}
