// Everything a filter module exports to the host; a filter's index.ts re-exports this.
export { malloc } from "@solo-io/proxy-runtime/malloc";
export {
  proxy_abi_version_0_2_0, proxy_on_context_create, proxy_on_vm_start, proxy_validate_configuration,
  proxy_on_configure, proxy_on_tick, proxy_on_request_headers, proxy_on_request_body, proxy_on_request_trailers,
  proxy_on_request_metadata, proxy_on_response_headers, proxy_on_response_body, proxy_on_response_trailers,
  proxy_on_response_metadata, proxy_on_queue_ready, proxy_on_foreign_function, proxy_on_http_call_response,
  proxy_on_grpc_receive_initial_metadata, proxy_on_grpc_trailing_metadata, proxy_on_grpc_receive,
  proxy_on_grpc_close, proxy_on_done, proxy_on_log, proxy_on_delete,
} from "./filter";
// Compiles in the runtime's global abort_proc_exit, which `--use abort=abort_proc_exit` names.
export { abort_proc_exit } from "@solo-io/proxy-runtime/runtime";
