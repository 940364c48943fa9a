import { JsonKind, JsonParser, isValidJson, lookupJsonPath } from "../common/lib/json";
import { ConfigErrors, readConfigRoot } from "../common/lib/config";

describe("JsonParser", () => {
  it("parses nested documents", () => {
    const v = new JsonParser('{"a": [1, -2.5e1, true, null, "x\\n\\u0041"], "b": {"c": ""}}').parseDocument();
    expect(v).not.toBeNull();
    const a = v!.get("a")!;
    expect(a.kind).toBe(JsonKind.Array);
    expect(a.items[0].num).toBe(1);
    expect(a.items[1].num).toBe(-25);
    expect(a.items[2].bool).toBe(true);
    expect(a.items[3].kind).toBe(JsonKind.Null);
    expect(a.items[4].str).toBe("x\nA");
    expect(v!.get("b")!.get("c")!.str).toBe("");
  });

  it("rejects malformed input with a position", () => {
    const bad = ['{"a":}', "[1,]", '{"a" 1}', "01", '"abc', "{} x", "tru", "", "[" ];
    for (let i = 0; i < bad.length; i++) {
      const p = new JsonParser(bad[i]);
      expect(p.parseDocument()).toBeNull(bad[i]);
      expect(p.error.length).toBeGreaterThan(0);
    }
  });

  it("refuses nesting deeper than 64", () => {
    expect(new JsonParser("[".repeat(100) + "]".repeat(100)).parseDocument()).toBeNull();
  });

  it("validates without building", () => {
    expect(isValidJson('{"a":[1,{"b":"c"}]}')).toBe(true);
    expect(isValidJson('{"a":[1,{"b":"c"}]')).toBe(false);
    expect(isValidJson("not json")).toBe(false);
  });
});

const doc = '{"user": {"id": 42, "tier": "gold", "tags": ["a", "b"]}, "flag": false, "skip": {"x": [1, {"y": "}"}]}}';

describe("lookupJsonPath", () => {
  it("finds scalars by dotted path", () => {
    expect(lookupJsonPath(doc, ["user", "tier"])).toBe("gold");
    expect(lookupJsonPath(doc, ["user", "id"])).toBe("42");
    expect(lookupJsonPath(doc, ["flag"])).toBe("false");
    expect(lookupJsonPath(doc, ["user", "tags", "1"])).toBe("b");
  });
  it("answers null for missing paths, containers and non-JSON", () => {
    expect(lookupJsonPath(doc, ["user", "name"])).toBeNull();
    expect(lookupJsonPath(doc, ["user"])).toBeNull();
    expect(lookupJsonPath(doc, ["user", "tags", "5"])).toBeNull();
    expect(lookupJsonPath("plain text", ["user"])).toBeNull();
    expect(lookupJsonPath("[1,2]", ["a"])).toBeNull();
  });
});

describe("config reader", () => {
  it("names the bad field and flags unknown fields", () => {
    const errors = new ConfigErrors();
    const r = readConfigRoot('{"n": "x", "s": 1, "extra": true}', errors)!;
    r.int("n", 0, 0, 10);
    r.str("s", "");
    r.done();
    expect(errors.list.length).toBe(3);
    expect(errors.list[0]).toBe("n: expected an integer");
    expect(errors.list[1]).toBe("s: expected a string, got number");
    expect(errors.list[2]).toBe("extra: unknown field");
  });
  it("treats an empty document as {}", () => {
    const errors = new ConfigErrors();
    expect(readConfigRoot("  ", errors)).not.toBeNull();
    expect(errors.ok).toBe(true);
  });
  it("rejects a non-object document", () => {
    const errors = new ConfigErrors();
    expect(readConfigRoot("[1]", errors)).toBeNull();
    expect(errors.list[0]).toBe("config: expected a JSON object, got array");
  });
  it("summarises many errors in one line", () => {
    const errors = new ConfigErrors();
    for (let i = 0; i < 8; i++) errors.add("f" + i.toString(), "bad");
    expect(errors.summary()).toBe("f0: bad; f1: bad; f2: bad; f3: bad; f4: bad; and 3 more");
  });
});

describe("config reader numbers", () => {
  it("reports huge and fractional numbers without trapping", () => {
    const errors = new ConfigErrors();
    const r = readConfigRoot('{"a": 1e300, "b": -1e300, "c": 2.5, "d": 1e300}', errors)!;
    r.int("a", 0, 0, 10);
    r.int("b", 0, 0, 10);
    r.int("c", 0, 0, 10);
    r.num("d", 0, 0, 100);
    expect(errors.list.length).toBe(4);
    expect(errors.list[3].includes("d: must be between 0 and 100")).toBe(true, errors.list[3]);
  });
});

import { StringSink } from "../common/lib/json";

class Collect extends StringSink {
  got: string[] = [];
  add(index: i32, value: string): void { this.got.push(index.toString() + "=" + value); }
}

describe("long string arrays", () => {
  it("are kept as spans and read back element by element, escapes included", () => {
    const parts = new Array<string>(300);
    for (let i = 0; i < 300; i++) parts[i] = '"v' + i.toString() + '"';
    parts[7] = '"a\\"b\\u0041"';
    const v = new JsonParser('{"list": [' + parts.join(", ") + "]}").parseDocument()!;
    const list = v.get("list")!;
    expect(list.lazy).toBe(true);
    expect(list.items.length).toBe(0);
    const c = new Collect();
    list.forEachString(c);
    expect(c.got.length).toBe(300);
    expect(c.got[7]).toBe('7=a"bA');
    expect(c.got[299]).toBe("299=v299");
  });

  it("still reject a malformed long array, and build short or mixed ones", () => {
    const parts = new Array<string>(300);
    for (let i = 0; i < 300; i++) parts[i] = '"v"';
    expect(new JsonParser("[" + parts.join(",") + ",]").parseDocument()).toBeNull();
    expect(new JsonParser("[" + parts.join(",")).parseDocument()).toBeNull();
    const mixed = new JsonParser("[" + parts.join(",") + ", 1]").parseDocument()!;
    expect(mixed.lazy).toBe(false);
    expect(mixed.items.length).toBe(301);
    const errors = new ConfigErrors();
    const r = readConfigRoot('{"a": ["x", 2, "y"]}', errors)!;
    expect(r.strList("a").length).toBe(2);
    expect(errors.list[0]).toBe("a[1]: expected a string, got number");
  });
});

describe("long strings", () => {
  it("without escapes are kept as spans of the document and read in place or copied out", () => {
    const long = "A".repeat(5000);
    const v = new JsonParser('{"k": "' + long + '", "short": "s"}').parseDocument()!;
    const k = v.get("k")!;
    expect(k.lazy).toBe(true);
    expect(k.str).toBe(long);
    expect(k.spanEnd - k.spanStart).toBe(5000);
    expect(k.spanSource.substring(k.spanStart, k.spanEnd)).toBe(long);
    expect(v.get("short")!.lazy).toBe(false);
    expect(v.get("short")!.spanSource.substring(v.get("short")!.spanStart, v.get("short")!.spanEnd)).toBe("s");
  });

  it("with escapes are built, and a control character is still refused", () => {
    const long = "B".repeat(5000);
    const v = new JsonParser('["' + long + '\\n"]').parseDocument()!;
    expect(v.items[0].lazy).toBe(false);
    expect(v.items[0].str).toBe(long + "\n");
    expect(new JsonParser('["' + long + '\n"]').parseDocument()).toBeNull();
    expect(new JsonParser('["' + long).parseDocument()).toBeNull();
  });
});
