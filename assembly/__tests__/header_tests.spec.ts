import { ConfigErrors, readConfigRoot } from "../common/lib/config";
import { HeaderTestTable, slotOf } from "../common/request/header_tests";
import { encodePairs, HeaderName, RequestSnapshot } from "../common/request/snapshot";
import { readStringMatch, StringMatch } from "../common/request/string_match";
import { rnd } from "./random";

function test(json: string): StringMatch {
  const errors = new ConfigErrors();
  const m = readStringMatch(readConfigRoot(json, errors)!, "name", true);
  expect(errors.ok).toBe(true, errors.summary());
  return m;
}

/** A table of one rule per test, in order. */
function table(tests: StringMatch[]): HeaderTestTable {
  const t = new HeaderTestTable();
  const names = new Array<string>();
  for (let i = 0; i < tests.length; i++) {
    tests[i].slot = slotOf(names, tests[i].name);
    t.addRule([tests[i]]);
  }
  t.seal(names);
  return t;
}

const TESTS = [
  '{"name": "x", "exact": "beta"}',
  '{"name": "x", "exact": ""}',
  '{"name": "x", "prefix": "Mozilla/"}',
  '{"name": "x", "suffix": ".example.com"}',
  '{"name": "x", "contains": "Android"}',
  '{"name": "x", "contains": "ü"}',
  '{"name": "x", "one_of": ["eu", "us", "日本"]}',
  '{"name": "x", "present": true}',
  '{"name": "x", "present": false}',
  '{"name": "y", "exact": "beta"}',
];
const VALUES = ["beta", "betax", "", "Mozilla/5.0", "Mozilla", "a.example.com", "example.org", "x Android y", "Andro", "grüße", "us", "日本", "日本語", "eu "];

describe("header test table", () => {
  it("answers as each test does on the decoded value, for every op and value", () => {
    const ms = new Array<StringMatch>();
    for (let i = 0; i < TESTS.length; i++) ms.push(test(TESTS[i]));
    const t = table(ms);
    for (let v = 0; v < VALUES.length; v++) {
      const req = RequestSnapshot.of(["x", VALUES[v]]);
      t.begin();
      for (let i = 0; i < ms.length; i++) {
        const want = ms[i].test(req.header(new HeaderName(ms[i].name)));
        expect(t.holds(req, i)).toBe(want, TESTS[i] + " on '" + VALUES[v] + "'");
      }
    }
  });
  it("an absent header fails every test but present: false", () => {
    const ms = new Array<StringMatch>();
    for (let i = 0; i < TESTS.length; i++) ms.push(test(TESTS[i]));
    const t = table(ms);
    const req = RequestSnapshot.of(["other", "beta"]);
    t.begin();
    for (let i = 0; i < ms.length; i++) expect(t.holds(req, i)).toBe(i == 8 || i == 9 ? i == 8 : false, TESTS[i]);
  });
  it("a rule holds only when all its tests hold; firstHolding skips to the first such rule", () => {
    const t = new HeaderTestTable();
    const names = new Array<string>();
    const a = test('{"name": "a", "exact": "1"}');
    const b = test('{"name": "b", "prefix": "x"}');
    a.slot = slotOf(names, a.name);
    b.slot = slotOf(names, b.name);
    t.addRule([a, b]);
    t.addRule([b]);
    t.addRule([]);
    t.seal(names);
    t.begin();
    const req = RequestSnapshot.of(["a", "2", "b", "xy"]);
    expect(t.firstHolding(req, 0)).toBe(1);
    expect(t.firstHolding(req, 2)).toBe(2);
    t.begin();
    expect(t.firstHolding(RequestSnapshot.of(["a", "1", "b", "xz"]), 0)).toBe(0);
    t.begin();
    expect(t.firstHolding(RequestSnapshot.of(["a", "1"]), 0)).toBe(2);
  });
});

describe("header test table with many rules", () => {
  it("passes over rules needing a header found absent, with the same answers as testing each rule (70 names, some past the 64 tracked)", () => {
    const ops = ['"exact": "v1"', '"prefix": "v"', '"suffix": "2"', '"contains": "1"', '"present": true', '"present": false', '"one_of": ["v2", "w"]'];
    for (let round = 0; round < 30; round++) {
      const t = new HeaderTestTable();
      const names = new Array<string>();
      const rules = new Array<StringMatch[]>();
      for (let r = 0; r < 80; r++) {
        const tests = new Array<StringMatch>();
        const n = <i32>(rnd() % 3);
        for (let k = 0; k < n; k++) {
          const m = test('{"name": "h' + (rnd() % 70).toString() + '", ' + ops[<i32>(rnd() % <u64>ops.length)] + "}");
          m.slot = slotOf(names, m.name);
          tests.push(m);
        }
        t.addRule(tests);
        rules.push(tests);
      }
      t.seal(names);
      const kv = new Array<string>();
      for (let h = 0; h < 70; h++) {
        if (rnd() % 4 != 0) continue;
        kv.push("h" + h.toString());
        kv.push(["v1", "v2", "w", "x1"][<i32>(rnd() % 4)]);
      }
      const req = RequestSnapshot.of(kv);
      for (let from = 0; from < 80; from += 7) {
        let want = -1;
        for (let r = from; r < 80 && want < 0; r++) {
          let all = true;
          for (let k = 0; k < rules[r].length; k++) if (!rules[r][k].test(req.header(new HeaderName(rules[r][k].name)))) all = false;
          if (all) want = r;
        }
        t.begin();
        expect(t.firstHolding(req, from)).toBe(want);
      }
    }
  });
});

/** The first index of `name` among the names, as a plain scan finds it. */
function firstOf(kv: string[], name: string): i32 {
  for (let i = 0; i < kv.length; i += 2) if (kv[i] == name) return i / 2;
  return -1;
}

describe("snapshot header lookup", () => {
  it("finds each name's first header through the index, with repeated names and names that share a slot", () => {
    const kv: string[] = [];
    // Names of one length and the same first, middle and last bytes share a hash: only comparing tells them apart.
    const names = ["x-aa-1", "x-ab-1", "x-ac-1", "cookie", "accept", "x-aa-1", "user-agent", "cookie", "x-ab-1"];
    for (let i = 0; i < names.length; i++) {
      kv.push(names[i]);
      kv.push("v" + i.toString());
    }
    const req = RequestSnapshot.of(kv);
    const probe = ["x-aa-1", "x-ab-1", "x-ac-1", "x-ad-1", "cookie", "accept", "user-agent", "referer", "", "x"];
    for (let i = 0; i < probe.length; i++) expect(req.find(new HeaderName(probe[i]))).toBe(firstOf(kv, probe[i]), probe[i]);
  });

  it("a map that fails to load finds nothing, not even a name of the map loaded before it", () => {
    const req = RequestSnapshot.of(["cookie", "a=1", "user-agent", "x"]);
    expect(req.find(new HeaderName("cookie"))).toBe(0);
    // Two pairs announced, the second cut short.
    const bad = encodePairs(["cookie", "b=2", "accept", "text/html"]);
    expect(req.load(bad, bad.byteLength - 6)).toBe(false);
    expect(req.find(new HeaderName("cookie"))).toBe(-1);
    expect(req.find(new HeaderName("user-agent"))).toBe(-1);
  });

  it("a request with more headers than the index holds is scanned, with the same answers", () => {
    const kv: string[] = [];
    for (let i = 0; i < 100; i++) {
      kv.push("x-h-" + (i % 70).toString());
      kv.push(i.toString());
    }
    const req = RequestSnapshot.of(kv);
    for (let i = 0; i < 75; i++) {
      const name = "x-h-" + i.toString();
      expect(req.find(new HeaderName(name))).toBe(firstOf(kv, name), name);
    }
  });
});
