// Delivers accepted documents to Envoy: one ECDS file per filter in a directory Envoy watches.
// Each file is replaced atomically, so Envoy swaps the filter config without a restart.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { ecdsFileName, ecdsResource, wasmTemplates, writeAtomic } from "../scripts/lib/ecds.ts";
import { FILTERS } from "../scripts/lib/filters.ts";
import { ROOT } from "../scripts/lib/paths.ts";

export class Delivery {
  private templates = wasmTemplates();

  /** `wasmDir`: where Envoy finds the modules (default: the repository's build/, absolute). */
  constructor(public ecdsDir: string, public wasmDir = join(ROOT, "build")) {
    mkdirSync(ecdsDir, { recursive: true });
  }

  deliver(filter: string, doc: unknown): string {
    const info = FILTERS.find((f) => f.name === filter);
    if (!info) throw new Error(`unknown filter ${filter}`);
    const file = join(this.ecdsDir, ecdsFileName(info.envoyName));
    writeAtomic(file, ecdsResource(info.envoyName, this.templates.get(info.envoyName), doc, this.wasmDir));
    return file;
  }
}
