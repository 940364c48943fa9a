// noop: the project's dispatch with every callback returning Continue. The benchmark's floor: what any
// AssemblyScript filter costs before it does anything. It reads at most the first 64 bytes of its
// configuration (so a large document given to it measures what Envoy alone spends on carrying it), and
// a configuration starting `{"define_metrics": N` makes it define N counters, and nothing else
// (bench/publishes.ts --noop-metrics: what Envoy keeps per metric a VM defines, over many publishes).
// A configuration starting `{"fetch_headers": true` makes it fetch the request's header map once per
// request and do nothing with it: the floor any filter that reads a header stands on (one host call
// that returns data, which Envoy answers by calling back into the VM for the memory). With
// `{"fetch_headers": true, "stage_calls": true` it also makes the other host calls the four stages make a
// request (the clock on every one, a gauge read on the first of each millisecond): what those calls cost
// without any stage code.
export * from "../common/abi/exports";
import { HeadersStatus, registerFilter, RootFilter, StreamFilter } from "../common/abi/filter";
import { defineMetric, getHeaderPairsInto, MapType, MetricType, metricValue, nowMillis } from "../common/abi/host";

const DEFINE = '{"define_metrics":';
const FETCH = '{"fetch_headers":true';
const CALLS = '{"fetch_headers":true,"stage_calls":true';
/** The gauge the stage calls read (defined once per VM), and whether this configuration makes the calls. */
let gauge: u32 = 0;
let stageCalls = false;
/** The millisecond of the last gauge read. */
let gaugeReadMs: i64 = -1;

/** The buffer Envoy writes the header map into, kept from request to request. */
let pairs = new ArrayBuffer(4096);

class FetchHeaders extends StreamFilter {
  onRequestHeaders(headerCount: u32, endOfStream: bool): HeadersStatus {
    const got = getHeaderPairsInto(MapType.RequestHeaders, pairs);
    if (got !== null) pairs = got;
    if (stageCalls) {
      const now = nowMillis();
      if (now != gaugeReadMs) {
        gaugeReadMs = now;
        metricValue(gauge);
      }
    }
    return HeadersStatus.Continue;
  }
}

const FETCHING = new FetchHeaders();
const IDLE = new StreamFilter();

class Noop extends RootFilter {
  fetch: bool = false;
  configurationBytes(): i32 { return 64; }
  configure(config: string): string | null {
    const compact = config.replaceAll(" ", "");
    this.fetch = compact.startsWith(FETCH);
    stageCalls = compact.startsWith(CALLS);
    if (stageCalls && gauge == 0) gauge = defineMetric(MetricType.Gauge, "graywall.noop.gauge");
    if (!config.startsWith(DEFINE)) return null;
    let end = DEFINE.length;
    while (end < config.length && config.charCodeAt(end) >= 0x30 && config.charCodeAt(end) <= 0x39) end++;
    const n = I32.parseInt(config.substring(DEFINE.length, end));
    for (let i = 0; i < n; i++) defineMetric(MetricType.Counter, "graywall.noop.c" + i.toString());
    return null;
  }
  newStream(): StreamFilter { return this.fetch ? FETCHING : IDLE; }
}

function newRoot(): RootFilter {
  return new Noop("noop");
}

registerFilter("noop", newRoot);
