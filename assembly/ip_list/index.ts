// ip_list: allow/deny by client IP with a local 403 reply.
export * from "../common/exports";
import { registerFilter, RootFilter, StreamFilter, HeadersStatus } from "../common/filter";
import { MapType, getHeaderEncoded, sendLocalResponse, defineMetric, incrementMetric, recordMetric, MetricType } from "../common/host";
import { ConfigErrors } from "../common/config";
import { IpAddr } from "../common/ip";
import { PATH_KEY, hostClientIp } from "../common/request";
import { compileIpListConfig, IpListConfig } from "./config";
import { decide, inScope, Verdict } from "./decide";

const ROOT_ID = "ip_list";

class Metrics {
  allowed: u32 = defineMetric(MetricType.Counter, "graywall.ip_list.allowed");
  deniedByDenyList: u32 = defineMetric(MetricType.Counter, "graywall.ip_list.denied.deny_list");
  notOnAllowList: u32 = defineMetric(MetricType.Counter, "graywall.ip_list.denied.allow_list");
  outOfScope: u32 = defineMetric(MetricType.Counter, "graywall.ip_list.out_of_scope");
}

class IpListRoot extends RootFilter {
  cfg: IpListConfig | null = null;
  metrics: Metrics | null = null;

  configure(config: string): string | null {
    const errors = new ConfigErrors();
    const cfg = compileIpListConfig(config, errors);
    if (cfg === null) return errors.summary();
    this.cfg = cfg;
    this.metrics = new Metrics();
    // Sizes as gauges, so the cost of a large list is visible in /stats.
    recordMetric(defineMetric(MetricType.Gauge, "graywall.ip_list.entries"), <u64>(cfg.allow.size + cfg.deny.size));
    recordMetric(defineMetric(MetricType.Gauge, "graywall.ip_list.trie_nodes"), <u64>(cfg.allow.nodeCount + cfg.deny.nodeCount));
    recordMetric(defineMetric(MetricType.Gauge, "graywall.ip_list.vm_memory_bytes"), <u64>memory.size() << 16);
    return null;
  }

  newStream(): StreamFilter {
    const cfg = this.cfg;
    const m = this.metrics;
    if (cfg === null || m === null) return new StreamFilter();
    return new IpListStream(cfg, m);
  }
}

// One scratch address per VM: a VM runs one request callback at a time.
const clientIp = new IpAddr();

class IpListStream extends StreamFilter {
  constructor(public cfg: IpListConfig, public m: Metrics) { super(); }

  onRequestHeaders(headerCount: u32, endOfStream: bool): HeadersStatus {
    const cfg = this.cfg;
    if (cfg.paths.length > 0) {
      const path = getHeaderEncoded(MapType.RequestHeaders, PATH_KEY);
      if (path === null || !inScope(cfg, path)) {
        incrementMetric(this.m.outOfScope);
        return HeadersStatus.Continue;
      }
    }
    let v: Verdict;
    if (hostClientIp(cfg.xffTrustedHops, clientIp)) v = decide(cfg, clientIp);
    else v = decide(cfg, null);
    if (v == Verdict.Allowed) {
      incrementMetric(this.m.allowed);
      return HeadersStatus.Continue;
    }
    incrementMetric(v == Verdict.DeniedByDenyList ? this.m.deniedByDenyList : this.m.notOnAllowList);
    sendLocalResponse(cfg.denyStatus, "graywall_ip_list_denied", cfg.denyBody, ["content-type", "text/plain"]);
    return HeadersStatus.StopIteration;
  }
}

registerFilter(ROOT_ID, (): RootFilter => new IpListRoot(ROOT_ID));
