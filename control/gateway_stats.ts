// One reader of every gateway's admin stats: on a tick (2 s by default) it reads Graywall's counters and
// the few Envoy stats alerts need from each gateway, once, and hands them to whoever watches (the
// Traffic view, the alerts). A gateway that does not answer is skipped for that tick.
import { STATS_FILTER } from "./alerts.ts";

/** Graywall's own counters and what the alerts read, in one admin filter. */
export const POLL_FILTER = `^wasmcustom\\.graywall\\.|${STATS_FILTER}`;

export type StatsWatcher = (admin: string, stats: Record<string, number>, t: number) => void;

/** Envoy's admin stats matching `filter`, as name -> value. */
export async function readAdminStats(admin: string, filter = POLL_FILTER): Promise<Record<string, number>> {
  const r = await fetch(`${admin}/stats?format=json&filter=${encodeURIComponent(filter)}`, { signal: AbortSignal.timeout(3000) });
  if (!r.ok) throw new Error(`${admin}/stats answered ${r.status}`);
  const out: Record<string, number> = {};
  for (const s of ((await r.json()).stats ?? []) as { name?: string; value?: number }[]) if (s.name && typeof s.value === "number") out[s.name] = s.value;
  return out;
}

export class StatsPoller {
  private timer?: NodeJS.Timeout;
  private closed = false;
  private watchers: StatsWatcher[] = [];

  constructor(
    private admins: string[],
    private intervalMs = 2000,
    private read: (admin: string) => Promise<Record<string, number>> = readAdminStats,
  ) {}

  watch(w: StatsWatcher): void {
    this.watchers.push(w);
  }

  start(): void {
    if (this.admins.length === 0) return;
    const loop = async () => {
      await this.tick();
      if (!this.closed) this.timer = setTimeout(loop, this.intervalMs);
    };
    this.timer = setTimeout(loop, 0);
  }

  /** One reading of every gateway, handed to every watcher. */
  async tick(): Promise<void> {
    const t = Date.now();
    await Promise.all(
      this.admins.map(async (admin) => {
        let stats: Record<string, number>;
        try {
          stats = await this.read(admin);
        } catch {
          return;
        }
        if (this.closed) return;
        for (const w of this.watchers) w(admin, stats, t);
      }),
    );
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }
}
