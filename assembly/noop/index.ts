// noop: the project's dispatch with every callback returning Continue. The benchmark's floor: what any
// AssemblyScript filter costs before it does anything. It reads at most the first 64 bytes of its
// configuration (so a large document given to it measures what Envoy alone spends on carrying it), and
// a configuration starting `{"define_metrics": N` makes it define N counters, and nothing else
// (bench/publishes.ts --noop-metrics: what Envoy keeps per metric a VM defines, over many publishes).
export * from "../common/abi/exports";
import { registerFilter, RootFilter } from "../common/abi/filter";
import { defineMetric, MetricType } from "../common/abi/host";

const DEFINE = '{"define_metrics":';

class Noop extends RootFilter {
  configurationBytes(): i32 { return 64; }
  configure(config: string): string | null {
    if (!config.startsWith(DEFINE)) return null;
    let end = DEFINE.length;
    while (end < config.length && config.charCodeAt(end) >= 0x30 && config.charCodeAt(end) <= 0x39) end++;
    const n = I32.parseInt(config.substring(DEFINE.length, end));
    for (let i = 0; i < n; i++) defineMetric(MetricType.Counter, "graywall.noop.c" + i.toString());
    return null;
  }
}

function newRoot(): RootFilter {
  return new Noop("noop");
}

registerFilter("noop", newRoot);
