// Delivers accepted documents to Envoy: graywall's configuration, composed from the current document of
// every stage, as one ECDS file in a directory Envoy watches (one host; replaced atomically, so Envoy
// swaps the configuration without a restart), and, with an xDS server, to every Envoy subscribed to it
// over gRPC (a fleet). With a ratelimit folder, the rate_limiter document's cluster rules also go to
// envoyproxy/ratelimit's config there, which the service reloads.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { ecdsFileName, ecdsResource, wasmTemplates, wasmTypedConfig } from "../runtime/ecds.ts";
import { writeAtomic } from "../runtime/files.ts";
import { composeConfig, FILTERS, MODULE } from "../runtime/filters.ts";
import { ROOT } from "../runtime/paths.ts";
import { writeRatelimitConfig } from "../runtime/cluster_limits.ts";
import type { EcdsServer } from "./xds.ts";

export interface DeliveryTargets {
  /** Where the ECDS file goes (single-host mode). */
  ecdsDir: string;
  /** Where Envoy finds the module (default: the repository's build/, absolute; relative paths are Envoy's cwd). */
  wasmDir?: string;
  /** The gateway's Envoy config, whose graywall filter is the template of what is delivered. */
  envoyYaml?: string;
  /** The ratelimit service's runtime root (RUNTIME_ROOT), if cluster limits are served. */
  ratelimitDir?: string;
  /** The gRPC ECDS server the fleet subscribes to. */
  xds?: EcdsServer;
}

export class Delivery {
  private template: ReturnType<ReturnType<typeof wasmTemplates>["get"]>;
  private docs: Record<string, unknown> = {};
  private versions: Record<string, number> = {};

  constructor(public targets: DeliveryTargets) {
    mkdirSync(targets.ecdsDir, { recursive: true });
    this.template = wasmTemplates(targets.envoyYaml).get(MODULE.envoyName);
    if (!this.template) throw new Error(`${targets.envoyYaml ?? "envoy/envoy.yaml"} has no ${MODULE.envoyName} filter`);
  }

  /** The version every gateway reports: each stage's document version, e.g. "ip_list.1,...,gray_router.4". */
  get version(): string {
    return FILTERS.map((f) => `${f.name}.${this.versions[f.name] ?? 0}`).join(",");
  }

  /** Sets one stage's document (its version `version`); delivers the composed configuration once every stage has one. */
  deliver(filter: string, doc: unknown, version = 0): string {
    if (!FILTERS.some((f) => f.name === filter)) throw new Error(`unknown filter ${filter}`);
    this.docs[filter] = doc;
    this.versions[filter] = version;
    const { ecdsDir, wasmDir = join(ROOT, "build"), ratelimitDir, xds } = this.targets;
    if (filter === "rate_limiter" && ratelimitDir) writeRatelimitConfig(ratelimitDir, doc);
    const file = join(ecdsDir, ecdsFileName(MODULE.envoyName));
    if (FILTERS.every((f) => f.name in this.docs)) {
      const config = composeConfig(this.docs);
      // Mode 0600: the configuration carries the crawler's secrets.
      writeAtomic(file, ecdsResource(MODULE.envoyName, this.template, config, wasmDir), 0o600);
      xds?.publish(this.version, { [MODULE.envoyName]: wasmTypedConfig(this.template, config, wasmDir) });
    }
    return file;
  }
}
