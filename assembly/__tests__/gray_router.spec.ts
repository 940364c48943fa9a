import { ConfigErrors } from "../common/lib/config";
import { IpAddr, parseIp } from "../common/lib/ip";
import { stickyBucket } from "../common/lib/hash";
import { compileGrayConfig, GrayConfig } from "../gray_router/config";
import { firstMatch } from "../gray_router/matcher";
import { SampleRequest } from "../gray_router/sample_request";

function compile(src: string): GrayConfig {
  const errors = new ConfigErrors();
  const cfg = compileGrayConfig(src, errors);
  if (cfg === null) throw new Error(errors.summary());
  return cfg;
}

function rejects(src: string): string {
  const errors = new ConfigErrors();
  const cfg = compileGrayConfig(src, errors);
  expect(cfg).toBeNull();
  return errors.summary();
}

function expectRejects(src: string, fragment: string): void {
  const msg = rejects(src);
  expect(msg.includes(fragment)).toBe(true, msg);
}

function targetOf(cfg: GrayConfig, r: SampleRequest): string {
  const i = firstMatch(cfg, r);
  if (i < 0) return cfg.defaultTarget;
  return cfg.rules[i].target;
}

function rule(match: string): string {
  return '{"rules": [{"name": "r", "target": "canary", "match": ' + match + "}]}";
}

describe("gray_router header matches", () => {
  it("exact, prefix, suffix, contains, one_of", () => {
    let cfg = compile(rule('{"headers": [{"name": "X-Group", "exact": "beta"}]}'));
    expect(targetOf(cfg, new SampleRequest().h("x-group", "beta"))).toBe("canary");
    expect(targetOf(cfg, new SampleRequest().h("x-group", "betax"))).toBe("stable");
    expect(targetOf(cfg, new SampleRequest())).toBe("stable");
    cfg = compile(rule('{"headers": [{"name": "ua", "prefix": "Mozilla/"}]}'));
    expect(targetOf(cfg, new SampleRequest().h("ua", "Mozilla/5.0"))).toBe("canary");
    expect(targetOf(cfg, new SampleRequest().h("ua", "curl/8"))).toBe("stable");
    cfg = compile(rule('{"headers": [{"name": "host", "suffix": ".example.com"}]}'));
    expect(targetOf(cfg, new SampleRequest().h("host", "a.example.com"))).toBe("canary");
    expect(targetOf(cfg, new SampleRequest().h("host", "example.org"))).toBe("stable");
    cfg = compile(rule('{"headers": [{"name": "ua", "contains": "Android"}]}'));
    expect(targetOf(cfg, new SampleRequest().h("ua", "x Android y"))).toBe("canary");
    cfg = compile(rule('{"headers": [{"name": "region", "one_of": ["eu", "us"]}]}'));
    expect(targetOf(cfg, new SampleRequest().h("region", "us"))).toBe("canary");
    expect(targetOf(cfg, new SampleRequest().h("region", "apac"))).toBe("stable");
  });

  it("present and absent", () => {
    let cfg = compile(rule('{"headers": [{"name": "x-debug", "present": true}]}'));
    expect(targetOf(cfg, new SampleRequest().h("x-debug", ""))).toBe("canary");
    expect(targetOf(cfg, new SampleRequest())).toBe("stable");
    cfg = compile(rule('{"headers": [{"name": "x-debug", "present": false}]}'));
    expect(targetOf(cfg, new SampleRequest())).toBe("canary");
    expect(targetOf(cfg, new SampleRequest().h("x-debug", "1"))).toBe("stable");
  });

  it("needs every condition of a rule, and the first matching rule wins", () => {
    const cfg = compile('{"default_target": "v1", "rules": [' +
      '{"name": "both", "target": "v3", "match": {"headers": [{"name": "a", "exact": "1"}, {"name": "b", "exact": "2"}]}},' +
      '{"name": "a-only", "target": "v2", "match": {"headers": [{"name": "a", "exact": "1"}]}}]}');
    expect(targetOf(cfg, new SampleRequest().h("a", "1").h("b", "2"))).toBe("v3");
    expect(targetOf(cfg, new SampleRequest().h("a", "1"))).toBe("v2");
    expect(targetOf(cfg, new SampleRequest().h("b", "2"))).toBe("v1");
  });

  it("an empty match matches every request", () => {
    const cfg = compile(rule("{}"));
    expect(targetOf(cfg, new SampleRequest())).toBe("canary");
  });
});

describe("gray_router cookie, query, client IP and body matches", () => {
  it("cookies", () => {
    const cfg = compile(rule('{"cookies": [{"name": "beta", "exact": "1"}]}'));
    const r = new SampleRequest();
    r.cookieHeader = "session=abc; beta=1; theme=dark";
    expect(targetOf(cfg, r)).toBe("canary");
    r.cookieHeader = "session=abc; beta=0";
    expect(targetOf(cfg, r)).toBe("stable");
    r.cookieHeader = 'beta="1"';
    expect(targetOf(cfg, r)).toBe("canary");
    r.cookieHeader = "notbeta=1";
    expect(targetOf(cfg, r)).toBe("stable");
  });

  it("query parameters, percent-decoded", () => {
    const cfg = compile(rule('{"query": [{"name": "version", "exact": "new one"}]}'));
    const r = new SampleRequest();
    r.path = "/x?a=1&version=new%20one";
    expect(targetOf(cfg, r)).toBe("canary");
    r.path = "/x?version=new+one#frag";
    expect(targetOf(cfg, r)).toBe("canary");
    r.path = "/x?version=old";
    expect(targetOf(cfg, r)).toBe("stable");
    r.path = "/x";
    expect(targetOf(cfg, r)).toBe("stable");
  });

  it("client IP in a CIDR list", () => {
    const cfg = compile(rule('{"client_ip": ["10.0.0.0/8", "2001:db8::/32"]}'));
    const r = new SampleRequest();
    const ip = new IpAddr();
    parseIp("10.9.9.9", ip);
    r.ip = ip;
    expect(targetOf(cfg, r)).toBe("canary");
    parseIp("11.0.0.1", ip);
    expect(targetOf(cfg, r)).toBe("stable");
    parseIp("2001:db8::5", ip);
    expect(targetOf(cfg, r)).toBe("canary");
    r.ip = null;
    expect(targetOf(cfg, r)).toBe("stable");
  });

  it("JSON body fields; non-JSON or missing fields do not match", () => {
    const cfg = compile(rule('{"body": [{"path": "user.tier", "one_of": ["gold", "platinum"]}]}'));
    expect(cfg.needsBody).toBe(true);
    const r = new SampleRequest();
    r.body = '{"user": {"tier": "gold"}}';
    expect(targetOf(cfg, r)).toBe("canary");
    r.body = '{"user": {"tier": "silver"}}';
    expect(targetOf(cfg, r)).toBe("stable");
    r.body = '{"user": {"tier": "gold"}';
    expect(targetOf(cfg, r)).toBe("stable");
    r.body = "tier=gold";
    expect(targetOf(cfg, r)).toBe("stable");
    r.body = null;
    expect(targetOf(cfg, r)).toBe("stable");
  });
});

describe("gray_router sticky percentage", () => {
  it("splits 100k users within 1% of the percentage", () => {
    const pcts: f64[] = [1, 10, 33.3, 50, 90];
    for (let p = 0; p < pcts.length; p++) {
      let hits = 0;
      const threshold = <u32>Math.round(pcts[p] * 100);
      for (let u = 0; u < 100000; u++) {
        if (stickyBucket("exp-1", "user-" + u.toString()) < threshold) hits++;
      }
      const share = <f64>hits / 1000.0;
      expect(Math.abs(share - pcts[p])).toBeLessThan(1.0, pcts[p].toString());
    }
  });

  it("raising the percentage only moves users from stable to canary", () => {
    const cfg10 = compile(rule('{"percentage": {"value": 10, "hash_on": "header", "name": "x-user-id", "salt": "s"}}'));
    const cfg20 = compile(rule('{"percentage": {"value": 20, "hash_on": "header", "name": "x-user-id", "salt": "s"}}'));
    let at10 = 0;
    let at20 = 0;
    for (let u = 0; u < 20000; u++) {
      const r = new SampleRequest().h("x-user-id", "u" + u.toString());
      const a = targetOf(cfg10, r) == "canary";
      const b = targetOf(cfg20, r) == "canary";
      if (a) at10++;
      if (b) at20++;
      if (a && !b) expect(b).toBe(true, "user moved back to stable");
    }
    expect(at20).toBeGreaterThan(at10);
  });

  it("hashes on a cookie or the client IP; below 100% no key means default", () => {
    const cfg = compile(rule('{"percentage": {"value": 99.99, "hash_on": "cookie", "name": "uid"}}'));
    const r = new SampleRequest();
    expect(targetOf(cfg, r)).toBe("stable");
    r.cookieHeader = "uid=42";
    expect(targetOf(cfg, r)).toBe("canary");
    const byIp = compile(rule('{"percentage": {"value": 99.99, "hash_on": "client_ip"}}'));
    const r2 = new SampleRequest();
    expect(targetOf(byIp, r2)).toBe("stable");
    const ip = new IpAddr();
    parseIp("1.2.3.4", ip);
    r2.ip = ip;
    expect(targetOf(byIp, r2)).toBe("canary");
  });

  it("at 100% every request matches, with a key or without: a promotion means everyone", () => {
    for (let i = 0; i < 3; i++) {
      const on = i == 0 ? '"hash_on": "cookie", "name": "uid"' : i == 1 ? '"hash_on": "client_ip"' : '"name": "x-user-id"';
      const cfg = compile(rule('{"percentage": {"value": 100, ' + on + "}}"));
      expect(targetOf(cfg, new SampleRequest())).toBe("canary");
    }
  });

  it("0% never matches; salts make rules independent", () => {
    const cfg = compile(rule('{"percentage": {"value": 0, "name": "x-user-id"}}'));
    expect(targetOf(cfg, new SampleRequest().h("x-user-id", "a"))).toBe("stable");
    let same = 0;
    for (let u = 0; u < 1000; u++) {
      const k = "user" + u.toString();
      if ((stickyBucket("a", k) < 5000) == (stickyBucket("b", k) < 5000)) same++;
    }
    expect(same).toBeLessThan(600);
    expect(same).toBeGreaterThan(400);
  });
});

describe("gray_router config validation", () => {
  it("rejects bad configs with the field named", () => {
    expectRejects("{", "config: invalid JSON");
    expectRejects('{"rules": [{"name": "r", "target": "canary"}]}', "rules[0].match: is required");
    expectRejects('{"rules": [{"name": "r", "target": "Can ary", "match": {}}]}', "rules[0].target: must be");
    expectRejects(rule('{"headers": [{"name": "a", "exact": "1", "prefix": "2"}]}'), "needs exactly one of");
    expectRejects(rule('{"client_ip": ["10.0.0.0/8", "999.1.1.1"]}'), "rules[0].match.client_ip[1]: invalid IP or CIDR '999.1.1.1'");
    expectRejects(rule('{"percentage": {"value": 101, "name": "x"}}'), "rules[0].match.percentage.value: must be between 0 and 100");
    expectRejects(rule('{"percentage": {"value": 5, "hash_on": "client_ip", "name": "x"}}'), "not used with hash_on client_ip");
    expectRejects(rule('{"body": [{"path": "a..b", "exact": "1"}]}'), "empty segment");
    expectRejects('{"rules": [{"name": "r", "target": "a", "match": {}}, {"name": "r", "target": "b", "match": {}}]}', "duplicate rule name");
    expectRejects('{"routing_header": "bad header"}', "routing_header: not a valid header name");
    expectRejects('{"max_body_bytes": 99999999}', "max_body_bytes: must be between");
    // Headers whose overwrite breaks all traffic, the connection, or what Envoy trusts.
    const reserved = ["content-length", "host", "transfer-encoding", "connection", "set-cookie", "x-forwarded-for", "x-envoy-upstream-rq-timeout-ms"];
    for (let i = 0; i < reserved.length; i++) {
      expectRejects('{"routing_header": "' + reserved[i] + '"}', "routing_header: '" + reserved[i] + "'");
      expectRejects('{"response_header": "' + reserved[i].toUpperCase() + '"}', "response_header: '" + reserved[i] + "'");
    }
    expectRejects('{"routing_header": ":authority"}', "routing_header: not a valid header name");
    expectRejects('{"colour": "blue"}', "colour: unknown field");
  });

  it("lower-cases targets: the route table matches them in lower case", () => {
    const cfg = compile('{"default_target": "Stable", "rules": [{"name": "r", "target": "Canary", "match": {}}]}');
    expect(cfg.defaultTarget).toBe("stable");
    expect(cfg.rules[0].target).toBe("canary");
  });

  it("shares header slots between rules", () => {
    const cfg = compile('{"rules": [' +
      '{"name": "a", "target": "x", "match": {"headers": [{"name": "h1", "exact": "1"}]}},' +
      '{"name": "b", "target": "y", "match": {"headers": [{"name": "H1", "exact": "2"}], "percentage": {"value": 5, "name": "h2"}}}]}');
    expect(cfg.headerNames.length).toBe(2);
    expect(cfg.rules[1].headers[0].slot).toBe(0);
  });
});
