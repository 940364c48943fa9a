// gray_router as a module of its own: picks a target per request and hands it to Envoy's route table.
export * from "../common/abi/exports";
import { ConfigErrors } from "../common/lib/config";
import { hostStats } from "../common/abi/host_stats";
import { registerPipeline } from "../common/abi/pipeline";
import { Stage } from "../common/request/stage";
import { compileGrayConfig } from "./config";
import { GrayRouterStage } from "./stage";

function compile(config: string, errors: ConfigErrors): Stage[] | null {
  const cfg = compileGrayConfig(config, errors);
  if (cfg === null) return null;
  return [new GrayRouterStage(cfg, hostStats)];
}

registerPipeline("gray_router", compile);
