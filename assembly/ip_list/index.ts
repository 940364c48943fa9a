// ip_list as a module of its own: allow/deny by client IP with a local 403 reply.
export * from "../common/abi/exports";
import { ConfigErrors } from "../common/lib/config";
import { hostStats } from "../common/abi/host_stats";
import { registerPipeline } from "../common/abi/pipeline";
import { Stage } from "../common/request/stage";
import { compileIpListConfig } from "./config";
import { IpListStage } from "./stage";

function compile(config: string, errors: ConfigErrors): Stage[] | null {
  const cfg = compileIpListConfig(config, errors);
  if (cfg === null) return null;
  return [new IpListStage(cfg, hostStats)];
}

registerPipeline("ip_list", compile);
