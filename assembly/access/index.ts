// access as a module of its own: consumers identified by API key or signed request, with a local 401
// where a credential is required.
export * from "../common/abi/exports";
import { ConfigErrors } from "../common/lib/config";
import { hostStats } from "../common/abi/host_stats";
import { hostStore } from "../common/abi/host_store";
import { registerPipeline } from "../common/abi/pipeline";
import { Stage } from "../common/request/stage";
import { compileAccessConfig } from "./config";
import { AccessStage } from "./stage";

function compile(config: string, errors: ConfigErrors): Stage[] | null {
  const cfg = compileAccessConfig(config, errors);
  if (cfg === null) return null;
  return [new AccessStage(cfg, hostStore, hostStats)];
}

registerPipeline("access", compile);
