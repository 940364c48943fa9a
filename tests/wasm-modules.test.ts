// Each built filter is a proxy-wasm 0.2.0 module that answers to its own root id and no other.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { filterNames, wasmPath } from "../scripts/lib/paths.ts";

/** The smallest host that lets us call proxy_on_configure: it answers plugin_root_id and the config buffer. */
function instantiate(file: string, rootId: string, config: string) {
  let memory: WebAssembly.Memory;
  let exports: Record<string, CallableFunction>;
  const enc = new TextEncoder();
  const give = (bytes: Uint8Array, ptrPtr: number, sizePtr: number) => {
    const p = exports.malloc(bytes.length) as number;
    new Uint8Array(memory.buffer, p, bytes.length).set(bytes);
    const v = new DataView(memory.buffer);
    v.setUint32(ptrPtr, p, true);
    v.setUint32(sizePtr, bytes.length, true);
    return 0;
  };
  const logs: string[] = [];
  const env = new Proxy(
    {
      proxy_log: (_l: number, p: number, n: number) => {
        logs.push(new TextDecoder().decode(new Uint8Array(memory.buffer, p, n)));
        return 0;
      },
      proxy_get_property: (p: number, n: number, out: number, outSize: number) => {
        const path = new TextDecoder().decode(new Uint8Array(memory.buffer, p, n));
        return path === "plugin_root_id" ? give(enc.encode(rootId), out, outSize) : 1;
      },
      proxy_get_buffer_bytes: (_t: number, _s: number, _n: number, out: number, outSize: number) => give(enc.encode(config), out, outSize),
      proxy_define_metric: () => 0,
    } as Record<string, unknown>,
    { get: (t, k: string) => t[k] ?? (() => 0) },
  );
  const mod = new WebAssembly.Module(readFileSync(file));
  const inst = new WebAssembly.Instance(mod, { env, wasi_unstable: { proc_exit: () => {} } });
  exports = inst.exports as Record<string, CallableFunction>;
  memory = inst.exports.memory as WebAssembly.Memory;
  return { mod, exports, logs };
}

const names = filterNames();

test("every filter folder builds a module", () => {
  assert.ok(names.length >= 1);
});

for (const name of names) {
  test(`${name}.wasm exports the proxy-wasm 0.2.0 ABI and answers to root id '${name}'`, () => {
    const { mod, exports, logs } = instantiate(wasmPath(name), name, "{}");
    const exported = WebAssembly.Module.exports(mod).map((e) => e.name);
    for (const fn of ["proxy_abi_version_0_2_0", "malloc", "proxy_on_context_create", "proxy_on_configure", "proxy_on_request_headers", "proxy_on_delete"]) {
      assert.ok(exported.includes(fn), `${name} lacks ${fn}`);
    }
    exports.proxy_on_context_create(1, 0);
    assert.equal(exports.proxy_on_configure(1, 2), 1, logs.join("\n"));
  });

  test(`${name}.wasm refuses a root id that is not its own`, () => {
    const { exports, logs } = instantiate(wasmPath(name), "someone_else", "{}");
    exports.proxy_on_context_create(1, 0);
    assert.equal(exports.proxy_on_configure(1, 2), 0);
    assert.match(logs.join("\n"), new RegExp(`serves root_id '${name}'`));
  });
}
