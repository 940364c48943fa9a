// The Traffic view's numbers: what every gateway's counters did over the last hour, in 10-second buckets
// summed over the fleet (per stage: allowed, tagged, challenged, blocked, limited; requests per gray
// target), the reasons behind refusals from the counters, and the most refused paths from Envoy's JSON
// access log when the service is given it. Memory is bounded: 360 buckets of at most a few hundred counter
// names, and at most PATHS_PER_BUCKET path keys a bucket.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";

export const BUCKET_S = 10;
export const HOUR_BUCKETS = 360;
const PATHS_PER_BUCKET = 500;
/** At most this much of the access log is read at once (the newest part when more was written). */
const LOG_READ_MAX = 8 << 20;

interface Bucket {
  start: number;
  counts: Map<string, number>;
  paths: Map<string, number>;
}

/** A counter's name as the view keys it: Graywall's without their prefix, the listeners' requests as one. */
function keyOf(name: string): string | undefined {
  if (name.startsWith("wasmcustom.graywall.")) return name.slice("wasmcustom.graywall.".length);
  if (/^http\.[^.]+\.downstream_rq_total$/.test(name) && name !== "http.admin.downstream_rq_total") return "requests";
  const over = /^cluster\.[^.]+\.ratelimit\.over_limit$/.exec(name);
  if (over) return "rate_limiter.cluster.limited";
  return undefined;
}

/** A refusal's access-log details in words: [stage, what]. */
export function refusalWords(details: string): [string, string] | undefined {
  const m = /^graywall_(access_denied|ip_list_denied|crawler_blocked|crawler_challenge|rate_limited)\.(.+)$/.exec(details);
  if (!m) return undefined;
  const signals = m[2].replaceAll("+", ", ").replaceAll("_", " ");
  switch (m[1]) {
    case "access_denied":
      return ["access", `refused: ${m[2].replaceAll("_", " ")}`];
    case "ip_list_denied":
      return ["ip_list", m[2] === "deny_list" ? "on the deny list" : "not on the allow list"];
    case "crawler_blocked":
      return ["crawler_score", `blocked: ${signals}`];
    case "crawler_challenge":
      return ["crawler_score", `challenged: ${signals}`];
    default:
      return ["rate_limiter", `limited by rule "${m[2]}"`];
  }
}

export interface TrafficView {
  bucket_s: number;
  /** Bucket start times (ms), oldest first; the last one is filling. */
  time: number[];
  /** Per second, per bucket. */
  series: Record<string, number[]>;
  /** Requests per second per gray target, per bucket. */
  targets: Record<string, number[]>;
  /** Over the hour. */
  totals: Record<string, number>;
  reasons: { stage: string; what: string; count: number }[];
  /** Most refused paths over the hour, from the access logs; null when the service reads none. */
  paths: { path: string; stage: string; what: string; count: number }[] | null;
  gateways: number;
}

/** The per-stage sums the view charts, from one bucket's counts. */
const SERIES: Record<string, (c: Map<string, number>, sum: (re: RegExp) => number) => number> = {
  requests: (c) => c.get("requests") ?? 0,
  access_denied: (_c, sum) => sum(/^access\.(signature\.)?denied\./),
  ip_list_allowed: (c) => c.get("ip_list.allowed") ?? 0,
  ip_list_denied: (_c, sum) => sum(/^ip_list\.denied\./),
  crawler_passed: (c) => c.get("crawler_score.passed") ?? 0,
  crawler_tagged: (c) => c.get("crawler_score.tagged") ?? 0,
  crawler_challenged: (c) => c.get("crawler_score.challenged") ?? 0,
  crawler_blocked: (c) => c.get("crawler_score.blocked") ?? 0,
  rate_limiter_allowed: (_c, sum) => sum(/^rate_limiter\.[^.]+\.allowed$/),
  rate_limiter_limited: (_c, sum) => sum(/^rate_limiter\.[^.]+\.limited$/),
};

/** Counter names whose increases are reasons a request was refused or flagged: [stage, what]. */
function reasonOf(key: string): [string, string] | undefined {
  let m = /^access\.denied\.(.+)$/.exec(key);
  if (m) return ["access", `refused: ${m[1].replaceAll("_", " ")}`];
  m = /^access\.signature\.denied\.(.+)$/.exec(key);
  if (m) return ["access", `signature refused: ${m[1].replaceAll("_", " ")}`];
  m = /^ip_list\.denied\.(deny_list|allow_list)$/.exec(key);
  if (m) return ["ip_list", m[1] === "deny_list" ? "on the deny list" : "not on the allow list"];
  m = /^crawler_score\.signal\.(.+)$/.exec(key);
  if (m) return ["crawler_score", `signal: ${m[1].replaceAll("_", " ")}`];
  m = /^rate_limiter\.(.+)\.limited$/.exec(key);
  if (m) return ["rate_limiter", m[1] === "cluster" ? "limited by a cluster-wide rule" : `limited by rule "${m[1]}"`];
  return undefined;
}

const round = (v: number) => Math.round(v * 1000) / 1000;

/** Where reading an access log got to. */
interface LogCursor {
  file: string;
  offset: number;
  rest: string;
}

export class Traffic {
  private buckets: Bucket[] = [];
  private last = new Map<string, Record<string, number>>();
  private logs: LogCursor[];

  /** `accessLogs`: each gateway's JSON access log (files), read from their newest part on. */
  constructor(
    accessLogs: string[] = [],
    private now: () => number = Date.now,
  ) {
    this.logs = accessLogs.map((file) => ({ file, offset: -1, rest: "" }));
  }

  private bucket(t: number): Bucket {
    const start = Math.floor(t / (BUCKET_S * 1000)) * BUCKET_S * 1000;
    let b = this.buckets.find((x) => x.start === start);
    if (!b) {
      b = { start, counts: new Map(), paths: new Map() };
      this.buckets.push(b);
      this.buckets.sort((x, y) => x.start - y.start);
      const oldest = start - HOUR_BUCKETS * BUCKET_S * 1000;
      while (this.buckets.length > 0 && this.buckets[0].start <= oldest) this.buckets.shift();
    }
    return b;
  }

  /** A reading of one gateway's counters: their increases since its last reading go into the bucket of `t`. */
  observe(admin: string, stats: Record<string, number>, t: number): void {
    const keyed: Record<string, number> = {};
    for (const [name, v] of Object.entries(stats)) {
      const k = keyOf(name);
      if (k) keyed[k] = (keyed[k] ?? 0) + v;
    }
    const before = this.last.get(admin);
    this.last.set(admin, keyed);
    if (!before) return; // The first reading is where counting starts.
    const b = this.bucket(t);
    for (const [k, v] of Object.entries(keyed)) {
      // A counter that went down (Envoy restarted) counts from 0.
      const d = v >= (before[k] ?? 0) ? v - (before[k] ?? 0) : v;
      if (d > 0) b.counts.set(k, (b.counts.get(k) ?? 0) + d);
    }
  }

  /** New lines of an access log since the last read: each refusal counted by path and reason in its bucket. */
  private readLog(log: LogCursor): void {
    let fd: number;
    try {
      fd = openSync(log.file, "r");
    } catch {
      return; // Not written yet.
    }
    try {
      const size = fstatSync(fd).size;
      if (log.offset < 0 || size < log.offset || size - log.offset > LOG_READ_MAX) {
        // First read, a truncated or replaced log, or more than we read at once: from its newest part.
        log.offset = Math.max(0, size - LOG_READ_MAX);
        log.rest = "";
      }
      const buf = Buffer.alloc(size - log.offset);
      const n = buf.length > 0 ? readSync(fd, buf, 0, buf.length, log.offset) : 0;
      log.offset += n;
      const lines = (log.rest + buf.subarray(0, n).toString("utf8")).split("\n");
      log.rest = lines.pop() ?? "";
      const oldest = this.now() - HOUR_BUCKETS * BUCKET_S * 1000;
      for (const line of lines) {
        if (!line.startsWith("{") || !line.includes('"graywall_')) continue;
        let j: { time?: string; path?: string; details?: string };
        try {
          j = JSON.parse(line);
        } catch {
          continue;
        }
        if (typeof j.details !== "string" || typeof j.path !== "string" || !refusalWords(j.details)) continue;
        const t = Date.parse(j.time ?? "");
        if (!(t > oldest)) continue;
        const b = this.bucket(Math.min(t, this.now()));
        const key = `${j.path.slice(0, 200)}\n${j.details.slice(0, 200)}`;
        if (b.paths.has(key) || b.paths.size < PATHS_PER_BUCKET) b.paths.set(key, (b.paths.get(key) ?? 0) + 1);
      }
    } finally {
      closeSync(fd);
    }
  }

  /** The last hour, for GET /api/traffic. */
  view(): TrafficView {
    for (const log of this.logs) this.readLog(log);
    const now = this.now();
    // Every bucket of the hour, empty ones included, so the time axis is the hour.
    const first = Math.floor(now / (BUCKET_S * 1000)) * BUCKET_S * 1000 - (HOUR_BUCKETS - 1) * BUCKET_S * 1000;
    const time = Array.from({ length: HOUR_BUCKETS }, (_, i) => first + i * BUCKET_S * 1000);
    const byStart = new Map(this.buckets.map((b) => [b.start, b]));
    const empty = new Map<string, number>();
    const counts = time.map((s) => byStart.get(s)?.counts ?? empty);
    // The filling bucket's rate is over the seconds it has had.
    const seconds = time.map((s) => Math.max(1, Math.min(BUCKET_S, (now - s) / 1000)));
    const series: Record<string, number[]> = {};
    const totals: Record<string, number> = {};
    for (const [name, f] of Object.entries(SERIES)) {
      const values = counts.map((c) => f(c, (re) => [...c].reduce((a, [k, v]) => (re.test(k) ? a + v : a), 0)));
      totals[name] = values.reduce((a, v) => a + v, 0);
      series[name] = values.map((v, i) => round(v / seconds[i]));
    }
    // Every target a gateway counts, routed to in the hour or not.
    const targets: Record<string, number[]> = {};
    for (const names of [...this.last.values()].map(Object.keys))
      for (const k of names) {
        const m = /^gray_router\.target\.(.+)\.routed$/.exec(k);
        if (m) targets[m[1]] ??= [];
      }
    for (const [target, values] of Object.entries(targets)) {
      let total = 0;
      for (let i = 0; i < counts.length; i++) {
        const n = counts[i].get(`gray_router.target.${target}.routed`) ?? 0;
        total += n;
        values.push(round(n / seconds[i]));
      }
      totals[`routed_${target}`] = total;
    }
    const reasons = new Map<string, { stage: string; what: string; count: number }>();
    const paths = new Map<string, { path: string; stage: string; what: string; count: number }>();
    for (const s of time) {
      const b = byStart.get(s);
      if (!b) continue;
      for (const [k, v] of b.counts) {
        const r = reasonOf(k);
        if (!r) continue;
        const e = reasons.get(k) ?? { stage: r[0], what: r[1], count: 0 };
        e.count += v;
        reasons.set(k, e);
      }
      for (const [k, v] of b.paths) {
        const [path, details] = k.split("\n");
        const [stage, what] = refusalWords(details)!;
        const e = paths.get(k) ?? { path, stage, what, count: 0 };
        e.count += v;
        paths.set(k, e);
      }
    }
    const top = <T extends { count: number }>(m: Map<string, T>) => [...m.values()].sort((a, b) => b.count - a.count).slice(0, 10);
    return {
      bucket_s: BUCKET_S,
      time,
      series,
      targets,
      totals,
      reasons: top(reasons),
      paths: this.logs.length > 0 ? top(paths) : null,
      gateways: this.last.size,
    };
  }
}
