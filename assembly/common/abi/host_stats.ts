// StatSink over Envoy's metrics. Counters, gauges and histograms reach the host at once; a tally (a
// counter of every request, e.g. ip_list.allowed) is summed in the VM and written out on its next tick
// (flushTallies), at most a second later: a host call costs about as much as a stage's own work.
import { defineMetric, incrementMetric, metricValue, MetricType, recordMetric } from "./host";
import { StatSink } from "../request/stage";

/** Marks a tally's handle: the rest is its index in HostStats' tables. Envoy's metric ids stay far below it. */
const TALLY: u32 = 0x80000000;

class HostStats extends StatSink {
  /** Per tally, for the life of the VM (like the metric ids): its host id and the increments not yet written out. */
  private tallyIds: u32[] = [];
  private pending: i64[] = [];

  counter(name: string): u32 { return defineMetric(MetricType.Counter, name); }
  gauge(name: string): u32 { return defineMetric(MetricType.Gauge, name); }
  histogram(name: string): u32 { return defineMetric(MetricType.Histogram, name); }

  tally(name: string): u32 {
    const id = defineMetric(MetricType.Counter, name);
    if (id == 0) return 0;
    const at = this.tallyIds.indexOf(id);
    if (at >= 0) return TALLY | <u32>at;
    this.tallyIds.push(id);
    this.pending.push(0);
    return TALLY | <u32>(this.tallyIds.length - 1);
  }

  inc(id: u32): void {
    if ((id & TALLY) != 0) unchecked(this.pending[id & ~TALLY]++);
    else incrementMetric(id);
  }

  add(id: u32, by: i64): void {
    if ((id & TALLY) != 0) unchecked(this.pending[id & ~TALLY] += by);
    else incrementMetric(id, by);
  }

  set(id: u32, value: u64): void {
    if ((id & TALLY) == 0) recordMetric(id, value);
  }

  /** A tally reads as the host's value plus this VM's increments not yet written out. */
  read(id: u32): u64 {
    if ((id & TALLY) == 0) return metricValue(id);
    const i = id & ~TALLY;
    return metricValue(unchecked(this.tallyIds[i])) + <u64>unchecked(this.pending[i]);
  }

  /** Writes every tally's increments out: one host call per tally that moved. */
  flushTallies(): void {
    const n = this.tallyIds.length;
    for (let i = 0; i < n; i++) {
      const by = unchecked(this.pending[i]);
      if (by == 0) continue;
      unchecked(this.pending[i] = 0);
      incrementMetric(unchecked(this.tallyIds[i]), by);
    }
  }
}

export const hostStats = new HostStats();
