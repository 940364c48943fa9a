// The validation worker: the filters' own compilers (build/node/graywall.wasm) on a thread of their own,
// so a hostile document costs this thread, never the service's event loop. Any failure inside the
// bindings (an abort, memory exhausted) discards the instance: the next call gets a fresh one.
import { parentPort } from "node:worker_threads";
import { type Bindings, loadBindings } from "../../runtime/bindings.ts";
import type { Call, Reply } from "./validator.ts";

let bindings: Bindings | undefined;

function run(call: Call): unknown {
  bindings ??= loadBindings();
  if (call.op === "validate") return bindings.validateFilterConfig(call.filter, call.json);
  return bindings.grayPreview(call.config, call.request);
}

parentPort!.on("message", (call: Call) => {
  let reply: Reply;
  try {
    reply = { id: call.id, ok: true, value: run(call) };
  } catch (e) {
    bindings = undefined;
    reply = { id: call.id, ok: false, error: (e as Error).message };
  }
  parentPort!.postMessage(reply);
});
