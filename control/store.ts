// Versioned rule documents, one file per filter, written atomically (write, fsync, rename): a restart
// keeps every version, and a crash mid-write leaves the previous file whole.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeAtomic } from "../runtime/ecds.ts";

export interface Change {
  path: string;
  before?: unknown;
  after?: unknown;
}

export interface Version {
  version: number;
  author: string;
  time: string;
  doc: unknown;
  /** What changed against the previous version. */
  diff: Change[];
  /** Set when this version restored an earlier one. */
  restoredFrom?: number;
}

export class StaleVersion extends Error {
  constructor(public current: number) {
    super(`version ${current} is current`);
  }
}

/** Path-level differences between two JSON values ("rules[0].target"). */
export function diff(before: unknown, after: unknown, path = ""): Change[] {
  if (JSON.stringify(before) === JSON.stringify(after)) return [];
  const isObj = (v: unknown) => v !== null && typeof v === "object";
  if (Array.isArray(before) && Array.isArray(after)) {
    const out: Change[] = [];
    for (let i = 0; i < Math.max(before.length, after.length); i++) out.push(...diff(before[i], after[i], `${path}[${i}]`));
    return out;
  }
  if (isObj(before) && isObj(after) && !Array.isArray(before) && !Array.isArray(after)) {
    const b = before as Record<string, unknown>;
    const a = after as Record<string, unknown>;
    const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])];
    return keys.flatMap((k) => diff(b[k], a[k], path ? `${path}.${k}` : k));
  }
  const c: Change = { path: path || "(document)" };
  if (before !== undefined) c.before = before;
  if (after !== undefined) c.after = after;
  return [c];
}

export class Store {
  private cache = new Map<string, Version[]>();

  constructor(
    public dir: string,
    public filters: string[],
  ) {
    mkdirSync(dir, { recursive: true });
  }

  private file(filter: string): string {
    return join(this.dir, `${filter}.versions.json`);
  }

  versions(filter: string): Version[] {
    let v = this.cache.get(filter);
    if (!v) {
      v = existsSync(this.file(filter)) ? (JSON.parse(readFileSync(this.file(filter), "utf8")) as Version[]) : [];
      this.cache.set(filter, v);
    }
    return v;
  }

  current(filter: string): Version | undefined {
    const v = this.versions(filter);
    return v[v.length - 1];
  }

  /** Appends a version if `basedOn` is still current (0 = no version yet); else throws StaleVersion. */
  commit(filter: string, doc: unknown, author: string, basedOn: number, restoredFrom?: number): Version {
    const list = this.versions(filter);
    const cur = list[list.length - 1];
    const curVersion = cur?.version ?? 0;
    if (basedOn !== curVersion) throw new StaleVersion(curVersion);
    const v: Version = { version: curVersion + 1, author, time: new Date().toISOString(), doc, diff: diff(cur?.doc, doc) };
    if (restoredFrom !== undefined) v.restoredFrom = restoredFrom;
    // Persist first: the in-memory list changes only once the file is safely replaced.
    writeAtomic(this.file(filter), JSON.stringify([...list, v], null, 1));
    list.push(v);
    return v;
  }
}
