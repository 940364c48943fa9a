// Delivers accepted documents to Envoy: graywall's configuration, composed from the current document of
// every stage, as one ECDS file in a directory Envoy watches. The file is replaced atomically, so Envoy
// swaps the configuration without a restart. With a ratelimit folder, the rate_limiter document's cluster
// rules also go to envoyproxy/ratelimit's config there, which the service reloads.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { ecdsFileName, ecdsResource, wasmTemplates, writeAtomic } from "../runtime/ecds.ts";
import { composeConfig, FILTERS, MODULE } from "../runtime/filters.ts";
import { ROOT } from "../runtime/paths.ts";
import { writeRatelimitConfig } from "../runtime/services.ts";

export class Delivery {
  private template = wasmTemplates().get(MODULE.envoyName);
  private docs: Record<string, unknown> = {};

  /**
   * `wasmDir`: where Envoy finds the module (default: the repository's build/, absolute).
   * `ratelimitDir`: the ratelimit service's runtime root (RUNTIME_ROOT), if cluster limits are served.
   */
  constructor(
    public ecdsDir: string,
    public wasmDir = join(ROOT, "build"),
    public ratelimitDir?: string,
  ) {
    mkdirSync(ecdsDir, { recursive: true });
    if (!this.template) throw new Error(`envoy/envoy.yaml has no ${MODULE.envoyName} filter`);
  }

  /** Sets one stage's document; writes the composed configuration once every stage has one. */
  deliver(filter: string, doc: unknown): string {
    if (!FILTERS.some((f) => f.name === filter)) throw new Error(`unknown filter ${filter}`);
    this.docs[filter] = doc;
    if (filter === "rate_limiter" && this.ratelimitDir) writeRatelimitConfig(this.ratelimitDir, doc);
    const file = join(this.ecdsDir, ecdsFileName(MODULE.envoyName));
    if (FILTERS.every((f) => f.name in this.docs)) {
      writeAtomic(file, ecdsResource(MODULE.envoyName, this.template, composeConfig(this.docs), this.wasmDir));
    }
    return file;
  }
}
