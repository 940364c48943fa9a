// Everything a filter module exports to the host; a filter's index.ts re-exports this. Only the
// callbacks the filters use: Envoy skips a callback the module does not export (on_log, on_delete,
// response bodies, trailers, metadata), and each one exported costs a call into the VM per request.
export { malloc } from "./host";
export {
  proxy_abi_version_0_2_0, proxy_on_context_create, proxy_on_vm_start, proxy_validate_configuration,
  proxy_on_configure, proxy_on_tick, proxy_on_http_call_response, proxy_on_request_headers, proxy_on_request_body, proxy_on_response_headers,
  proxy_on_done, graywall_flush_tallies, graywall_collections,
} from "./filter";
export { abort_proc_exit } from "./abort";
