// Documents the filters accept but that may lock people out: publishing one needs `"confirm": true` in
// the request (the UI asks in plain words first). Impossible ones (a honeypot covering every page) the
// filters' compilers refuse outright.
import { isIP } from "node:net";

export interface Danger {
  field: string;
  message: string;
}

/** An IPv6 address's eight 16-bit words ("::" expanded, an IPv4 tail as two words). */
function v6Words(addr: string): number[] {
  const words = (s: string) =>
    s
      ? s.split(":").flatMap((w) => {
          if (!w.includes(".")) return [Number.parseInt(w, 16)];
          const [a, b, c, d] = w.split(".").map(Number);
          return [(a << 8) | b, (c << 8) | d];
        })
      : [];
  const gap = addr.indexOf("::");
  if (gap < 0) return words(addr);
  const head = words(addr.slice(0, gap));
  const tail = words(addr.slice(gap + 2));
  return [...head, ...Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

/** [first, last] addresses of a CIDR as big integers, and its family; undefined if not one. */
function range(cidr: string): { v6: boolean; lo: bigint; hi: bigint } | undefined {
  const [addr, len] = cidr.trim().split("/");
  const family = isIP(addr);
  if (family === 0) return undefined;
  const bits = family === 4 ? 32 : 128;
  const prefix = len === undefined ? bits : Number(len);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > bits) return undefined;
  const parts = family === 4 ? addr.split(".").map(Number) : v6Words(addr);
  const width = family === 4 ? 8n : 16n;
  const n = parts.reduce((acc, p) => (acc << width) | BigInt(p), 0n);
  const host = BigInt(bits - prefix);
  const lo = (n >> host) << host;
  return { v6: family === 6, lo, hi: lo + (1n << host) - 1n };
}

/** Whether the CIDRs together cover every address of a family (IPv4 or IPv6). */
export function coversAFamily(list: string[]): "IPv4" | "IPv6" | undefined {
  // IPv4-mapped IPv6 (::ffff:a.b.c.d/len) counts as IPv4, as the filter reads it.
  const cidrs = list.map((c) => {
    const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)(?:\/(\d+))?$/i.exec(c.trim());
    return m ? `${m[1]}/${m[2] === undefined ? 32 : Math.max(0, Number(m[2]) - 96)}` : c;
  });
  for (const v6 of [false, true]) {
    // Cheap first: ranges whose sizes do not even add up to the family cannot cover it (a list of
    // 200,000 single addresses is decided here, without parsing one).
    const bits = v6 ? 128 : 32;
    let total = 0;
    for (const c of cidrs) {
      if (c.includes(":") !== v6) continue;
      const slash = c.indexOf("/");
      const len = slash < 0 ? bits : Number(c.slice(slash + 1));
      if (Number.isInteger(len) && len >= 0 && len <= bits) total += 2 ** (bits - len);
    }
    if (total < 2 ** bits) continue;
    const rs = cidrs
      .map(range)
      .filter((r) => r !== undefined && r.v6 === v6)
      .sort((a, b) => (a!.lo < b!.lo ? -1 : a!.lo > b!.lo ? 1 : 0)) as { lo: bigint; hi: bigint }[];
    let next = 0n;
    for (const r of rs) {
      if (r.lo > next) break;
      if (r.hi + 1n > next) next = r.hi + 1n;
    }
    if (next === 1n << (v6 ? 128n : 32n)) return v6 ? "IPv6" : "IPv4";
  }
  return undefined;
}

type Doc = Record<string, unknown>;
const list = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : []);

/** What in a stage's document could lock people out, in words. */
export function dangers(filter: string, doc: unknown): Danger[] {
  const d = (doc ?? {}) as Doc;
  const out: Danger[] = [];
  if (filter === "ip_list") {
    const family = coversAFamily(list(d.deny));
    if (family) out.push({ field: "deny", message: `denies every ${family} client${list(d.paths).length ? " on the listed paths" : ""}` });
    if (list(d.allow).length > 0) {
      out.push({
        field: "allow",
        message: `only the ${list(d.allow).length} listed address range(s) get through${list(d.paths).length ? " on the listed paths" : ""}; every other client is refused`,
      });
    }
  }
  return out;
}

/** The dangers of `doc` that `current` does not already have: what a change newly introduces. */
export function newDangers(filter: string, doc: unknown, current: unknown): Danger[] {
  const before = new Set(dangers(filter, current).map((x) => `${x.field}\n${x.message}`));
  return dangers(filter, doc).filter((x) => !before.has(`${x.field}\n${x.message}`));
}
