// What an AssemblyScript abort does in a filter (`--use abort=abort_proc_exit`): the message goes to
// Envoy's log at critical, then the VM exits. Graywall's own code never aborts on a request (the
// host wrappers return misses, the stages bound their work); this is the last resort for a bug.
import * as imports from "../../../node_modules/@solo-io/proxy-runtime/assembly/imports";

// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "proc_exit")
declare function proc_exit(code: u32): void;

// @ts-ignore: decorator
@global
export function abort_proc_exit(message: string | null, fileName: string | null, line: u32, column: u32): void {
  let text = message !== null ? message : "abort";
  if (fileName !== null) text += " at " + fileName + ":" + line.toString() + ":" + column.toString();
  const buf = String.UTF8.encode(text);
  imports.proxy_log(5, changetype<usize>(buf), buf.byteLength);
  proc_exit(255);
}
