// Runs graywall-control on its own: npm run control
import { join } from "node:path";
import { ROOT } from "../runtime/paths.ts";
import { loadToken } from "./auth.ts";
import { buildServer, type ControlOptions } from "./server.ts";

export interface RunningControl {
  url: string;
  token: string;
  close(): Promise<void>;
}

/** The service from the environment (GRAYWALL_*); `overrides` win over it. */
export async function startControl(port = Number(process.env.GRAYWALL_CONTROL_PORT ?? 8080), overrides: Partial<ControlOptions> = {}): Promise<RunningControl> {
  const dataDir = overrides.dataDir ?? process.env.GRAYWALL_DATA ?? join(ROOT, ".graywall", "data");
  const ecdsDir = overrides.ecdsDir ?? process.env.GRAYWALL_ECDS_DIR ?? join(ROOT, ".graywall", "ecds");
  const token = loadToken(dataDir.replace(/\/$/, ""));
  const retention = process.env.GRAYWALL_RETENTION ? Number(process.env.GRAYWALL_RETENTION) : undefined;
  if (retention !== undefined && !(Number.isInteger(retention) && retention >= 1))
    throw new Error(`GRAYWALL_RETENTION must be a whole number >= 1, got '${process.env.GRAYWALL_RETENTION}'`);
  const targets = process.env.GRAYWALL_TARGETS?.split(",")
    .map((t) => t.trim().toLowerCase())
    .filter(Boolean);
  const app = buildServer({
    dataDir,
    ecdsDir,
    token,
    retention,
    targets,
    envoyAdmin: process.env.GRAYWALL_ENVOY_ADMIN ?? "http://127.0.0.1:9901",
    ratelimitDir: process.env.GRAYWALL_RATELIMIT_DIR,
    xdsPort: process.env.GRAYWALL_XDS_PORT ? Number(process.env.GRAYWALL_XDS_PORT) : undefined,
    ...overrides,
  });
  await app.listen({ host: "127.0.0.1", port });
  return { url: `http://127.0.0.1:${port}`, token, close: () => app.close() };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  startControl().then(
    (c) => console.log(`graywall-control on ${c.url}  (token: ${c.token})`),
    (e) => {
      console.error(`[control] ${(e as Error).message}`);
      process.exit(1);
    },
  );
}
