// Loads build/node/graywall.wasm: the filters' own AssemblyScript logic, callable from Node.
import { existsSync, readFileSync } from "node:fs";
import { instantiateSync } from "assemblyscript/lib/loader";
import { NODE_BINDINGS } from "./paths.ts";

/** What assembly/node/bindings.ts exports, as the loader hands it over (strings are pointers). */
interface NodeExports {
  __newString(s: string): number;
  __getString(ptr: number): string;
  __retain(ptr: number): number;
  __release(ptr: number): void;
  crawlerHeaderSignals(...ptrs: number[]): number;
  crawlerScore(bits: number): number;
  crawlerSignalNames(bits: number): number;
  crawlerKnownBot(ua: number): number;
  validateFilterConfig(filter: number, json: number): number;
  grayPreview(config: number, request: number): number;
}

export interface Bindings {
  /** `scheme`: "https" (or "") or "http", as the gateway saw the request. */
  crawlerHeaderSignals(
    ua: string,
    accept: string,
    acceptLanguage: string,
    acceptEncoding: string,
    secChUa: string,
    secFetchMode: string,
    scheme: string,
  ): number;
  crawlerScore(bits: number): number;
  crawlerSignalNames(bits: number): string;
  /** Whether the filter's compiled isbot patterns flag this user agent. */
  crawlerKnownBot(ua: string): boolean;
  /** "" when the filter accepts the JSON document, else its errors, one per line. */
  validateFilterConfig(filter: string, json: string): string;
  /** gray_router's choice for a sample request: {target, rule} or {error}. */
  grayPreview(config: unknown, request: unknown): { target?: string; rule?: string | null; error?: string };
}

export function loadBindings(): Bindings {
  // Built by `npm run build` (npm start and npm test run it); never compiled at start-up.
  if (!existsSync(NODE_BINDINGS)) throw new Error(`${NODE_BINDINGS} is missing: run 'npm run build'`);
  const abort = () => {
    throw new Error("abort in graywall bindings");
  };
  const e = instantiateSync(readFileSync(NODE_BINDINGS), { env: { abort } }).exports as unknown as NodeExports;
  const str = (s: string) => e.__retain(e.__newString(s));
  const withStrings = <T>(args: string[], fn: (...ptrs: number[]) => T): T => {
    const ptrs = args.map(str);
    try {
      return fn(...ptrs);
    } finally {
      for (const p of ptrs) e.__release(p);
    }
  };
  const takeString = (ptr: number) => {
    const s = e.__getString(ptr);
    e.__release(ptr);
    return s;
  };
  return {
    crawlerHeaderSignals: (...a) => withStrings(a, (...p) => e.crawlerHeaderSignals(...p) >>> 0),
    crawlerScore: (bits) => e.crawlerScore(bits),
    crawlerSignalNames: (bits) => takeString(e.crawlerSignalNames(bits)),
    crawlerKnownBot: (ua) => withStrings([ua], (p) => e.crawlerKnownBot(p) !== 0),
    validateFilterConfig: (filter, json) => withStrings([filter, json], (f, j) => takeString(e.validateFilterConfig(f, j))),
    grayPreview: (config, request) => JSON.parse(withStrings([JSON.stringify(config), JSON.stringify(request)], (c, r) => takeString(e.grayPreview(c, r)))),
  };
}
