// ip_list configuration, compiled once into sets of address ranges.
import { readClientSource } from "../common/request/client_ip";
import { ConfigErrors, ObjReader, readConfigRoot } from "../common/lib/config";
import { CidrSet } from "../common/lib/cidr_set";
import { unpackCidrs } from "../common/lib/cidr_pack";
import { JsonKind, StringSink } from "../common/lib/json";

export class IpListConfig {
  allow: CidrSet = new CidrSet();
  deny: CidrSet = new CidrSet();
  /** Path prefixes the lists apply to; empty = every path. */
  paths: string[] = [];
  pathBytes: ArrayBuffer[] = [];
  /** Where the client address comes from (common/request/client_ip.ts readClientSource). */
  clientSource: i32 = 0;
  denyStatus: i32 = 403;
  denyBody: string = "forbidden\n";
}

/** Adds each entry straight into the set, so a long list is never held whole. */
class SetSink extends StringSink {
  constructor(public set: CidrSet, public errors: ConfigErrors, public path: string) { super(); }
  add(index: i32, value: string): void {
    if (!this.set.add(value)) this.errors.add(this.path + "[" + index.toString() + "]", "invalid IP or CIDR '" + value + "'");
  }
  addSpan(index: i32, src: string, start: i32, end: i32): void {
    if (!this.set.addRange(src, start, end)) this.add(index, src.substring(start, end));
  }
  expect(count: i32): void { this.set.reserve(count); }
}

/** The most entries of each list, and of paths (compiled in well under a second; docs/ip_list.md). */
export const MAX_ENTRIES = 200000;
export const MAX_PATHS = 100;

/** A list as JSON strings (`key`) and/or packed (`key_packed`, what graywall-control delivers for long lists). */
function readList(r: ObjReader, key: string, into: CidrSet): void {
  r.eachStr(key, new SetSink(into, r.errors, r.at(key)), MAX_ENTRIES);
  const packedKey = key + "_packed";
  const v = r.raw(packedKey);
  if (v === null) return;
  if (v.kind != JsonKind.String) { r.errors.add(r.at(packedKey), "expected a string (a packed list), got " + v.kindName()); return; }
  // Read where it lies in the document: a long packed list is never copied out.
  const err = unpackCidrs(v.spanSource, v.spanStart, v.spanEnd, into, MAX_ENTRIES - into.size);
  if (err.length > 0) r.errors.add(r.at(packedKey), err);
}

export function compileIpListConfig(src: string, errors: ConfigErrors): IpListConfig | null {
  const r = readConfigRoot(src, errors);
  if (r === null) return null;
  return readIpListConfig(r);
}

/** Compiles the document `r` reads (the whole config, or the ip_list section of graywall's). */
export function readIpListConfig(r: ObjReader): IpListConfig | null {
  const errors = r.errors;
  const cfg = new IpListConfig();
  readList(r, "allow", cfg.allow);
  readList(r, "deny", cfg.deny);
  cfg.allow.seal();
  cfg.deny.seal();
  cfg.paths = r.strList("paths", MAX_PATHS);
  for (let i = 0; i < cfg.paths.length; i++) {
    if (!cfg.paths[i].startsWith("/")) errors.add(r.at("paths[" + i.toString() + "]"), "must start with '/'");
    cfg.pathBytes.push(String.UTF8.encode(cfg.paths[i]));
  }
  cfg.clientSource = readClientSource(r);
  cfg.denyStatus = <i32>r.int("deny_status", 403, 400, 599);
  cfg.denyBody = r.str("deny_body", cfg.denyBody);
  r.done();
  if (!errors.ok) return null;
  return cfg;
}
