// noop: the project's dispatch with every callback returning Continue. The benchmark's floor: what any
// AssemblyScript filter costs before it does anything. A configuration of `{"define_metrics": N}` makes
// it define N counters when configured, and nothing else (bench/publishes.ts --noop-metrics: what Envoy
// keeps per metric a VM defines, over many publishes).
export * from "../common/abi/exports";
import { registerFilter, RootFilter } from "../common/abi/filter";
import { defineMetric, MetricType } from "../common/abi/host";

const DEFINE = '{"define_metrics":';

class Noop extends RootFilter {
  configure(config: string): string | null {
    if (!config.startsWith(DEFINE)) return null;
    const n = I32.parseInt(config.substring(DEFINE.length));
    for (let i = 0; i < n; i++) defineMetric(MetricType.Counter, "graywall.noop.c" + i.toString());
    return null;
  }
}

function newRoot(): RootFilter {
  return new Noop("noop");
}

registerFilter("noop", newRoot);
