// Versioned rule documents, one file per version, written atomically (write, fsync, rename): a restart
// keeps every retained version, and a crash mid-write leaves the earlier files whole.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
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

/** Versions kept per filter unless the service is told otherwise (GRAYWALL_RETENTION). */
export const DEFAULT_RETENTION = 200;

/**
 * One file per version, `<dir>/<filter>/<version>.json`, each written atomically. A write touches one
 * new file (and removes the oldest beyond the retention), and start-up reads one directory listing and
 * the current version, so neither grows with history. A version file is immutable once written.
 */
export class Store {
  /** Retained version numbers per filter, ascending. */
  private numbers = new Map<string, number[]>();
  private loaded = new Map<string, Map<number, Version>>();

  constructor(
    public dir: string,
    public filters: string[],
    public retention = DEFAULT_RETENTION,
  ) {
    mkdirSync(dir, { recursive: true });
    for (const f of filters) this.migrate(f);
  }

  private folder(filter: string): string {
    return join(this.dir, filter);
  }

  private file(filter: string, version: number): string {
    return join(this.folder(filter), `${version}.json`);
  }

  /** Earlier releases kept a filter's whole history in one file: split it into version files once. */
  private migrate(filter: string): void {
    const old = join(this.dir, `${filter}.versions.json`);
    if (!existsSync(old)) return;
    const list = JSON.parse(readFileSync(old, "utf8")) as Version[];
    mkdirSync(this.folder(filter), { recursive: true });
    for (const v of list.slice(-this.retention)) writeAtomic(this.file(filter, v.version), JSON.stringify(v));
    renameSync(old, `${old}.migrated`);
  }

  private versionNumbers(filter: string): number[] {
    let n = this.numbers.get(filter);
    if (!n) {
      const dir = this.folder(filter);
      mkdirSync(dir, { recursive: true });
      // Half-written temp files (a crash between write and rename) start with a dot and are skipped.
      n = readdirSync(dir)
        .map((name) => /^(\d+)\.json$/.exec(name))
        .filter((m) => m !== null)
        .map((m) => Number(m[1]))
        .sort((a, b) => a - b);
      this.numbers.set(filter, n);
      this.loaded.set(filter, new Map());
    }
    return n;
  }

  private load(filter: string, version: number): Version {
    const cache = this.loaded.get(filter)!;
    let v = cache.get(version);
    if (!v) {
      v = JSON.parse(readFileSync(this.file(filter, version), "utf8")) as Version;
      cache.set(version, v);
    }
    return v;
  }

  /** The retained versions, oldest first. */
  versions(filter: string): Version[] {
    return this.versionNumbers(filter).map((n) => this.load(filter, n));
  }

  version(filter: string, version: number): Version | undefined {
    return this.versionNumbers(filter).includes(version) ? this.load(filter, version) : undefined;
  }

  current(filter: string): Version | undefined {
    const n = this.versionNumbers(filter);
    return n.length > 0 ? this.load(filter, n[n.length - 1]) : undefined;
  }

  /**
   * Appends a version if `basedOn` is still current (0 = no version yet); else throws StaleVersion.
   * A document equal to the current one adds nothing: the current version is returned.
   */
  commit(filter: string, doc: unknown, author: string, basedOn: number, restoredFrom?: number): Version {
    const cur = this.current(filter);
    const curVersion = cur?.version ?? 0;
    if (basedOn !== curVersion) throw new StaleVersion(curVersion);
    const changes = diff(cur?.doc, doc);
    if (cur && changes.length === 0) return cur;
    const v: Version = { version: curVersion + 1, author, time: new Date().toISOString(), doc, diff: changes };
    if (restoredFrom !== undefined) v.restoredFrom = restoredFrom;
    // Persist first: memory changes only once the file is safely in place.
    writeAtomic(this.file(filter, v.version), JSON.stringify(v));
    const numbers = this.versionNumbers(filter);
    numbers.push(v.version);
    this.loaded.get(filter)!.set(v.version, v);
    while (numbers.length > this.retention) {
      const oldest = numbers.shift()!;
      this.loaded.get(filter)!.delete(oldest);
      rmSync(this.file(filter, oldest), { force: true });
    }
    return v;
  }
}
