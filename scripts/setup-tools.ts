// Tools the tests need from Debian's packages: chromium (the UI tests drive it with playwright-core,
// never a browser download) and wrk (the benchmark's load generator).
import { ensureDebianTool } from "./debian.ts";

export const CHROMIUM = process.env.GRAYWALL_CHROMIUM ?? "/usr/bin/chromium";
export const WRK = process.env.GRAYWALL_WRK ?? "/usr/bin/wrk";

export function setupBrowser(): string {
  return ensureDebianTool(CHROMIUM, "chromium", "for the UI tests; or set GRAYWALL_CHROMIUM");
}

export function setupWrk(): string {
  return ensureDebianTool(WRK, "wrk", "the benchmark's load generator; or set GRAYWALL_WRK");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    setupBrowser();
    setupWrk();
  } catch (e) {
    console.error(`[setup] ${(e as Error).message}`);
    process.exit(1);
  }
}
