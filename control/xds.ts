// graywall's configuration for a fleet: Envoy's extension config discovery service (ECDS) over gRPC,
// state of the world. Every Envoy that subscribes gets the current version at once and every later one as
// it is published; its ACK or NACK (with Envoy's error) is kept per node, so the API can say which gateway
// runs which version and which one refused a version and why. Envoy's own xDS client keeps serving its
// last configuration while the control service is away, and resubscribes when it is back.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs";

const TYPED_EXTENSION_CONFIG = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig";
const SERVICE = "/envoy.service.extension.v3.ExtensionConfigDiscoveryService";

/** Envoy's API protos as shipped in @grpc/grpc-js-xds, with protobufjs's copies of Google's own. */
function loadProtos(): protobuf.Root {
  // Wherever npm put the packages (hoisted into a user's project, or here).
  const pkg = (name: string) => dirname(createRequire(import.meta.url).resolve(`${name}/package.json`));
  const dirs = ["envoy-api", "xds", "googleapis", "protoc-gen-validate"].map((d) => join(pkg("@grpc/grpc-js-xds"), "deps", d));
  dirs.push(pkg("protobufjs"));
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => dirs.map((d) => join(d, target)).find((p) => existsSync(p)) ?? target;
  root.loadSync(
    [
      "envoy/service/discovery/v3/discovery.proto",
      "envoy/config/core/v3/extension.proto",
      "envoy/extensions/filters/http/wasm/v3/wasm.proto",
      "google/protobuf/wrappers.proto",
    ],
    { keepCase: true },
  );
  root.resolveAll();
  return root;
}

interface Node {
  id?: string;
  cluster?: string;
}

interface DiscoveryRequest {
  version_info?: string;
  node?: Node;
  resource_names?: string[];
  type_url?: string;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string };
}

/** What one gateway (Envoy node) runs, as it told us. */
export interface GatewayStatus {
  node: string;
  cluster: string;
  connected: boolean;
  /** The version it acknowledged last: the one it runs. */
  version: string | null;
  /** The version sent and not yet answered. */
  pending: string | null;
  /** The last version it refused, with Envoy's message; cleared once it accepts a later one. */
  rejected: { version: string; error: string; time: string } | null;
  connectedAt: string;
  lastSeen: string;
}

interface Subscription {
  call: grpc.ServerDuplexStream<Buffer, Buffer>;
  node: string;
  names: string[];
  nonce: string;
  sentVersion: string;
}

export class EcdsServer {
  private root = loadProtos();
  private request = this.root.lookupType("envoy.service.discovery.v3.DiscoveryRequest");
  private response = this.root.lookupType("envoy.service.discovery.v3.DiscoveryResponse");
  private extension = this.root.lookupType("envoy.config.core.v3.TypedExtensionConfig");
  private server: grpc.Server | null = null;
  private subs = new Set<Subscription>();
  private gateways = new Map<string, GatewayStatus>();
  private resources = new Map<string, Uint8Array>();
  private version = "";
  private nonces = 0;

  /**
   * Makes `typedConfigs` (filter name -> typed_config in Envoy's JSON form) the current version and sends
   * it to every subscribed Envoy. Throws, sending nothing, if a config does not encode.
   */
  publish(version: string, typedConfigs: Record<string, unknown>): void {
    const encoded = new Map<string, Uint8Array>();
    for (const [name, typed_config] of Object.entries(typedConfigs)) {
      const msg = this.extension.fromObject({ name, typed_config });
      encoded.set(name, this.extension.encode(msg).finish());
    }
    this.resources = encoded;
    this.version = version;
    for (const s of this.subs) this.send(s);
  }

  get currentVersion(): string {
    return this.version;
  }

  /** Every gateway seen since start, connected or not, by node id. */
  status(): GatewayStatus[] {
    return [...this.gateways.values()].sort((a, b) => a.node.localeCompare(b.node));
  }

  private send(s: Subscription): void {
    if (!this.version) return;
    const resources = s.names.filter((n) => this.resources.has(n)).map((n) => ({ type_url: TYPED_EXTENSION_CONFIG, value: this.resources.get(n) }));
    // Nothing this service has was asked for: an empty state-of-the-world answer would read as "removed".
    if (resources.length === 0) return;
    s.nonce = String(++this.nonces);
    s.sentVersion = this.version;
    const g = this.gateways.get(s.node);
    if (g) g.pending = this.version;
    const msg = this.response.fromObject({ version_info: this.version, resources, type_url: TYPED_EXTENSION_CONFIG, nonce: s.nonce });
    s.call.write(Buffer.from(this.response.encode(msg).finish()));
  }

  private onRequest(s: Subscription, req: DiscoveryRequest): void {
    const now = new Date().toISOString();
    if (req.node?.id) {
      s.node = req.node.id;
      const known = this.gateways.get(s.node);
      const g: GatewayStatus = known ?? {
        node: s.node,
        cluster: "",
        connected: true,
        version: null,
        pending: null,
        rejected: null,
        connectedAt: now,
        lastSeen: now,
      };
      if (!known?.connected) g.connectedAt = now;
      g.cluster = req.node.cluster ?? g.cluster;
      g.connected = true;
      this.gateways.set(s.node, g);
    }
    const g = this.gateways.get(s.node);
    if (g) {
      g.lastSeen = now;
      // What the node runs: the version of its request (a resubscribing Envoy names the one it kept).
      if (req.version_info) g.version = req.version_info;
    }
    const names = req.resource_names ?? [];
    const namesChanged = names.join("\n") !== s.names.join("\n");
    s.names = names;
    if (!req.response_nonce) {
      // A new subscription: send the current version.
      this.send(s);
      return;
    }
    if (req.response_nonce !== s.nonce) return; // an answer to a response superseded since
    if (g) {
      g.pending = null;
      if (req.error_detail?.message) g.rejected = { version: s.sentVersion, error: req.error_detail.message, time: now };
      else if (req.version_info === s.sentVersion) g.rejected = null;
    }
    if (namesChanged) this.send(s);
  }

  private stream(call: grpc.ServerDuplexStream<Buffer, Buffer>): void {
    const s: Subscription = { call, node: "", names: [], nonce: "", sentVersion: "" };
    this.subs.add(s);
    const gone = () => {
      if (!this.subs.delete(s)) return;
      const g = this.gateways.get(s.node);
      // A node that reconnected on another stream stays connected.
      if (g && ![...this.subs].some((o) => o.node === s.node)) g.connected = false;
    };
    call.on("data", (buf: Buffer) => {
      try {
        const req = this.request.toObject(this.request.decode(buf), { defaults: false, arrays: true }) as DiscoveryRequest;
        this.onRequest(s, req);
      } catch (e) {
        call.destroy(e as Error);
      }
    });
    call.on("end", () => {
      gone();
      call.end();
    });
    call.on("error", gone);
    call.on("close", gone);
  }

  /** Serves on 127.0.0.1:`port` (0 = any free port); resolves to the port. */
  listen(port: number, host = "127.0.0.1"): Promise<number> {
    const server = new grpc.Server();
    const raw = (b: Buffer) => b;
    server.addService(
      {
        StreamExtensionConfigs: {
          path: `${SERVICE}/StreamExtensionConfigs`,
          requestStream: true,
          responseStream: true,
          requestSerialize: raw,
          requestDeserialize: raw,
          responseSerialize: raw,
          responseDeserialize: raw,
        },
      },
      { StreamExtensionConfigs: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => this.stream(call) },
    );
    this.server = server;
    return new Promise((resolve, reject) =>
      server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
    );
  }

  /** Stops at once: open streams are cut, as when the control service dies. */
  close(): void {
    this.server?.forceShutdown();
    this.server = null;
    for (const s of this.subs) {
      const g = this.gateways.get(s.node);
      if (g) g.connected = false;
    }
    this.subs.clear();
  }
}
