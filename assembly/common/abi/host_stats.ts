// StatSink over Envoy's metrics.
import { defineMetric, incrementMetric, metricValue, MetricType, recordMetric } from "./host";
import { StatSink } from "../request/stage";

class HostStats extends StatSink {
  counter(name: string): u32 { return defineMetric(MetricType.Counter, name); }
  gauge(name: string): u32 { return defineMetric(MetricType.Gauge, name); }
  histogram(name: string): u32 { return defineMetric(MetricType.Histogram, name); }
  inc(id: u32): void { incrementMetric(id); }
  add(id: u32, by: i64): void { incrementMetric(id, by); }
  set(id: u32, value: u64): void { recordMetric(id, value); }
  read(id: u32): u64 { return metricValue(id); }
}

export const hostStats = new HostStats();
