// The crawler stage's known-bot matcher: isbot's pattern list compiled at build time into a linear-time
// program (scripts/lib/regex_program.ts, assembly/common/regex_vm.ts). It must answer exactly as isbot does.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { isbot, list } from "isbot";
import UserAgent from "user-agents";
import { parse } from "yaml";
import { loadBindings } from "../runtime/bindings.ts";
import { ROOT } from "../runtime/paths.ts";
import { compilePatterns } from "../scripts/lib/regex_program.ts";
import { KNOWN_BOTS_FILE, renderKnownBots } from "../scripts/known-bots.ts";

const fixtures = (name: string) => Object.values(parse(readFileSync(join(ROOT, "eval", "data", name), "utf8")) as Record<string, string[]>).flat();

describe("known bots: isbot's patterns, compiled", () => {
  test("the committed program is generated from the installed isbot, every pattern supported", () => {
    assert.equal(readFileSync(KNOWN_BOTS_FILE, "utf8"), renderKnownBots(), "run `npx tsx scripts/known-bots.ts`");
    assert.equal(compilePatterns(list).patterns.length, list.length);
  });

  test("answers as isbot on its crawler and browser fixtures and on user-agents samples", () => {
    const b = loadBindings();
    const crawlers = fixtures("isbot-crawlers.yml");
    const browsers = fixtures("isbot-browsers.yml");
    const samples = Array.from({ length: 1500 }, () => new UserAgent().toString());
    assert.ok(crawlers.length > 600 && browsers.length > 500);
    for (const ua of [...crawlers, ...browsers, ...samples]) assert.equal(b.crawlerKnownBot(ua), isbot(ua), ua);
    assert.equal(crawlers.filter((ua) => b.crawlerKnownBot(ua)).length, crawlers.length);
  });

  test("lookarounds, word boundaries and anchors as in JavaScript: Cubot, CamScanner, libhttp are not bots", () => {
    const b = loadBindings();
    const cases = [
      "Mozilla/5.0 (Linux; Android 10; Cubot X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36",
      "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 CamScanner/6.50",
      "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
      "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36 GoogleApp/1",
      "curl/8.4.0",
      "x".repeat(60),
      "",
    ];
    for (const ua of cases) assert.equal(b.crawlerKnownBot(ua), isbot(ua), ua);
  });

  test("hostile input is read in linear time, up to 2048 bytes, and answered", () => {
    const b = loadBindings();
    // Inputs that make backtracking engines work hard on patterns like ^[\w .-]+(/\d+(\.\d+)*)?$.
    for (const ua of ["a".repeat(5000), "a/1.0;".repeat(400), `${"1.".repeat(3000)}!`, `${"ab ".repeat(700)}\u00e9`]) {
      assert.equal(typeof b.crawlerKnownBot(ua), "boolean");
    }
  });

  test("a pattern it cannot run in linear time is refused, naming it", () => {
    assert.throws(() => compilePatterns(["(a)\\1"]), /back-reference.*\(a\)\\1/);
    assert.throws(() => compilePatterns(["x(?!\\d)"]), /lookaround over more than literal text/);
  });
});
