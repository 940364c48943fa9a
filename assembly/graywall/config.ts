// graywall's configuration: one JSON object with a section per stage, each section exactly that
// filter's own document, compiled by that filter's compiler (errors name the section:
// "rate_limiter.rules[0].bucket_size: ..."). A missing section turns its stage off. Pure.
import { ConfigErrors, readConfigRoot } from "../common/config";
import { SharedStore } from "../common/slot_table";
import { Stage, StatSink } from "../common/stage";
import { CrawlerConfig, readCrawlerConfig } from "../crawler_score/config";
import { CrawlerStage } from "../crawler_score/stage";
import { GrayConfig, readGrayConfig } from "../gray_router/config";
import { GrayRouterStage } from "../gray_router/stage";
import { IpListConfig, readIpListConfig } from "../ip_list/config";
import { IpListStage } from "../ip_list/stage";
import { RateLimitConfig, readRateLimitConfig } from "../rate_limiter/config";
import { RateLimiterStage } from "../rate_limiter/stage";

/** The sections, in pass order: a stage that answers locally ends the pass before the later ones. */
export const SECTIONS: string[] = ["ip_list", "crawler_score", "rate_limiter", "gray_router"];

export function compileGraywallStages(src: string, errors: ConfigErrors, store: SharedStore, stats: StatSink): Stage[] | null {
  const r = readConfigRoot(src, errors);
  if (r === null) return null;
  const ipList = r.obj("ip_list");
  const crawler = r.obj("crawler_score");
  const limiter = r.obj("rate_limiter");
  const gray = r.obj("gray_router");
  r.done();
  // Compile every section first, so one invalid section reports with the others and builds nothing.
  // (if/else, not ternaries: see the ARC note in common/filter.ts)
  let ipCfg: IpListConfig | null = null;
  if (ipList !== null) ipCfg = readIpListConfig(ipList);
  let crawlerCfg: CrawlerConfig | null = null;
  if (crawler !== null) crawlerCfg = readCrawlerConfig(crawler);
  let limiterCfg: RateLimitConfig | null = null;
  if (limiter !== null) limiterCfg = readRateLimitConfig(limiter);
  let grayCfg: GrayConfig | null = null;
  if (gray !== null) grayCfg = readGrayConfig(gray);
  if (!errors.ok) return null;
  const stages = new Array<Stage>();
  if (ipCfg !== null) stages.push(new IpListStage(ipCfg, stats));
  if (crawlerCfg !== null) stages.push(new CrawlerStage(crawlerCfg, store, stats));
  if (limiterCfg !== null) stages.push(new RateLimiterStage(limiterCfg, store, stats));
  if (grayCfg !== null) stages.push(new GrayRouterStage(grayCfg, stats));
  return stages;
}
