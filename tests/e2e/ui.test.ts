// The web UI in a real browser (Debian's chromium via playwright-core) against the running service
// and real Envoy: edit gray rules with forms, preview, publish, see Envoy route, roll back, see traffic.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe } from "node:test";
import { chromium, type Browser, type Page } from "playwright-core";
import { setupBrowser } from "../../scripts/setup-tools.ts";
import { BROWSER_PAGE_VIEW, e2e, eventually, rawRequest, request, startControlRig, stopControlRig, versionOf, type ControlRig, type Envoy } from "./harness.ts";
import { signRequest } from "../../clients/sign.ts";

const TOKEN = "ui-test-token";

describe("web UI", () => {
  let rig: ControlRig;
  let envoy: Envoy;
  let browser: Browser;
  let page: Page;
  let url: string;
  const dialogs: string[] = [];
  /** Uncaught errors in the page's scripts (its ES modules, one per tab). */
  const pageErrors: string[] = [];

  before(async () => {
    rig = await startControlRig(TOKEN, { accessLogFile: true });
    envoy = rig.envoy;
    url = `${rig.controlUrl}/`;
    browser = await chromium.launch({ executablePath: setupBrowser(), args: ["--no-sandbox"] });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    // Publishing, deleting and restoring ask first; the tests read each question and accept it.
    page.on("pageerror", (e) => pageErrors.push(e.message));
    page.on("dialog", (d) => {
      dialogs.push(d.message());
      void d.accept();
    });
    await page.goto(url);
  });

  after(async () => {
    await browser?.close();
    await stopControlRig(rig);
  });

  const message = () => page.locator("#message").textContent();

  e2e("shows the current rules as forms, and refuses to publish before sign-in", async () => {
    await page.locator(".rule .r-name").first().waitFor();
    assert.equal(await page.locator(".rule .r-name").first().inputValue(), "beta-header");
    assert.equal(await page.locator(".rule .c-name").first().inputValue(), "x-user-group");
    await page.click("#save-rules");
    await page.waitForFunction(() => document.querySelector("#message")?.textContent?.includes("Sign in"));
  });

  e2e("a wrong token is refused at sign-in; the message clears on a tab switch", async () => {
    await page.fill("#token", "not-the-token");
    await page.click("#login button");
    await page.waitForFunction(() => document.querySelector("#message")?.textContent?.includes("not valid"));
    assert.equal(await page.locator("#whoami").textContent(), "read-only until you sign in");
    await page.click('nav button[data-tab="history"]');
    assert.equal(await message(), "");
    await page.click('nav button[data-tab="rules"]');
    assert.equal((await fetch(`${url}favicon.ico`)).status, 200);
  });

  e2e("adds a percentage rule with forms, previews it, publishes it, and Envoy routes by it", async () => {
    await page.fill("#token", TOKEN);
    await page.click("#login button");
    await page.waitForFunction(() => document.querySelector("#message")?.textContent === "Signed in.");
    await page.click("#add-rule");
    const rule = page.locator(".rule").last();
    await rule.locator(".r-name").fill("all-users");
    // Targets are chosen from those the gateway routes.
    assert.deepEqual(await rule.locator(".r-target option").allTextContents(), ["canary", "stable"]);
    await rule.locator(".r-target").selectOption("canary");
    const cond = rule.locator(".condition").first();
    await cond.locator(".c-kind").selectOption("percentage");
    // The bar shows the share the number says (10%) before any edit.
    assert.equal(await cond.locator(".split-bar").evaluate((e) => (e as HTMLElement).style.width), "10%");
    const [bar, track] = [await cond.locator(".split-bar").boundingBox(), await cond.locator(".split").boundingBox()];
    assert.ok(bar && track && Math.abs(bar.width / track.width - 0.1) < 0.02, `bar ${bar?.width} of ${track?.width}`);
    // The mix (salt) is folded away under "Advanced", with what it does in words.
    assert.equal(await cond.locator("details.advanced").evaluate((e) => (e as HTMLDetailsElement).open), false);
    assert.match((await cond.locator("details.advanced").textContent()) ?? "", /renaming the rule keeps the same users/);
    await cond.locator(".c-percent-num").fill("100");
    await cond.locator(".c-name").fill("x-user-id");
    assert.equal(await cond.locator(".split-bar").evaluate((e) => (e as HTMLElement).style.width), "100%");

    await page.fill("#pv-headers", "x-user-id: u-1");
    await page.click("#preview");
    await page.waitForFunction(() => document.querySelector("#pv-result")?.textContent?.includes("canary"));
    assert.equal(await page.locator("#pv-result").textContent(), '→ canary (rule "all-users")');

    await page.click("#save-rules");
    await page.waitForFunction(() => document.querySelector("#message")?.textContent?.includes("Published version 2"));
    assert.match(dialogs[dialogs.length - 1], /about 100% of users \(by header x-user-id\) will go to canary \(rule "all-users"\)/);
    assert.match(dialogs[dialogs.length - 1], /everyone else goes to stable/);
    await eventually(async () => (await versionOf(envoy.url("/"), { headers: { "x-user-id": "u-1" } })) === "canary", 3000, "Envoy routes by the new rule");
    // The salt was fixed when the rule was saved, and the form shows it, editable.
    assert.equal(await page.locator(".rule").last().locator(".c-salt").inputValue(), "all-users");
    await page.screenshot({ path: join(tmpdir(), "graywall-ui-rules.png"), fullPage: true });
  });

  e2e("a field error is shown on the rule, in words naming it, and nothing is published", async () => {
    const rule = page.locator(".rule").last();
    await rule.locator(".r-add-condition").click();
    const cond = rule.locator(".condition").last();
    await cond.locator(".c-kind").selectOption("client_ip");
    await cond.locator(".c-value").fill("300.0.0.1/8");
    await page.click("#save-rules");
    await page.waitForFunction(() => document.querySelector("#message")?.className === "error");
    assert.match((await message()) ?? "", /^Rule 2, "all-users" \(client IP 1\): invalid IP or CIDR '300\.0\.0\.1\/8'/);
    assert.ok(await rule.evaluate((e) => e.classList.contains("invalid")));
    assert.equal((await (await fetch(`${url}api/filters/gray_router`)).json()).version, 2);
    await page.click("#reload-rules");
  });

  e2e("history shows who changed what, and restores an earlier version", async () => {
    await page.click('nav button[data-tab="history"]');
    await page.locator("#history tbody tr").nth(1).waitFor();
    const first = await page.locator("#history tbody tr").first().textContent();
    assert.match(first ?? "", /^2.*web UI.*added rule "all-users" \(to canary\)/);
    // The first version is just that, not its JSON.
    assert.match((await page.locator("#history tbody tr").last().textContent()) ?? "", /^1.*first version/);
    await page.click('button:has-text("Restore version 1")');
    await page.waitForFunction(() => document.querySelector("#message")?.textContent?.includes("Restored version 1 as version 3"));
    assert.match(dialogs[dialogs.length - 1], /Restore version 1 of gray_router\? It becomes version 3/);
    await eventually(async () => (await versionOf(envoy.url("/"), { headers: { "x-user-id": "u-1" } })) === "stable", 3000, "rolled back in Envoy");
  });

  e2e("the Traffic view: the hour in words, charts with time axes, each stage, and a refusal's reason and path within 5 s", async () => {
    await page.click('nav button[data-tab="traffic"]');
    await page.waitForFunction(() => /took [\d,]+ requests/.test(document.querySelector("#traffic-summary")?.textContent ?? ""));
    // Time labels under each chart (hours and minutes across the hour), once the chart has samples: the
    // page redraws every 2 s, and a series (the targets' shares) can need one more scrape than the summary.
    for (const chart of ["#chart-traffic", "#chart-crawler", "#chart-targets"]) {
      await page.waitForFunction((c) => document.querySelectorAll(`${c} text.tick`).length >= 4, chart, { timeout: 10_000 });
      const ticks = await page.locator(`${chart} text.tick`).allTextContents();
      assert.ok(ticks.length >= 4 && ticks.every((t) => /^\d\d:\d\d/.test(t)), `${chart}: ${ticks.join(" ")}`);
    }
    assert.equal(await page.locator("#traffic-stages tbody tr").count(), 9);
    assert.match((await page.locator("#traffic-stages tbody").textContent()) ?? "", /Crawler defence.*challenged/);
    assert.match((await page.locator("#legend-targets").textContent()) ?? "", /canary/);
    // A honeypot hit (from an address of its own: the trap marks its address, and the later tests
    // browse from 127.0.0.1): its reason and path are on the page within 5 s (counters read every 2 s,
    // the page every 2 s).
    assert.equal((await rawRequest(envoy.url("/.env"), { headers: BROWSER_PAGE_VIEW, localAddress: "127.0.0.3" })).status, 403);
    await page.waitForFunction(
      () =>
        /blocked: .*honeypot/.test(document.querySelector("#traffic-paths tbody")?.textContent ?? "") &&
        /signal: honeypot/.test(document.querySelector("#traffic-reasons tbody")?.textContent ?? ""),
      undefined,
      { timeout: 5000 },
    );
    assert.match((await page.locator("#traffic-paths tbody").textContent()) ?? "", /\/\.env/);
    await page.screenshot({ path: join(tmpdir(), "graywall-ui-traffic.png"), fullPage: true });
  });

  e2e("a change made elsewhere meanwhile: 409, and the message names the button that loads it", async () => {
    await page.click('nav button[data-tab="rules"]');
    const current = (await (await fetch(`${url}api/filters/gray_router`)).json()).version;
    const doc = { rules: [{ name: "elsewhere", target: "canary", match: { headers: [{ name: "x-elsewhere", exact: "1" }] } }] };
    const r = await fetch(`${url}api/filters/gray_router`, {
      method: "PUT",
      headers: { authorization: `Bearer ${TOKEN}`, "if-match": `"${current}"`, "content-type": "application/json" },
      body: JSON.stringify({ doc }),
    });
    assert.equal(r.status, 200);
    await page.click("#save-rules");
    await page.waitForFunction(() => document.querySelector("#message")?.className === "error");
    assert.match((await message()) ?? "", /stale.*Press "Discard changes" to load the newer rules/);
    await page.click("#reload-rules");
    await page.waitForFunction(() => (document.querySelector(".rule .r-name") as HTMLInputElement | null)?.value === "elsewhere");
  });

  e2e("the JSON tab says why a document is refused", async () => {
    await page.click('nav button[data-tab="filters"]');
    await page.waitForFunction(() => (document.querySelector("#raw-doc") as HTMLTextAreaElement | null)?.value.startsWith("{"));
    await page.locator("#raw-doc").fill("[]");
    await page.click("#raw-save");
    await page.waitForFunction(() => document.querySelector("#message")?.className === "error");
    assert.match((await message()) ?? "", /Bad Request: body\/doc must be object/);
    // Gray rules written as JSON: an unrouted target is named in words, with the rule and what is routed.
    await page.locator("#raw-filter").selectOption("gray_router");
    await page.waitForFunction(() => (document.querySelector("#raw-doc") as HTMLTextAreaElement | null)?.value.includes('"rules"'));
    await page.locator("#raw-doc").fill(JSON.stringify({ rules: [{ name: "testers", target: "canry", match: { headers: [{ name: "x-t", exact: "1" }] } }] }));
    await page.click("#raw-validate");
    await page.waitForFunction(() => /no route serves/.test(document.querySelector("#message")?.textContent ?? ""));
    assert.equal(await message(), `Rule 1, "testers": no route serves 'canry'; this gateway serves canary and stable`);
    await page.locator("#raw-filter").selectOption("ip_list");
  });

  e2e("a document that could lock people out is shown with a warning, and published only after a plain-words confirmation", async () => {
    await page.selectOption("#raw-filter", "ip_list");
    await page.waitForFunction(() => (document.querySelector("#raw-doc") as HTMLTextAreaElement | null)?.value.includes("{"));
    await page.locator("#raw-doc").fill(JSON.stringify({ deny: ["0.0.0.0/0"], paths: ["/admin"] }));
    await page.click("#raw-validate");
    await page.waitForFunction(() => /Warning/.test(document.querySelector("#message")?.textContent ?? ""));
    assert.match((await message()) ?? "", /Warning: this denies every IPv4 client on the listed paths \(deny\)/);
    const asked = dialogs.length;
    await page.click("#raw-save");
    await page.waitForFunction(() => /Published version/.test(document.querySelector("#message")?.textContent ?? ""));
    assert.equal(dialogs.length, asked + 1);
    assert.match(dialogs[asked], /could lock people out:\n- denies every IPv4 client on the listed paths \(deny\)\n\nPublish it anyway\?/);
    // The real gateway now refuses /admin to everyone, and nothing else.
    await eventually(async () => (await request(envoy.url("/admin"))).status === 403, 5000, "the deny list in force");
    assert.equal((await request(envoy.url("/"))).status, 200);
  });

  e2e(
    "the crawler tab says in words what the defence does; rotating a secret publishes a version the gateway gets, and no secret is ever on the page",
    async () => {
      await page.click('nav button[data-tab="crawler"]');
      await page.waitForFunction(() => (document.querySelector("#crawler-policy")?.children.length ?? 0) >= 3);
      const policy = (await page.locator("#crawler-policy").textContent()) ?? "";
      assert.match(policy, /proof-of-work page/);
      assert.match(policy, /signed id cookie/);
      assert.match(policy, /\/\.env/);
      assert.match(policy, /Gateways add up their counts through the ratelimit service \(Envoy cluster graywall_ratelimit_http\)/);
      const before = Number(await page.locator("#crawler-version").textContent());
      await page.click('#crawler-secrets button[data-section="challenge"]');
      await page.waitForFunction(() => /Rotated: version/.test(document.querySelector("#message")?.textContent ?? ""));
      await page.waitForFunction((v) => Number(document.querySelector("#crawler-version")?.textContent) === v + 1, before);
      assert.match((await page.locator("#crawler-secrets tbody tr").first().textContent()) ?? "", /the one before it is still accepted/);
      const values = Object.values(JSON.parse(readFileSync(join(rig.controlDir, "data", "secrets.json"), "utf8")).values as Record<string, string>);
      assert.equal(values.length, 3, "challenge, its previous, client id");
      const ecds = readdirSync(join(rig.controlDir, "ecds"))
        .map((f) => readFileSync(join(rig.controlDir, "ecds", f), "utf8"))
        .join("\n");
      const html = await page.content();
      for (const v of values) {
        assert.ok(ecds.includes(v), "the gateway's configuration carries it");
        assert.ok(!html.includes(v), "the page never does");
      }
    },
  );

  e2e(
    "the under-attack switch: on, every page view without a clearance at the real gateway is challenged while a feed still passes; off, it is served again",
    async () => {
      const browserHeaders = BROWSER_PAGE_VIEW;
      assert.equal((await request(envoy.url("/news/1"), { headers: browserHeaders })).status, 200);
      await page.click('nav button[data-tab="crawler"]');
      await page.waitForFunction(() => /^Off\./.test(document.querySelector("#attack-state")?.textContent ?? ""));
      await page.fill("#attack-minutes", "5");
      await page.click("#attack-on");
      await page.waitForFunction(() => /^On until/.test(document.querySelector("#attack-state")?.textContent ?? ""));
      await eventually(async () => (await request(envoy.url("/news/2"), { headers: browserHeaders })).status === 429, 5000, "page views challenged");
      const feed = await request(envoy.url("/feed.xml"), { headers: { ...browserHeaders, accept: "application/rss+xml" } });
      assert.equal(feed.status, 200, "a feed reader still gets the feed");
      await page.click("#attack-off");
      await page.waitForFunction(() => /^Off\./.test(document.querySelector("#attack-state")?.textContent ?? ""));
      await eventually(async () => (await request(envoy.url("/news/3"), { headers: browserHeaders })).status === 200, 5000, "served again");
    },
  );

  e2e("consumers: a key made in the UI is shown once and identifies its consumer at the real gateway; revoked, it is refused", async () => {
    await page.click('nav button[data-tab="consumers"]');
    await page.waitForFunction(() => /every request is anonymous/.test(document.querySelector("#access-rules")?.textContent ?? ""));
    await page.fill("#consumer-name", "merchant-ui");
    await page.click("#new-consumer button");
    await page.waitForFunction(() => /^gwk_/.test(document.querySelector("#new-key-value")?.textContent ?? ""));
    const key = (await page.locator("#new-key-value").textContent())!;
    const fp = /fingerprint ([0-9a-f]{16})/.exec((await message()) ?? "")![1];
    await page.waitForFunction((f) => document.querySelector("#consumers")?.textContent?.includes(f), fp);
    await eventually(
      async () => (await request(envoy.url("/orders"), { headers: { "x-api-key": key } })).json?.headers["x-graywall-consumer"] === "merchant-ui",
      10000,
      "the gateway names the consumer",
    );
    // Shown once: another visit to the tab does not show it, and neither does the page's document.
    await page.click('nav button[data-tab="history"]');
    await page.click('nav button[data-tab="consumers"]');
    await page.waitForFunction(() => document.querySelector("#new-key")?.hasAttribute("hidden"));
    assert.ok(!(await page.content()).includes(key), "the key is gone from the page");
    // A signing key for the same consumer: its secret shown once, then signed requests name the consumer.
    await page.click("button.make-signing");
    await page.waitForFunction(() => /^gws_/.test(document.querySelector("#new-key-value")?.textContent ?? ""));
    const secret = (await page.locator("#new-key-value").textContent())!;
    const keyId = /id (\S+):/.exec((await message()) ?? "")![1];
    const signed = () => {
      const url = envoy.url("/orders");
      return request(url, { headers: signRequest({ method: "GET", url, keyId, secret }) });
    };
    await eventually(async () => (await signed()).json?.headers["x-graywall-consumer"] === "merchant-ui", 10000, "a signed request names the consumer");
    await page.click('nav button[data-tab="history"]');
    await page.click('nav button[data-tab="consumers"]');
    await page.waitForFunction(() => document.querySelector("#new-key")?.hasAttribute("hidden"));
    assert.ok(!(await page.content()).includes(secret), "the secret is not shown again");
    await page.click(`button.revoke-signing:has-text("${keyId}")`);
    await page.waitForFunction(() => /signing key .* revoked/.test(document.querySelector("#message")?.textContent ?? ""));
    await eventually(async () => (await signed()).json?.headers["x-graywall-consumer"] === undefined, 10000, "the revoked signing key names no one");
    await page.click(`button.revoke:has-text("${fp}")`);
    await page.waitForFunction(() => /key .* revoked/.test(document.querySelector("#message")?.textContent ?? ""));
    await eventually(
      async () => (await request(envoy.url("/orders"), { headers: { "x-api-key": key } })).json?.headers["x-graywall-consumer"] === undefined,
      10000,
      "the revoked key names no one",
    );
  });

  e2e("consumers: a key replaced in the UI keeps working through its grace period beside the new one; the token signing key rotates", async () => {
    await page.click('nav button[data-tab="consumers"]');
    await page.fill("#consumer-name", "merchant-rotating");
    await page.click("#new-consumer button");
    await page.waitForFunction(() => /^gwk_/.test(document.querySelector("#new-key-value")?.textContent ?? ""));
    const oldKey = (await page.locator("#new-key-value").textContent())!;
    const oldFp = /fingerprint ([0-9a-f]{16})/.exec((await message()) ?? "")![1];
    await page.locator("#grace").selectOption("3600");
    await page.click(`button.rotate-key:has-text("${oldFp}")`);
    await page.waitForFunction((f) => document.querySelector("#message")?.textContent?.includes(`the old one, ${f}, keeps working until`), oldFp);
    const newKey = (await page.locator("#new-key-value").textContent())!;
    assert.match(newKey, /^gwk_/);
    assert.notEqual(newKey, oldKey);
    // The list says the old key is on its way out, in words.
    await page.waitForFunction(
      (f) => new RegExp(`${f} \\(replaced: works (60 more minutes|1 more hour)\\)`).test(document.querySelector("#consumers")?.textContent ?? ""),
      oldFp,
    );
    const who = async (k: string) => (await request(envoy.url("/orders"), { headers: { "x-api-key": k } })).json?.headers["x-graywall-consumer"];
    await eventually(async () => (await who(newKey)) === "merchant-rotating", 10000, "the new key names the consumer");
    assert.equal(await who(oldKey), "merchant-rotating", "the replaced key works through its grace period");
    // Token signing keys: listed from the JWKS; a new one is published at once.
    await page.waitForFunction(() => (document.querySelector("#token-keys tbody")?.children.length ?? 0) >= 1);
    const before = await page.locator("#token-keys tbody tr").count();
    await page.click("#rotate-token-key");
    await page.waitForFunction(() => /A new token signing key, \S+: published now, signing from/.test(document.querySelector("#message")?.textContent ?? ""));
    await page.waitForFunction((n) => (document.querySelector("#token-keys tbody")?.children.length ?? 0) === n + 1, before);
  });

  e2e("the release form says how often it checks, in words that follow the pace", async () => {
    await page.click('nav button[data-tab="releases"]');
    assert.match((await page.locator("#rel-checks").textContent()) ?? "", /^Checked every minute from Envoy's own numbers/);
    await page.locator("#rel-pace").selectOption("fast");
    assert.match((await page.locator("#rel-checks").textContent()) ?? "", /^Checked every 10 seconds/);
    // Starting one asks first, in words: "for 1 minute", not "for 1 minutes".
    await page.click('#release-form button[type="submit"]');
    await page.waitForFunction(() => /^Release r\d+/.test(document.querySelector("#rel-title")?.textContent ?? ""));
    assert.match(dialogs[dialogs.length - 1], /each step stays healthy for 1 minute\./);
    const id = /^Release (r\d+)/.exec((await page.locator("#rel-title").textContent()) ?? "")![1];
    await fetch(`${url}api/releases/${id}/abort`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: "{}",
    });
    await page.locator("#rel-pace").selectOption("normal");
  });

  e2e("every tab, for the docs' screenshots", async () => {
    for (const tab of ["rules", "releases", "history", "traffic", "gateways", "crawler", "consumers", "filters"]) {
      await page.click(`nav button[data-tab="${tab}"]`);
      await page.locator(`#tab-${tab}`).waitFor();
      await page.screenshot({ path: join(tmpdir(), `graywall-ui-tab-${tab}.png`), fullPage: true });
    }
  });

  e2e("no script error on any tab: the UI's ES modules load and run", async () => {
    const modules = await page.evaluate(() => [...document.querySelectorAll("script")].map((s) => [s.getAttribute("type"), s.getAttribute("src")]));
    assert.deepEqual(modules, [["module", "/app.js"]]);
    for (const m of ["common", "rules", "history", "releases", "traffic", "gateways", "crawler", "consumers", "filters", "chart"])
      assert.match((await fetch(`${url}${m}.js`)).headers.get("content-type") ?? "", /text\/javascript/, m);
    assert.deepEqual(pageErrors, []);
  });

  e2e("sign out: back to read-only, the token gone from the page and the session", async () => {
    await page.click("#sign-out");
    assert.equal(await page.locator("#whoami").textContent(), "read-only until you sign in");
    assert.equal(await page.locator("#token").inputValue(), "");
    assert.equal(await page.evaluate(() => sessionStorage.getItem("graywall-token")), null);
    assert.ok(await page.locator("#sign-out").isHidden());
    await page.click('nav button[data-tab="rules"]');
    await page.click("#save-rules");
    await page.waitForFunction(() => document.querySelector("#message")?.textContent?.includes("Sign in"));
  });
});
