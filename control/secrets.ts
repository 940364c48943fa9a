// Secrets live apart from the rule documents. A stored (and shown) document holds, where a secret goes,
// only a marker: {"set": true, "fingerprint": "<16 hex>"}, the fingerprint keyed by a key of this service
// (so it reveals nothing of a short secret). Values are kept in <data>/secrets.json (mode 0600) by
// fingerprint, so every version, a rollback included, still names its own secret. Only delivery to the
// gateway puts the values back.
import { createHmac, randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeAtomic } from "../runtime/files.ts";

/** Where secrets go in each stage's document (dotted paths; `[]` is every element of an array). */
export const SECRET_PATHS: Record<string, string[]> = {
  crawler_score: ["challenge.secret", "challenge.previous_secret", "client_id.secret", "client_id.previous_secret"],
  access: ["consumers[].signing_keys[].secret"],
};

/**
 * Sections whose secret this service makes itself where a stored document names none (unless the section
 * says `"enabled": false`): every gateway of a fleet then signs clearances and client ids with the same
 * one, where a gateway left to itself would make its own.
 */
export const GENERATED: Record<string, string[]> = {
  crawler_score: ["challenge", "client_id"],
};

export interface SecretMarker {
  set: true;
  fingerprint: string;
}

const isMarker = (v: unknown): v is SecretMarker =>
  v !== null && typeof v === "object" && (v as SecretMarker).set === true && typeof (v as SecretMarker).fingerprint === "string";

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === "object" && !Array.isArray(v);

/** A place a secret goes: the object holding it, the field, and the same place in another document (if it has one). */
interface Place {
  obj: Obj;
  key: string;
  held?: Obj;
}

/** The element of `list` that is `item`'s counterpart: the same `id`, else the same `name`, else none. */
function counterpart(list: unknown, item: unknown): unknown {
  if (!Array.isArray(list) || !isObj(item)) return undefined;
  for (const field of ["id", "name"]) {
    if (typeof item[field] === "string") return list.find((x) => isObj(x) && x[field] === item[field]);
  }
  return undefined;
}

/**
 * Every place `path` ("a.b", "a[].b[].c") reaches in `doc`, each with its counterpart in `other` (array
 * elements matched by id or name, so a list reordered or shortened keeps each element's own secret).
 */
function placesOf(doc: unknown, path: string, other?: unknown): Place[] {
  const parts = path.split(".");
  let level: [unknown, unknown][] = [[doc, other]];
  for (const part of parts.slice(0, -1)) {
    const each = part.endsWith("[]");
    const name = each ? part.slice(0, -2) : part;
    const next: [unknown, unknown][] = [];
    for (const [o, h] of level) {
      if (!isObj(o)) continue;
      const v = o[name];
      const hv = isObj(h) ? h[name] : undefined;
      if (!each) next.push([v, hv]);
      else if (Array.isArray(v)) for (const item of v) next.push([item, counterpart(hv, item)]);
    }
    level = next;
  }
  const key = parts[parts.length - 1];
  return level.filter(([o]) => isObj(o)).map(([o, h]) => ({ obj: o as Obj, key, held: isObj(h) ? h : undefined }));
}

/** A copy of `doc` with each secret field present in it replaced by `fn(its value)`. */
function mapSecrets(filter: string, doc: unknown, fn: (v: unknown) => unknown): unknown {
  const paths = SECRET_PATHS[filter];
  if (!paths || !isObj(doc)) return doc;
  const out = structuredClone(doc);
  for (const path of paths) {
    for (const { obj, key } of placesOf(out, path)) if (obj[key] !== undefined) obj[key] = fn(obj[key]);
  }
  return out;
}

/** A concrete path ("consumers[2].signing_keys[0].secret") in SECRET_PATHS' form ("consumers[].signing_keys[].secret"). */
export function secretPathForm(path: string): string {
  return path.replace(/\[\d+\]/g, "[]");
}

export class SecretError extends Error {
  constructor(
    public field: string,
    message: string,
  ) {
    super(message);
  }
}

export class Secrets {
  private file: string;
  private key: Buffer;
  private values: Record<string, string>;

  constructor(dataDir: string) {
    this.file = join(dataDir, "secrets.json");
    const saved = existsSync(this.file) ? (JSON.parse(readFileSync(this.file, "utf8")) as { key: string; values: Record<string, string> }) : undefined;
    this.key = saved ? Buffer.from(saved.key, "base64") : randomBytes(32);
    this.values = saved?.values ?? {};
    if (!saved) this.save();
  }

  private save(): void {
    writeAtomic(this.file, JSON.stringify({ key: this.key.toString("base64"), values: this.values }), 0o600);
  }

  fingerprint(value: string): string {
    return createHmac("sha256", this.key).update(value).digest("hex").slice(0, 16);
  }

  /**
   * The document to store: each secret given as a string is kept here and replaced by its marker; a marker
   * stays (it must name a secret this service holds); a string is checked by the filter's compiler later.
   * `current`: the stored document in force, whose markers a document without the field keeps.
   */
  seal(filter: string, doc: unknown, current?: unknown): unknown {
    return this.walk(filter, doc, current, true);
  }

  /** As seal, for a document only checked, never stored: a secret given as a string stays in it, and nothing is kept. */
  preview(filter: string, doc: unknown, current?: unknown): unknown {
    return this.walk(filter, doc, current, false);
  }

  private walk(filter: string, doc: unknown, current: unknown, keep: boolean): unknown {
    const paths = SECRET_PATHS[filter];
    if (!paths || !isObj(doc)) return doc;
    const out = structuredClone(doc);
    let changed = false;
    for (const path of paths) {
      for (const { obj: o, key: k, held } of placesOf(out, path, current)) {
        const v = o[k];
        if (v === undefined) {
          // Absent from a section that exists: the secret in force is kept (a document read back, edited and
          // sent again never needs the secret itself).
          if (held && isMarker(held[k])) o[k] = held[k];
        } else if (v === null || v === "") {
          delete o[k];
        } else if (typeof v === "string") {
          if (!keep) continue;
          const fp = this.fingerprint(v);
          if (this.values[fp] !== v) {
            this.values[fp] = v;
            changed = true;
          }
          o[k] = { set: true, fingerprint: fp } satisfies SecretMarker;
        } else if (isMarker(v)) {
          if (this.values[v.fingerprint] === undefined)
            throw new SecretError(path, `no secret with fingerprint '${v.fingerprint}' is held here: send the secret itself`);
          o[k] = { set: true, fingerprint: v.fingerprint } satisfies SecretMarker;
        } else {
          throw new SecretError(path, "must be a string (the secret), null (to remove it) or the marker a read returned");
        }
      }
    }
    if (keep && this.generate(filter, out, current)) changed = true;
    if (changed) this.save();
    return out;
  }

  /** A new secret, held here; its marker. */
  private make(): SecretMarker {
    const v = randomBytes(32).toString("base64url");
    const fp = this.fingerprint(v);
    this.values[fp] = v;
    return { set: true, fingerprint: fp };
  }

  /**
   * Fills in each GENERATED section's secret the document leaves out: the one in force (a document that
   * drops the whole section keeps it), else a new one. True when a secret was made.
   */
  private generate(filter: string, out: unknown, current: unknown): boolean {
    let made = false;
    if (!isObj(out)) return false;
    for (const section of GENERATED[filter] ?? []) {
      const given = out[section];
      if (given !== undefined && (!isObj(given) || given.enabled === false)) continue;
      const s: Obj = given ?? {};
      if (s.secret !== undefined) continue;
      const held = isObj(current) && isObj(current[section]) ? current[section] : undefined;
      if (held && isMarker(held.secret) && this.values[held.secret.fingerprint] !== undefined) {
        s.secret = held.secret;
        if (s.previous_secret === undefined && isMarker(held.previous_secret)) s.previous_secret = held.previous_secret;
      } else {
        s.secret = this.make();
        made = true;
      }
      out[section] = s;
    }
    return made;
  }

  /**
   * The document with a section's secret rotated: a new secret, and the one it replaces kept as
   * previous_secret, so what the old one signed stays valid until it expires.
   */
  rotate(filter: string, current: unknown, section: string): unknown {
    if (!(GENERATED[filter] ?? []).includes(section)) throw new SecretError("section", `'${section}' has no secret to rotate`);
    const out = structuredClone(current) as Obj;
    const s: Obj = isObj(out[section]) ? out[section] : {};
    if (s.enabled === false) throw new SecretError(`${section}.enabled`, "is false: there is no secret in use");
    if (isMarker(s.secret)) s.previous_secret = s.secret;
    s.secret = this.make();
    out[section] = s;
    this.save();
    return out;
  }

  /** The document with every marker replaced by its secret: for the filter's compiler and the gateway only. */
  reveal(filter: string, doc: unknown): unknown {
    return mapSecrets(filter, doc, (v) => (isMarker(v) ? (this.values[v.fingerprint] ?? "") : v));
  }

  /**
   * Any document as it may be shown: secrets as markers. Stored documents already are; this also covers
   * documents written before secrets were kept apart.
   */
  redact(filter: string, doc: unknown): unknown {
    return mapSecrets(filter, doc, (v) => (typeof v === "string" ? ({ set: true, fingerprint: this.fingerprint(v) } satisfies SecretMarker) : v));
  }
}
