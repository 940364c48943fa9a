// History by meaning (control/history.ts, control/store.ts): a rule added, removed or moved reads as
// that, list items matched by name or value; versions are stored as deltas with snapshots, so a
// one-CIDR change to a 100,000-CIDR list costs about its own size on disk; every version reads back
// exactly; the versions API pages and leaves changes out unless asked.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import fc from "fast-check";
import { applyDelta, changes, delta } from "../control/history.ts";
import { buildServer } from "../control/server.ts";
import { Store } from "../control/store.ts";

const rule = (name: string, target = "canary") => ({ name, target, match: { headers: [{ name: "x-group", exact: name }] } });
const cidrs = (n: number) => Array.from({ length: n }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/32`);

describe("changes by meaning", () => {
  test("a rule inserted at the top is one addition, not a rename of every rule below it", () => {
    const before = { rules: [rule("a"), rule("b"), rule("c")] };
    const after = { rules: [rule("new", "stable"), rule("a"), rule("b"), rule("c")] };
    assert.deepEqual(changes(delta(before, after), before, after).list, [{ kind: "added", path: "rules", item: "new", after: rule("new", "stable") }]);
  });

  test("a removed rule, a moved rule and a changed field each read as that, naming the rule", () => {
    const before = { default_target: "stable", rules: [rule("a"), rule("b"), rule("c"), rule("d")] };
    const after = { default_target: "stable", rules: [rule("c"), rule("a"), rule("d", "stable")] };
    const list = changes(delta(before, after), before, after).list;
    assert.deepEqual(
      list.map((c) => [c.kind, c.item, c.path]),
      [
        ["changed", "d", "rules[2].target"],
        ["removed", "b", "rules"],
        ["moved", "c", "rules"],
      ],
    );
    assert.deepEqual(
      list.find((c) => c.kind === "moved"),
      { kind: "moved", path: "rules", item: "c", from: 2, to: 0 },
    );
  });

  test("CIDRs added and removed in a 100,000-entry list, at both ends and the middle, in well under a second", () => {
    const list = cidrs(100_000);
    const next = ["1.2.3.4/32", ...list.slice(0, 50_000), "9.9.9.9/32", ...list.slice(50_001, 99_999)];
    const t = performance.now();
    const d = delta({ deny: list }, { deny: next });
    const ms = performance.now() - t;
    assert.ok(ms < 2000, `${ms} ms`); // jsondiffpatch's LCS alone takes tens of seconds here
    const got = changes(d, { deny: list }, { deny: next }).list.map((c) => [c.kind, c.before ?? c.after]);
    assert.deepEqual(got.sort(), [
      ["added", "1.2.3.4/32"],
      ["added", "9.9.9.9/32"],
      ["removed", list[50_000]],
      ["removed", list[99_999]],
    ]);
    assert.deepEqual(applyDelta({ deny: list }, d), { deny: next });
  });

  test("any two documents: the delta turns one into the other (property test)", () => {
    const item = fc.oneof(fc.string({ maxLength: 4 }), fc.record({ name: fc.string({ maxLength: 3 }), target: fc.constantFrom("a", "b") }));
    const doc = fc.record({
      rules: fc.array(item, { maxLength: 12 }),
      deny: fc.array(fc.string({ maxLength: 3 }), { maxLength: 12 }),
      x: fc.option(fc.integer()),
    });
    fc.assert(
      fc.property(doc, doc, (x, y) => {
        // As JSON documents are: plain objects.
        const [a, b] = [JSON.parse(JSON.stringify(x)), JSON.parse(JSON.stringify(y))];
        assert.deepEqual(applyDelta(a, delta(a, b)), b);
      }),
      { numRuns: 300 },
    );
  });
});

describe("versions stored as deltas", () => {
  test("a one-CIDR change to a 100,000-CIDR list costs about its own size on disk; every version reads back exactly", () => {
    const dir = mkdtempSync(join(tmpdir(), "graywall-history-"));
    const store = new Store(dir, ["ip_list"]);
    let doc = { allow: [] as string[], deny: cidrs(100_000) };
    store.commit("ip_list", doc, "t", 0);
    const sizes = () => readdirSync(join(dir, "ip_list")).map((f) => [f, statSync(join(dir, "ip_list", f)).size] as const);
    const first = sizes()[0][1];
    const docs = [doc];
    for (let i = 1; i <= 20; i++) {
      doc = { ...doc, deny: [`192.0.2.${i}/32`, ...doc.deny] };
      docs.push(doc);
      store.commit("ip_list", doc, "t", i);
    }
    const deltas = sizes().filter(([f]) => f.endsWith(".delta.json"));
    assert.equal(deltas.length, 20);
    for (const [f, size] of deltas) assert.ok(size < 1000, `${f}: ${size} bytes for one CIDR (the document is ${first} bytes)`);
    const v = store.versions("ip_list", { limit: 1 })[0];
    assert.deepEqual(v.changes, [{ kind: "added", path: "deny", after: "192.0.2.20/32" }]);
    // A fresh store (a restart) reads every version back exactly.
    const again = new Store(dir, ["ip_list"]);
    for (let i = 0; i < docs.length; i++) assert.deepEqual(again.version("ip_list", i + 1)?.doc, docs[i], `version ${i + 1}`);
    assert.deepEqual(again.current("ip_list")?.doc, doc);
  });

  test("snapshots bound the deltas; retention removes only what no retained version needs", () => {
    const dir = mkdtempSync(join(tmpdir(), "graywall-history-"));
    const store = new Store(dir, ["gray_router"], 30);
    const docs: unknown[] = [];
    for (let i = 1; i <= 250; i++) {
      const doc = { rules: [rule(`r${i % 7}`, i % 2 ? "canary" : "stable"), rule("fixed")], default_target: "stable", n: i };
      docs.push(doc);
      store.commit("gray_router", doc, "t", i - 1);
    }
    const files = readdirSync(join(dir, "gray_router"));
    assert.ok(files.filter((f) => /^\d+\.json$/.test(f)).length >= 1);
    assert.ok(files.length <= 30 + 100, `${files.length} files for 30 retained versions`);
    const again = new Store(dir, ["gray_router"], 30);
    assert.equal(again.version("gray_router", 220), undefined, "beyond retention");
    for (let v = 221; v <= 250; v++) assert.deepEqual(again.version("gray_router", v)?.doc, docs[v - 1], `version ${v}`);
  });

  test("GET versions pages newest first and leaves changes out unless asked", async () => {
    const dir = mkdtempSync(join(tmpdir(), "graywall-history-"));
    const app = buildServer({ dataDir: join(dir, "data"), ecdsDir: join(dir, "ecds"), token: "t" });
    try {
      const put = async (doc: unknown) => {
        const cur = (await app.inject({ url: "/api/filters/ip_list" })).json();
        const r = await app.inject({
          method: "PUT",
          url: "/api/filters/ip_list",
          headers: { authorization: "Bearer t", "if-match": `"${cur.version}"` },
          payload: { doc },
        });
        assert.equal(r.statusCode, 200, r.body);
        return r.json();
      };
      for (let i = 1; i <= 5; i++) await put({ allow: [], deny: Array.from({ length: i }, (_, k) => `192.0.2.${k}/32`) });
      const page = await app.inject({ url: "/api/filters/ip_list/versions?limit=2" });
      assert.deepEqual(
        page.json().map((v: { version: number }) => v.version),
        [6, 5],
      );
      assert.equal(page.json()[0].changes, undefined, "no changes unless asked");
      assert.equal(page.json()[0].changes_total, 1);
      assert.equal(page.headers["x-next-before"], "5");
      const next = await app.inject({ url: "/api/filters/ip_list/versions?limit=2&before=5&changes=true" });
      assert.deepEqual(
        next.json().map((v: { version: number }) => v.version),
        [4, 3],
      );
      assert.deepEqual(next.json()[0].changes, [{ kind: "added", path: "deny", after: "192.0.2.2/32" }]);
      assert.equal((await app.inject({ url: "/api/filters/ip_list/versions?limit=0" })).statusCode, 400);
    } finally {
      await app.close();
    }
  });
});
