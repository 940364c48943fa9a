// crawler_score as a module of its own: scores each client from its headers and recent behaviour.
export * from "../common/abi/exports";
import { ConfigErrors } from "../common/lib/config";
import { hostCalls } from "../common/abi/host_calls";
import { hostStats } from "../common/abi/host_stats";
import { hostStore } from "../common/abi/host_store";
import { registerPipeline } from "../common/abi/pipeline";
import { Stage } from "../common/request/stage";
import { compileCrawlerConfig } from "./config";
import { CrawlerStage } from "./stage";

function compile(config: string, errors: ConfigErrors): Stage[] | null {
  const cfg = compileCrawlerConfig(config, errors);
  if (cfg === null) return null;
  return [new CrawlerStage(cfg, hostStore, hostStats, hostCalls)];
}

registerPipeline("crawler_score", compile);
