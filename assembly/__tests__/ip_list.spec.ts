import { ConfigErrors } from "../common/lib/config";
import { IpAddr, parseIp } from "../common/lib/ip";
import { compileIpListConfig, IpListConfig } from "../ip_list/config";
import { listVerdict, inScope, Verdict } from "../ip_list/stage";
import { RequestSnapshot } from "../common/request/snapshot";
import { packCidrs } from "../common/lib/cidr_pack";

const ip = new IpAddr();

function compile(src: string): IpListConfig {
  const errors = new ConfigErrors();
  const cfg = compileIpListConfig(src, errors);
  if (cfg === null) throw new Error(errors.summary());
  return cfg;
}

function verdictFor(cfg: IpListConfig, addr: string): Verdict {
  expect(parseIp(addr, ip)).toBe(true, addr);
  return listVerdict(cfg, ip);
}

describe("ip_list decide", () => {
  it("deny list only: listed addresses are denied, others allowed", () => {
    const cfg = compile('{"deny": ["10.0.0.0/8", "2001:db8::/32"]}');
    expect(verdictFor(cfg, "10.1.2.3")).toBe(Verdict.DeniedByDenyList);
    expect(verdictFor(cfg, "2001:db8::1")).toBe(Verdict.DeniedByDenyList);
    expect(verdictFor(cfg, "11.1.2.3")).toBe(Verdict.Allowed);
    expect(listVerdict(cfg, null)).toBe(Verdict.Allowed);
  });
  it("allow list only: everything else is denied, unknown clients too", () => {
    const cfg = compile('{"allow": ["192.168.0.0/16"]}');
    expect(verdictFor(cfg, "192.168.4.4")).toBe(Verdict.Allowed);
    expect(verdictFor(cfg, "8.8.8.8")).toBe(Verdict.NotOnAllowList);
    expect(listVerdict(cfg, null)).toBe(Verdict.NotOnAllowList);
  });
  it("deny wins over allow", () => {
    const cfg = compile('{"allow": ["0.0.0.0/0"], "deny": ["1.2.3.4"]}');
    expect(verdictFor(cfg, "1.2.3.4")).toBe(Verdict.DeniedByDenyList);
    expect(verdictFor(cfg, "1.2.3.5")).toBe(Verdict.Allowed);
  });
  it("scopes by path prefix", () => {
    const cfg = compile('{"deny": ["0.0.0.0/0"], "paths": ["/admin", "/internal/"]}');
    expect(inScope(cfg, RequestSnapshot.of([":path", "/admin/users"]))).toBe(true);
    expect(inScope(cfg, RequestSnapshot.of([":path", "/internal/x"]))).toBe(true);
    expect(inScope(cfg, RequestSnapshot.of([":path", "/public"]))).toBe(false);
    expect(inScope(compile("{}"), RequestSnapshot.of([":path", "/anything"]))).toBe(true);
  });
});

describe("ip_list config", () => {
  it("rejects the whole config, naming the bad entry", () => {
    const errors = new ConfigErrors();
    expect(compileIpListConfig('{"deny": ["10.0.0.0/8", "10.0.0.300"]}', errors)).toBeNull();
    expect(errors.summary()).toBe("deny[1]: invalid IP or CIDR '10.0.0.300'");
    const e2 = new ConfigErrors();
    expect(compileIpListConfig('{"paths": ["admin"], "deny_status": 200, "colour": 1}', e2)).toBeNull();
    expect(e2.list.length).toBe(3);
  });
  it("loads 100,000 entries", () => {
    let json = '{"deny": [';
    const parts = new Array<string>(100000);
    for (let i = 0; i < 100000; i++) {
      parts[i] = '"' + (10 + (i >> 16)).toString() + "." + ((i >> 8) & 255).toString() + "." + (i & 255).toString() + '.0/24"';
    }
    json += parts.join(",") + "]}";
    const cfg = compile(json);
    expect(cfg.deny.size).toBe(100000);
    expect(verdictFor(cfg, "10.0.5.77")).toBe(Verdict.DeniedByDenyList);
    expect(verdictFor(cfg, "11.134.159.1")).toBe(Verdict.DeniedByDenyList);
    expect(verdictFor(cfg, "11.134.160.1")).toBe(Verdict.Allowed);
  });
  it("reads packed lists beside lists of strings", () => {
    const deny = packCidrs(["10.0.0.0/8", "2001:db8::/32"])!;
    const allow = packCidrs(["0.0.0.0/0"])!;
    const cfg = compile('{"deny": ["1.2.3.4"], "deny_packed": "' + deny + '", "allow_packed": "' + allow + '"}');
    expect(cfg.deny.size).toBe(3);
    expect(verdictFor(cfg, "10.9.9.9")).toBe(Verdict.DeniedByDenyList);
    expect(verdictFor(cfg, "1.2.3.4")).toBe(Verdict.DeniedByDenyList);
    expect(verdictFor(cfg, "2001:db8::5")).toBe(Verdict.DeniedByDenyList);
    expect(verdictFor(cfg, "11.0.0.1")).toBe(Verdict.Allowed);
    expect(verdictFor(cfg, "2001:db9::5")).toBe(Verdict.NotOnAllowList);
  });
  it("names the packed field that is wrong", () => {
    const errors = new ConfigErrors();
    expect(compileIpListConfig('{"deny_packed": "AQg*", "allow_packed": 7}', errors)).toBeNull();
    expect(errors.list.length).toBe(2);
    expect(errors.list[0]).toBe("allow_packed: expected a string (a packed list), got number");
    expect(errors.list[1]).toBe("deny_packed: is not base64 (character 3)");
  });
});
