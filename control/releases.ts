// Progressive delivery: a release ramps a gray target through steps of a sticky share of users, each
// step a new version of the gray_router document, and compares the target's upstream cluster with
// stable's from Envoy's own counters and latency histograms. Failed checks roll it back by itself (and
// call a webhook); passing checks for the hold time advance it. Every release is a file, rewritten
// atomically on each change, so a restarted control service resumes where it was.
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeAtomic } from "../runtime/files.ts";

export type ReleaseStatus = "running" | "paused" | "promoted" | "rolled_back" | "aborted";

export interface ReleaseLimits {
  /** Canary's error rate may exceed stable's by at most this (0.05 = 5 percentage points). */
  max_error_rate_increase: number;
  /** Canary's p99 may be at most this many times stable's... */
  max_p99_ratio: number;
  /** ...unless it is within this many ms of it (small latencies are noise). */
  p99_min_difference_ms: number;
  /** Requests each side needs in an interval for the check to count; fewer: the release waits. */
  min_requests: number;
  /** Failed checks in a row that roll the release back. */
  failed_checks: number;
}

export interface ReleaseSpec {
  target: string;
  /** Shares of users, in percent, ascending, the last 100. */
  steps: number[];
  hold_seconds: number;
  interval_seconds: number;
  /** What keeps a user on one side, as gray_router's percentage rule: header, cookie or client_ip. */
  hash_on: "header" | "cookie" | "client_ip";
  name?: string;
  limits: ReleaseLimits;
  /** Called with a JSON body when the release rolls back by itself. */
  webhook?: string;
}

export interface Side {
  requests: number;
  errors: number;
  /** Hosts Envoy's outlier detection ejected in the interval, or still ejected at its end (a canary
   * behind an aggregate cluster whose hosts are ejected sends its users to stable: its own numbers then
   * look healthy). */
  ejections: number;
  error_rate: number | null;
  p99_ms: number | null;
}

export interface Sample {
  time: string;
  share: number;
  canary: Side;
  stable: Side;
  verdict: "pass" | "fail" | "waiting";
  reason: string;
}

export interface ReleaseEvent {
  time: string;
  who: string;
  action: string;
  share: number;
  /** The gray_router version this event wrote, if it wrote one. */
  version?: number;
  reason: string;
  numbers?: Sample;
}

export interface Release {
  id: string;
  spec: ReleaseSpec;
  status: ReleaseStatus;
  /** Index into spec.steps of the share in force (-1 before the first step). */
  step: number;
  share: number;
  passed: number;
  failed: number;
  created: string;
  events: ReleaseEvent[];
  samples: Sample[];
  /** A webhook call saved before its first attempt and kept until it is answered 2xx (at least once, across restarts). */
  webhook_pending?: { key: string; body: unknown; attempts: number };
}

export const DEFAULT_STEPS = [1, 5, 25, 50, 100];
export const DEFAULT_LIMITS: ReleaseLimits = { max_error_rate_increase: 0.05, max_p99_ratio: 2, p99_min_difference_ms: 50, min_requests: 20, failed_checks: 2 };
/** Samples kept per release (a day of one-minute intervals). */
export const MAX_SAMPLES = 1440;
/** A rollback's webhook is tried this often, backing off from WEBHOOK_BACKOFF_MS (1, 2, 4, ... s). */
export const WEBHOOK_ATTEMPTS = 6;
export const WEBHOOK_BACKOFF_MS = 1000;

/** The gray rule a release drives. */
export const releaseRuleName = (target: string) => `release-${target}`;

type Rule = { name?: string; target?: string; match?: { percentage?: { value?: number; hash_on?: string; name?: string; salt?: string } } };
type GrayDoc = { default_target?: string; rules?: Rule[] };

/** What the release needs from the control service: the gray document, a way to publish it, Envoy's stats. */
export interface ReleaseHost {
  currentGray(): { version: number; doc: unknown };
  /**
   * Validates, commits as a new version by `author` and delivers; returns the version or throws with the
   * errors. `removal`: the document is the one in force less one rule, valid by construction, so it is
   * published even when the compilers cannot be reached (a rollback or abort never waits on validation).
   */
  publishGray(doc: unknown, author: string, removal: boolean): Promise<number>;
  /** Envoy admin addresses to read stats from (every gateway). */
  envoyAdmins: string[];
  /** Upstream cluster serving a target (default: the target's own name). */
  clusterOf(target: string): string;
}

interface ClusterCounts {
  requests: number;
  errors: number;
  ejections: number;
  /** Hosts ejected now (a gauge). */
  ejected: number;
  /** Cumulative counts per latency bucket upper bound (ms). */
  buckets: Map<number, number>;
}

/**
 * Sums the clusters' counters and latency histograms over every gateway: requests completed, 5xx and
 * upstream_rq_time, which Envoy's router charges to the cluster a route names (for canary behind an
 * aggregate cluster, the aggregate).
 */
export async function readClusters(admins: string[], clusters: string[]): Promise<Map<string, ClusterCounts>> {
  const out = new Map<string, ClusterCounts>(clusters.map((c) => [c, { requests: 0, errors: 0, ejections: 0, ejected: 0, buckets: new Map() }]));
  const esc = clusters.map((c) => c.replace(/[^a-zA-Z0-9_-]/g, "\\$&")).join("|");
  const filter = encodeURIComponent(
    `^cluster\\.(${esc})\\.(upstream_rq_completed|upstream_rq_5xx|upstream_rq_time|outlier_detection\\.ejections_(enforced_total|active))$`,
  );
  for (const admin of admins) {
    const r = await fetch(`${admin}/stats?format=json&filter=${filter}&histogram_buckets=cumulative`, { signal: AbortSignal.timeout(2000) });
    const stats: { name?: string; value?: number; histograms?: { name: string; buckets: { upper_bound: number; cumulative: number }[] }[] }[] =
      (await r.json()).stats ?? [];
    for (const s of stats) {
      if (s.name && typeof s.value === "number") {
        const [, cluster, stat] =
          /^cluster\.(.+)\.(upstream_rq_completed|upstream_rq_5xx|outlier_detection\.ejections_enforced_total|outlier_detection\.ejections_active)$/.exec(
            s.name,
          ) ?? [];
        const c = out.get(cluster);
        if (c && stat === "upstream_rq_completed") c.requests += s.value;
        else if (c && stat === "upstream_rq_5xx") c.errors += s.value;
        else if (c && stat === "outlier_detection.ejections_active") c.ejected += s.value;
        else if (c) c.ejections += s.value;
      }
      for (const h of s.histograms ?? []) {
        const c = out.get(/^cluster\.(.+)\.upstream_rq_time$/.exec(h.name)?.[1] ?? "");
        if (c) for (const b of h.buckets) c.buckets.set(b.upper_bound, (c.buckets.get(b.upper_bound) ?? 0) + b.cumulative);
      }
    }
  }
  return out;
}

/** p99 in ms from the growth of cumulative buckets between two readings (interpolated in its bucket). */
export function p99Between(before: Map<number, number>, after: Map<number, number>): number | null {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const counts = bounds.map((b) => (after.get(b) ?? 0) - (before.get(b) ?? 0));
  const total = counts.length > 0 ? Math.max(...counts) : 0;
  if (total <= 0) return null;
  const want = 0.99 * total;
  let lower = 0;
  let below = 0;
  for (let i = 0; i < bounds.length; i++) {
    if (counts[i] >= want) {
      const inBucket = counts[i] - below;
      return inBucket > 0 ? lower + ((want - below) / inBucket) * (bounds[i] - lower) : bounds[i];
    }
    lower = bounds[i];
    below = counts[i];
  }
  return bounds[bounds.length - 1];
}

/** One side over an interval: the route cluster's numbers, plus ejections in the target's own cluster. */
const side = (b: ClusterCounts, a: ClusterCounts, hostsBefore: ClusterCounts, hostsAfter: ClusterCounts): Side => {
  const requests = a.requests - b.requests;
  const errors = a.errors - b.errors;
  const own = hostsAfter === a ? 0 : Math.max(hostsAfter.ejections - hostsBefore.ejections, hostsAfter.ejected);
  const ejections = Math.max(a.ejections - b.ejections, a.ejected) + own;
  return { requests, errors, ejections, error_rate: requests > 0 ? errors / requests : null, p99_ms: p99Between(b.buckets, a.buckets) };
};

/** The analysis rule: does canary hold up against stable over one interval? */
export function judge(canary: Side, stable: Side, limits: ReleaseLimits): { verdict: Sample["verdict"]; reason: string } {
  if (canary.ejections > 0)
    return { verdict: "fail", reason: `Envoy's outlier detection ejected canary hosts (${canary.ejections} in the interval or still out)` };
  if (canary.requests === 0 && stable.requests === 0) {
    return {
      verdict: "waiting",
      reason: "no requests from users in the last interval: the release waits for traffic to judge (in the demo: npm run demo:traffic)",
    };
  }
  if (canary.requests < limits.min_requests || stable.requests < limits.min_requests) {
    return {
      verdict: "waiting",
      reason: `too little traffic to judge: canary ${canary.requests}, stable ${stable.requests} requests in the last interval (${limits.min_requests} needed each)`,
    };
  }
  const ce = canary.error_rate ?? 0;
  const se = stable.error_rate ?? 0;
  if (ce - se > limits.max_error_rate_increase) {
    return { verdict: "fail", reason: `error rate ${pct(ce)} on canary vs ${pct(se)} on stable (limit +${pct(limits.max_error_rate_increase)})` };
  }
  if (canary.p99_ms !== null && stable.p99_ms !== null) {
    const over = canary.p99_ms > limits.max_p99_ratio * stable.p99_ms && canary.p99_ms - stable.p99_ms > limits.p99_min_difference_ms;
    if (over) return { verdict: "fail", reason: `p99 ${ms(canary.p99_ms)} on canary vs ${ms(stable.p99_ms)} on stable (limit ${limits.max_p99_ratio}x)` };
  }
  return { verdict: "pass", reason: `error rate ${pct(ce)} vs ${pct(se)}, p99 ${ms(canary.p99_ms)} vs ${ms(stable.p99_ms)}` };
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const ms = (x: number | null) => (x === null ? "n/a" : `${x.toFixed(1)} ms`);

export class ReleaseConflict extends Error {}

export class Releases {
  private releases = new Map<string, Release>();
  private timers = new Map<string, NodeJS.Timeout>();
  /** The last stats reading per release: the start of the interval being judged. */
  private baselines = new Map<string, Map<string, ClusterCounts>>();
  private ticking = new Set<string>();
  private delivering = new Set<string>();
  private webhookTimers = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(
    private dir: string,
    private host: ReleaseHost,
  ) {
    mkdirSync(dir, { recursive: true });
    for (const f of readdirSync(dir).filter((n) => /^r\d+\.json$/.test(n))) {
      const r = JSON.parse(readFileSync(join(dir, f), "utf8")) as Release;
      this.releases.set(r.id, r);
      if (r.status === "running") this.schedule(r);
      if (r.webhook_pending) void this.deliverWebhook(r);
    }
  }

  list(): Release[] {
    return [...this.releases.values()].sort((a, b) => b.created.localeCompare(a.created));
  }

  get(id: string): Release | undefined {
    return this.releases.get(id);
  }

  private save(r: Release): void {
    writeAtomic(join(this.dir, `${r.id}.json`), JSON.stringify(r));
  }

  private event(r: Release, who: string, action: string, reason: string, extra: Partial<ReleaseEvent> = {}): void {
    r.events.push({ time: new Date().toISOString(), who, action, share: r.share, reason, ...extra });
  }

  /**
   * Writes the release's rule at `share` (0 removes it) as a new gray_router version. `r.share` moves only
   * once that version is published: a release never shows a share that is not in force.
   */
  private async setShare(r: Release, share: number): Promise<number> {
    const cur = this.host.currentGray().doc as GrayDoc;
    const name = releaseRuleName(r.spec.target);
    const rules = (cur.rules ?? []).filter((x) => x.name !== name);
    if (share > 0) {
      const percentage: Record<string, unknown> = { value: share, hash_on: r.spec.hash_on, salt: `release-${r.id}` };
      if (r.spec.hash_on !== "client_ip") percentage.name = r.spec.name;
      // First, so the share decides for every user with a key; other rules still see the rest.
      rules.unshift({ name, target: r.spec.target, match: { percentage } });
    }
    const version = await this.host.publishGray({ ...cur, rules }, `release ${r.id}`, share === 0);
    r.share = share;
    return version;
  }

  /** Starts a release; the first step is published at once. */
  async start(spec: ReleaseSpec, who: string): Promise<Release> {
    for (const r of this.releases.values()) {
      if (r.spec.target === spec.target && (r.status === "running" || r.status === "paused")) {
        throw new ReleaseConflict(`release ${r.id} of ${spec.target} is ${r.status}: one release per target at a time`);
      }
    }
    const id = `r${Math.max(0, ...[...this.releases.keys()].map((k) => Number(k.slice(1)))) + 1}`;
    const r: Release = { id, spec, status: "running", step: 0, share: 0, passed: 0, failed: 0, created: new Date().toISOString(), events: [], samples: [] };
    // Claimed before the first publish (which waits on validation), so a second start for the target conflicts.
    this.releases.set(id, r);
    let version: number;
    try {
      version = await this.setShare(r, spec.steps[0]);
    } catch (e) {
      this.releases.delete(id);
      throw e;
    }
    this.event(r, who, "started", `step 1 of ${spec.steps.length}: ${spec.steps[0]}% of users to ${spec.target}`, { version });
    this.save(r);
    this.schedule(r);
    return r;
  }

  private schedule(r: Release): void {
    clearTimeout(this.timers.get(r.id));
    this.baselines.delete(r.id);
    const tick = async () => {
      if (this.releases.get(r.id)?.status !== "running") return;
      // No numbers (an admin unreachable): the interval counts as waiting, kept with the bounded samples.
      await this.analyse(r).catch((e) => {
        this.sample(r, { verdict: "waiting", reason: `no numbers from Envoy: ${(e as Error).message}` });
        this.save(r);
      });
      if (r.status === "running") this.timers.set(r.id, setTimeout(tick, r.spec.interval_seconds * 1000));
    };
    // The first reading is the baseline the first interval is judged against.
    void tick();
  }

  /** One analysis interval: judge canary against stable, then hold, advance, or roll back. */
  async analyse(r: Release): Promise<void> {
    if (this.ticking.has(r.id)) return;
    this.ticking.add(r.id);
    try {
      const stableTarget = ((this.host.currentGray().doc as GrayDoc).default_target ?? "stable").toLowerCase();
      // The route's cluster (for canary, an aggregate that falls back to stable) and the target's own.
      const [cc, sc, hosts] = [this.host.clusterOf(r.spec.target), this.host.clusterOf(stableTarget), r.spec.target];
      const now = await readClusters(this.host.envoyAdmins, [...new Set([cc, sc, hosts])]);
      const before = this.baselines.get(r.id);
      this.baselines.set(r.id, now);
      if (!before || r.status !== "running") return;
      const canary = side(before.get(cc)!, now.get(cc)!, before.get(hosts)!, now.get(hosts)!);
      const stable = side(before.get(sc)!, now.get(sc)!, before.get(sc)!, now.get(sc)!);
      const { verdict, reason } = judge(canary, stable, r.spec.limits);
      const sample = this.sample(r, { canary, stable, verdict, reason });
      if (verdict === "fail") {
        r.failed++;
        r.passed = 0;
        if (r.failed >= r.spec.limits.failed_checks) await this.rollBack(r, sample);
      } else if (verdict === "pass") {
        r.failed = 0;
        r.passed++;
        if (r.passed * r.spec.interval_seconds >= r.spec.hold_seconds) await this.advance(r, "graywall", `held ${r.spec.hold_seconds} s: ${reason}`);
      }
      this.save(r);
    } finally {
      this.ticking.delete(r.id);
    }
  }

  /** Records one interval's sample (the last MAX_SAMPLES are kept). */
  private sample(r: Release, s: Partial<Sample> & Pick<Sample, "verdict" | "reason">): Sample {
    const none: Side = { requests: 0, errors: 0, ejections: 0, error_rate: null, p99_ms: null };
    const sample: Sample = { time: new Date().toISOString(), share: r.share, canary: none, stable: none, ...s };
    r.samples.push(sample);
    if (r.samples.length > MAX_SAMPLES) r.samples.splice(0, r.samples.length - MAX_SAMPLES);
    return sample;
  }

  private async advance(r: Release, who: string, reason: string): Promise<void> {
    const share = r.spec.steps[r.step + 1];
    // The baseline stays: the next check covers a whole interval (rates compare fine across a step).
    const version = await this.setShare(r, share);
    r.step++;
    r.passed = 0;
    r.failed = 0;
    if (share >= 100) {
      r.status = "promoted";
      this.event(r, who, "promoted", `100% of users to ${r.spec.target}; ${reason}`, { version });
    } else {
      this.event(r, who, "advanced", `step ${r.step + 1} of ${r.spec.steps.length}: ${share}% of users; ${reason}`, { version });
    }
  }

  private async rollBack(r: Release, sample: Sample): Promise<void> {
    const from = r.share;
    const version = await this.setShare(r, 0);
    r.status = "rolled_back";
    clearTimeout(this.timers.get(r.id));
    const reason = `${r.failed} failed checks in a row at ${from}%: ${sample.reason}`;
    this.event(r, "graywall", "rolled back", reason, { version, numbers: sample });
    if (r.spec.webhook) {
      const body = {
        event: "release.rolled_back",
        release: r.id,
        target: r.spec.target,
        share_before: from,
        reason,
        numbers: sample,
        time: new Date().toISOString(),
      };
      r.webhook_pending = { key: `${r.id}-rolled_back`, body, attempts: 0 };
    }
    // Saved before the webhook is called: a crash from here on neither repeats the rollback nor loses the call.
    this.save(r);
    void this.deliverWebhook(r);
  }

  /**
   * Calls the release's webhook with its pending body until it answers 2xx (at most WEBHOOK_ATTEMPTS, backing
   * off 1, 2, 4, ... s). Each call carries `Idempotency-Key`: the receiver can drop a repeat (after a crash
   * between its answer and our save, it gets the same key again).
   */
  private async deliverWebhook(r: Release): Promise<void> {
    const p = r.webhook_pending;
    if (!p || !r.spec.webhook || this.delivering.has(r.id)) return;
    this.delivering.add(r.id);
    try {
      while (r.webhook_pending === p && p.attempts < WEBHOOK_ATTEMPTS && !this.closed) {
        if (p.attempts > 0) await new Promise<void>((ok) => this.sleep(ok, WEBHOOK_BACKOFF_MS * 2 ** (p.attempts - 1)));
        if (this.closed) return;
        p.attempts++;
        let outcome: string;
        let done = false;
        try {
          const res = await fetch(r.spec.webhook, {
            method: "POST",
            headers: { "content-type": "application/json", "idempotency-key": p.key },
            body: JSON.stringify(p.body),
            signal: AbortSignal.timeout(5000),
          });
          outcome = `the webhook answered ${res.status}`;
          done = res.ok;
        } catch (e) {
          outcome = `the webhook failed: ${(e as Error).message}`;
        }
        if (this.closed) return;
        if (done || p.attempts >= WEBHOOK_ATTEMPTS) r.webhook_pending = undefined;
        this.event(
          r,
          "graywall",
          "webhook",
          `${outcome} (attempt ${p.attempts}${done ? "" : p.attempts >= WEBHOOK_ATTEMPTS ? ", giving up" : ", will retry"})`,
        );
        this.save(r);
      }
    } finally {
      this.delivering.delete(r.id);
    }
  }

  private sleep(ok: () => void, ms: number): void {
    const t = setTimeout(() => {
      this.webhookTimers.delete(t);
      ok();
    }, ms);
    this.webhookTimers.add(t);
  }

  /** An operator's action: pause, resume, promote (to 100%) or abort (to 0%). */
  async act(id: string, action: "pause" | "resume" | "promote" | "abort", who: string): Promise<Release> {
    const r = this.releases.get(id);
    if (!r) throw new Error(`no release ${id}`);
    const active = r.status === "running" || r.status === "paused";
    if (!active) throw new ReleaseConflict(`release ${id} is ${r.status}`);
    if (action === "pause") {
      if (r.status === "paused") throw new ReleaseConflict(`release ${id} is already paused`);
      r.status = "paused";
      clearTimeout(this.timers.get(r.id));
      this.event(r, who, "paused", `held at ${r.share}%`);
    } else if (action === "resume") {
      if (r.status === "running") throw new ReleaseConflict(`release ${id} is running`);
      // The rule may have been edited while paused: put the release's share back.
      const version = await this.setShare(r, r.share);
      r.status = "running";
      r.passed = 0;
      r.failed = 0;
      this.event(r, who, "resumed", `at ${r.share}%`, { version });
      this.schedule(r);
    } else if (action === "promote") {
      const version = await this.setShare(r, 100);
      clearTimeout(this.timers.get(r.id));
      r.step = r.spec.steps.length - 1;
      r.status = "promoted";
      this.event(r, who, "promoted", `100% of users to ${r.spec.target}, by hand`, { version });
    } else {
      const version = await this.setShare(r, 0);
      clearTimeout(this.timers.get(r.id));
      r.status = "aborted";
      this.event(r, who, "aborted", `back to 0%: every user on ${((this.host.currentGray().doc as GrayDoc).default_target ?? "stable").toLowerCase()}`, {
        version,
      });
    }
    this.save(r);
    return r;
  }

  /** A gray_router change not made by a release: if it touched a running release's rule, pause that release. */
  grayEdited(doc: unknown, author: string, version: number): void {
    for (const r of this.releases.values()) {
      if (r.status !== "running") continue;
      const rule = ((doc as GrayDoc).rules ?? []).find((x) => x.name === releaseRuleName(r.spec.target));
      const p = rule?.match?.percentage;
      const same =
        r.share === 0 ? !rule : p?.value === r.share && rule?.target === r.spec.target && p?.salt === `release-${r.id}` && p?.hash_on === r.spec.hash_on;
      if (same) continue;
      r.status = "paused";
      clearTimeout(this.timers.get(r.id));
      this.event(
        r,
        author,
        "paused",
        `the rule ${releaseRuleName(r.spec.target)} was edited by hand (${author}, version ${version}): the release waits; resume puts its ${r.share}% back`,
      );
      this.save(r);
    }
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    for (const t of this.webhookTimers) clearTimeout(t);
    this.webhookTimers.clear();
  }
}

/** A release spec from an API body, with defaults; errors name the field. */
export function readSpec(body: Record<string, unknown>): { spec?: ReleaseSpec; errors: { field: string; message: string }[] } {
  const errors: { field: string; message: string }[] = [];
  const err = (field: string, message: string) => errors.push({ field, message });
  const num = (v: unknown, field: string, def: number, min: number, max: number) => {
    if (v === undefined) return def;
    if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max) err(field, `must be a number from ${min} to ${max}`);
    return typeof v === "number" ? v : def;
  };
  const target = typeof body.target === "string" ? body.target.trim().toLowerCase() : "";
  if (!target) err("target", "is required");
  const steps = body.steps === undefined ? DEFAULT_STEPS : body.steps;
  if (!Array.isArray(steps) || steps.length === 0 || steps.some((s) => typeof s !== "number" || !(s > 0 && s <= 100)))
    err("steps", "must be a list of shares above 0 and at most 100");
  else if (steps.some((s, i) => i > 0 && s <= steps[i - 1]) || steps[steps.length - 1] !== 100) err("steps", "must rise and end at 100");
  const hashOn = body.hash_on ?? "cookie";
  if (hashOn !== "header" && hashOn !== "cookie" && hashOn !== "client_ip") err("hash_on", "must be header, cookie or client_ip");
  const name = body.name;
  if (hashOn !== "client_ip" && (typeof name !== "string" || !name)) err("name", `the ${String(hashOn)} that identifies a user is required`);
  const lim = (body.limits ?? {}) as Record<string, unknown>;
  const limits: ReleaseLimits = {
    max_error_rate_increase: num(lim.max_error_rate_increase, "limits.max_error_rate_increase", DEFAULT_LIMITS.max_error_rate_increase, 0, 1),
    max_p99_ratio: num(lim.max_p99_ratio, "limits.max_p99_ratio", DEFAULT_LIMITS.max_p99_ratio, 1, 1000),
    p99_min_difference_ms: num(lim.p99_min_difference_ms, "limits.p99_min_difference_ms", DEFAULT_LIMITS.p99_min_difference_ms, 0, 600000),
    min_requests: num(lim.min_requests, "limits.min_requests", DEFAULT_LIMITS.min_requests, 1, 1e9),
    failed_checks: num(lim.failed_checks, "limits.failed_checks", DEFAULT_LIMITS.failed_checks, 1, 100),
  };
  const webhook = body.webhook;
  if (webhook !== undefined && (typeof webhook !== "string" || !/^https?:\/\//.test(webhook))) err("webhook", "must be an http(s) URL");
  const spec: ReleaseSpec = {
    target,
    steps: steps as number[],
    hold_seconds: num(body.hold_seconds, "hold_seconds", 300, 0, 7 * 86400),
    interval_seconds: num(body.interval_seconds, "interval_seconds", 60, 0.2, 3600),
    hash_on: hashOn as ReleaseSpec["hash_on"],
    limits,
  };
  if (hashOn !== "client_ip") spec.name = String(name).toLowerCase();
  if (typeof webhook === "string") spec.webhook = webhook;
  return errors.length > 0 ? { errors } : { spec, errors };
}
