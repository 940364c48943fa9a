// The ip_list verdict for one request. Pure.
import { IpAddr } from "../common/ip";
import { IpListConfig } from "./config";

export const enum Verdict { OutOfScope, Allowed, DeniedByDenyList, NotOnAllowList }

export function inScope(cfg: IpListConfig, path: string): bool {
  const paths = cfg.paths;
  if (paths.length == 0) return true;
  for (let i = 0; i < paths.length; i++) if (path.startsWith(unchecked(paths[i]))) return true;
  return false;
}

/** Deny wins over allow. A request whose client address is unknown (null) is on no list. */
export function decide(cfg: IpListConfig, ip: IpAddr | null): Verdict {
  if (ip !== null && cfg.deny.size > 0 && cfg.deny.contains(ip)) return Verdict.DeniedByDenyList;
  if (cfg.allow.size > 0 && (ip === null || !cfg.allow.contains(ip))) return Verdict.NotOnAllowList;
  return Verdict.Allowed;
}
