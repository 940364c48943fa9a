// Versioned rule documents, one file per version, written atomically (write, fsync, rename): a restart
// keeps every retained version, and a crash mid-write leaves the earlier files whole.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Delta } from "jsondiffpatch";
import { writeAtomic } from "../runtime/files.ts";
import { applyDelta, type Change, changes, delta } from "./history.ts";

export type { Change } from "./history.ts";

export interface Version {
  version: number;
  author: string;
  time: string;
  doc: unknown;
  /** What changed against the previous version, by meaning (at most MAX_CHANGES of them). */
  changes: Change[];
  /** How many changes there were in all. */
  changesTotal: number;
  /** Set when this version restored an earlier one. */
  restoredFrom?: number;
}

/** A version without its document: what the list of versions shows. */
export type VersionSummary = Omit<Version, "doc">;

export class StaleVersion extends Error {
  constructor(public current: number) {
    super(`version ${current} is current`);
  }
}

/** Versions kept per filter unless the service is told otherwise (GRAYWALL_RETENTION). */
export const DEFAULT_RETENTION = 200;
/** Changes kept per version for the history (their total is kept too). */
export const MAX_CHANGES = 100;
/** A snapshot at least this often, so reading a version applies at most this many deltas. */
export const SNAPSHOT_EVERY = 100;

/**
 * A version file: the document itself (a snapshot, `<n>.json`) or the delta from the version before it
 * (`<n>.delta.json`); both carry the version's author, time and changes.
 */
interface VersionFile {
  version: number;
  author: string;
  time: string;
  restoredFrom?: number;
  changes?: Change[];
  changesTotal?: number;
  doc?: unknown;
  delta?: Delta;
  /** Files written before history by meaning: path-level changes. */
  diff?: { path: string; before?: unknown; after?: unknown }[];
}

type Meta = Omit<VersionFile, "doc" | "delta">;

/** A change as files written before history by meaning recorded it. */
function legacyChange(c: { path: string; before?: unknown; after?: unknown }): Change {
  return { kind: "changed", path: c.path, ...(c.before !== undefined ? { before: c.before } : {}), ...(c.after !== undefined ? { after: c.after } : {}) };
}

/**
 * One file per version in `<dir>/<filter>/`: a snapshot of the whole document (`<n>.json`) or the delta
 * from the version before (`<n>.delta.json`), each written atomically and immutable once written. A
 * snapshot is written when the deltas since the last one add up to more than its size (or after
 * SNAPSHOT_EVERY versions), so a small change to a large document costs about its own size on disk and
 * reading any version applies a bounded chain of deltas. Retention counts versions; files before the
 * snapshot the oldest retained version starts from are removed.
 */
export class Store {
  /** Version numbers on disk per filter, ascending (snapshots and deltas). */
  private numbers = new Map<string, number[]>();
  /** Which of them are snapshots. */
  private snapshots = new Map<string, Set<number>>();
  /** Each version's metadata, as read (documents and deltas are not kept: they can be large). */
  private metas = new Map<string, Map<number, Meta>>();
  /** The current document per filter. */
  private currentDoc = new Map<string, { version: number; doc: unknown }>();
  /** Bytes and count of deltas since the last snapshot, and that snapshot's size, per filter. */
  private sinceSnapshot = new Map<string, { bytes: number; count: number; snapshotBytes: number }>();

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

  private file(filter: string, version: number, snapshot: boolean): string {
    return join(this.folder(filter), snapshot ? `${version}.json` : `${version}.delta.json`);
  }

  /** Earlier releases kept a filter's whole history in one file: split it into version files once. */
  private migrate(filter: string): void {
    const old = join(this.dir, `${filter}.versions.json`);
    if (!existsSync(old)) return;
    const list = JSON.parse(readFileSync(old, "utf8")) as VersionFile[];
    mkdirSync(this.folder(filter), { recursive: true });
    for (const v of list.slice(-this.retention)) writeAtomic(this.file(filter, v.version, true), JSON.stringify(v));
    renameSync(old, `${old}.migrated`);
  }

  private versionNumbers(filter: string): number[] {
    let n = this.numbers.get(filter);
    if (!n) {
      const dir = this.folder(filter);
      mkdirSync(dir, { recursive: true });
      const snaps = new Set<number>();
      // Half-written temp files (a crash between write and rename) start with a dot and are skipped.
      n = readdirSync(dir)
        .map((name) => /^(\d+)(\.delta)?\.json$/.exec(name))
        .filter((m) => m !== null)
        .map((m) => {
          if (!m[2]) snaps.add(Number(m[1]));
          return Number(m[1]);
        })
        .sort((a, b) => a - b);
      this.numbers.set(filter, n);
      this.snapshots.set(filter, snaps);
      this.metas.set(filter, new Map());
    }
    return n;
  }

  private read(filter: string, version: number): VersionFile {
    return JSON.parse(readFileSync(this.file(filter, version, this.snapshots.get(filter)!.has(version)), "utf8")) as VersionFile;
  }

  private meta(filter: string, version: number): Meta {
    const cache = this.metas.get(filter)!;
    let m = cache.get(version);
    if (!m) {
      const { doc: _doc, delta: _delta, ...rest } = this.read(filter, version);
      m = rest;
      cache.set(version, m);
    }
    return m;
  }

  /** The document of `version`: its snapshot, or the last snapshot before it with the deltas since applied. */
  private docOf(filter: string, version: number): unknown {
    const cur = this.currentDoc.get(filter);
    if (cur?.version === version) return cur.doc;
    const snaps = this.snapshots.get(filter)!;
    let base = version;
    while (!snaps.has(base)) base--;
    const snapshotText = readFileSync(this.file(filter, base, true), "utf8");
    let doc = (JSON.parse(snapshotText) as VersionFile).doc;
    let bytes = 0;
    for (let v = base + 1; v <= version; v++) {
      const text = readFileSync(this.file(filter, v, false), "utf8");
      bytes += text.length;
      doc = applyDelta(doc, (JSON.parse(text) as VersionFile).delta);
    }
    const numbers = this.versionNumbers(filter);
    if (version === numbers[numbers.length - 1]) {
      this.currentDoc.set(filter, { version, doc });
      this.sinceSnapshot.set(filter, { bytes, count: version - base, snapshotBytes: snapshotText.length });
    }
    return doc;
  }

  private summaryOf(filter: string, version: number): VersionSummary {
    const m = this.meta(filter, version);
    const list = m.changes ?? (m.diff ?? []).map(legacyChange);
    return {
      version: m.version,
      author: m.author,
      time: m.time,
      changes: list,
      changesTotal: m.changesTotal ?? list.length,
      ...(m.restoredFrom !== undefined ? { restoredFrom: m.restoredFrom } : {}),
    };
  }

  private full(filter: string, version: number): Version {
    return { ...this.summaryOf(filter, version), doc: this.docOf(filter, version) };
  }

  /** The retained version numbers, oldest first. */
  private retained(filter: string): number[] {
    return this.versionNumbers(filter).slice(-this.retention);
  }

  /** Summaries of the retained versions, newest first: at most `limit`, only those older than `before`. */
  versions(filter: string, opts: { limit?: number; before?: number } = {}): VersionSummary[] {
    const out: VersionSummary[] = [];
    const nums = this.retained(filter);
    const limit = opts.limit ?? Number.POSITIVE_INFINITY;
    for (let i = nums.length - 1; i >= 0 && out.length < limit; i--) {
      if (opts.before !== undefined && nums[i] >= opts.before) continue;
      out.push(this.summaryOf(filter, nums[i]));
    }
    return out;
  }

  version(filter: string, version: number): Version | undefined {
    return this.retained(filter).includes(version) ? this.full(filter, version) : undefined;
  }

  current(filter: string): Version | undefined {
    const n = this.versionNumbers(filter);
    return n.length > 0 ? this.full(filter, n[n.length - 1]) : undefined;
  }

  /**
   * Appends a version if `basedOn` is still current (0 = no version yet); else throws StaleVersion.
   * A document equal to the current one adds nothing: the current version is returned.
   */
  commit(filter: string, doc: unknown, author: string, basedOn: number, restoredFrom?: number): Version {
    const cur = this.current(filter);
    const curVersion = cur?.version ?? 0;
    if (basedOn !== curVersion) throw new StaleVersion(curVersion);
    const d = cur ? delta(cur.doc, doc) : undefined;
    if (cur && d === undefined) return cur;
    const { list, total } = cur ? changes(d, cur.doc, doc, MAX_CHANGES) : { list: [], total: 0 };
    const meta: Meta = { version: curVersion + 1, author, time: new Date().toISOString(), changes: list, changesTotal: total };
    if (restoredFrom !== undefined) meta.restoredFrom = restoredFrom;
    const since = this.sinceSnapshot.get(filter);
    const deltaText = d === undefined ? "" : JSON.stringify(d);
    const snapshot = !cur || !since || since.bytes + deltaText.length > since.snapshotBytes || since.count + 1 >= SNAPSHOT_EVERY;
    const text = JSON.stringify(snapshot ? { ...meta, doc } : { ...meta, delta: d });
    // Persist first: memory changes only once the file is safely in place.
    writeAtomic(this.file(filter, meta.version, snapshot), text);
    this.versionNumbers(filter).push(meta.version);
    if (snapshot) this.snapshots.get(filter)!.add(meta.version);
    this.metas.get(filter)!.set(meta.version, meta);
    this.currentDoc.set(filter, { version: meta.version, doc });
    this.sinceSnapshot.set(
      filter,
      snapshot
        ? { bytes: 0, count: 0, snapshotBytes: text.length }
        : { bytes: since!.bytes + text.length, count: since!.count + 1, snapshotBytes: since!.snapshotBytes },
    );
    this.prune(filter);
    return this.full(filter, meta.version);
  }

  /** Removes the files no retained version needs: those before the snapshot the oldest retained one starts from. */
  private prune(filter: string): void {
    const numbers = this.versionNumbers(filter);
    if (numbers.length <= this.retention) return;
    const snaps = this.snapshots.get(filter)!;
    let base = numbers[numbers.length - this.retention];
    while (!snaps.has(base)) base--;
    while (numbers[0] < base) {
      const n = numbers.shift()!;
      rmSync(this.file(filter, n, snaps.has(n)), { force: true });
      snaps.delete(n);
      this.metas.get(filter)!.delete(n);
    }
  }
}
