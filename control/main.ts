// Runs graywall-control on its own: npm run control
import { join } from "node:path";
import { ROOT } from "../runtime/paths.ts";
import { loadToken } from "./auth.ts";
import type { AlertSettings } from "./alerts.ts";
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
    envoyAdmin: (process.env.GRAYWALL_ENVOY_ADMIN ?? "http://127.0.0.1:9901").split(",")[0].trim(),
    envoyAdmins: process.env.GRAYWALL_ENVOY_ADMIN?.split(",").map((a) => a.trim()),
    ratelimitDir: process.env.GRAYWALL_RATELIMIT_DIR,
    xdsPort: process.env.GRAYWALL_XDS_PORT ? Number(process.env.GRAYWALL_XDS_PORT) : undefined,
    alerts: alertSettings(process.env.GRAYWALL_ALERT_WEBHOOKS),
    envoyYaml: process.env.GRAYWALL_ENVOY_CONFIG,
    accessLogs: process.env.GRAYWALL_ACCESS_LOGS?.split(",")
      .map((f) => f.trim())
      .filter(Boolean),
    ...overrides,
  });
  await app.listen({ host: "127.0.0.1", port });
  return { url: `http://127.0.0.1:${port}`, token, close: () => app.close() };
}

/** GRAYWALL_ALERT_WEBHOOKS: http(s) URLs, comma-separated; a wrong one stops the start with its position (never its text). */
export function alertSettings(list: string | undefined): AlertSettings | undefined {
  const webhooks = (list ?? "")
    .split(",")
    .map((u) => u.trim())
    .filter(Boolean);
  webhooks.forEach((u, i) => {
    if (!/^https?:\/\/[^\s]+$/.test(u)) throw new Error(`GRAYWALL_ALERT_WEBHOOKS: entry ${i + 1} is not an http(s) URL`);
  });
  return webhooks.length > 0 ? { webhooks } : undefined;
}

export const USAGE = `graywall-control: the rules API, web UI and delivery of Graywall's filter configuration to Envoy.

Usage: graywall-control [--help]

Configured by the environment:
  GRAYWALL_CONTROL_PORT   HTTP port on 127.0.0.1 (default 8080)
  GRAYWALL_DATA           versioned rule documents (default ./.graywall/data)
  GRAYWALL_ECDS_DIR       where the ECDS file for Envoy is written (default ./.graywall/ecds)
  GRAYWALL_XDS_PORT       also serve the configuration over gRPC ECDS on this port (a fleet)
  GRAYWALL_RATELIMIT_DIR  envoyproxy/ratelimit's runtime root, for cluster-wide rate-limit rules
  GRAYWALL_ENVOY_ADMIN    Envoy's admin address for live counters and release analysis (default http://127.0.0.1:9901);
                          several, comma-separated, for a fleet (releases sum every gateway's numbers)
  GRAYWALL_TOKEN, GRAYWALL_TOKEN_FILE   the bearer token for changes (default: generated into the data folder)
  GRAYWALL_RETENTION      versions kept per filter (default 200)
  GRAYWALL_ENVOY_CONFIG   your gateway's Envoy config: its graywall filter is the template of what is delivered,
                          its routes the targets gray rules may use (default: the shipped envoy/envoy.yaml)
  GRAYWALL_TARGETS        gray targets the gateway routes, comma-separated (instead of reading them from the routes)
  GRAYWALL_ACCESS_LOGS    the gateways' JSON access logs (files), comma-separated: the Traffic view's most refused paths
  GRAYWALL_ALERT_WEBHOOKS webhook URLs, comma-separated: alerts evaluated from the gateways' admin stats
                          (docs/observability.md) are POSTed there when they fire and when they resolve
The modules it points Envoy at are in ${join(ROOT, "build")}.
`;

/** The command line: `graywall-control` (the npm package's bin) and `npm run control`. */
export async function runCli(argv: string[], cwd = process.cwd()): Promise<void> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(USAGE);
    return;
  }
  const unknown = argv.filter((a) => a !== "");
  if (unknown.length > 0) {
    process.stderr.write(`graywall-control: unknown argument '${unknown[0]}'\n\n${USAGE}`);
    process.exit(2);
  }
  try {
    const c = await startControl(undefined, {
      dataDir: process.env.GRAYWALL_DATA ?? join(cwd, ".graywall", "data"),
      ecdsDir: process.env.GRAYWALL_ECDS_DIR ?? join(cwd, ".graywall", "ecds"),
    });
    console.log(`graywall-control on ${c.url}  (token: ${c.token})`);
  } catch (e) {
    console.error(`[control] ${(e as Error).message}`);
    process.exit(1);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) void runCli(process.argv.slice(2), ROOT);
