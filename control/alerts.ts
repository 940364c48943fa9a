// Alerts without Prometheus: graywall-control reads every gateway's admin stats on a tick and evaluates
// the conditions of monitoring/alerts.yml itself, calling the configured webhooks once when an alert
// starts and once when it ends (per gateway). The bodies are JSON with a Slack-compatible `text`.
//
// One table of conditions, each a pure function of a gateway's counters over a window; the state of each
// (alert, gateway) pair is what makes an incident one call, not one per tick. State lives in memory: after
// a restart an alert still true starts a new incident.

import { WEBHOOK_ATTEMPTS } from "./releases.ts";

/** The counters a condition reads, summed from a gateway's admin stats. */
export interface Counters {
  requests: number;
  crawlerRefused: number;
  limited: number;
  configRefused: number;
  vmFailures: number;
  ratelimitFailures: number;
  canaryTotal: number;
  canary5xx: number;
  stableTotal: number;
  stable5xx: number;
}

const ZERO: Counters = {
  requests: 0,
  crawlerRefused: 0,
  limited: 0,
  configRefused: 0,
  vmFailures: 0,
  ratelimitFailures: 0,
  canaryTotal: 0,
  canary5xx: 0,
  stableTotal: 0,
  stable5xx: 0,
};

/** The admin stats alerts read: one filter, so a read is one small answer. */
export const STATS_FILTER =
  "^(http\\.[^.]+\\.downstream_rq_total|extension_config_discovery\\..+\\.(config_fail|update_rejected)|wasm\\.[^.]+\\.vm_reload(_failure)?" +
  "|cluster\\.[^.]+\\.(ratelimit\\.(error|over_limit)|upstream_cx_connect_fail|upstream_rq_5xx|upstream_rq_total)" +
  "|wasmcustom\\.graywall\\.(crawler_score\\.(challenged|blocked|fleet_failed)|rate_limiter\\.[^.]+\\.limited))$";

/** Sums admin stats (name -> value) into the counters the conditions read. */
export function countersOf(stats: Record<string, number>): Counters {
  const c = { ...ZERO };
  for (const [name, v] of Object.entries(stats)) {
    if (/^http\.[^.]+\.downstream_rq_total$/.test(name) && name !== "http.admin.downstream_rq_total") c.requests += v;
    else if (/^wasmcustom\.graywall\.crawler_score\.(challenged|blocked)$/.test(name)) c.crawlerRefused += v;
    else if (/^wasmcustom\.graywall\.rate_limiter\.[^.]+\.limited$/.test(name) || /^cluster\.[^.]+\.ratelimit\.over_limit$/.test(name)) c.limited += v;
    else if (/^extension_config_discovery\..+\.(config_fail|update_rejected)$/.test(name)) c.configRefused += v;
    else if (/^wasm\.[^.]+\.vm_reload(_failure)?$/.test(name)) c.vmFailures += v;
    else if (
      /^cluster\.[^.]+\.ratelimit\.error$/.test(name) ||
      /^cluster\.graywall_ratelimit[^.]*\.upstream_cx_connect_fail$/.test(name) ||
      name === "wasmcustom.graywall.crawler_score.fleet_failed"
    )
      c.ratelimitFailures += v;
    else if (name === "cluster.canary.upstream_rq_total") c.canaryTotal = v;
    else if (name === "cluster.canary.upstream_rq_5xx") c.canary5xx = v;
    else if (name === "cluster.stable.upstream_rq_total") c.stableTotal = v;
    else if (name === "cluster.stable.upstream_rq_5xx") c.stable5xx = v;
  }
  return c;
}

/** What happened over a window: counter increases (a restart's reset counts as starting from 0) and its length. */
export interface Window {
  d: Counters;
  seconds: number;
}

export interface Verdict {
  firing: boolean;
  /** The words of the alert, for a person. */
  summary: string;
}

export interface Condition {
  alert: string;
  severity: "warning" | "critical";
  /** The window its counters are read over, in seconds (before time scaling). */
  windowS: number;
  /** How long it must hold before it fires, in seconds. */
  forS: number;
  /** Whether it uses the baseline window (the day before, ending 15 minutes ago). */
  baseline?: boolean;
  check(w: Window, base: Window | undefined, gateway: string): Verdict;
}

const pct = (x: number) => `${Math.round(x * 100)}%`;
const share = (part: number, whole: number) => (whole > 0 ? part / whole : 0);

/** A share high in itself and far above its usual level (none yet: 0), with real traffic. */
function jump(w: Window, base: Window | undefined, part: (c: Counters) => number, floor: number): { firing: boolean; value: number } {
  const value = share(part(w.d), w.d.requests);
  const usual = base ? share(part(base.d), base.d.requests) : 0;
  return { firing: value > floor && value > 3 * usual && w.d.requests / w.seconds > 1, value };
}

/** The conditions of monitoring/alerts.yml, with the same thresholds and windows. */
export const CONDITIONS: Condition[] = [
  {
    alert: "GraywallConfigRefused",
    severity: "warning",
    windowS: 600,
    forS: 0,
    check: (w, _b, gw) => ({ firing: w.d.configRefused > 0, summary: `Gateway ${gw} refused a Graywall configuration in the last 10 minutes` }),
  },
  {
    alert: "GraywallRatelimitUnreachable",
    severity: "critical",
    windowS: 300,
    forS: 120,
    check: (w, _b, gw) => ({ firing: w.d.ratelimitFailures > 0, summary: `Gateway ${gw} cannot reach the ratelimit service` }),
  },
  {
    alert: "GraywallWasmVmFailures",
    severity: "critical",
    windowS: 600,
    forS: 0,
    check: (w, _b, gw) => ({ firing: w.d.vmFailures > 0, summary: `Gateway ${gw}: a Graywall wasm VM failed in the last 10 minutes` }),
  },
  {
    alert: "GraywallBotWave",
    severity: "warning",
    windowS: 300,
    forS: 120,
    baseline: true,
    check: (w, b, gw) => {
      const j = jump(w, b, (c) => c.crawlerRefused, 0.25);
      return { firing: j.firing, summary: `Bot wave at gateway ${gw}: ${pct(j.value)} of requests challenged or blocked` };
    },
  },
  {
    alert: "GraywallRateLimitedJump",
    severity: "warning",
    windowS: 300,
    forS: 300,
    baseline: true,
    check: (w, b, gw) => {
      const j = jump(w, b, (c) => c.limited, 0.1);
      return { firing: j.firing, summary: `Gateway ${gw} limits ${pct(j.value)} of requests` };
    },
  },
  {
    alert: "GraywallCanaryErrorsAboveStable",
    severity: "critical",
    windowS: 300,
    forS: 120,
    check: (w, _b, gw) => {
      const canary = share(w.d.canary5xx, w.d.canaryTotal);
      const stable = share(w.d.stable5xx, w.d.stableTotal);
      return {
        firing: canary > 0.02 + 2 * stable && w.d.canaryTotal / w.seconds > 0.1,
        summary: `Canary at gateway ${gw} fails ${pct(canary)} of its requests, above stable's (${pct(stable)})`,
      };
    },
  },
];

/** The baseline: the day before, ending 15 minutes ago (seconds, before time scaling). */
export const BASELINE_S = 86400;
export const BASELINE_GAP_S = 900;

export interface AlertSettings {
  /** Where alerts go: each gets every firing and resolved message (JSON, POST). */
  webhooks: string[];
  /** Multiplies every window and `for` time (default 1; below 1 for tests and demos). */
  timeScale?: number;
}

export interface AlertEvent {
  alert: string;
  gateway: string;
  status: "firing" | "resolved";
  severity: string;
  summary: string;
  started_at: string;
  resolved_at?: string;
}

/** The body a webhook gets: the event, and `text` for chat webhooks (Slack's incoming-webhook field). */
export function webhookBody(e: AlertEvent): AlertEvent & { text: string } {
  const text =
    e.status === "firing"
      ? `[FIRING ${e.severity}] ${e.summary}`
      : `[RESOLVED] ${e.alert} at gateway ${e.gateway}: back to normal (it started ${e.started_at})`;
  return { text, ...e };
}

interface Sample {
  t: number;
  c: Counters;
}

interface State {
  /** When the condition started holding (pending), or undefined. */
  since?: number;
  /** The incident sent as firing, until it is resolved. */
  firing?: AlertEvent;
  summary?: string;
}

/** Counter increases between two samples; a counter that went down (an Envoy restart) counts from 0. */
function delta(a: Counters, b: Counters): Counters {
  const d = { ...ZERO };
  for (const k of Object.keys(ZERO) as (keyof Counters)[]) d[k] = b[k] >= a[k] ? b[k] - a[k] : b[k];
  return d;
}

/** The sample at or just before `t` (samples sorted by time), or the first one. */
function at(samples: Sample[], t: number): Sample {
  let found = samples[0];
  for (const s of samples) {
    if (s.t > t) break;
    found = s;
  }
  return found;
}

/**
 * Posts `body` to `url` until it answers 2xx (at most `attempts`, backing off 1, 2, 4, ... s), with an
 * `Idempotency-Key` a receiver can drop repeats by. Never throws; says how it went without the URL (a chat
 * webhook's URL is its secret).
 */
export async function postWebhook(
  url: string,
  key: string,
  body: unknown,
  opts: { attempts?: number; backoffMs?: number; stopped?: () => boolean } = {},
): Promise<string> {
  const attempts = opts.attempts ?? WEBHOOK_ATTEMPTS;
  let outcome = "not called";
  for (let n = 1; n <= attempts && !opts.stopped?.(); n++) {
    if (n > 1) await new Promise((ok) => setTimeout(ok, (opts.backoffMs ?? 1000) * 2 ** (n - 2)).unref());
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", "idempotency-key": key },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(5000),
      });
      outcome = `answered ${res.status} (attempt ${n})`;
      if (res.ok) return outcome;
    } catch (e) {
      outcome = `failed: ${(e as Error).message} (attempt ${n})`;
    }
  }
  return outcome;
}

/** Evaluates CONDITIONS on each reading of a gateway's stats, and calls the webhooks on each change of state. */
export class Alerts {
  private samples = new Map<string, Sample[]>();
  private states = new Map<string, State>();
  private closed = false;
  /** The last events (newest last), for GET /api/alerts. */
  readonly recent: AlertEvent[] = [];
  /** Deliveries still being attempted (awaited on close, and by tests). */
  private inflight = new Set<Promise<unknown>>();
  private readonly scale: number;

  constructor(private settings: AlertSettings) {
    this.scale = settings.timeScale ?? 1;
  }

  /** The alerts firing now. */
  active(): AlertEvent[] {
    return [...this.states.values()].flatMap((s) => (s.firing ? [s.firing] : []));
  }

  get webhookCount(): number {
    return this.settings.webhooks.length;
  }

  /** A reading of one gateway's stats at time `t` (ms): every condition evaluated for it. */
  observe(admin: string, stats: Record<string, number>, t: number): void {
    if (this.closed) return;
    const list = this.samples.get(admin) ?? [];
    list.push({ t, c: countersOf(stats) });
    const keep = (BASELINE_S + 600) * 1000 * this.scale;
    while (list.length > 2 && t - list[1].t > keep) list.shift();
    this.samples.set(admin, list);
    this.evaluate(admin, list, t);
  }

  private window(list: Sample[], from: number, to: number): Window | undefined {
    const a = at(list, from);
    const b = at(list, to);
    const seconds = (b.t - a.t) / 1000;
    return seconds > 0 ? { d: delta(a.c, b.c), seconds } : undefined;
  }

  private evaluate(admin: string, list: Sample[], t: number): void {
    const gateway = admin.replace(/^https?:\/\//, "");
    const s = (x: number) => x * 1000 * this.scale;
    for (const c of CONDITIONS) {
      const w = this.window(list, t - s(c.windowS), t);
      const base = c.baseline ? this.window(list, t - s(BASELINE_S), t - s(BASELINE_GAP_S)) : undefined;
      const v = w ? c.check(w, base, gateway) : { firing: false, summary: "" };
      const key = `${c.alert} ${admin}`;
      const st = this.states.get(key) ?? {};
      this.states.set(key, st);
      if (v.firing) {
        st.since ??= t;
        if (!st.firing && t - st.since >= s(c.forS)) {
          st.firing = { alert: c.alert, gateway, status: "firing", severity: c.severity, summary: v.summary, started_at: new Date(st.since).toISOString() };
          this.emit(st.firing);
        }
      } else {
        st.since = undefined;
        if (st.firing) {
          this.emit({ ...st.firing, status: "resolved", resolved_at: new Date(t).toISOString() });
          st.firing = undefined;
        }
      }
    }
  }

  private emit(e: AlertEvent): void {
    this.recent.push(e);
    if (this.recent.length > 100) this.recent.shift();
    const key = `${e.alert}-${e.gateway}-${e.started_at}-${e.status}`;
    for (const url of this.settings.webhooks) {
      const p = postWebhook(url, key, webhookBody(e), { stopped: () => this.closed }).then((outcome) => {
        if (!outcome.startsWith("answered 2")) console.error(`[alerts] webhook ${this.settings.webhooks.indexOf(url) + 1}: ${e.alert} ${e.status} ${outcome}`);
      });
      this.inflight.add(p);
      void p.finally(() => this.inflight.delete(p));
    }
  }

  /** Waits for every webhook call under way (tests). */
  async settled(): Promise<void> {
    await Promise.all([...this.inflight]);
  }

  close(): void {
    this.closed = true;
  }
}
