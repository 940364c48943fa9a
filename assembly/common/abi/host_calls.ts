// HostCalls backed by proxy_http_call: an HTTP POST to an Envoy cluster, answered on the root context.
import { httpCall } from "./host";
import { encodePairs } from "../request/snapshot";
import { HostCalls } from "../request/stage";

class EnvoyCalls extends HostCalls {
  post(cluster: string, path: string, contentType: string, body: string, timeoutMs: u32): u32 {
    // The cluster's name is the authority too: Envoy wants one, and the service behind it ignores it.
    const headers = encodePairs([":method", "POST", ":path", path, ":authority", cluster, "content-type", contentType]);
    return httpCall(String.UTF8.encode(cluster), headers, String.UTF8.encode(body), timeoutMs);
  }
}

export const hostCalls = new EnvoyCalls();
