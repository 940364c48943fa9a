// What changed between two versions of a rule document, by meaning: jsondiffpatch's deltas with list
// items matched by their name (a rule, a consumer) or their value (a CIDR, a bot string), so a rule
// added at the top is one addition, not a rename of every rule below it, and a moved rule is a move.
//
// jsondiffpatch matches a list's changed middle with a longest common subsequence, which is quadratic:
// two 100,000-entry lists with changes at both ends would take minutes. Past LCS_CELLS, lists of distinct
// items are matched by a longest increasing subsequence instead (n log n; additions and removals, no
// moves), and anything else is stored as a replacement of the list.
import { create, type Delta, type DiffContext } from "jsondiffpatch";

/** Above this many cells (changed items on one side times the other), jsondiffpatch's LCS is not used. */
export const LCS_CELLS = 250_000;

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/** How a list item is recognised across versions: its name or id if it has one, else its value. */
function itemKey(v: unknown): string {
  if (isObject(v)) {
    if (typeof v.name === "string") return `name:${v.name}`;
    if (typeof v.id === "string") return `id:${v.id}`;
  }
  return `value:${JSON.stringify(v)}`;
}

const differ = create({
  objectHash: (item) => itemKey(item),
  arrays: { detectMove: true, includeValueOnMove: false },
  cloneDiffValues: false,
});

/** Indices (into `seq`) of a longest strictly increasing subsequence of `seq`. */
function longestIncreasing(seq: number[]): number[] {
  const tails: number[] = []; // index into seq of the smallest tail of each length
  const prev = new Array<number>(seq.length).fill(-1);
  for (let i = 0; i < seq.length; i++) {
    let lo = 0;
    let hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (seq[tails[mid]] < seq[i]) lo = mid + 1;
      else hi = mid;
    }
    if (lo > 0) prev[i] = tails[lo - 1];
    tails[lo] = i;
  }
  const out: number[] = [];
  for (let i = tails.length > 0 ? tails[tails.length - 1] : -1; i >= 0; i = prev[i]) out.push(i);
  return out.reverse();
}

/** A list delta for long lists whose changed middle is too big for an LCS (see the file's comment). */
function longListDiff(context: DiffContext): void {
  if (!context.leftIsArray || !Array.isArray(context.right)) return;
  const a = context.left as unknown[];
  const b = context.right as unknown[];
  let head = 0;
  while (head < a.length && head < b.length && itemKey(a[head]) === itemKey(b[head])) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && itemKey(a[a.length - 1 - tail]) === itemKey(b[b.length - 1 - tail])) tail++;
  if ((a.length - head - tail) * (b.length - head - tail) <= LCS_CELLS) return; // jsondiffpatch's own
  const where = new Map<string, number>();
  for (let i = 0; i < a.length; i++) {
    const k = itemKey(a[i]);
    if (where.has(k)) {
      context.setResult([a, b]).exit(); // repeated items: no unique matching, the list is replaced
      return;
    }
    where.set(k, i);
  }
  const seen = new Set<string>();
  const pairs: [number, number][] = [];
  for (let j = 0; j < b.length; j++) {
    const k = itemKey(b[j]);
    if (seen.has(k)) {
      context.setResult([a, b]).exit();
      return;
    }
    seen.add(k);
    const i = where.get(k);
    if (i !== undefined) pairs.push([i, j]);
  }
  const kept = longestIncreasing(pairs.map(([i]) => i)).map((n) => pairs[n]);
  const keptA = new Set(kept.map(([i]) => i));
  const keptB = new Set(kept.map(([, j]) => j));
  const delta: Record<string, unknown> = { _t: "a" };
  for (let i = 0; i < a.length; i++) if (!keptA.has(i)) delta[`_${i}`] = [a[i], 0, 0];
  for (let j = 0; j < b.length; j++) if (!keptB.has(j)) delta[`${j}`] = [b[j]];
  for (const [i, j] of kept) {
    const d = differ.diff(a[i], b[j]);
    if (d !== undefined) delta[`${j}`] = d;
  }
  context.setResult(Object.keys(delta).length > 1 ? (delta as Delta) : undefined).exit();
}
longListDiff.filterName = "longLists";
differ.processor.pipes.diff.before("arrays", longListDiff);

/** The delta from `before` to `after` (undefined: equal). */
export function delta(before: unknown, after: unknown): Delta {
  return differ.diff(before, after);
}

/** `doc` with `d` applied (a fresh value; `doc` is left as it is). */
export function applyDelta(doc: unknown, d: Delta): unknown {
  return d === undefined ? structuredClone(doc) : differ.patch(structuredClone(doc), d);
}

/**
 * One change, by meaning: an item added to or removed from a list (`path` is the list's), an item moved
 * within one (`from` and `to`, counted from 0), or a value changed, set or removed (`path` is the
 * value's). `path` names list items by their index in the new version ("rules[0].target") and `item`
 * by their name when they have one.
 */
export interface Change {
  kind: "added" | "removed" | "moved" | "changed";
  path: string;
  item?: string;
  before?: unknown;
  after?: unknown;
  from?: number;
  to?: number;
}

const nameOf = (v: unknown): string | undefined =>
  isObject(v) ? (typeof v.name === "string" ? v.name : typeof v.id === "string" ? v.id : undefined) : undefined;

/**
 * The changes a delta makes to `before` (whose result is `after`), at most `max` of them; `total` counts
 * them all.
 */
export function changes(d: Delta, before: unknown, after: unknown, max = 100): { list: Change[]; total: number } {
  const list: Change[] = [];
  let total = 0;
  const add = (c: Change) => {
    total++;
    if (list.length >= max) return;
    // As stored in JSON: no keys for absent values.
    for (const k of Object.keys(c) as (keyof Change)[]) if (c[k] === undefined) delete c[k];
    list.push(c);
  };
  const join = (path: string, key: string | number) => (typeof key === "number" ? `${path}[${key}]` : path ? `${path}.${key}` : key);
  const walk = (dl: Delta, b: unknown, a: unknown, path: string, item?: string) => {
    if (dl === undefined) return;
    if (Array.isArray(dl)) {
      if (dl.length === 1) add({ kind: "changed", path: path || "(document)", item, after: dl[0] });
      else if (dl.length === 2) add({ kind: "changed", path: path || "(document)", item, before: dl[0], after: dl[1] });
      else if (dl[2] === 0) add({ kind: "changed", path: path || "(document)", item, before: dl[0] });
      return;
    }
    if (dl._t === "a") {
      const bl = Array.isArray(b) ? b : [];
      const al = Array.isArray(a) ? a : [];
      for (const [k, v] of Object.entries(dl)) {
        if (k === "_t") continue;
        if (k.startsWith("_")) {
          const i = Number(k.slice(1));
          const dv = v as unknown[];
          if (dv[2] === 3) add({ kind: "moved", path, item: nameOf(bl[i]) ?? JSON.stringify(bl[i]), from: i, to: dv[1] as number });
          else add({ kind: "removed", path, item: nameOf(bl[i]), before: bl[i] });
        } else {
          const j = Number(k);
          if (Array.isArray(v) && v.length === 1) add({ kind: "added", path, item: nameOf(al[j]), after: al[j] });
          else {
            // A changed item: its index before is the one the same item had (found by its key).
            const key = itemKey(al[j]);
            const i = bl.findIndex((x) => itemKey(x) === key);
            walk(v as Delta, i >= 0 ? bl[i] : undefined, al[j], join(path, j), nameOf(al[j]) ?? item);
          }
        }
      }
      return;
    }
    const bo = isObject(b) ? b : {};
    const ao = isObject(a) ? a : {};
    for (const [k, v] of Object.entries(dl)) walk(v as Delta, bo[k], ao[k], join(path, k), item);
  };
  walk(d, before, after, "");
  return { list, total };
}
