// graywall: the four stages in one module and one pass, ip_list -> crawler_score -> rate_limiter ->
// gray_router, over one request snapshot.
export * from "../common/exports";
import { ConfigErrors } from "../common/config";
import { hostStats } from "../common/host_stats";
import { hostStore } from "../common/host_store";
import { registerPipeline } from "../common/pipeline";
import { Stage } from "../common/stage";
import { compileGraywallStages } from "./config";

function compile(config: string, errors: ConfigErrors): Stage[] | null {
  return compileGraywallStages(config, errors, hostStore, hostStats);
}

registerPipeline("graywall", compile);
