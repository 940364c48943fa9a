// ip_list's decision: deny wins over allow; a request whose client address is unknown is on no list.
import { IpAddr } from "../common/lib/ip";
import { RequestSnapshot, PATH } from "../common/request/snapshot";
import { LocalReply, Outcome, Stage, StatSink } from "../common/request/stage";
import { IpListConfig } from "./config";

export const enum Verdict { OutOfScope, Allowed, DeniedByDenyList, NotOnAllowList }

export function inScope(cfg: IpListConfig, req: RequestSnapshot): bool {
  const paths = cfg.pathBytes;
  if (paths.length == 0) return true;
  const i = req.find(PATH);
  if (i < 0) return false;
  for (let k = 0; k < paths.length; k++) if (req.valueStartsWith(i, unchecked(paths[k]))) return true;
  return false;
}

export function listVerdict(cfg: IpListConfig, ip: IpAddr | null): Verdict {
  if (ip !== null && cfg.deny.size > 0 && cfg.deny.contains(ip)) return Verdict.DeniedByDenyList;
  if (cfg.allow.size > 0 && (ip === null || !cfg.allow.contains(ip))) return Verdict.NotOnAllowList;
  return Verdict.Allowed;
}

export function decide(cfg: IpListConfig, req: RequestSnapshot): Verdict {
  if (!inScope(cfg, req)) return Verdict.OutOfScope;
  return listVerdict(cfg, req.clientIp(cfg.clientSource));
}

export class IpListStage extends Stage {
  allowed: u32;
  deniedByDenyList: u32;
  notOnAllowList: u32;
  outOfScope: u32;
  reply: LocalReply;
  notAllowedReply: LocalReply;

  constructor(public cfg: IpListConfig, public stats: StatSink) {
    super();
    this.allowed = stats.tally("graywall.ip_list.allowed");
    this.deniedByDenyList = stats.counter("graywall.ip_list.denied.deny_list");
    this.notOnAllowList = stats.counter("graywall.ip_list.denied.allow_list");
    this.outOfScope = stats.counter("graywall.ip_list.out_of_scope");
    // Sizes as gauges, so the cost of a large list is visible in /stats.
    stats.set(stats.gauge("graywall.ip_list.entries"), <u64>(cfg.allow.size + cfg.deny.size));
    stats.set(stats.gauge("graywall.ip_list.ranges"), <u64>(cfg.allow.rangeCount + cfg.deny.rangeCount));
    stats.set(stats.gauge("graywall.ip_list.vm_memory_bytes"), <u64>memory.size() << 16);
    // The details (Envoy's access log, never the client) say which list refused it.
    this.reply = new LocalReply(<u32>cfg.denyStatus, "graywall_ip_list_denied.deny_list", cfg.denyBody, ["content-type", "text/plain"]);
    this.notAllowedReply = new LocalReply(<u32>cfg.denyStatus, "graywall_ip_list_denied.allow_list", cfg.denyBody, ["content-type", "text/plain"]);
  }

  onRequest(req: RequestSnapshot, endOfStream: bool): Outcome {
    const v = decide(this.cfg, req);
    if (v == Verdict.Allowed) { this.stats.inc(this.allowed); return Outcome.Continue; }
    if (v == Verdict.OutOfScope) { this.stats.inc(this.outOfScope); return Outcome.Continue; }
    const byDenyList = v == Verdict.DeniedByDenyList;
    this.stats.inc(byDenyList ? this.deniedByDenyList : this.notOnAllowList);
    req.reply = byDenyList ? this.reply : this.notAllowedReply;
    return Outcome.Reply;
  }
}
