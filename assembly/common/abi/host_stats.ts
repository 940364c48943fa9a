// StatSink over Envoy's metrics. Counters and gauges reach the host at once; a tally (a counter of every
// request, e.g. ip_list.allowed) is summed in the VM and written out on its next tick, and a histogram's
// values wait in the VM and reach the host HISTOGRAM_BATCH at a time or on the tick (flush): at most a
// second later either way. A host call costs about as much as a stage's own work, and one made cold on
// every request costs more than the same call made in a run of them.
import { defineMetric, incrementMetric, metricValue, MetricType, recordMetric } from "./host";
import { StatSink } from "../request/stage";

/** Marks a tally's handle: the rest is its index in HostStats' tables. Envoy's metric ids stay far below it. */
const TALLY: u32 = 0x80000000;
/** Marks a histogram's handle: the rest is Envoy's metric id. */
const HISTOGRAM: u32 = 0x40000000;
/** Histogram values held in the VM before they are recorded in one run of host calls. */
const HISTOGRAM_BATCH: i32 = 64;

class HostStats extends StatSink {
  /** Per tally, for the life of the VM (like the metric ids): its host id and the increments not yet written out. */
  private tallyIds: u32[] = [];
  private pending: i64[] = [];
  /** Histogram values not yet recorded, with their metrics' host ids. */
  private valueIds: StaticArray<u32> = new StaticArray<u32>(HISTOGRAM_BATCH);
  private values: StaticArray<u64> = new StaticArray<u64>(HISTOGRAM_BATCH);
  private held: i32 = 0;

  counter(name: string): u32 { return defineMetric(MetricType.Counter, name); }
  gauge(name: string): u32 { return defineMetric(MetricType.Gauge, name); }

  histogram(name: string): u32 {
    const id = defineMetric(MetricType.Histogram, name);
    return id == 0 ? 0 : HISTOGRAM | id;
  }

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
    if ((id & TALLY) != 0) return;
    if ((id & HISTOGRAM) == 0) {
      recordMetric(id, value);
      return;
    }
    const n = this.held;
    unchecked((this.valueIds[n] = id & ~HISTOGRAM));
    unchecked((this.values[n] = value));
    this.held = n + 1;
    if (n + 1 == HISTOGRAM_BATCH) this.flushValues();
  }

  /** A tally reads as the host's value plus this VM's increments not yet written out. */
  read(id: u32): u64 {
    if ((id & TALLY) == 0) return metricValue(id & ~HISTOGRAM);
    const i = id & ~TALLY;
    return metricValue(unchecked(this.tallyIds[i])) + <u64>unchecked(this.pending[i]);
  }

  /** Writes out what waits in the VM: one host call per tally that moved, one per histogram value held. */
  flush(): void {
    const n = this.tallyIds.length;
    for (let i = 0; i < n; i++) {
      const by = unchecked(this.pending[i]);
      if (by == 0) continue;
      unchecked((this.pending[i] = 0));
      incrementMetric(unchecked(this.tallyIds[i]), by);
    }
    this.flushValues();
  }

  private flushValues(): void {
    const n = this.held;
    this.held = 0;
    for (let i = 0; i < n; i++) recordMetric(unchecked(this.valueIds[i]), unchecked(this.values[i]));
  }
}

export const hostStats = new HostStats();
