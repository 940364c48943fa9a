// Each built module is a proxy-wasm 0.2.0 module that answers to its own root id and no other.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { ROOT, wasmPath } from "../runtime/paths.ts";
import { MODULES } from "../runtime/filters.ts";
import { ProxyHost } from "./support/proxy_host.ts";

const names = MODULES;

test("the one module, each stage alone and the no-op floor are built", () => {
  assert.deepEqual([...names].sort(), ["access", "crawler_score", "gray_router", "graywall", "ip_list", "noop", "rate_limiter"]);
  for (const name of names) assert.ok(existsSync(join(ROOT, "assembly", name, "index.ts")), name);
});

for (const name of names) {
  test(`${name}.wasm exports the proxy-wasm 0.2.0 ABI and answers to root id '${name}'`, () => {
    const exported = WebAssembly.Module.exports(new WebAssembly.Module(readFileSync(wasmPath(name)))).map((e) => e.name);
    for (const fn of ["proxy_abi_version_0_2_0", "malloc", "proxy_on_context_create", "proxy_on_configure", "proxy_on_request_headers", "proxy_on_done"]) {
      assert.ok(exported.includes(fn), `${name} lacks ${fn}`);
    }
    const host = new ProxyHost(wasmPath(name), name);
    assert.equal(host.configure("{}"), true, host.logs.join("\n"));
  });

  test(`${name}.wasm refuses a root id that is not its own`, () => {
    const host = new ProxyHost(wasmPath(name), "someone_else");
    assert.equal(host.configure("{}"), false);
    assert.match(host.logs.join("\n"), new RegExp(`serves root_id '${name}'`));
  });
}
