// rate_limiter as a module of its own: token buckets per key in shared data, exact across workers.
export * from "../common/abi/exports";
import { ConfigErrors } from "../common/lib/config";
import { hostStats } from "../common/abi/host_stats";
import { hostStore } from "../common/abi/host_store";
import { registerPipeline } from "../common/abi/pipeline";
import { Stage } from "../common/request/stage";
import { compileRateLimitConfig } from "./config";
import { RateLimiterStage } from "./stage";

function compile(config: string, errors: ConfigErrors): Stage[] | null {
  const cfg = compileRateLimitConfig(config, errors);
  if (cfg === null) return null;
  return [new RateLimiterStage(cfg, hostStore, hostStats)];
}

registerPipeline("rate_limiter", compile);
