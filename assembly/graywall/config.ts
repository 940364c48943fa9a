// graywall's configuration: one JSON object with a section per stage, each section exactly that
// filter's own document, compiled by that filter's compiler (errors name the section:
// "rate_limiter.rules[0].bucket_size: ..."). A missing section turns its stage off. Pure.
import { ConfigErrors, readConfigRoot } from "../common/lib/config";
import { SharedStore } from "../common/lib/slot_table";
import { HostCalls, Stage, StatSink } from "../common/request/stage";
import { AccessConfig, accessTableBytes, readAccessConfig } from "../access/config";
import { AccessStage } from "../access/stage";
import { CrawlerConfig, crawlerTableBytes, readCrawlerConfig } from "../crawler_score/config";
import { overBudget } from "../common/lib/memory_budget";
import { CrawlerStage } from "../crawler_score/stage";
import { GrayConfig, readGrayConfig } from "../gray_router/config";
import { GrayRouterStage } from "../gray_router/stage";
import { IpListConfig, readIpListConfig } from "../ip_list/config";
import { IpListStage } from "../ip_list/stage";
import { KeyKind, RateLimitConfig, readRateLimitConfig } from "../rate_limiter/config";
import { RateLimiterStage } from "../rate_limiter/stage";

/** The sections, in pass order: a stage that answers locally ends the pass before the later ones. */
export const SECTIONS: string[] = ["access", "ip_list", "crawler_score", "rate_limiter", "gray_router"];

/** Each section's compiled config; null where the section is absent (its stage is off). */
export class GraywallConfig {
  access: AccessConfig | null = null;
  ipList: IpListConfig | null = null;
  crawler: CrawlerConfig | null = null;
  limiter: RateLimitConfig | null = null;
  gray: GrayConfig | null = null;
}

/** Compiles every section, so one invalid section reports with the others; null when any is invalid. */
export function compileGraywallConfig(src: string, errors: ConfigErrors): GraywallConfig | null {
  const r = readConfigRoot(src, errors);
  if (r === null) return null;
  const access = r.obj("access");
  const ipList = r.obj("ip_list");
  const crawler = r.obj("crawler_score");
  const limiter = r.obj("rate_limiter");
  const gray = r.obj("gray_router");
  r.done();
  const cfg = new GraywallConfig();
  if (access !== null) cfg.access = readAccessConfig(access);
  if (ipList !== null) cfg.ipList = readIpListConfig(ipList);
  if (crawler !== null) cfg.crawler = readCrawlerConfig(crawler);
  if (limiter !== null) cfg.limiter = readRateLimitConfig(limiter);
  if (gray !== null) cfg.gray = readGrayConfig(gray);
  // A limit keyed by consumer, or a gray rule that matches one, needs the stage that names consumers.
  const gr = cfg.gray;
  if (gr !== null && access === null) {
    for (let i = 0; i < gr.rules.length; i++) {
      if (gr.rules[i].consumers.length > 0) errors.add("gray_router.rules[" + i.toString() + "].match.consumers", "needs the access section, which names consumers");
    }
  }
  const lim = cfg.limiter;
  if (lim !== null && access === null) {
    for (let i = 0; i < lim.rules.length; i++) {
      const parts = lim.rules[i].key;
      for (let k = 0; k < parts.length; k++) {
        if (parts[k].kind == KeyKind.Consumer) errors.add("rate_limiter.rules[" + i.toString() + "].key", "'consumer' needs the access section, which names consumers");
      }
    }
  }
  // Each section is within the budget alone; together they must be too.
  const c = cfg.crawler;
  const l = cfg.limiter;
  const a = cfg.access;
  const nonces = a !== null ? accessTableBytes(a) : 0;
  if (c !== null && l !== null) {
    const budget = overBudget(crawlerTableBytes(c) + l.tableBytes + nonces);
    if (budget.length > 0) errors.add("rate_limiter.max_keys", "with crawler_score.max_clients" + (nonces > 0 ? " and access.signature.max_nonces" : "") + ", " + budget);
  }
  if (!errors.ok) return null;
  return cfg;
}

export function compileGraywallStages(src: string, errors: ConfigErrors, store: SharedStore, stats: StatSink, calls: HostCalls | null = null): Stage[] | null {
  const cfg = compileGraywallConfig(src, errors);
  if (cfg === null) return null;
  const stages = new Array<Stage>();
  const access = cfg.access;
  if (access !== null) stages.push(new AccessStage(access, store, stats));
  const ipList = cfg.ipList;
  if (ipList !== null) stages.push(new IpListStage(ipList, stats));
  const crawler = cfg.crawler;
  if (crawler !== null) stages.push(new CrawlerStage(crawler, store, stats, calls));
  const limiter = cfg.limiter;
  if (limiter !== null) stages.push(new RateLimiterStage(limiter, store, stats));
  const gray = cfg.gray;
  if (gray !== null) stages.push(new GrayRouterStage(gray, stats));
  return stages;
}
