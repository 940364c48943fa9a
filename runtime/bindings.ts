// Loads build/node/graywall.wasm: the filters' own AssemblyScript logic, callable from Node.
import { existsSync, readFileSync } from "node:fs";
import { NODE_BINDINGS } from "./paths.ts";

/** What assembly/node/bindings.ts exports (built with --exportRuntime); strings are pointers. */
interface NodeExports {
  memory: WebAssembly.Memory;
  __new(size: number, id: number): number;
  __pin(ptr: number): number;
  __unpin(ptr: number): void;
  crawlerHeaderSignals(...ptrs: number[]): number;
  crawlerScore(bits: number): number;
  crawlerSignalNames(bits: number): number;
  crawlerKnownBot(ua: number): number;
  validateFilterConfig(filter: number, json: number): number;
  grayPreview(config: number, request: number): number;
  packCidrList(lines: number): number;
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
  /** ip_list's packed form of a CIDR list (docs/ip_list.md, "Packed lists"), or null when an entry does not parse. */
  packCidrList(list: string[]): string | null;
}

/**
 * `code`: the module's bytes, when not the built file (the fuzzer's coverage-instrumented copy);
 * `env`: imports such a copy needs besides `abort`.
 */
export function loadBindings(code?: Uint8Array<ArrayBuffer>, env: Record<string, CallableFunction> = {}): Bindings {
  // Built by `npm run build` (npm start and npm test run it); never compiled at start-up.
  if (!code && !existsSync(NODE_BINDINGS)) throw new Error(`${NODE_BINDINGS} is missing: run 'npm run build'`);
  const abort = () => {
    throw new Error("abort in graywall bindings");
  };
  const module = new WebAssembly.Module(code ?? readFileSync(NODE_BINDINGS));
  const e = new WebAssembly.Instance(module, { env: { ...env, abort } }).exports as unknown as NodeExports;
  // An AssemblyScript string is UTF-16 code units in a managed block of class id 2; its byte length is
  // the block header's rtSize, the u32 just before the data. Arguments stay pinned for the call.
  const STRING_ID = 2;
  const newString = (s: string): number => {
    const ptr = e.__pin(e.__new(s.length << 1, STRING_ID));
    const units = new Uint16Array(e.memory.buffer, ptr, s.length);
    for (let i = 0; i < s.length; i++) units[i] = s.charCodeAt(i);
    return ptr;
  };
  const withStrings = <T>(args: string[], fn: (...ptrs: number[]) => T): T => {
    const ptrs: number[] = [];
    try {
      for (const a of args) ptrs.push(newString(a));
      return fn(...ptrs);
    } finally {
      for (const p of ptrs) e.__unpin(p);
    }
  };
  // A returned string is read before anything else is allocated, so no collection can take it first.
  const takeString = (ptr: number): string => {
    const bytes = new Uint32Array(e.memory.buffer, ptr - 4, 1)[0];
    const units = new Uint16Array(e.memory.buffer, ptr, bytes >>> 1);
    let out = "";
    for (let i = 0; i < units.length; i += 8192) out += String.fromCharCode(...units.subarray(i, i + 8192));
    return out;
  };
  return {
    crawlerHeaderSignals: (...a) => withStrings(a, (...p) => e.crawlerHeaderSignals(...p) >>> 0),
    crawlerScore: (bits) => e.crawlerScore(bits),
    crawlerSignalNames: (bits) => takeString(e.crawlerSignalNames(bits)),
    crawlerKnownBot: (ua) => withStrings([ua], (p) => e.crawlerKnownBot(p) !== 0),
    validateFilterConfig: (filter, json) => withStrings([filter, json], (f, j) => takeString(e.validateFilterConfig(f, j))),
    packCidrList: (list) => (list.some((c) => c.includes("\n")) ? null : withStrings([list.join("\n")], (l) => takeString(e.packCidrList(l))) || null),
    grayPreview: (config, request) => JSON.parse(withStrings([JSON.stringify(config), JSON.stringify(request)], (c, r) => takeString(e.grayPreview(c, r)))),
  };
}
