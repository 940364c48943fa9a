// access as a module of its own: consumers identified by API key, with a local 401 where a key is required.
export * from "../common/abi/exports";
import { ConfigErrors } from "../common/lib/config";
import { hostStats } from "../common/abi/host_stats";
import { registerPipeline } from "../common/abi/pipeline";
import { Stage } from "../common/request/stage";
import { compileAccessConfig } from "./config";
import { AccessStage } from "./stage";

function compile(config: string, errors: ConfigErrors): Stage[] | null {
  const cfg = compileAccessConfig(config, errors);
  if (cfg === null) return null;
  return [new AccessStage(cfg, hostStats)];
}

registerPipeline("access", compile);
