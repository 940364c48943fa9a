// graywall: the four stages in one module and one pass, ip_list -> crawler_score -> rate_limiter ->
// gray_router, over one request snapshot.
export * from "../common/abi/exports";
import { ConfigErrors } from "../common/lib/config";
import { hostCalls } from "../common/abi/host_calls";
import { hostStats } from "../common/abi/host_stats";
import { hostStore } from "../common/abi/host_store";
import { registerPipeline } from "../common/abi/pipeline";
import { Stage } from "../common/request/stage";
import { compileGraywallStages } from "./config";

function compile(config: string, errors: ConfigErrors): Stage[] | null {
  return compileGraywallStages(config, errors, hostStore, hostStats, hostCalls);
}

registerPipeline("graywall", compile);
