// A request made of plain values, for previews (Node bindings) and tests: the same RequestView the
// filter evaluates in Envoy, fed from fields instead of host calls; its headers are tested as a
// snapshot's bytes, as the filter tests them. Pure.
import { IpAddr } from "../common/lib/ip";
import { isValidJson, lookupJsonPath } from "../common/lib/json";
import { findCookie, findQueryParam } from "../common/request/http";
import { RequestSnapshot } from "../common/request/snapshot";
import { GrayConfig } from "./config";
import { RequestView } from "./matcher";

export class SampleRequest extends RequestView {
  names: string[] = [];
  values: string[] = [];
  cookieHeader: string | null = null;
  path: string = "/";
  ip: IpAddr | null = null;
  body: string | null = null;
  consumerName: string | null = null;

  private snapshot: RequestSnapshot | null = null;

  /** Adds a header (name lower-cased, as Envoy stores it). */
  h(name: string, value: string): SampleRequest {
    this.names.push(name.toLowerCase());
    this.values.push(value);
    this.snapshot = null;
    return this;
  }

  consumer(): string | null { return this.consumerName; }

  nextHeaderMatch(cfg: GrayConfig, from: i32): i32 {
    let s = this.snapshot;
    if (s === null) {
      const kv = new Array<string>();
      for (let i = 0; i < this.names.length; i++) {
        kv.push(this.names[i]);
        kv.push(this.values[i]);
      }
      s = RequestSnapshot.of(kv);
      this.snapshot = s;
    }
    // An evaluation starts from rule 0: the table's per-request lookups start over.
    if (from == 0) cfg.headerTests.begin();
    return cfg.headerTests.firstHolding(s, from);
  }
  header(slot: i32, name: string): string | null {
    const i = this.names.indexOf(name);
    if (i < 0) return null;
    return this.values[i];
  }
  cookie(name: string): string | null {
    const c = this.cookieHeader;
    if (c === null) return null;
    return findCookie(c, name);
  }
  query(name: string): string | null { return findQueryParam(this.path, name); }
  clientIp(): IpAddr | null { return this.ip; }
  bodyField(slot: i32, segments: string[]): string | null {
    const b = this.body;
    if (b === null || !isValidJson(b)) return null;
    return lookupJsonPath(b, segments);
  }
}
